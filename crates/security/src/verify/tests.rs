use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};

use super::*;
use crate::testutil::{Alg, Ca};

const ID: &str = "spiffe://public/ns/default/myapp";

fn now() -> UnixTime {
    UnixTime::now()
}

fn id() -> SpiffeId {
    SpiffeId::parse(ID).unwrap()
}

#[test]
fn a_leaf_issued_by_an_intermediate_of_the_anchor_verifies_and_yields_its_id() {
    let root = Ca::root(Alg::Ed25519);
    let issuer = root.intermediate(Alg::Ed25519);
    let leaf = issuer.leaf(Alg::Ed25519, ID);
    let got = verify_svid(&[leaf.der(), issuer.der()], &root.anchors(), now()).unwrap();
    assert_eq!(got, id());
}

#[test]
fn ed25519_ecdsa_and_rsa_chains_all_verify() {
    for (root_alg, issuer_alg, leaf_alg) in [
        (Alg::P256, Alg::P384, Alg::P256),
        (Alg::P384, Alg::P256, Alg::Ed25519),
        (Alg::Rsa, Alg::Rsa, Alg::Rsa),
        (Alg::Rsa, Alg::Ed25519, Alg::P384),
        (Alg::Ed25519, Alg::Rsa, Alg::Ed25519),
    ] {
        let root = Ca::root(root_alg);
        let issuer = root.intermediate(issuer_alg);
        let leaf = issuer.leaf(leaf_alg, ID);
        let got = verify_svid(&[leaf.der(), issuer.der()], &root.anchors(), now());
        assert_eq!(
            got,
            Ok(id()),
            "{root_alg:?} -> {issuer_alg:?} -> {leaf_alg:?}"
        );
    }
}

#[test]
fn any_trust_domain_verifies_against_the_one_anchor_set() {
    let root = Ca::root(Alg::Ed25519);
    let leaf = root.leaf(Alg::Ed25519, "spiffe://other.td/ns/x/y");
    assert_eq!(
        verify_svid(&[leaf.der()], &root.anchors(), now())
            .unwrap()
            .to_string(),
        "spiffe://other.td/ns/x/y"
    );
}

#[test]
fn a_different_id_is_rejected_by_the_exact_id_check() {
    let root = Ca::root(Alg::Ed25519);
    let leaf = root.leaf(Alg::Ed25519, "spiffe://public/ns/default/other");
    let err = verify_svid_id(&[leaf.der()], &root.anchors(), now(), &id()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected ID \"spiffe://public/ns/default/other\""
    );
}

#[test]
fn a_leaf_without_or_with_two_uri_sans_is_rejected() {
    let root = Ca::root(Alg::Ed25519);
    let none = root.leaf_with(Alg::Ed25519, &[], |_| {});
    assert_eq!(
        verify_svid(&[none.der()], &root.anchors(), now())
            .unwrap_err()
            .to_string(),
        "x509svid: could not get leaf SPIFFE ID: certificate contains no URI SAN"
    );
    let two = root.leaf_with(Alg::Ed25519, &[ID, "spiffe://public/ns/default/b"], |_| {});
    assert_eq!(
        verify_svid(&[two.der()], &root.anchors(), now()).unwrap_err(),
        VerifyError::ManyUriSans
    );
    let bad = root.leaf_with(Alg::Ed25519, &["https://public/ns/default/a"], |_| {});
    assert_eq!(
        verify_svid(&[bad.der()], &root.anchors(), now()).unwrap_err(),
        VerifyError::BadId(SpiffeError::WrongScheme)
    );
}

