//! Fetching an SVID from sentry (`dapr/dapr:pkg/security/sentry.go`): a fresh key and CSR, a
//! fresh TLS connection that checks sentry's own SVID, then `SignCertificate` with
//! go-grpc-middleware's retry policy.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dapr_proto::sentry::v1::ca_client::CaClient;
use dapr_proto::sentry::v1::{SignCertificateRequest, SignCertificateResponse};
use tonic::Code;
use tonic::transport::Channel;

use crate::csr::{CsrError, KeyKind, new_key_and_csr};
use crate::net::{ChannelError, tls_endpoint};
use crate::request::{Env, RequestTemplate, TokenError};
use crate::spiffe::SpiffeId;
use crate::svid::{Svid, SvidError};
use crate::tls::{AnchorsReceiver, client_config_no_client_auth};

/// Attempts per `SignCertificate` call, the first included (`sentryMaxRetries`).
const MAX_ATTEMPTS: u32 = 5;
/// Each attempt's own deadline (`sentrySignTimeout`).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// go-grpc-middleware's default `BackoffLinearWithJitter(50ms, 0.10)`.
const RETRY_BACKOFF: Duration = Duration::from_millis(50);
const RETRY_JITTER: f64 = 0.10;
/// The metadata key go-grpc-middleware puts the retry number under (sic).
pub const RETRY_ATTEMPT_HEADER: &str = "x-retry-attempty";

/// gRPC's default connection backoff: 1 s base, ×1.6, ±20 % jitter, at most 120 s.
const DIAL_BASE: Duration = Duration::from_secs(1);
const DIAL_MULTIPLIER: f64 = 1.6;
const DIAL_JITTER: f64 = 0.2;
const DIAL_MAX: Duration = Duration::from_secs(120);
/// gRPC's minimum connect timeout.
const DIAL_TIMEOUT: Duration = Duration::from_secs(20);

/// Why one fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error("error establishing connection to sentry: {0}")]
    Channel(#[source] ChannelError),
    #[error("error obtaining token: {0}")]
    Token(#[source] TokenError),
    #[error("error from sentry SignCertificate: {0}")]
    Sign(#[source] tonic::Status),
    #[error(transparent)]
    Svid(#[from] SvidError),
    #[error("failed to write identity directory: {0}")]
    IdentityDir(#[source] std::io::Error),
}

/// Everything needed to ask sentry for our identity.
pub(crate) struct SentryClient {
    pub address: String,
    pub sentry_id: SpiffeId,
    pub anchors: AnchorsReceiver,
    pub template: RequestTemplate,
    pub key: KeyKind,
    pub env: Arc<dyn Env + Send + Sync>,
}

impl SentryClient {
    /// One fetch; waits (forever) until sentry accepts a verified TLS connection.
    pub async fn fetch(&self) -> Result<Svid, FetchError> {
        let kind = self.key;
        let (key, csr) = tokio::task::spawn_blocking(move || new_key_and_csr(kind))
            .await
            .map_err(|e| CsrError::Key(e.to_string()))??;
        let channel = self.dial().await?;
        let request = self
            .template
            .request(self.env.as_ref(), csr)
            .map_err(FetchError::Token)?;
        let client = CaClient::new(channel);
        let response = sign_with_retry(&request, |req| {
            let mut client = client.clone();
            async move {
                client
                    .sign_certificate(req)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await
        .map_err(FetchError::Sign)?;
        Ok(Svid::from_response(&response, key, SystemTime::now())?)
    }

    /// A fresh connection to sentry, retried with gRPC's connection backoff.
    async fn dial(&self) -> Result<Channel, FetchError> {
        // Nothing can verify sentry before the anchors are loaded (kit blocks the same way).
        let mut anchors = self.anchors.clone();
        let _ = anchors.wait_for(|a| !a.is_empty()).await;
        let config = client_config_no_client_auth(self.anchors.clone(), self.sentry_id.clone());
        let (endpoint, dialer) =
            tls_endpoint(&self.address, config).map_err(FetchError::Channel)?;
        let endpoint = endpoint.connect_timeout(DIAL_TIMEOUT);
        let mut retries = 0;
        loop {
            match endpoint.connect_with_connector(dialer.clone()).await {
                Ok(channel) => return Ok(channel),
                Err(error) => {
                    let wait = jittered(dial_backoff(retries), DIAL_JITTER);
                    tracing::debug!(
                        address = %self.address,
                        error = %error_chain(&error),
                        "sentry not reachable yet, retrying in {wait:?}"
                    );
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
            }
        }
    }
}

/// The un-jittered wait before reconnect number `retries + 1`.
pub(crate) fn dial_backoff(retries: u32) -> Duration {
    let factor = DIAL_MULTIPLIER.powi(i32::try_from(retries).unwrap_or(i32::MAX));
    DIAL_BASE
        .mul_f64(factor.min(DIAL_MAX.as_secs_f64()))
        .min(DIAL_MAX)
}

fn jittered(d: Duration, fraction: f64) -> Duration {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 4];
    let unit = match ring::rand::SystemRandom::new().fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    d.mul_f64(1.0 + fraction * (unit * 2.0 - 1.0))
}

fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::ResourceExhausted | Code::DeadlineExceeded
    )
}

/// Calls `call` up to [`MAX_ATTEMPTS`] times, each under its own [`ATTEMPT_TIMEOUT`], retrying
/// on `Unavailable`, `ResourceExhausted` and on an attempt that ran out of time; retries wait
/// ~50 ms and carry `x-retry-attempty: <n>`.
pub(crate) async fn sign_with_retry<F, Fut>(
    request: &SignCertificateRequest,
    mut call: F,
) -> Result<SignCertificateResponse, tonic::Status>
where
    F: FnMut(tonic::Request<SignCertificateRequest>) -> Fut,
    Fut: Future<Output = Result<SignCertificateResponse, tonic::Status>>,
{
    let mut last = tonic::Status::unknown("no attempt made");
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(jittered(RETRY_BACKOFF, RETRY_JITTER)).await;
        }
        let mut req = tonic::Request::new(request.clone());
        req.set_timeout(ATTEMPT_TIMEOUT);
        if attempt > 0 {
            req.metadata_mut()
                .insert(RETRY_ATTEMPT_HEADER, attempt.into());
        }
        match tokio::time::timeout(ATTEMPT_TIMEOUT, call(req)).await {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(status)) if retryable(status.code()) => last = status,
            Ok(Err(status)) => return Err(status),
            Err(_) => last = tonic::Status::deadline_exceeded("context deadline exceeded"),
        }
    }
    Err(last)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests;
