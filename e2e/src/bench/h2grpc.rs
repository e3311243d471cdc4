//! Unary gRPC calls straight over one HTTP/2 connection (the `h2` crate), for load generators
//! whose own cost must stay small next to the server's.
//!
//! tonic's `Channel` sends every request through a buffer task and hyper's dispatcher, which
//! spawns one more task per request body; the connection then flushes after almost every
//! request (measured: ~1.2 `writev` per put at 64 in flight). Here the caller queues the HEADERS
//! and DATA frames itself, so on a current-thread runtime every request that a batch of
//! responses unblocks is queued before the connection task runs, and all of them leave in one
//! write. The wire format is plain gRPC: `application/grpc`, 5-byte length prefix, status in the
//! trailers (or in the headers of a trailers-only response).

use std::time::Duration;

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, Method, Request, Uri};
use prost::Message;
use tonic::{Code, Status};

/// One HTTP/2 connection; cheap to clone (clones share it).
#[derive(Clone)]
pub struct H2Channel {
    send: SendRequest<Bytes>,
    authority: String,
    timeout: Duration,
}

impl H2Channel {
    /// Connects to `http://host:port` (plaintext HTTP/2 with prior knowledge, as gRPC does).
    pub async fn connect(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("endpoint {url:?}"))?;
        let authority = uri
            .authority()
            .with_context(|| format!("endpoint {url:?} has no host:port"))?
            .to_string();
        let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&authority))
            .await
            .with_context(|| format!("connecting to {url}: timed out"))?
            .with_context(|| format!("connecting to {url}"))?;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(1 << 20)
            .initial_connection_window_size(1 << 24)
            .handshake::<_, Bytes>(tcp)
            .await
            .with_context(|| format!("HTTP/2 handshake with {url}"))?;
        let peer = authority.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("h2grpc: connection to {peer} ended: {error}");
            }
        });
        Ok(Self {
            send,
            authority,
            timeout,
        })
    }

    /// Calls `path` (`/package.Service/Method`) with `request`; a call slower than the
    /// connection's timeout fails with `DeadlineExceeded`.
    pub async fn unary<Req: Message, Resp: Message + Default>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp, Status> {
        tokio::time::timeout(self.timeout, self.call(path, request))
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("request timed out")))
    }

    async fn call<Req: Message, Resp: Message + Default>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp, Status> {
        let len = request.encoded_len();
        let mut frame = BytesMut::with_capacity(5 + len);
        frame.put_u8(0);
        frame.put_u32(u32::try_from(len).map_err(|_| Status::internal("request too large"))?);
        request
            .encode(&mut frame)
            .map_err(|e| Status::internal(e.to_string()))?;
        let head = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{}{path}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut send = self.send.clone().ready().await.map_err(transport)?;
        let (response, mut body_out) = send.send_request(head, false).map_err(transport)?;
        body_out
            .send_data(frame.freeze(), true)
            .map_err(transport)?;

        let response = response.await.map_err(transport)?;
        if response.status() != http::StatusCode::OK {
            return Err(Status::unknown(format!(
                "HTTP status {}",
                response.status()
            )));
        }
        let (parts, mut body) = response.into_parts();
        // A trailers-only response carries the status in its headers.
        if parts.headers.contains_key("grpc-status") {
            check_status(&parts.headers)?;
        }
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(transport)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body
            .trailers()
            .await
            .map_err(transport)?
            .unwrap_or_default();
        check_status(&trailers)?;
        if data.len() < 5 {
            return Err(Status::internal("response has no message"));
        }
        Resp::decode(&data[5..]).map_err(|e| Status::internal(format!("decoding: {e}")))
    }
}

fn transport(e: h2::Error) -> Status {
    Status::unavailable(format!("transport: {e}"))
}

/// The status a header block carries: OK fast (no copy), anything else through tonic's own
/// parser (code, percent-decoded message, details); no `grpc-status` at all is an error.
fn check_status(headers: &HeaderMap) -> Result<(), Status> {
    if headers.get("grpc-status").is_some_and(|v| v == "0") {
        return Ok(());
    }
    match Status::from_header_map(headers) {
        Some(status) if status.code() == Code::Ok => Ok(()),
        Some(status) => Err(status),
        None => Err(Status::internal("response without grpc-status")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_comes_from_grpc_status_and_message() {
        let mut headers = HeaderMap::new();
        assert_eq!(check_status(&headers).unwrap_err().code(), Code::Internal);
        headers.insert("grpc-status", "0".parse().unwrap());
        assert!(check_status(&headers).is_ok());
        headers.insert("grpc-status", "9".parse().unwrap());
        headers.insert("grpc-message", "etcdserver:%20x".parse().unwrap());
        let status = check_status(&headers).unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "etcdserver: x");
    }
}
