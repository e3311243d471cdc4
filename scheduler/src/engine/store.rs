//! The scheduler's etcd calls (spec §6.3, §7.4, §8, §11), made through the etcd v3 gRPC API so
//! the embedded store and an external etcd are driven by the same code. The embedded store's
//! services are called in-process ([`Transport::Local`]): same requests, same handlers, no
//! loopback TCP or HTTP/2 in between.

use std::{
    convert::Infallible,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use dapr_etcd_store::prefix_end;
use dapr_proto::etcd::{
    etcdserverpb::{
        AuthenticateRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RangeResponse,
        RequestOp, TxnRequest, TxnResponse,
        auth_client::AuthClient,
        compare::{CompareResult, CompareTarget, TargetUnion},
        kv_client::KvClient,
        range_request::{SortOrder, SortTarget},
        request_op,
        watch_client::WatchClient,
    },
    mvccpb::KeyValue,
};
use tonic::{
    Status,
    body::Body,
    codegen::{BoxFuture, Service, StdError, http},
    metadata::AsciiMetadataValue,
    service::{Interceptor, Routes, interceptor::InterceptedService},
    transport::Channel,
};

use crate::job::{COUNTERS_PREFIX, JOBS_PREFIX};

/// Keys read per page when loading or listing.
const PAGE: i64 = 1024;

/// Adds the etcd auth token (external etcd with a user) to every call. Shared by every client
/// of one [`Etcd`], so a renewed token (see [`Reauth`]) reaches all of them.
#[derive(Clone, Default)]
pub struct Token(Arc<RwLock<Option<AsciiMetadataValue>>>);

impl Token {
    fn new(value: Option<AsciiMetadataValue>) -> Self {
        Self(Arc::new(RwLock::new(value)))
    }

    fn set(&self, value: Option<AsciiMetadataValue>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = value;
    }
}

impl Interceptor for Token {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(token) = &*self.0.read().unwrap_or_else(PoisonError::into_inner) {
            request.metadata_mut().insert("token", token.clone());
        }
        Ok(request)
    }
}

/// How etcd requests reach the store.
#[derive(Clone)]
pub enum Transport {
    /// An etcd server over the network (`--etcd-embed=false`); with a user, the hook that
    /// replaces a token the server stopped accepting.
    Remote(Channel, Option<Arc<Reauth>>),
    /// The embedded store's gRPC services, called in this process.
    Local(Routes),
}

impl Transport {
    pub fn remote(channel: Channel) -> Self {
        Self::Remote(channel, None)
    }
}

impl Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = StdError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Self::Remote(channel, _) => channel.poll_ready(cx).map_err(Into::into),
            Self::Local(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self {
            Self::Remote(channel, reauth) => {
                // The token this call carries: a refusal of one already replaced renews nothing.
                let sent = reauth
                    .as_ref()
                    .and_then(|_| request.headers().get("token").cloned());
                let call = channel.call(request);
                let reauth = reauth.clone();
                Box::pin(async move {
                    let response = call.await.map_err(StdError::from)?;
                    if let Some(reauth) = reauth
                        && token_refused(response.headers())
                    {
                        reauth.renew(sent.as_ref().map(http::HeaderValue::as_bytes));
                    }
                    Ok(response)
                })
            }
            Self::Local(routes) => {
                let call = routes.call(request);
                Box::pin(async move {
                    let response: Result<_, Infallible> = call.await;
                    Ok(response.unwrap_or_else(|never| match never {}))
                })
            }
        }
    }
}

/// etcd's answers to a token it no longer accepts: it expired (simple tokens live 5 minutes
/// after their last use), auth was turned off and on (that drops every token), or the auth
/// store changed since it was issued. etcd's own client authenticates again on these.
const TOKEN_REFUSED: [&str; 2] = ["invalid auth token", "revision of auth store is old"];
/// etcd's answer to a call without a token once auth is on: a user given to a scheduler that
/// started while auth was off authenticates then (only the renewal hook, which exists only with
/// credentials, acts on it; without credentials it is a plain, lasting error).
const TOKEN_MISSING: &str = "user name is empty";

/// Whether a response says the token was refused or missing. etcd fails a unary call before it
/// starts, so the status comes in the response headers (a trailers-only response). A watch
/// refused the same way is cancelled in its body instead, unseen here; the informer's and the
/// leadership loop's unary calls before their watches start the renewal.
fn token_refused(headers: &http::HeaderMap) -> bool {
    headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| TOKEN_REFUSED.iter().any(|t| m.contains(t)) || m.contains(TOKEN_MISSING))
}

