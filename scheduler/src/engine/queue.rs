//! The trigger queue: every job this replica owns, when it is due next, which are in flight and
//! which wait for a sidecar (go-etcd-cron `internal/engine/queue` + `internal/counter`, spec
//! §7.3–7.4, §9). Pure: time is a parameter, store writes are returned as [`StoreOp`]s.
//!
//! At most one trigger per job is in flight; its result reschedules the job (or finishes it).
//! A job that cannot be delivered is *staged* until a sidecar that takes it connects.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use dapr_proto::scheduler::v1::{JobMetadata, job_target_metadata};

use crate::job::{Counter, JobCounter, Loaded, Outcome, StoredJob, Target, TriggerResult};

/// Where a job's triggers go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// An app's job: streams of `app_id` in `namespace` that accept jobs.
    App { namespace: String, app_id: String },
    /// An actor reminder: streams in `namespace` hosting `actor_type`.
    Actor {
        namespace: String,
        actor_type: String,
    },
}

impl Route {
    /// The metric label of the job's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::App { .. } => "job",
            Route::Actor { .. } => "actor",
        }
    }
}

/// What a trigger carries to the sidecar, built once per job (version).
#[derive(Debug)]
pub struct Delivery {
    /// The job's own name (the composed name minus its metadata prefix), or `None` when the
    /// stored metadata does not match the key: such a job is never deliverable.
    pub name: Option<String>,
    pub route: Option<Route>,
    pub metadata: Option<JobMetadata>,
    pub payload: Option<prost_types::Any>,
}

impl Delivery {
    /// Builds the delivery of the job stored under composed `name`.
    pub fn of(name: &str, job: &StoredJob) -> Delivery {
        let metadata = job.metadata();
        let target = metadata.as_ref().and_then(|m| {
            let kind = m.target.as_ref()?.r#type.as_ref()?;
            Some(match kind {
                job_target_metadata::Type::Job(_) => (
                    Target::App {
                        namespace: &m.namespace,
                        app_id: &m.app_id,
                    },
                    Route::App {
                        namespace: m.namespace.clone(),
                        app_id: m.app_id.clone(),
                    },
                ),
                job_target_metadata::Type::Actor(a) => (
                    Target::Actor {
                        namespace: &m.namespace,
                        actor_type: &a.r#type,
                        actor_id: &a.id,
                    },
                    Route::Actor {
                        namespace: m.namespace.clone(),
                        actor_type: a.r#type.clone(),
                    },
                ),
            })
        });
        let (bare, route) = match target {
            Some((target, route)) => (target.strip(name).map(str::to_owned), Some(route)),
            None => (None, None),
        };
        Delivery {
            name: bare,
            route,
            metadata: metadata.clone(),
            payload: job.job.payload.clone(),
        }
    }

    /// The metric label of the job's kind (`unknown` when the metadata is unusable).
    pub fn kind(&self) -> &'static str {
        self.route.as_ref().map_or("unknown", Route::kind)
    }
}

/// A store write the queue asks for. Each is a conditional txn on the job's mod revision, so
/// a job changed meanwhile is left alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// `If mod_revision(job)==mod_revision Then Put(counter)`.
    PutCounter {
        name: Arc<str>,
        mod_revision: i64,
        counter: Counter,
    },
    /// `If mod_revision(job)==mod_revision Then Delete(counter), Delete(job) Else
    /// Delete(counter)`.
    Finish { name: Arc<str>, mod_revision: i64 },
}

impl StoreOp {
    pub fn name(&self) -> &Arc<str> {
        match self {
            StoreOp::PutCounter { name, .. } | StoreOp::Finish { name, .. } => name,
        }
    }
}

/// A trigger to send.
#[derive(Clone, Debug)]
pub struct Fire {
    pub name: Arc<str>,
    /// Identifies this trigger: results for an older one are ignored.
    pub generation: u64,
    /// The tick's scheduled time.
    pub scheduled: DateTime<Utc>,
    pub delivery: Arc<Delivery>,
}

#[derive(Debug)]
enum State {
    Waiting { at: DateTime<Utc>, seq: u64 },
    InFlight,
    Staged,
}

#[derive(Debug)]
struct Entry {
    mod_revision: i64,
    counter: JobCounter,
    generation: u64,
    state: State,
    delivery: Arc<Delivery>,
}

/// What loading a job gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Upserted {
    /// Queued (with a counter reset to write, if any).
    Queued(Option<StoreOp>),
    /// The job will never fire: delete it.
    Finished(StoreOp),
    /// The stored schedule does not parse: ignored.
    Invalid(String),
}

/// The queue of one engine incarnation.
#[derive(Debug, Default)]
pub struct Queue {
    jobs: HashMap<Arc<str>, Entry>,
    due: BTreeSet<(DateTime<Utc>, u64, Arc<str>)>,
    staged: HashSet<Arc<str>>,
    seq: u64,
}

impl Queue {
    pub fn new() -> Queue {
        Queue::default()
    }

    /// Jobs held (waiting, in flight or staged).
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Jobs parked until a sidecar for them connects.
    pub fn staged(&self) -> usize {
        self.staged.len()
    }

