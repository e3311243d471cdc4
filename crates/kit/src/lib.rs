//! The runtime every control-plane binary shares.
//!
//! - [`logging`]: dapr/kit's log format (logrus text or JSON with upstream's field names),
//!   configured from the shared `--log-*` flags.
//! - [`Runtime`]: one shutdown path (SIGINT/SIGTERM → cancel → drain → exit 0; a second signal
//!   aborts with exit 1) and supervision of critical tasks (the first to fail stops the process
//!   with exit 1).
//! - [`healthz`]: readiness gates and the `/healthz` server.
//! - [`metrics`]: the Prometheus registry's text exposition and its server.
//! - [`net`]: binding listeners the way upstream's `host:port` addresses mean.
//! - [`coalesce`]: server connections that write the responses ready together in one go.

pub mod coalesce;
pub mod grpc;
pub mod healthz;
pub mod logging;
pub mod metrics;
pub mod net;
mod runtime;
pub mod servers;

pub use runtime::{Outcome, Runtime, ShutdownCause, TaskError, install_signal_handlers};
pub use tokio_util::sync::CancellationToken;

/// The version this build reports in logs (`ver` field) and start-up lines.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The upstream Dapr release whose behaviour these binaries reproduce.
pub const DAPR_COMPAT_VERSION: &str = "1.18.3";