/// Bounds one re-authentication (the server may be unreachable).
const AUTHENTICATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Authenticates a user; `None` when the server has auth disabled (as etcd's own client, the
/// credentials are then unused).
async fn authenticate(
    transport: Transport,
    name: &str,
    password: &str,
) -> Result<Option<AsciiMetadataValue>, Status> {
    let response = AuthClient::new(transport)
        .authenticate(AuthenticateRequest {
            name: name.to_owned(),
            password: password.to_owned(),
        })
        .await;
    match response {
        Ok(response) => AsciiMetadataValue::try_from(response.into_inner().token)
            .map(Some)
            .map_err(|_| Status::internal("etcd returned an invalid auth token")),
        Err(status) if status.message().contains("authentication is not enabled") => Ok(None),
        Err(status) => Err(status),
    }
}

/// Replaces the token of an external etcd's user once the server refuses it. One renewal runs
/// at a time; the calls refused meanwhile fail with a transient error ([`is_transient`]) and are
/// retried by their callers with the new token.
pub struct Reauth {
    channel: Channel,
    name: String,
    password: String,
    token: Token,
    running: AtomicBool,
}

impl Reauth {
    /// Starts a renewal after a call carrying `sent` was refused, unless the token was already
    /// replaced since or a renewal is running.
    fn renew(self: &Arc<Self>, sent: Option<&[u8]>) {
        let current = self
            .token
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|t| t.as_encoded_bytes().to_vec());
        if current.as_deref() != sent || self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _done = Running(&this.running);
            let transport = Transport::remote(this.channel.clone());
            let renewed = tokio::time::timeout(
                AUTHENTICATE_TIMEOUT,
                authenticate(transport, &this.name, &this.password),
            )
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("authenticate timed out")));
            match renewed {
                Ok(token) => {
                    this.token.set(token);
                    tracing::info!(
                        user = %this.name,
                        "re-authenticated with etcd: it no longer accepted the previous token"
                    );
                }
                Err(status) => tracing::warn!(
                    user = %this.name,
                    error = %status.message(),
                    "failed to re-authenticate with etcd; the next refused call tries again"
                ),
            }
        });
    }
}

/// Clears the renewal flag however the renewal ends.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

pub type Svc = InterceptedService<Transport, Token>;

/// A handle on the store (cheap to clone).
#[derive(Clone)]
pub struct Etcd {
    kv: KvClient<Svc>,
    watch: WatchClient<Svc>,
    transport: Transport,
    token: Token,
}

impl Etcd {
    /// A handle over `transport`; with credentials, authenticates first (etcd's simple token)
    /// and again whenever the server refuses the token.
    pub async fn connect(
        transport: Transport,
        credentials: Option<(&str, &str)>,
    ) -> Result<Etcd, Status> {
        let Some((name, password)) = credentials else {
            return Ok(Etcd::with_token(transport, Token::default()));
        };
        let token = Token::new(authenticate(transport.clone(), name, password).await?);
        let transport = match transport {
            Transport::Remote(channel, _) => {
                let reauth = Arc::new(Reauth {
                    channel: channel.clone(),
                    name: name.to_owned(),
                    password: password.to_owned(),
                    token: token.clone(),
                    running: AtomicBool::new(false),
                });
                Transport::Remote(channel, Some(reauth))
            }
            local => local,
        };
        Ok(Etcd::with_token(transport, token))
    }