#[test]
fn a_ca_or_cert_signing_leaf_is_rejected() {
    let root = Ca::root(Alg::Ed25519);
    let ca = root.leaf_with(Alg::Ed25519, &[ID], |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    });
    assert_eq!(
        verify_svid(&[ca.der()], &root.anchors(), now()).unwrap_err(),
        VerifyError::LeafIsCa
    );
    let signer = root.leaf_with(Alg::Ed25519, &[ID], |p| {
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
    });
    assert_eq!(
        verify_svid(&[signer.der()], &root.anchors(), now()).unwrap_err(),
        VerifyError::LeafCertSign
    );
    let crl = root.leaf_with(Alg::Ed25519, &[ID], |p| {
        p.key_usages = vec![KeyUsagePurpose::CrlSign];
    });
    assert_eq!(
        verify_svid(&[crl.der()], &root.anchors(), now()).unwrap_err(),
        VerifyError::LeafCrlSign
    );
}

#[test]
fn an_expired_or_not_yet_valid_leaf_is_rejected() {
    let root = Ca::root(Alg::Ed25519);
    let expired = root.leaf_with(Alg::Ed25519, &[ID], |p| {
        let t = SystemTime::now() - Duration::from_secs(7200);
        p.not_before = t.into();
        p.not_after = (t + Duration::from_secs(60)).into();
    });
    let err = verify_svid(&[expired.der()], &root.anchors(), now()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("x509svid: could not verify leaf certificate: x509: certificate has expired or is not yet valid"),
        "{err}"
    );
    let future = root.leaf_with(Alg::Ed25519, &[ID], |p| {
        let t = SystemTime::now() + Duration::from_secs(7200);
        p.not_before = t.into();
        p.not_after = (t + Duration::from_secs(60)).into();
    });
    assert!(matches!(
        verify_svid(&[future.der()], &root.anchors(), now()),
        Err(VerifyError::Path(_))
    ));
}

#[test]
fn a_chain_to_an_unknown_anchor_is_rejected() {
    let root = Ca::root(Alg::Ed25519);
    let stranger = Ca::root(Alg::Ed25519);
    let leaf = stranger.leaf(Alg::Ed25519, ID);
    assert_eq!(
        verify_svid(&[leaf.der()], &root.anchors(), now())
            .unwrap_err()
            .to_string(),
        "x509svid: could not verify leaf certificate: x509: certificate signed by unknown authority"
    );
    // Missing intermediate: the leaf's issuer is not an anchor.
    let issuer = root.intermediate(Alg::Ed25519);
    let leaf = issuer.leaf(Alg::Ed25519, ID);
    assert!(verify_svid(&[leaf.der()], &root.anchors(), now()).is_err());
    // No anchors at all.
    assert!(verify_svid(&[leaf.der(), issuer.der()], &TrustAnchors::empty(), now()).is_err());
}

#[test]
fn leafs_with_any_extended_key_usage_verify_as_go_spiffe_allows() {
    let root = Ca::root(Alg::Ed25519);
    for ekus in [
        vec![],
        vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
        vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning],
    ] {
        let leaf = root.leaf_with(Alg::Ed25519, &[ID], |p| p.extended_key_usages = ekus);
        assert_eq!(verify_svid(&[leaf.der()], &root.anchors(), now()), Ok(id()));
    }
}

#[test]
fn empty_chains_and_garbage_are_errors_not_panics() {
    let root = Ca::root(Alg::Ed25519);
    assert_eq!(
        verify_svid(&[], &root.anchors(), now()),
        Err(VerifyError::EmptyChain)
    );
    let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
    assert!(matches!(
        verify_svid(std::slice::from_ref(&garbage), &root.anchors(), now()),
        Err(VerifyError::Parse(_))
    ));
    assert!(matches!(
        peer_spiffe_id(&[garbage]),
        Err(VerifyError::Parse(_))
    ));
    assert_eq!(peer_spiffe_id(&[]), Err(VerifyError::EmptyChain));
}

#[test]
fn the_peer_id_is_the_leafs_uri_san() {
    let root = Ca::root(Alg::Ed25519);
    let leaf = root.leaf(Alg::P256, ID);
    assert_eq!(peer_spiffe_id(&[leaf.der(), root.der()]), Ok(id()));
}
