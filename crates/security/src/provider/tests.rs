use std::sync::Mutex;

use tokio::time::Instant;

use super::*;
use crate::testutil::{Alg, Ca};

const ID: &str = "spiffe://localhost/ns/default/dapr-placement";

fn options() -> ProviderOptions {
    ProviderOptions {
        app_id: "dapr-placement".to_owned(),
        sentry_address: "127.0.0.1:1".to_owned(),
        anchors: None,
        control_plane_trust_domain: "localhost".to_owned(),
        control_plane_namespace: "default".to_owned(),
        mtls_enabled: false,
        kubernetes_mode: false,
        key: KeyKind::Ed25519,
        write_identity_dir: None,
    }
}

#[test]
fn set_up_errors_use_upstreams_texts() {
    let mut o = options();
    o.control_plane_trust_domain = String::new();
    assert_eq!(
        o.validate().unwrap_err().to_string(),
        "control plane trust domain is required"
    );
    o.control_plane_trust_domain = "Bad Domain".to_owned();
    assert!(
        o.validate()
            .unwrap_err()
            .to_string()
            .starts_with("invalid control plane trust domain: ")
    );
    let mut o = options();
    assert!(o.validate().is_ok(), "no anchors needed without mTLS");
    o.mtls_enabled = true;
    assert_eq!(
        o.validate().unwrap_err().to_string(),
        "trust anchors are required"
    );
    o.anchors = Some(AnchorsSource::Pem(Vec::new()));
    assert_eq!(
        o.validate().unwrap_err().to_string(),
        "trust anchors are required"
    );
    let mut o = options();
    o.kubernetes_mode = true;
    assert_eq!(
        o.validate().unwrap_err().to_string(),
        "trust anchors are required"
    );
    o.anchors = Some(AnchorsSource::File("/x/ca.crt".into()));
    assert!(o.validate().is_ok());
}

#[tokio::test]
async fn without_mtls_in_standalone_mode_the_provider_is_ready_at_once_and_has_no_identity() {
    let (provider, security) = Provider::new(options()).unwrap();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(provider.run(cancel.clone()));
    security.ready().await;
    assert!(security.is_ready());
    assert!(!security.mtls_enabled());
    assert_eq!(security.id(), None);
    assert_eq!(
        security
            .control_plane_id("dapr-sentry")
            .unwrap()
            .to_string(),
        "spiffe://localhost/ns/default/dapr-sentry"
    );
    cancel.cancel();
    assert!(task.await.unwrap().is_ok());
}

fn shared() -> Shared {
    Shared {
        anchors: watch::channel(Arc::new(TrustAnchors::empty())).0,
        svid: watch::channel(None).0,
        ready: watch::channel(false).0,
        mtls: true,
        control_plane_trust_domain: TrustDomain::parse("localhost").unwrap(),
        control_plane_namespace: "default".to_owned(),
    }
}

/// Mints an SVID valid from 50 s ago to 100 s ahead (renewal ~25 s after issuance); calls in
/// `fail` (0-based) fail instead. Records when each call happened.
struct FakeSentry {
    root: Ca,
    start: Instant,
    calls: Mutex<Vec<Duration>>,
    fail: Vec<usize>,
}

impl FakeSentry {
    fn new(fail: Vec<usize>) -> Self {
        Self {
            root: Ca::root(Alg::Ed25519),
            start: Instant::now(),
            calls: Mutex::new(Vec::new()),
            fail,
        }
    }

    fn fetch(&self) -> impl Future<Output = Result<Svid, FetchError>> + use<> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(self.start.elapsed());
            calls.len() - 1
        };
        let result = if self.fail.contains(&n) {
            Err(FetchError::Sign(tonic::Status::permission_denied("denied")))
        } else {
            let leaf = self.root.leaf_with(Alg::Ed25519, &[ID], |p| {
                let now = SystemTime::now();
                p.not_before = (now - Duration::from_secs(50)).into();
                p.not_after = (now + Duration::from_secs(100)).into();
            });
            Ok(Svid::new(vec![leaf.certificate()], leaf.private_key(), None).unwrap())
        };
        async move { result }
    }

    fn calls(&self) -> Vec<Duration> {
        self.calls.lock().unwrap().clone()
    }
}

