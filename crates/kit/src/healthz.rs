//! Readiness gates and the `/healthz` HTTP server.
//!
//! As upstream: `/healthz` (any method) answers 200 with an empty body only when at least one
//! gate is registered and every gate is ready, 503 otherwise; any other path is 404. When the
//! process starts draining, readiness turns false at once.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::Request, http::StatusCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The set of readiness gates of one process.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    gates: Arc<Mutex<BTreeMap<&'static str, bool>>>,
    draining: Arc<AtomicBool>,
}

/// One named readiness gate; starts not ready.
#[derive(Clone, Debug)]
pub struct Gate {
    name: &'static str,
    readiness: Readiness,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a gate (not ready until [`Gate::set_ready`]).
    pub fn gate(&self, name: &'static str) -> Gate {
        self.lock().insert(name, false);
        Gate {
            name,
            readiness: self.clone(),
        }
    }

    /// True when at least one gate exists, all are ready and the process is not draining.
    pub fn is_ready(&self) -> bool {
        if self.draining.load(Ordering::Acquire) {
            return false;
        }
        let gates = self.lock();
        !gates.is_empty() && gates.values().all(|ready| *ready)
    }

    /// Names of the gates that are not ready yet (for logs).
    pub fn pending(&self) -> Vec<&'static str> {
        self.lock()
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(name, _)| *name)
            .collect()
    }

    /// Marks the process as draining: readiness is false from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, bool>> {
        // A poisoned map still holds valid booleans.
        self.gates.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Gate {
    pub fn set_ready(&self) {
        self.set(true);
    }

    pub fn set_not_ready(&self) {
        self.set(false);
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn set(&self, ready: bool) {
        if let Some(state) = self.readiness.lock().get_mut(self.name) {
            *state = ready;
        }
    }
}

/// The status `/healthz` answers for a request path.
pub fn status_for(path: &str, readiness: &Readiness) -> StatusCode {
    if path != "/healthz" {
        StatusCode::NOT_FOUND
    } else if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Serves `/healthz` on `listener` until `shutdown` fires. The server registers its own
/// `healthz-server` gate, ready once it accepts connections.
pub async fn serve(
    listener: TcpListener,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, readiness, Router::new(), shutdown).await
}

/// As [`serve`], with more exact-path routes beside `/healthz` (e.g. placement's
/// `/placement/state`). Every other path answers as `/healthz` does for unknown paths (404).
pub async fn serve_with(
    listener: TcpListener,
    readiness: Readiness,
    routes: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let gate = readiness.gate("healthz-server");
    let state = readiness.clone();
    let app = routes.fallback(move |req: Request| {
        let state = state.clone();
        async move { status_for(req.uri().path(), &state) }
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("Healthz server is listening on {addr}");
    }
    gate.set_ready();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_gates_means_not_ready() {
        let r = Readiness::new();
        assert!(!r.is_ready());
        assert_eq!(status_for("/healthz", &r), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn ready_only_when_every_gate_is_ready() {
        let r = Readiness::new();
        let a = r.gate("a");
        let b = r.gate("b");
        a.set_ready();
        assert!(!r.is_ready());
        assert_eq!(r.pending(), vec!["b"]);
        b.set_ready();
        assert!(r.is_ready());
        assert_eq!(status_for("/healthz", &r), StatusCode::OK);
        b.set_not_ready();
        assert!(!r.is_ready());
    }

    #[test]
    fn draining_turns_readiness_off() {
        let r = Readiness::new();
        r.gate("a").set_ready();
        r.start_draining();
        assert!(!r.is_ready());
    }

    #[test]
    fn other_paths_are_not_found() {
        let r = Readiness::new();
        r.gate("a").set_ready();
        assert_eq!(status_for("/", &r), StatusCode::NOT_FOUND);
        assert_eq!(status_for("/healthz/x", &r), StatusCode::NOT_FOUND);
    }
}
