//! Watch: one task per bidi stream serving any number of watches (etcd `v3rpc/watch.go` over
//! `mvcc/watchable_store.go`).
//!
//! Every watch knows the next revision it owes the client (`next`). The stream subscribes to the
//! state machine's [`Feed`] once; a live watch takes a feed batch at exactly its `next` revision
//! and skips older ones. A watch that starts in the past, or that may have missed batches (the
//! feed lagged, a snapshot replaced the store, a revision arrived out of turn) is `behind`: it
//! ignores the feed and pages through [`Store::events_since`](crate::mvcc::Store::events_since)
//! until it reaches the store's revision, then follows the feed again. Batches it already read
//! from history are older than its `next` and skipped, so no event is lost or sent twice.

use std::{collections::BTreeMap, pin::Pin, sync::Arc, time::Duration};

use dapr_proto::etcd::etcdserverpb::{
    WatchCreateRequest, WatchRequest, WatchResponse, watch_create_request::FilterType,
    watch_request::RequestUnion, watch_server::Watch,
};
use dapr_proto::etcd::mvccpb;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response as GrpcResponse, Status, Streaming};

use super::{Shared, convert};
use crate::{
    mvcc::{Event, EventKind, KeyRange, Revision},
    raft::machine::Feed,
};

/// Responses buffered before the stream waits for a slow client.
const OUT_BUFFER: usize = 64;
/// Events read from history per page (etcd syncs at most 1000 revisions per round).
const PAGE_EVENTS: usize = 1000;
/// clientv3's `InvalidWatchID`: the id of stream-wide answers and of refused creates.
const INVALID_WATCH_ID: i64 = -1;

/// etcd's `mvcc.ErrCompacted`, the cancel reason of a create with a negative start revision.
const REASON_COMPACTED: &str = "mvcc: required revision has been compacted";
const REASON_EMPTY_RANGE: &str = "mvcc: watcher range is empty";
const REASON_DUPLICATE_ID: &str = "mvcc: duplicate watch ID provided on the WatchStream";

pub(crate) struct WatchService {
    shared: Arc<Shared>,
}

impl WatchService {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = ResponseStream;

