use super::*;
use crate::testutil::{Alg, Ca};

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dapr-security-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_leading_certificate_block_is_an_anchor_and_the_pem_is_kept_as_given() {
    let (a, b) = (Ca::root(Alg::Ed25519), Ca::root(Alg::P256));
    let pem = format!("{}{}", a.cert.pem(), b.cert.pem());
    let anchors = TrustAnchors::from_pem(pem.as_bytes()).unwrap();
    assert_eq!(anchors.certificates().len(), 2);
    assert_eq!(anchors.webpki_anchors().len(), 2);
    assert_eq!(anchors.pem(), pem.as_bytes());
    assert_eq!(
        TrustAnchors::from_pem(b"nothing").unwrap_err().to_string(),
        "failed to decode trust anchors: no certificates found"
    );
    assert!(TrustAnchors::empty().is_empty());
}

#[tokio::test(start_paused = true)]
async fn inline_pem_is_published_once() {
    let ca = Ca::root(Alg::Ed25519);
    let (tx, mut rx) = watch::channel(Arc::new(TrustAnchors::empty()));
    let cancel = CancellationToken::new();
    let task = tokio::spawn(run(
        AnchorsSource::Pem(ca.cert.pem().into_bytes()),
        tx,
        cancel.clone(),
    ));
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow().certificates().len(), 1);
    cancel.cancel();
    assert!(task.await.unwrap().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_file_is_waited_for_then_reloaded_on_change_and_a_bad_reload_ends_the_watch() {
    let dir = tempdir("anchors-file");
    let path = dir.join("ca.crt");
    let (one, two) = (Ca::root(Alg::Ed25519), Ca::root(Alg::Ed25519));
    let (tx, mut rx) = watch::channel(Arc::new(TrustAnchors::empty()));
    let task = tokio::spawn(run(
        AnchorsSource::File(path.clone()),
        tx,
        CancellationToken::new(),
    ));

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        rx.borrow().is_empty(),
        "nothing loaded before the file exists"
    );
    std::fs::write(&path, one.cert.pem()).unwrap();
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow_and_update().pem(), one.cert.pem().as_bytes());

    std::fs::write(&path, two.cert.pem()).unwrap();
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow_and_update().pem(), two.cert.pem().as_bytes());

    std::fs::write(&path, "garbage").unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "failed to read trust anchors file: '{}': failed to decode trust anchors: no certificates found",
            path.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}