    /// Adds or replaces the job stored under `name` at `mod_revision`, with its stored counter
    /// (if read). A replaced job's in-flight trigger is forgotten: its result is ignored.
    pub fn upsert(
        &mut self,
        name: &str,
        mod_revision: i64,
        job: &StoredJob,
        counter: Option<Counter>,
    ) -> Upserted {
        let name: Arc<str> = match self.jobs.get_key_value(name) {
            Some((existing, _)) => Arc::clone(existing),
            None => Arc::from(name),
        };
        self.detach(&name);
        match JobCounter::load(job, counter) {
            Err(error) => Upserted::Invalid(error.to_string()),
            Ok(Loaded::Finished) => Upserted::Finished(StoreOp::Finish { name, mod_revision }),
            Ok(Loaded::Active { counter, reset }) => {
                let at = counter.scheduled_time();
                let generation = self.next_seq();
                self.jobs.insert(
                    Arc::clone(&name),
                    Entry {
                        mod_revision,
                        counter: *counter,
                        generation,
                        state: State::InFlight,
                        delivery: Arc::new(Delivery::of(&name, job)),
                    },
                );
                self.wait(&name, at);
                Upserted::Queued(reset.map(|counter| StoreOp::PutCounter {
                    name,
                    mod_revision,
                    counter,
                }))
            }
        }
    }

    /// Forgets the job (deleted, or no longer owned). `mod_revision` is the deleted version's;
    /// a newer version held here (a later put seen first) stays.
    pub fn remove(&mut self, name: &str, mod_revision: Option<i64>) -> bool {
        let Some((key, entry)) = self.jobs.get_key_value(name) else {
            return false;
        };
        if mod_revision.is_some_and(|rev| entry.mod_revision > rev) {
            return false;
        }
        let key = Arc::clone(key);
        self.detach(&key);
        self.jobs.remove(&key);
        true
    }

    /// Drops everything (the engine stopped).
    pub fn clear(&mut self) {
        self.jobs.clear();
        self.due.clear();
        self.staged.clear();
    }

    /// When the earliest waiting job is due.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.due.first().map(|(at, _, _)| *at)
    }

    /// Takes up to `max` jobs due at `now` and marks them in flight.
    pub fn pop_due(&mut self, now: DateTime<Utc>, max: usize) -> Vec<Fire> {
        let mut fires = Vec::new();
        while fires.len() < max {
            let Some(first) = self.due.first() else { break };
            if first.0 > now {
                break;
            }
            let Some((scheduled, _, name)) = self.due.pop_first() else {
                break;
            };
            let generation = self.next_seq();
            let Some(entry) = self.jobs.get_mut(&name) else {
                continue;
            };
            entry.state = State::InFlight;
            entry.generation = generation;
            fires.push(Fire {
                name,
                generation,
                scheduled,
                delivery: Arc::clone(&entry.delivery),
            });
        }
        fires
    }

    /// Applies a trigger's result. `deliverable` says whether a sidecar that takes the job is
    /// connected (an undeliverable job goes back to the queue if so, else it is staged).
    /// Returns the store write to make, if any; `None` too when the trigger is stale.
    pub fn result(
        &mut self,
        name: &str,
        generation: u64,
        result: TriggerResult,
        now: DateTime<Utc>,
        deliverable: impl Fn(&str) -> bool,
    ) -> Option<StoreOp> {
        let entry = self.jobs.get_mut(name)?;
        if entry.generation != generation || !matches!(entry.state, State::InFlight) {
            return None;
        }
        let mod_revision = entry.mod_revision;
        let name = self.jobs.get_key_value(name).map(|(k, _)| Arc::clone(k))?;
        match self.jobs.get_mut(&name)?.counter.apply(result) {
            Outcome::Undeliverable { .. } => {
                if deliverable(&name) {
                    self.wait(&name, now);
                } else {
                    self.stage(&name);
                }
                None
            }
            Outcome::Reschedule { counter, at } => {
                self.wait(&name, at);
                Some(StoreOp::PutCounter {
                    name,
                    mod_revision,
                    counter,
                })
            }
            Outcome::Finished => {
                self.jobs.remove(&name);
                Some(StoreOp::Finish { name, mod_revision })
            }
        }
    }

    /// A sidecar taking jobs under `prefix` connected: its staged jobs are due now.
    pub fn unstage(&mut self, prefix: &str, now: DateTime<Utc>) -> usize {
        let names: Vec<Arc<str>> = self
            .staged
            .iter()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect();
        for name in &names {
            self.wait(name, now);
        }
        names.len()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Takes the job out of the due set / staging (its state is then set by the caller).
    fn detach(&mut self, name: &Arc<str>) {
        let Some(entry) = self.jobs.get_mut(name) else {
            return;
        };
        match std::mem::replace(&mut entry.state, State::InFlight) {
            State::Waiting { at, seq } => {
                self.due.remove(&(at, seq, Arc::clone(name)));
            }
            State::Staged => {
                self.staged.remove(name);
            }
            State::InFlight => {}
        }
    }

    fn wait(&mut self, name: &Arc<str>, at: DateTime<Utc>) {
        self.detach(name);
        let seq = self.next_seq();
        if let Some(entry) = self.jobs.get_mut(name) {
            entry.state = State::Waiting { at, seq };
            self.due.insert((at, seq, Arc::clone(name)));
        }
    }

    fn stage(&mut self, name: &Arc<str>) {
        self.detach(name);
        if let Some(entry) = self.jobs.get_mut(name) {
            entry.state = State::Staged;
            self.staged.insert(Arc::clone(name));
        }
    }
}

#[cfg(test)]
mod tests;