    async fn watch(
        &self,
        request: Request<Streaming<WatchRequest>>,
    ) -> Result<GrpcResponse<Self::WatchStream>, Status> {
        let requests = request.into_inner();
        let (tx, rx) = mpsc::channel(OUT_BUFFER);
        let machine = self.shared.node.machine();
        let feed = {
            let _store = machine.read();
            machine.subscribe()
        };
        let session = Session {
            shared: Arc::clone(&self.shared),
            tx,
            watches: BTreeMap::new(),
            next_id: 0,
            progress_pending: false,
        };
        tokio::spawn(session.run(requests, feed));
        Ok(GrpcResponse::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// One watch of a stream.
#[derive(Debug)]
pub(crate) struct WatchState {
    pub range: KeyRange,
    /// The next revision whose events this watch still owes the client.
    pub next: Revision,
    /// Must catch up from history before following the feed.
    pub behind: bool,
    pub prev_kv: bool,
    pub progress_notify: bool,
    pub no_put: bool,
    pub no_delete: bool,
    /// No events went out since the last progress tick.
    pub quiet: bool,
}

impl WatchState {
    pub fn wants(&self, e: &Event) -> bool {
        let filtered = match e.kind {
            EventKind::Put => self.no_put,
            EventKind::Delete => self.no_delete,
        };
        !filtered && self.range.contains(&e.kv.key)
    }
}

/// The client went away; the session ends.
struct Gone;

struct Session {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Result<WatchResponse, Status>>,
    watches: BTreeMap<i64, WatchState>,
    next_id: i64,
    /// A stream-wide progress request waits for every watch to catch up.
    progress_pending: bool,
}

/// etcd adds up to 10% jitter to the progress interval so streams do not tick together.
fn jittered(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tenth = interval / 10;
    let jitter = if tenth.is_zero() {
        Duration::ZERO
    } else {
        let tenth_ns = u64::try_from(tenth.as_nanos()).unwrap_or(u64::MAX).max(1);
        Duration::from_nanos(u64::from(nanos) % tenth_ns)
    };
    interval + jitter
}

impl Session {
    async fn run(
        mut self,
        mut requests: Streaming<WatchRequest>,
        mut feed: broadcast::Receiver<Feed>,
    ) {
        let period = jittered(self.shared.progress_interval);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = self.shared.shutdown.clone();
        let tx = self.tx.clone();
        let mut inbound_open = true;
        loop {
            let behind = self
                .watches
                .iter()
                .find(|(_, w)| w.behind)
                .map(|(id, _)| *id);
            let step = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = tx.closed() => return,
                next = requests.next(), if inbound_open => match next {
                    Some(Ok(request)) => self.on_request(request).await,
                    // The client closed its side: keep sending until it drops the stream, as etcd.
                    None => {
                        inbound_open = false;
                        Ok(())
                    }
                    Some(Err(_)) => return,
                },
                () = std::future::ready(()), if behind.is_some() => match behind {
                    Some(id) => self.catch_up(id).await,
                    None => Ok(()),
                },
                message = feed.recv() => match message {
                    Ok(Feed::Events { revision, events }) => self.on_events(revision, &events).await,
                    Ok(Feed::Reset) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        tracing::debug!("watch stream lost the feed; catching up from history");
                        self.watches.values_mut().for_each(|w| w.behind = true);
                        Ok(())
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick() => self.on_tick().await,
            };
            if step.is_err() {
                return;
            }
            if self.progress_pending
                && !self.watches.values().any(|w| w.behind)
                && self.send_progress_all().await.is_err()
            {
                return;
            }
        }
    }

    async fn send(&self, response: WatchResponse) -> Result<(), Gone> {
        self.tx.send(Ok(response)).await.map_err(|_| Gone)
    }

    fn current(&self) -> Revision {
        self.shared.node.machine().read().revision()
    }

    async fn on_request(&mut self, request: WatchRequest) -> Result<(), Gone> {
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.create(create).await,
            Some(RequestUnion::CancelRequest(cancel)) => {
                // Canceling an unknown id is silently ignored, as etcd does.
                if self.watches.remove(&cancel.watch_id).is_none() {
                    return Ok(());
                }
                self.send(WatchResponse {
                    header: Some(self.shared.header(0)),
                    watch_id: cancel.watch_id,
                    canceled: true,
                    ..Default::default()
                })
                .await
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                // etcd answers only when the stream has watches.
                self.progress_pending = !self.watches.is_empty();
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn create(&mut self, c: WatchCreateRequest) -> Result<(), Gone> {
        let refuse = |reason: &str| WatchResponse {
            header: Some(self.shared.header(0)),
            watch_id: INVALID_WATCH_ID,
            created: true,
            canceled: true,
            cancel_reason: reason.to_owned(),
            ..Default::default()
        };
        let key = if c.key.is_empty() { vec![0] } else { c.key };
        if c.start_revision < 0 {
            return self.send(refuse(REASON_COMPACTED)).await;
        }
        // `\0` means "to the end of the keyspace", and is exempt from the empty-range check.
        if !c.range_end.is_empty() && c.range_end != [0] && key >= c.range_end {
            return self.send(refuse(REASON_EMPTY_RANGE)).await;
        }
        let id = if c.watch_id == 0 {
            while self.watches.contains_key(&self.next_id) {
                self.next_id = self.next_id.saturating_add(1);
            }
            let id = self.next_id;
            self.next_id = self.next_id.saturating_add(1);
            id
        } else if self.watches.contains_key(&c.watch_id) {
            return self.send(refuse(REASON_DUPLICATE_ID)).await;
        } else {
            c.watch_id
        };
        let current = self.current();
        let (next, behind) = match c.start_revision {
            0 => (current.saturating_add(1), false),
            start if start > current => (start, false),
            start => (start, true),
        };
        let filters: Vec<_> = c
            .filters
            .iter()
            .filter_map(|f| FilterType::try_from(*f).ok())
            .collect();
        self.watches.insert(
            id,
            WatchState {
                range: KeyRange::new(&key, &c.range_end),
                next,
                behind,
                prev_kv: c.prev_kv,
                progress_notify: c.progress_notify,
                no_put: filters.contains(&FilterType::Noput),
                no_delete: filters.contains(&FilterType::Nodelete),
                quiet: true,
            },
        );
        self.send(WatchResponse {
            header: Some(self.shared.header(current)),
            watch_id: id,
            created: true,
            ..Default::default()
        })
        .await
    }

    /// The events of one write, at `revision`, to every live watch that is due for it.
    async fn on_events(&mut self, revision: Revision, events: &[Event]) -> Result<(), Gone> {
        let mut out = Vec::new();
        for (id, w) in &mut self.watches {
            if w.behind || w.next > revision {
                continue;
            }
            if w.next < revision {
                // A revision went by without a batch: read the gap from history.
                w.behind = true;
                continue;
            }
            w.next = revision.saturating_add(1);
            let matched: Vec<mvccpb::Event> = events
                .iter()
                .filter(|e| w.wants(e))
                .map(|e| convert::event(e, w.prev_kv))
                .collect();
            if !matched.is_empty() {
                w.quiet = false;
                out.push((*id, matched));
            }
        }
        for (id, events) in out {
            self.send(WatchResponse {
                header: Some(self.shared.header(revision)),
                watch_id: id,
                events,
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }

    /// One page of history for a watch that is behind.
    async fn catch_up(&mut self, id: i64) -> Result<(), Gone> {
        let Some(w) = self.watches.get(&id) else {
            return Ok(());
        };
        let (page, current) = {
            let store = self.shared.node.machine().read();
            (
                store.events_since(&w.range, w.next, PAGE_EVENTS),
                store.revision(),
            )
        };
        let page = match page {
            Ok(page) => page,
            Err(compacted) => {
                self.watches.remove(&id);
                return self
                    .send(WatchResponse {
                        header: Some(self.shared.header(current)),
                        watch_id: id,
                        canceled: true,
                        compact_revision: compacted.compact_revision,
                        ..Default::default()
                    })
                    .await;
            }
        };
        let Some(w) = self.watches.get_mut(&id) else {
            return Ok(());
        };
        w.next = w.next.max(page.next_revision);
        if w.next > current {
            w.behind = false;
        }
        let matched: Vec<&Event> = page.events.iter().filter(|e| w.wants(e)).collect();
        if matched.is_empty() {
            return Ok(());
        }
        w.quiet = false;
        let prev_kv = w.prev_kv;
        for events in chunks(&matched, self.shared.max_request_bytes) {
            self.send(WatchResponse {
                header: Some(self.shared.header(current)),
                watch_id: id,
                events: events.iter().map(|e| convert::event(e, prev_kv)).collect(),
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }

    /// Progress for the watches that asked for it and saw nothing since the last tick.
    async fn on_tick(&mut self) -> Result<(), Gone> {
        let current = self.current();
        let mut due = Vec::new();
        for (id, w) in &mut self.watches {
            if !w.progress_notify {
                continue;
            }
            // etcd reports only on a watch that is in sync, and never below its start.
            if w.quiet && !w.behind && w.next <= current.saturating_add(1) {
                due.push((*id, w.next.saturating_sub(1)));
            }
            w.quiet = true;
        }
        for (id, revision) in due {
            self.send(WatchResponse {
                header: Some(self.shared.header(revision)),
                watch_id: id,
                ..Default::default()
            })
            .await?;
        }
        Ok(())
    }

    /// The answer to a stream-wide progress request: the revision every watch has been served
    /// up to, under clientv3's `InvalidWatchID`.
    async fn send_progress_all(&mut self) -> Result<(), Gone> {
        self.progress_pending = false;
        let current = self.current();
        let revision = self
            .watches
            .values()
            .map(|w| w.next.saturating_sub(1))
            .fold(current, Revision::min);
        self.send(WatchResponse {
            header: Some(self.shared.header(revision)),
            watch_id: INVALID_WATCH_ID,
            ..Default::default()
        })
        .await
    }
}

/// Splits replayed events into responses of about `max_bytes`, only between revisions (the
/// events of one write always travel together).
pub(crate) fn chunks<'a>(events: &[&'a Event], max_bytes: usize) -> Vec<Vec<&'a Event>> {
    let mut out: Vec<Vec<&Event>> = Vec::new();
    let mut current: Vec<&Event> = Vec::new();
    let mut size = 0usize;
    for e in events {
        let boundary = current
            .last()
            .is_some_and(|last| last.revision() != e.revision());
        if boundary && size >= max_bytes {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size = size.saturating_add(approx_size(e));
        current.push(e);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// An event's encoded size, roughly: its keys and values plus the fixed fields.
fn approx_size(e: &Event) -> usize {
    const FIXED: usize = 48;
    let kv = |kv: &crate::mvcc::KeyValue| {
        kv.key
            .len()
            .saturating_add(kv.value.len())
            .saturating_add(FIXED)
    };
    kv(&e.kv).saturating_add(e.prev_kv.as_ref().map_or(0, kv))
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
