use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use super::*;

const SKEW: Duration = Duration::from_secs(15 * 60);

fn tmpdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sentry-ca-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_generated_ca_follows_the_upstream_profile() {
    let now = SystemTime::now();
    let (bundle, pem) = generate(
        "example.org",
        "spiffe://example.org/ns/default/dapr-sentry",
        SKEW,
        now,
    )
    .unwrap();
    let root = &bundle.trust_anchors()[0];
    let issuer = &bundle.issuer_chain()[0];
    assert_eq!(bundle.issuer_chain().len(), 1);
    assert!(issuer.is_signed_by(root));
    let r = root.parsed();
    let i = issuer.parsed();
    assert_eq!(r.subject().to_string(), "O=example.org");
    assert_eq!(
        i.subject().to_string(),
        "O=spiffe://example.org/ns/default/dapr-sentry"
    );
    assert!(r.is_ca() && i.is_ca());
    let ku = i.key_usage().unwrap().unwrap();
    assert!(
        ku.critical
            && ku.value.digital_signature()
            && ku.value.key_cert_sign()
            && ku.value.crl_sign()
    );
    let rku = r.key_usage().unwrap().unwrap();
    assert!(rku.value.key_cert_sign() && !rku.value.crl_sign());
    let not_after = i.validity().not_after.timestamp();
    let expect = (now + Duration::from_secs(365 * 86400))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((not_after - expect).abs() <= 1);
    assert_eq!(bundle.issuer_not_after(), not_after);
    assert!(pem.issuer_key.starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn missing_files_are_generated_stored_0600_and_reloaded() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmpdir("gen");
    let d = dir.to_str().unwrap();
    let store = FileStore::new(d, "ca.crt", "issuer.crt", "issuer.key");
    let (first, generated) = load_or_generate(
        &store,
        "td",
        "spiffe://td/ns/default/dapr-sentry",
        SKEW,
        SystemTime::now(),
    )
    .unwrap();
    assert!(generated);
    for f in ["ca.crt", "issuer.crt", "issuer.key"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let (second, generated) = load_or_generate(&store, "td", "x", SKEW, SystemTime::now()).unwrap();
    assert!(!generated);
    assert_eq!(first.trust_anchors_pem(), second.trust_anchors_pem());
    assert_eq!(first.issuer_chain_pem(), second.issuer_chain_pem());
}

#[test]
fn absolute_file_names_are_used_as_is() {
    let store = FileStore::new("/dir", "/abs/ca.crt", "issuer.crt", "k");
    assert_eq!(store.root, std::path::Path::new("/abs/ca.crt"));
    assert_eq!(store.issuer_cert, std::path::Path::new("/dir/issuer.crt"));
}

#[test]
fn an_invalid_stored_bundle_is_fatal_not_replaced() {
    let dir = tmpdir("bad");
    for f in ["ca.crt", "issuer.crt", "issuer.key"] {
        std::fs::write(dir.join(f), "junk").unwrap();
    }
    let store = FileStore::new(dir.to_str().unwrap(), "ca.crt", "issuer.crt", "issuer.key");
    let err = load_or_generate(&store, "td", "x", SKEW, SystemTime::now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to get CA bundle: failed to verify CA bundle: failed to decode trust anchors: no certificates found"
    );
}

struct Ca {
    cert: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str, parent: Option<&Ca>, days: (i64, i64)) -> (Ca, KeyPair) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now + time::Duration::days(days.0);
    p.not_after = now + time::Duration::days(days.1);
    let cert = match parent {
        Some(parent) => p.signed_by(&key, &parent.issuer).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    let issuer = Issuer::new(p, KeyPair::try_from(key.serialized_der()).unwrap());
    (Ca { cert, issuer }, key)
}

fn check(anchors: &str, chain: &str, key: &KeyPair) -> Result<CaBundle, BundleError> {
    CaBundle::from_pem(
        anchors.as_bytes(),
        chain.as_bytes(),
        key.serialize_pem().as_bytes(),
        SystemTime::now(),
    )
}

#[test]
fn user_bundles_are_checked_in_upstreams_order() {
    let (root, root_key) = ca("root", None, (-1, 30));
    let (int, int_key) = ca("int", Some(&root), (-1, 30));
    let (other, _) = ca("other", None, (-1, 30));

    // Root + intermediate with the root at the end of the chain: accepted, root dropped.
    let chain = format!("{}{}", int.cert.pem(), root.cert.pem());
    let ok = check(&root.cert.pem(), &chain, &int_key).unwrap();
    assert_eq!(ok.issuer_chain().len(), 1);
    assert_eq!(ok.issuer_chain_pem(), int.cert.pem());

    assert_eq!(
        check(&int.cert.pem(), &int.cert.pem(), &int_key)
            .unwrap_err()
            .to_string(),
        "certificate in trust anchor is not self-signed: x509: signature verification failed"
    );
    assert_eq!(
        check(
            &root.cert.pem(),
            &format!("{}{}", root.cert.pem(), int.cert.pem()),
            &int_key
        )
        .unwrap_err()
        .to_string(),
        "certificate chain is not valid"
    );
    assert_eq!(
        check(&root.cert.pem(), &root.cert.pem(), &root_key)
            .unwrap_err()
            .to_string(),
        "issuer chain is empty after re-encoding"
    );
    assert_eq!(
        check(&root.cert.pem(), &int.cert.pem(), &root_key)
            .unwrap_err()
            .to_string(),
        "issuer key does not match issuer certificate"
    );
    assert_eq!(
        check(&other.cert.pem(), &int.cert.pem(), &int_key)
            .unwrap_err()
            .to_string(),
        "issuer chain does not belong to trust anchors: x509: certificate signed by unknown authority"
    );
    let e = CaBundle::from_pem(
        root.cert.pem().as_bytes(),
        int.cert.pem().as_bytes(),
        b"nope",
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "key is not PEM encoded");
}

#[test]
fn an_expired_issuer_is_rejected() {
    let (root, _) = ca("root", None, (-10, 30));
    let (int, int_key) = ca("int", Some(&root), (-10, -1));
    let err = check(&root.cert.pem(), &int.cert.pem(), &int_key)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("issuer chain does not belong to trust anchors: x509: certificate has expired or is not yet valid"),
        "{err}"
    );
}
