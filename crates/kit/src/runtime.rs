//! One shutdown path and supervision of the critical tasks of a binary.

use std::{
    future::Future,
    process::ExitCode,
    sync::{Arc, OnceLock},
    time::Duration,
};

use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::healthz::Readiness;

/// How long tasks get to finish after the shutdown token fires before the process gives up.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Why a critical task stopped the process.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("task {name} failed: {source:#}")]
    Failed {
        name: &'static str,
        #[source]
        source: anyhow::Error,
    },
    #[error("task {name} exited before shutdown was requested")]
    ExitedEarly { name: &'static str },
    #[error("task {name} panicked")]
    Panicked { name: &'static str },
}

/// How a [`Runtime`] ended.
#[derive(Debug)]
pub enum Outcome {
    /// A signal arrived and every task drained in time (exit 0).
    Graceful,
    /// A critical task failed or ended on its own (exit 1).
    TaskFailed(TaskError),
    /// A second signal arrived while draining (exit 1).
    Aborted,
    /// Tasks did not finish within the grace period (exit 1).
    DrainTimeout,
}

impl Outcome {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Graceful => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        }
    }
}

/// Owns the shutdown token, the readiness gates and the supervised tasks of one process.
///
/// Every task gets the same [`CancellationToken`]; servers use it for graceful shutdown and
/// streams `select!` on it. The first signal cancels the token and turns readiness off; a second
/// one aborts. The first critical task to fail or return early cancels everything else and the
/// process exits non-zero.
pub struct Runtime {
    shutdown: CancellationToken,
    readiness: Readiness,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    names: Vec<(tokio::task::Id, &'static str)>,
    grace: Duration,
    cause: ShutdownCause,
}

/// Why shutdown started, as dapr/kit words the context cause: `cancelling context, received
/// signal <sig>` for a signal, the failed task's error otherwise. Set once, before the shutdown
/// token is cancelled.
#[derive(Clone, Debug, Default)]
pub struct ShutdownCause(Arc<OnceLock<String>>);

impl ShutdownCause {
    /// The cause, or a generic text when shutdown has not started (or came from elsewhere).
    pub fn text(&self) -> String {
        self.0
            .get()
            .cloned()
            .unwrap_or_else(|| "context canceled".to_owned())
    }

    fn set(&self, cause: String) {
        let _ = self.0.set(cause);
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Self {
        Self {
            shutdown: CancellationToken::new(),
            readiness: Readiness::new(),
            tasks: JoinSet::new(),
            names: Vec::new(),
            grace: DEFAULT_GRACE,
            cause: ShutdownCause::default(),
        }
    }

    /// Sets how long draining may take.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The token cancelled when shutdown starts.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Why shutdown started (readable once the shutdown token is cancelled).
    pub fn shutdown_cause(&self) -> ShutdownCause {
        self.cause.clone()
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Spawns a critical task, instrumented with a span named after it.
    pub fn spawn_critical<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let span = tracing::info_span!("task", name);
        let handle = self
            .tasks
            .spawn(async move { (name, task.await) }.instrument(span));
        self.names.push((handle.id(), name));
    }

    /// Runs until SIGINT/SIGTERM or a task failure, then drains. Signals caught since
    /// [`install_signal_handlers`] are delivered here.
    pub async fn run(self) -> Outcome {
        let early = EARLY_SIGNALS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(rx) = early {
            return self.run_with_signals(rx).await;
        }
        let (tx, rx) = mpsc::channel(4);
        if let Err(error) = spawn_signal_listener(tx) {
            tracing::error!(%error, "failed to install signal handlers");
            return Outcome::TaskFailed(TaskError::Failed {
                name: "signals",
                source: error.into(),
            });
        }
        self.run_with_signals(rx).await
    }

    /// Like [`Runtime::run`] with signals delivered by name on `signals` (used by tests).
    pub async fn run_with_signals(mut self, mut signals: mpsc::Receiver<&'static str>) -> Outcome {
        // A closed signal channel disables its branch; the tasks still decide.
        let failure = tokio::select! {
            Some(signal) = signals.recv() => {
                tracing::info!("Received signal '{signal}'; beginning shutdown");
                self.cause.set(format!("cancelling context, received signal {signal}"));
                None
            }
            joined = self.tasks.join_next_with_id() => match joined {
                None => None,
                Some(result) => {
                    let error = self.classify(result);
                    tracing::error!(fatal = true, "{error}");
                    self.cause.set(error.to_string());
                    Some(error)
                }
            },
        };
        self.readiness.start_draining();
        self.shutdown.cancel();
        let drained = self.drain(&mut signals).await;
        match (failure, drained) {
            (_, Drain::Aborted) => Outcome::Aborted,
            (Some(error), _) => Outcome::TaskFailed(error),
            (None, Drain::TimedOut) => Outcome::DrainTimeout,
            (None, Drain::Done) => Outcome::Graceful,
        }
    }

    async fn drain(&mut self, signals: &mut mpsc::Receiver<&'static str>) -> Drain {
        let deadline = tokio::time::sleep(self.grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                Some(signal) = signals.recv() => {
                    tracing::error!(fatal = true, "Received signal '{signal}' during shutdown; exiting immediately");
                    self.tasks.abort_all();
                    return Drain::Aborted;
                }
                joined = self.tasks.join_next_with_id() => {
                    match joined {
                        None => return Drain::Done,
                        Some(Ok((_, (name, Err(error))))) => {
                            tracing::warn!(task = name, error = format!("{error:#}"), "task failed while draining");
                        }
                        Some(Err(e)) if e.is_panic() => {
                            tracing::warn!(task = self.name_of(e.id()), "task panicked while draining");
                        }
                        Some(_) => {}
                    }
                }
                () = &mut deadline => {
                    let pending: Vec<_> = self.names.iter().map(|(_, n)| *n).collect();
                    tracing::error!(?pending, "tasks did not stop within {:?}", self.grace);
                    self.tasks.abort_all();
                    return Drain::TimedOut;
                }
            }
        }
    }

