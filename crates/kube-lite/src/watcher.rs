//! List+watch of one cluster-wide collection (`/api/v1/namespaces`, ...): list, watch from the
//! list's resourceVersion, and when the watch ends or fails re-list and re-watch with a capped
//! backoff. Callers see a fresh full list after every re-list, so they can diff it against what
//! they knew (an object gone from a re-list was deleted while nobody watched), as client-go's
//! reflector does with `Replace`.
//!
//! The integration suite's fake API server shapes the timings: it has no discovery, always
//! answers the list with the same fixed items (no resourceVersion), and answers each
//! `?watch=true` with at most one queued event before ending the stream. Events queued there are
//! only delivered on the next watch request, so the backoff cap bounds their latency.

use std::collections::VecDeque;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::time::Instant;

use crate::client::KubeClient;

/// Pause before the first retry; doubled per unproductive round up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Largest pause between two rounds. Small because the fake API server only hands out a queued
/// event when a watch is opened; a real API server holds a watch for minutes, so this loop only
/// spins this fast when something is wrong.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A watch that stayed open this long ended normally (a real API server closes watches after
/// `timeoutSeconds`), so the next round starts without backoff.
const LONG_WATCH: Duration = Duration::from_secs(10);
/// Asked of the server as `timeoutSeconds` (client-go picks 5-10 min); we also give up on the
/// stream ourselves a little later, in case the connection died silently.
const WATCH_TIMEOUT: Duration = Duration::from_secs(300);
const WATCH_GRACE: Duration = Duration::from_secs(30);

/// What the list+watch loop reports.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// A (re-)list: exactly these objects exist now; it replaces everything seen before.
    Listed(Vec<Value>),
    /// An `ADDED` or `MODIFIED` watch event: the object's new state.
    Applied(Value),
    /// A `DELETED` watch event: the object's last state.
    Deleted(Value),
}

/// One line of a watch stream, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Event(WatchEvent),
    /// `BOOKMARK`: progress only.
    Bookmark,
    /// `ERROR` (a `Status` object, e.g. 410 Gone): the watch is over; the message.
    Error(String),
    /// Not a watch event (blank line, bad JSON, unknown type).
    Ignored,
}

/// Classifies one newline-delimited watch line (`{"type":..,"object":{..}}`).
pub fn parse_line(line: &[u8]) -> Line {
    let Ok(event) = serde_json::from_slice::<Value>(line) else {
        return Line::Ignored;
    };
    let Some(kind) = event.get("type").and_then(Value::as_str) else {
        return Line::Ignored;
    };
    let object = event.get("object").cloned().unwrap_or(Value::Null);
    match kind {
        "ADDED" | "MODIFIED" => Line::Event(WatchEvent::Applied(object)),
        "DELETED" => Line::Event(WatchEvent::Deleted(object)),
        "BOOKMARK" => Line::Bookmark,
        "ERROR" => Line::Error(
            object
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("watch error")
                .to_owned(),
        ),
        _ => Line::Ignored,
    }
}

/// An object's `metadata.name`.
pub fn object_name(object: &Value) -> Option<&str> {
    object.pointer("/metadata/name").and_then(Value::as_str)
}

/// How one list+watch round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The list or the watch request failed.
    Failed,
    /// The watch stream ended (cleanly or with an `ERROR` event).
    Ended { events: usize, lasted: Duration },
}

/// The pause before the next round: reset after a productive or long watch, doubled otherwise.
pub fn next_delay(current: Duration, outcome: Outcome) -> Duration {
    match outcome {
        Outcome::Ended { events, lasted } if events > 0 || lasted >= LONG_WATCH => BACKOFF_MIN,
        _ => (current * 2).clamp(BACKOFF_MIN, BACKOFF_MAX),
    }
}

/// The watch URL for a collection path, from `version` when the list gave one.
pub fn watch_url(path: &str, version: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut url = format!(
        "{path}{separator}watch=true&allowWatchBookmarks=true&timeoutSeconds={}",
        WATCH_TIMEOUT.as_secs()
    );
    if !version.is_empty() {
        url.push_str("&resourceVersion=");
        url.push_str(version);
    }
    url
}

/// A never-ending list+watch of one collection; pull events with [`ListWatch::next`].
pub struct ListWatch {
    client: KubeClient,
    path: String,
    delay: Duration,
    phase: Phase,
    pending: VecDeque<WatchEvent>,
}

enum Phase {
    /// List next; after `delay` unless this is the first round.
    List {
        wait: bool,
    },
    /// Listed at `version`; open the watch next.
    Open {
        version: String,
    },
    Watching(Stream),
}

struct Stream {
    body: Incoming,
    buffer: Vec<u8>,
    started: Instant,
    events: usize,
}

impl ListWatch {
    /// Watches `path` (a cluster-wide collection, e.g. `/api/v1/namespaces`).
    pub fn new(client: KubeClient, path: impl Into<String>) -> Self {
        Self {
            client,
            path: path.into(),
            delay: BACKOFF_MIN,
            phase: Phase::List { wait: false },
            pending: VecDeque::new(),
        }
    }

