use std::os::unix::fs::PermissionsExt as _;

use super::*;
use crate::testutil::{Alg, Ca};

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dapr-security-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn svid(root: &Ca, jwt: Option<&str>) -> Svid {
    let leaf = root.leaf(Alg::Ed25519, "spiffe://localhost/ns/default/dapr-scheduler");
    // The chain as sentry may send it: leaf and the self-signed root.
    let chain = vec![
        leaf.certificate(),
        Certificate::from_der(root.der().to_vec()).unwrap(),
    ];
    let jwt = jwt.map(|t| crate::svid::JwtSvid {
        token: t.to_owned(),
        expiry: SystemTime::now(),
    });
    Svid::new(chain, leaf.private_key(), jwt).unwrap()
}

use crate::pem::Certificate;

#[test]
fn each_write_lands_in_a_new_private_directory_behind_the_symlink() {
    let base = tempdir("identity-dir");
    let target = base.join("tls");
    let root = Ca::root(Alg::Ed25519);
    let mut dir = IdentityDir::new(target.clone());

    dir.write(&svid(&root, None), b"CA PEM").unwrap();
    let first = std::fs::read_link(&target).unwrap();
    assert!(
        first
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-tls")
    );
    assert_eq!(
        std::fs::metadata(&first).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let key = target.join("key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let cert = std::fs::read(target.join("cert.pem")).unwrap();
    let certs = crate::pem::decode_certificates(&cert).unwrap();
    assert_eq!(certs.len(), 1, "the self-signed root is left out");
    assert_eq!(std::fs::read(target.join("ca.pem")).unwrap(), b"CA PEM");
    assert!(!target.join("jwt_svid.token").exists());

    dir.write(&svid(&root, Some("a.b.c")), b"CA PEM 2").unwrap();
    let second = std::fs::read_link(&target).unwrap();
    assert_ne!(first, second);
    assert!(!first.exists(), "the previous directory is removed");
    assert_eq!(
        std::fs::read(target.join("jwt_svid.token")).unwrap(),
        b"a.b.c"
    );
    assert_eq!(std::fs::read(target.join("ca.pem")).unwrap(), b"CA PEM 2");
    assert!(!base.join("tls.new").exists());
    let _ = std::fs::remove_dir_all(&base);
}