    fn with_token(transport: Transport, token: Token) -> Etcd {
        Etcd {
            kv: KvClient::with_interceptor(transport.clone(), token.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            watch: WatchClient::with_interceptor(transport.clone(), token.clone())
                .max_decoding_message_size(usize::MAX),
            transport,
            token,
        }
    }

    /// The transport (for the leadership loop's and the defrag loop's own clients).
    pub fn transport(&self) -> Transport {
        self.transport.clone()
    }

    pub fn watch_client(&self) -> WatchClient<Svc> {
        self.watch.clone()
    }

    pub fn kv(&self) -> KvClient<Svc> {
        self.kv.clone()
    }

    /// The etcd auth interceptor (for other clients on the same transport).
    pub fn token(&self) -> Token {
        self.token.clone()
    }

    /// Every key under `prefix` (no trailing slash needed), key order, at one revision: at
    /// `revision` if non-zero, else at the first page's. Returns the revision read at.
    pub async fn range_all(
        &self,
        prefix: &str,
        revision: i64,
    ) -> Result<(Vec<KeyValue>, i64), Status> {
        let end = prefix_end(prefix.as_bytes());
        let mut key = prefix.as_bytes().to_vec();
        let mut revision = revision;
        let mut out = Vec::new();
        loop {
            let page = self
                .range_page(key.clone(), end.clone(), revision, PAGE)
                .await?;
            if revision == 0 {
                revision = page.header.as_ref().map_or(0, |h| h.revision);
            }
            let more = page.more;
            let Some(last) = page.kvs.last() else { break };
            key = last.key.clone();
            key.push(0);
            out.extend(page.kvs);
            if !more {
                break;
            }
        }
        Ok((out, revision))
    }

    async fn range_page(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        revision: i64,
        limit: i64,
    ) -> Result<RangeResponse, Status> {
        Ok(self
            .kv
            .clone()
            .range(RangeRequest {
                key,
                range_end,
                limit,
                revision,
                sort_order: SortOrder::Ascend as i32,
                sort_target: SortTarget::Key as i32,
                ..Default::default()
            })
            .await?
            .into_inner())
    }

    /// The value of one key.
    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>, Status> {
        let response = self
            .kv
            .clone()
            .range(RangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(response.kvs.into_iter().next())
    }

    pub async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), Status> {
        self.kv
            .clone()
            .put(PutRequest {
                key: key.as_bytes().to_vec(),
                value,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Creates `key` unless it exists; `false` when it did.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<bool, Status> {
        let response = self
            .txn(
                vec![compare_create_revision(key, 0)],
                vec![put_op(key, value)],
                Vec::new(),
            )
            .await?;
        Ok(response.succeeded)
    }

    pub async fn txn(
        &self,
        compare: Vec<Compare>,
        success: Vec<RequestOp>,
        failure: Vec<RequestOp>,
    ) -> Result<TxnResponse, Status> {
        Ok(self
            .kv
            .clone()
            .txn(TxnRequest {
                compare,
                success,
                failure,
            })
            .await?
            .into_inner())
    }

    /// Deletes a job and its counter in one txn (DeleteJob).
    pub async fn delete_job(&self, composed: &str) -> Result<(), Status> {
        self.txn(
            Vec::new(),
            vec![
                delete_op(&format!("{JOBS_PREFIX}{composed}"), false),
                delete_op(&format!("{COUNTERS_PREFIX}{composed}"), false),
            ],
            Vec::new(),
        )
        .await?;
        Ok(())
    }

    /// Deletes every job and counter whose composed name starts with one of `prefixes`, in
    /// one txn.
    pub async fn delete_prefixes(&self, prefixes: &[&str]) -> Result<(), Status> {
        let mut ops = Vec::new();
        for p in prefixes {
            ops.push(delete_op(&format!("{JOBS_PREFIX}{p}"), true));
            ops.push(delete_op(&format!("{COUNTERS_PREFIX}{p}"), true));
        }
        self.txn(Vec::new(), ops, Vec::new()).await?;
        Ok(())
    }
}

pub fn compare_create_revision(key: &str, revision: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Create as i32,
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
        target_union: Some(TargetUnion::CreateRevision(revision)),
    }
}

pub fn compare_mod_revision(key: &str, revision: i64) -> Compare {
    Compare {
        result: CompareResult::Equal as i32,
        target: CompareTarget::Mod as i32,
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
        target_union: Some(TargetUnion::ModRevision(revision)),
    }
}

pub fn put_op(key: &str, value: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.as_bytes().to_vec(),
            value,
            ..Default::default()
        })),
    }
}

pub fn delete_op(key: &str, prefix: bool) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            DeleteRangeRequest {
                key: key.as_bytes().to_vec(),
                range_end: if prefix {
                    prefix_end(key.as_bytes())
                } else {
                    Vec::new()
                },
                ..Default::default()
            },
        )),
    }
}

/// Whether an etcd error is worth retrying (spec §8: timeouts, leader changes, too many
/// requests, not enough members, canceled connections; and a refused auth token, which is being
/// renewed).
pub fn is_transient(status: &Status) -> bool {
    let message = status.message();
    TOKEN_REFUSED.iter().any(|t| message.contains(t))
        || matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        )
        || message.contains("timed out")
        || message.contains("leader changed")
        || message.contains("too many requests")
        || message.contains("not enough started members")
        || message.contains("no leader")
}

/// 1 s doubling up to 30 s, plus up to 1 s of jitter.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1u64 << attempt.min(5)).min(Duration::from_secs(30));
    let jitter = Duration::from_millis(u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_millis()),
    ));
    base + jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(message: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-status", http::HeaderValue::from_static("16"));
        headers.insert(
            "grpc-message",
            http::HeaderValue::from_str(message).expect("header"),
        );
        headers
    }

    #[test]
    fn a_refused_token_is_recognised_in_a_trailers_only_response() {
        assert!(token_refused(&headers("etcdserver: invalid auth token")));
        assert!(token_refused(&headers(
            "etcdserver: revision of auth store is old"
        )));
        assert!(token_refused(&headers("etcdserver: user name is empty")));
        assert!(!token_refused(&headers("etcdserver: permission denied")));
        assert!(!token_refused(&http::HeaderMap::new()));
    }

    #[test]
    fn a_refused_token_is_transient_and_a_denied_permission_is_not() {
        let refused = Status::unauthenticated("etcdserver: invalid auth token");
        assert!(is_transient(&refused), "the caller retries once renewed");
        let denied = Status::permission_denied("etcdserver: permission denied");
        assert!(!is_transient(&denied));
    }
}