#[tokio::test(start_paused = true)]
async fn the_identity_is_renewed_half_way_through_its_validity() {
    let shared = shared();
    let sentry = FakeSentry::new(Vec::new());
    let mut ready = shared.ready.subscribe();
    let run = run_identity(&shared, || sentry.fetch(), None);
    tokio::select! {
        result = run => panic!("the renewal loop ended: {result:?}"),
        () = async {
            ready.wait_for(|r| *r).await.unwrap();
            assert_eq!(shared.svid.borrow().as_ref().unwrap().id().to_string(), ID);
            tokio::time::sleep(Duration::from_secs(60)).await;
        } => {}
    }
    let calls = sentry.calls();
    assert_eq!(calls.len(), 3, "initial + 2 renewals in 60 s: {calls:?}");
    for (n, at) in calls.iter().enumerate().skip(1) {
        let due = Duration::from_secs(25) * u32::try_from(n).unwrap();
        assert!(
            *at <= due && *at + Duration::from_secs(1) * u32::try_from(n).unwrap() >= due,
            "{n}: {at:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_renewal_is_retried_after_ten_seconds_and_keeps_the_old_identity() {
    let shared = shared();
    let sentry = FakeSentry::new(vec![1]);
    let run = run_identity(&shared, || sentry.fetch(), None);
    let mut svids = shared.svid.subscribe();
    tokio::select! {
        result = run => panic!("the renewal loop ended: {result:?}"),
        () = async {
            svids.wait_for(Option::is_some).await.unwrap();
            let first = shared.svid.borrow().clone().unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            // The renewal at ~25 s failed: still the first SVID.
            assert!(Arc::ptr_eq(&first, shared.svid.borrow().as_ref().unwrap()));
            svids.changed().await.unwrap();
        } => {}
    }
    let calls = sentry.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[2] - calls[1], RENEW_RETRY);
}

#[tokio::test(start_paused = true)]
async fn a_failed_initial_fetch_ends_the_provider() {
    let shared = shared();
    let sentry = FakeSentry::new(vec![0]);
    let err = run_identity(&shared, || sentry.fetch(), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "failed to retrieve the initial identity: error from sentry SignCertificate: "
        ),
        "{err}"
    );
    assert!(!*shared.ready.borrow());
}

#[tokio::test(start_paused = true)]
async fn every_fetched_identity_is_written_to_the_identity_directory() {
    let base =
        std::env::temp_dir().join(format!("dapr-security-provider-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let target = base.join("tls");
    let shared = shared();
    let ca = Ca::root(Alg::Ed25519);
    shared.anchors.send_replace(Arc::new(ca.anchors()));
    let sentry = FakeSentry::new(Vec::new());
    let run = run_identity(
        &shared,
        || sentry.fetch(),
        Some(IdentityDir::new(target.clone())),
    );
    let mut svids = shared.svid.subscribe();
    tokio::select! {
        result = run => panic!("the renewal loop ended: {result:?}"),
        () = async {
            svids.wait_for(Option::is_some).await.unwrap();
            let first = std::fs::read_link(&target).unwrap();
            svids.changed().await.unwrap();
            assert_ne!(std::fs::read_link(&target).unwrap(), first);
        } => {}
    }
    assert_eq!(
        std::fs::read(target.join("ca.pem")).unwrap(),
        ca.cert.pem().into_bytes()
    );
    let key = std::fs::read(target.join("key.pem")).unwrap();
    let svid = shared.svid.borrow().clone().unwrap();
    assert_eq!(key, svid.private_key().to_pem().into_bytes());
    let _ = std::fs::remove_dir_all(&base);
}
