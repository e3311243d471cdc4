//! A signal that arrives before the runtime runs (a service still starting) must be held and end
//! in a graceful shutdown, not kill the process with the default action. Its own test binary: it
//! signals its own process.

use std::time::Duration;

use dapr_kit::{Outcome, Runtime, install_signal_handlers};

#[tokio::test]
async fn a_signal_before_run_is_held_and_ends_in_a_graceful_shutdown() {
    install_signal_handlers().unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // Without the early handlers the default action would have ended this process by now.
    let mut rt = Runtime::new();
    let token = rt.shutdown_token();
    rt.spawn_critical("waits-for-shutdown", async move {
        token.cancelled().await;
        Ok(())
    });
    let outcome = tokio::time::timeout(Duration::from_secs(5), rt.run())
        .await
        .expect("the held signal never reached the runtime");
    assert!(matches!(outcome, Outcome::Graceful), "{outcome:?}");
}
