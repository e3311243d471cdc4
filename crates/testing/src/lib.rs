//! Test-only helpers shared by the crates' integration tests (a dev-dependency, never shipped).
//!
//! - [`free_port`]: a loopback port nobody listens on right now.
//! - [`Child`]: one of our binaries as a child process, killed on drop, with its output captured.
//! - [`http_get`] / [`wait_for_status`]: a minimal HTTP/1.1 client for `/healthz` and `/metrics`.
//! - [`wait_for_tcp`]: polls until a port accepts connections.
//!
//! Readiness is always polled against a deadline (no fixed sleeps).

use std::{
    io::{self, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    path::Path,
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

/// How often the pollers below retry.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Returns a loopback port that was free when asked (the OS picks it), never one this process
/// was given before: the kernel may hand a just-closed ephemeral port out again at once, and
/// two listeners of one test must not get the same port.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding an ephemeral loopback port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A child process of one of our binaries; killed (SIGKILL) on drop if still running.
pub struct Child {
    inner: std::process::Child,
    output_path: std::path::PathBuf,
}

impl Child {
    /// Spawns `program` with `args` and this process's environment; stdout and stderr go to a
    /// temp file readable with [`Child::output`].
    pub fn spawn(program: impl AsRef<Path>, args: &[&str]) -> io::Result<Self> {
        Self::spawn_inner(program.as_ref(), args, None)
    }

    /// Like [`Child::spawn`] with exactly the environment `env` (everything else cleared), as
    /// upstream's integration harness starts the binaries.
    pub fn spawn_with_env(
        program: impl AsRef<Path>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<Self> {
        Self::spawn_inner(program.as_ref(), args, Some(env))
    }

    fn spawn_inner(
        program: &Path,
        args: &[&str],
        env: Option<&[(&str, &str)]>,
    ) -> io::Result<Self> {
        let output_path = std::env::temp_dir().join(format!(
            "dapr-testing-{}-{}-{}.log",
            program
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("child"),
            std::process::id(),
            free_port()
        ));
        let out = std::fs::File::create(&output_path)?;
        let err = out.try_clone()?;
        let mut command = Command::new(program);
        if let Some(env) = env {
            command.env_clear().envs(env.iter().copied());
        }
        let inner = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        Ok(Self { inner, output_path })
    }

    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Sends a signal by name (`INT`, `TERM`) with the system's `kill` command.
    pub fn signal(&self, name: &str) -> io::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.id().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill -{name} failed: {status}")))
        }
    }

    /// Waits for the process to exit, up to `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.inner.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits for the process to exit; panics with its output if it is still running after
    /// `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_timeout(timeout) {
            Ok(Some(status)) => status,
            Ok(None) => panic!(
                "the process did not exit within {timeout:?}\n{}",
                self.output()
            ),
            Err(e) => panic!("waiting for the process failed: {e}\n{}", self.output()),
        }
    }

    /// Sends SIGINT and waits for the exit, as the harness stops a process.
    pub fn interrupt_and_wait(&mut self, timeout: Duration) -> ExitStatus {
        if let Err(e) = self.signal("INT") {
            panic!("{e}\n{}", self.output());
        }
        self.wait_exit(timeout)
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output_path).unwrap_or_default()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.inner.kill();
        let _ = self.inner.wait();
        let _ = std::fs::remove_file(&self.output_path);
    }
}

/// Runs `program` to completion (for flag errors and `--help`) and returns its status and output.
pub fn run_to_completion(
    program: impl AsRef<Path>,
    args: &[&str],
) -> io::Result<(ExitStatus, String)> {
    let out = Command::new(program.as_ref())
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status, text))
}

/// A minimal HTTP/1.1 GET against `127.0.0.1:port`; returns the status code and body.
pub fn http_get(port: u16, path: &str) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let _ = stream.shutdown(Shutdown::Both);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `GET path` until it answers `status` or `timeout` passes; returns the last answer.
pub fn wait_for_status(
    port: u16,
    path: &str,
    status: u16,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match http_get(port, path) {
            Ok((s, _)) if s == status => return Ok(()),
            Ok((s, body)) => last = format!("status {s}: {body}"),
            Err(e) => last = e.to_string(),
        }
        thread::sleep(POLL_INTERVAL);
    }
    Err(format!(
        "GET :{port}{path} never answered {status} within {timeout:?}; last: {last}"
    ))
}

/// Polls until `127.0.0.1:port` accepts a TCP connection.
pub fn wait_for_tcp(port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        thread::sleep(POLL_INTERVAL);
    }
    Err(format!(
        "port {port} did not accept a connection within {timeout:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn waiting_for_a_closed_port_times_out_with_a_message() {
        let port = free_port();
        let err = wait_for_tcp(port, Duration::from_millis(50)).unwrap_err();
        assert!(err.contains(&port.to_string()));
    }
}