    /// The next event. Errors are retried inside (logged, with backoff), so this only returns
    /// events. Dropping the future mid-way is safe: the next call starts over with a re-list.
    pub async fn next(&mut self) -> WatchEvent {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            let phase = std::mem::replace(&mut self.phase, Phase::List { wait: true });
            self.phase = match phase {
                Phase::List { wait } => self.list(wait).await,
                Phase::Open { version } => self.open(&version).await,
                Phase::Watching(stream) => self.read(stream).await,
            };
        }
    }

    async fn list(&mut self, wait: bool) -> Phase {
        if wait {
            tokio::time::sleep(self.delay).await;
        }
        match self.client.get(&self.path).await {
            Ok(list) => {
                let version = list
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let items = match list.get("items") {
                    Some(Value::Array(items)) => items.clone(),
                    _ => Vec::new(),
                };
                self.pending.push_back(WatchEvent::Listed(items));
                Phase::Open { version }
            }
            Err(error) => {
                tracing::warn!(%error, path = %self.path, "kubernetes list failed");
                self.delay = next_delay(self.delay, Outcome::Failed);
                Phase::List { wait: true }
            }
        }
    }

    async fn open(&mut self, version: &str) -> Phase {
        match self.client.stream(&watch_url(&self.path, version)).await {
            Ok(response) => Phase::Watching(Stream {
                body: response.into_body(),
                buffer: Vec::new(),
                started: Instant::now(),
                events: 0,
            }),
            Err(error) => {
                tracing::debug!(%error, path = %self.path, "kubernetes watch failed");
                self.delay = next_delay(self.delay, Outcome::Failed);
                Phase::List { wait: true }
            }
        }
    }

    /// Reads one frame; stays in `Watching` until the stream ends, fails or says `ERROR`.
    async fn read(&mut self, mut stream: Stream) -> Phase {
        let deadline = stream.started + WATCH_TIMEOUT + WATCH_GRACE;
        let frame = tokio::time::timeout_at(deadline, stream.body.frame()).await;
        let mut ended = match frame {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    stream.buffer.extend_from_slice(&data);
                }
                false
            }
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, path = %self.path, "kubernetes watch stream failed");
                self.delay = next_delay(self.delay, Outcome::Failed);
                return Phase::List { wait: true };
            }
            // The server ended the watch, or we gave up waiting: the last line may lack `\n`.
            Ok(None) | Err(_) => {
                stream.buffer.push(b'\n');
                true
            }
        };
        while let Some(end) = stream.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = stream.buffer.drain(..=end).collect();
            match parse_line(&line) {
                Line::Event(event) => {
                    stream.events += 1;
                    self.pending.push_back(event);
                }
                Line::Error(message) => {
                    tracing::debug!(%message, path = %self.path, "kubernetes watch ended with an error event");
                    ended = true;
                    break;
                }
                Line::Bookmark | Line::Ignored => {}
            }
        }
        if !ended {
            return Phase::Watching(stream);
        }
        let outcome = Outcome::Ended {
            events: stream.events,
            lasted: stream.started.elapsed(),
        };
        self.delay = next_delay(self.delay, outcome);
        Phase::List { wait: true }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn watch_lines_are_classified_by_type() {
        let added = br#"{"type":"ADDED","object":{"metadata":{"name":"a"}}}"#;
        assert_eq!(
            parse_line(added),
            Line::Event(WatchEvent::Applied(json!({"metadata":{"name":"a"}})))
        );
        let modified = br#"{"type":"MODIFIED","object":{"metadata":{"name":"a"}}}"#;
        assert!(matches!(
            parse_line(modified),
            Line::Event(WatchEvent::Applied(_))
        ));
        let deleted = br#"{"type":"DELETED","object":{"metadata":{"name":"a"}}}"#;
        assert_eq!(
            parse_line(deleted),
            Line::Event(WatchEvent::Deleted(json!({"metadata":{"name":"a"}})))
        );
        let bookmark = br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#;
        assert_eq!(parse_line(bookmark), Line::Bookmark);
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old"}}"#;
        assert_eq!(parse_line(gone), Line::Error("too old".into()));
    }

    #[test]
    fn blank_or_foreign_lines_are_ignored() {
        assert_eq!(parse_line(b"\n"), Line::Ignored);
        assert_eq!(parse_line(b"not json"), Line::Ignored);
        assert_eq!(
            parse_line(br#"{"kind":"NamespaceList","items":[]}"#),
            Line::Ignored
        );
        assert_eq!(
            parse_line(br#"{"type":"SOMETHING","object":{}}"#),
            Line::Ignored
        );
    }

    #[test]
    fn unproductive_rounds_back_off_up_to_the_cap() {
        let mut delay = BACKOFF_MIN;
        let empty = Outcome::Ended {
            events: 0,
            lasted: Duration::from_millis(5),
        };
        delay = next_delay(delay, empty);
        assert_eq!(delay, BACKOFF_MIN * 2);
        delay = next_delay(delay, Outcome::Failed);
        assert_eq!(delay, BACKOFF_MIN * 4);
        for _ in 0..10 {
            delay = next_delay(delay, Outcome::Failed);
        }
        assert_eq!(delay, BACKOFF_MAX);
    }

    #[test]
    fn a_productive_or_long_watch_resets_the_backoff() {
        let events = Outcome::Ended {
            events: 1,
            lasted: Duration::ZERO,
        };
        assert_eq!(next_delay(BACKOFF_MAX, events), BACKOFF_MIN);
        let long = Outcome::Ended {
            events: 0,
            lasted: LONG_WATCH,
        };
        assert_eq!(next_delay(BACKOFF_MAX, long), BACKOFF_MIN);
    }

    #[test]
    fn the_watch_url_resumes_from_the_list_version_when_there_is_one() {
        assert_eq!(
            watch_url("/api/v1/namespaces", "42"),
            "/api/v1/namespaces?watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=42"
        );
        assert_eq!(
            watch_url("/api/v1/pods?labelSelector=a", ""),
            "/api/v1/pods?labelSelector=a&watch=true&allowWatchBookmarks=true&timeoutSeconds=300"
        );
    }
}