    fn classify(
        &mut self,
        result: Result<
            (tokio::task::Id, (&'static str, anyhow::Result<()>)),
            tokio::task::JoinError,
        >,
    ) -> TaskError {
        match result {
            Ok((id, (name, Ok(())))) => {
                self.forget(id);
                TaskError::ExitedEarly { name }
            }
            Ok((id, (name, Err(source)))) => {
                self.forget(id);
                TaskError::Failed { name, source }
            }
            Err(e) => {
                let name = self.name_of(e.id());
                self.forget(e.id());
                TaskError::Panicked { name }
            }
        }
    }

    fn forget(&mut self, id: tokio::task::Id) {
        self.names.retain(|(i, _)| *i != id);
    }

    fn name_of(&self, id: tokio::task::Id) -> &'static str {
        self.names
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("unknown", |(_, n)| *n)
    }
}

enum Drain {
    Done,
    Aborted,
    TimedOut,
}

/// Signals caught before the runtime started running.
static EARLY_SIGNALS: std::sync::Mutex<Option<mpsc::Receiver<&'static str>>> =
    std::sync::Mutex::new(None);

/// Takes over SIGINT/SIGTERM right away, so a signal that arrives while a service is still
/// starting is held for [`Runtime::run`] (graceful exit 0) instead of killing the process with
/// the default action. Call it first thing in a binary's run.
pub fn install_signal_handlers() -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel(4);
    spawn_signal_listener(tx)?;
    *EARLY_SIGNALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(rx);
    Ok(())
}

fn spawn_signal_listener(tx: mpsc::Sender<&'static str>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = interrupt.recv() => "interrupt",
                Some(()) = terminate.recv() => "terminated",
                else => return,
            };
            if tx.send(name).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn server(token: CancellationToken) -> anyhow::Result<()> {
        token.cancelled().await;
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_drains_every_task_and_exits_zero() {
        let mut rt = Runtime::new();
        rt.spawn_critical("a", server(rt.shutdown_token()));
        rt.spawn_critical("b", server(rt.shutdown_token()));
        let readiness = rt.readiness().clone();
        readiness.gate("x").set_ready();
        let (tx, rx) = mpsc::channel(2);
        tx.send("interrupt").await.unwrap();
        let outcome = rt.run_with_signals(rx).await;
        assert!(matches!(outcome, Outcome::Graceful), "{outcome:?}");
        assert_eq!(outcome.exit_code(), ExitCode::SUCCESS);
        assert!(
            !readiness.is_ready(),
            "readiness must turn off when draining"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_failing_task_stops_the_others_and_exits_non_zero() {
        let mut rt = Runtime::new();
        let token = rt.shutdown_token();
        rt.spawn_critical("healthy", server(rt.shutdown_token()));
        rt.spawn_critical("broken", async { Err(anyhow::anyhow!("port in use")) });
        let (_tx, rx) = mpsc::channel(1);
        let outcome = rt.run_with_signals(rx).await;
        match &outcome {
            Outcome::TaskFailed(TaskError::Failed { name, .. }) => assert_eq!(*name, "broken"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(token.is_cancelled());
        assert_eq!(outcome.exit_code(), ExitCode::FAILURE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_returns_early_is_a_failure() {
        let mut rt = Runtime::new();
        rt.spawn_critical("quitter", async { Ok(()) });
        let (_tx, rx) = mpsc::channel(1);
        let outcome = rt.run_with_signals(rx).await;
        assert!(matches!(
            outcome,
            Outcome::TaskFailed(TaskError::ExitedEarly { name: "quitter" })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_a_failure() {
        let mut rt = Runtime::new();
        rt.spawn_critical("panicky", async { panic!("boom") });
        let (_tx, rx) = mpsc::channel(1);
        let outcome = rt.run_with_signals(rx).await;
        assert!(matches!(
            outcome,
            Outcome::TaskFailed(TaskError::Panicked { name: "panicky" })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_signal_while_draining_aborts() {
        let mut rt = Runtime::new();
        // Ignores the token, so draining never finishes on its own.
        rt.spawn_critical("stuck", std::future::pending());
        let (tx, rx) = mpsc::channel(2);
        tx.send("interrupt").await.unwrap();
        tx.send("terminated").await.unwrap();
        let outcome = rt.run_with_signals(rx).await;
        assert!(matches!(outcome, Outcome::Aborted), "{outcome:?}");
        assert_eq!(outcome.exit_code(), ExitCode::FAILURE);
    }

    #[tokio::test(start_paused = true)]
    async fn draining_gives_up_after_the_grace_period() {
        let mut rt = Runtime::new().with_grace(Duration::from_secs(5));
        rt.spawn_critical("stuck", std::future::pending());
        let (tx, rx) = mpsc::channel(2);
        tx.send("interrupt").await.unwrap();
        let outcome = rt.run_with_signals(rx).await;
        assert!(matches!(outcome, Outcome::DrainTimeout), "{outcome:?}");
    }
}
