//! CSR decoding as `SignCertificate` does it: PEM block, DER `CertificationRequest`, its
//! self-signature, then the key re-read by rcgen and a leaf signed over it. Raw bytes go both
//! straight to the DER parser and, as the CSR field, through `sign_validated` with a request
//! that passes validation. Oracle: no panic; errors are InvalidArgument or Internal.
#![no_main]

use std::time::Duration;

use dapr_proto::sentry::v1::SignCertificateRequest;
use dapr_security::TrustDomain;
use libfuzzer_sys::fuzz_target;
use sentry::sign::{SignContext, sign_validated};
use sentry::validator::Validators;
use sentry_fuzz::{CONTROL_PLANE_NAMESPACE, fixture};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

fuzz_target!(|data: &[u8]| {
    let f = fixture();

    // The DER layer alone (the seeds include DER CSRs).
    if let Ok((_, csr)) = X509CertificationRequest::from_der(data) {
        let _ = csr.verify_signature();
        let _ = csr.requested_extensions().map(|e| e.count());
        let _ =
            rcgen::SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw);
    }

    let req = SignCertificateRequest {
        id: "myapp".into(),
        namespace: "default".into(),
        certificate_signing_request: data.to_vec(),
        ..Default::default()
    };
    let validators = Validators::standalone(&[]);
    let ctx = SignContext {
        bundle: &f.bundle,
        validators: &validators,
        workload_cert_ttl: Duration::from_secs(3600),
        allowed_clock_skew: Duration::from_secs(60),
        control_plane_namespace: CONTROL_PLANE_NAMESPACE,
        cluster_domain: "cluster.local",
        jwt: None,
    };
    let td = TrustDomain::parse("public").expect("a valid trust domain");
    if let Err(e) = sign_validated(&req, &td, &ctx, f.now) {
        let status = e.into_status();
        assert!(
            matches!(
                status.code(),
                tonic::Code::InvalidArgument | tonic::Code::Internal
            ),
            "unexpected code {:?}: {}",
            status.code(),
            status.message()
        );
    }
});
