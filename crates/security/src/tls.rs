//! rustls server and client configs built on the current SVID and trust anchors (go-spiffe
//! `tlsconfig`): certificates are picked per handshake and anchors read per verification, so a
//! renewal or an anchors reload applies to the next connection without rebuilding anything.

use std::sync::{Arc, LazyLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, ResolvesClientCert, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use tokio::sync::watch;

use crate::anchors::TrustAnchors;
use crate::spiffe::SpiffeId;
use crate::svid::Svid;
use crate::verify::{VerifyError, verify_svid, verify_svid_id};

/// The one crypto provider: `ring`, whose verification algorithms cover Ed25519, ECDSA
/// P-256/P-384 and RSA PKCS#1 v1.5 / PSS, in certificates and in TLS 1.2/1.3 handshakes.
pub(crate) static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));

/// gRPC needs HTTP/2 negotiated.
const ALPN_H2: &[u8] = b"h2";

/// The current trust anchors, as published by the provider.
pub type AnchorsReceiver = watch::Receiver<Arc<TrustAnchors>>;

/// The current SVID (none before the first fetch).
pub type SvidReceiver = watch::Receiver<Option<Arc<Svid>>>;

fn certificate_error(error: VerifyError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

/// Handshake signatures with the provider's algorithms (the same for both verifier kinds).
#[derive(Debug)]
struct Signatures;

impl Signatures {
    fn tls12(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &PROVIDER.signature_verification_algorithms,
        )
    }

    fn tls13(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &PROVIDER.signature_verification_algorithms,
        )
    }

    fn schemes() -> Vec<SignatureScheme> {
        PROVIDER
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Verifies a server's SVID against the anchors and requires one exact SPIFFE ID; the DNS name
/// the client dialled is ignored (go-spiffe `tlsconfig.AuthorizeID`).
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    anchors: AnchorsReceiver,
    expected: SpiffeId,
}

impl SpiffeServerVerifier {
    pub fn new(anchors: AnchorsReceiver, expected: SpiffeId) -> Self {
        Self { anchors, expected }
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = chain(end_entity, intermediates);
        let anchors = Arc::clone(&self.anchors.borrow());
        verify_svid_id(&chain, &anchors, now, &self.expected).map_err(certificate_error)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Signatures::tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Signatures::tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Signatures::schemes()
    }
}

/// Requires a client certificate and verifies it as an SVID of *any* trust domain against the
/// anchors (go-spiffe `tlsconfig.AuthorizeAny`); authorization by ID is left to the service.
#[derive(Debug)]
pub struct SpiffeClientVerifier {
    anchors: AnchorsReceiver,
}

impl SpiffeClientVerifier {
    pub fn new(anchors: AnchorsReceiver) -> Self {
        Self { anchors }
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// Go's `RequireAnyClientCert` sends no CA names either.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let chain = chain(end_entity, intermediates);
        let anchors = Arc::clone(&self.anchors.borrow());
        verify_svid(&chain, &anchors, now).map_err(certificate_error)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Signatures::tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Signatures::tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Signatures::schemes()
    }
}

fn chain<'a>(
    end_entity: &CertificateDer<'a>,
    intermediates: &[CertificateDer<'a>],
) -> Vec<CertificateDer<'a>> {
    std::iter::once(end_entity.clone())
        .chain(intermediates.iter().cloned())
        .collect()
}

/// Serves (or presents) whatever SVID is current at handshake time.
#[derive(Debug)]
pub struct SvidResolver {
    svid: SvidReceiver,
}

impl SvidResolver {
    pub fn new(svid: SvidReceiver) -> Self {
        Self { svid }
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.svid
            .borrow()
            .as_ref()
            .map(|svid| Arc::clone(svid.certified_key()))
    }
}

impl ResolvesServerCert for SvidResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

impl ResolvesClientCert for SvidResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current()
    }

    fn has_certs(&self) -> bool {
        self.svid.borrow().is_some()
    }
}

fn server_builder() -> rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier> {
    match ServerConfig::builder_with_provider(Arc::clone(&PROVIDER))
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder,
        // The ring provider supports the default versions; this cannot fail.
        Err(_) => unreachable!("ring supports TLS 1.2 and 1.3"),
    }
}

fn client_builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    match ClientConfig::builder_with_provider(Arc::clone(&PROVIDER))
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder,
        Err(_) => unreachable!("ring supports TLS 1.2 and 1.3"),
    }
}

/// TLS ≥ 1.2 server that requires an SVID from the client (any trust domain), ALPN h2.
pub fn server_config_mtls(anchors: AnchorsReceiver, svid: SvidReceiver) -> Arc<ServerConfig> {
    let mut config = server_builder()
        .with_client_cert_verifier(Arc::new(SpiffeClientVerifier::new(anchors)))
        .with_cert_resolver(Arc::new(SvidResolver::new(svid)));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Arc::new(config)
}

/// TLS ≥ 1.2 server without client authentication (webhooks). No ALPN is offered, as Go's
/// `tlsconfig.TLSServerConfig`, so HTTP/1.1 webhook servers work; a gRPC server on this config
/// sets `alpn_protocols = [b"h2"]` on a clone.
pub fn server_config_no_client_auth(svid: SvidReceiver) -> Arc<ServerConfig> {
    let config = server_builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SvidResolver::new(svid)));
    Arc::new(config)
}

/// Client that presents the current SVID and requires the server to be exactly `expected`.
/// Sessions are never resumed (as Go's default client), so every connection verifies the
/// server against the anchors current at that time.
pub fn client_config_mtls(
    anchors: AnchorsReceiver,
    svid: SvidReceiver,
    expected: SpiffeId,
) -> Arc<ClientConfig> {
    let mut config = client_builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(anchors, expected)))
        .with_client_cert_resolver(Arc::new(SvidResolver::new(svid)));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// Client without a certificate that requires the server to be exactly `expected` (how we talk
/// to sentry, and how the sentry benchmark does).
pub fn client_config_no_client_auth(
    anchors: AnchorsReceiver,
    expected: SpiffeId,
) -> Arc<ClientConfig> {
    let mut config = client_builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(anchors, expected)))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// A receiver that always yields `anchors` (for static bundles and tests).
pub fn fixed_anchors(anchors: TrustAnchors) -> AnchorsReceiver {
    watch::channel(Arc::new(anchors)).1
}

#[cfg(test)]
mod tests;
