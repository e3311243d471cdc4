//! Which connected WatchJobs stream a trigger goes to (spec §9 "Routing on this replica"), and
//! which job-name prefixes are deliverable. Pure; generic over the stream handle.

use std::collections::HashMap;

use super::queue::Route;

/// What a stream said in its initial message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    pub namespace: String,
    pub app_id: String,
    pub actor_types: Vec<String>,
    /// Takes app jobs (accept_job_types empty or listing JOB).
    pub accepts_jobs: bool,
    /// Takes actor reminders (accept_job_types empty or listing ACTOR_REMINDER).
    pub accepts_reminders: bool,
}

impl StreamInfo {
    /// The job-name prefixes this stream makes deliverable (each ends with `||`).
    pub fn prefixes(&self) -> Vec<String> {
        let mut prefixes = Vec::new();
        if self.accepts_jobs {
            prefixes.push(format!("app||{}||{}||", self.namespace, self.app_id));
        }
        if self.accepts_reminders {
            for t in &self.actor_types {
                prefixes.push(format!("actorreminder||{}||{t}||", self.namespace));
            }
        }
        prefixes
    }
}

type Index = HashMap<String, HashMap<String, RoundRobin>>;

fn entry<'a>(index: &'a mut Index, namespace: &str, key: &str) -> &'a mut RoundRobin {
    index
        .entry(namespace.to_owned())
        .or_default()
        .entry(key.to_owned())
        .or_default()
}

/// Takes stream `id` out of `index[namespace][key]`, dropping emptied entries.
fn unlist(index: &mut Index, namespace: &str, key: &str, id: u64) {
    let Some(keys) = index.get_mut(namespace) else {
        return;
    };
    if let Some(rr) = keys.get_mut(key) {
        rr.streams.retain(|s| *s != id);
        if rr.streams.is_empty() {
            keys.remove(key);
        }
    }
    if keys.is_empty() {
        index.remove(namespace);
    }
}

#[derive(Debug, Default)]
struct RoundRobin {
    streams: Vec<u64>,
    next: usize,
}

impl RoundRobin {
    fn pick(&mut self) -> Option<u64> {
        if self.streams.is_empty() {
            return None;
        }
        let id = self.streams[self.next % self.streams.len()];
        self.next = (self.next + 1) % self.streams.len();
        Some(id)
    }
}

/// The streams connected to this replica.
#[derive(Debug)]
pub struct Router<H> {
    streams: HashMap<u64, (StreamInfo, H)>,
    /// namespace → app id → streams taking its jobs (nested so a trigger's lookup borrows).
    apps: Index,
    /// namespace → actor type → streams hosting it.
    actors: Index,
    prefixes: HashMap<String, usize>,
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Router {
            streams: HashMap::new(),
            apps: HashMap::new(),
            actors: HashMap::new(),
            prefixes: HashMap::new(),
        }
    }
}

impl<H> Router<H> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Registers a stream; returns the prefixes that became deliverable with it.
    pub fn add(&mut self, id: u64, info: StreamInfo, handle: H) -> Vec<String> {
        if info.accepts_jobs {
            entry(&mut self.apps, &info.namespace, &info.app_id)
                .streams
                .push(id);
        }
        for t in &info.actor_types {
            let rr = entry(&mut self.actors, &info.namespace, t);
            if !rr.streams.contains(&id) {
                rr.streams.push(id);
            }
        }
        let mut fresh = Vec::new();
        for prefix in info.prefixes() {
            let count = self.prefixes.entry(prefix.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                fresh.push(prefix);
            }
        }
        self.streams.insert(id, (info, handle));
        fresh
    }

    /// Deregisters a stream (once; later calls return `None`).
    pub fn remove(&mut self, id: u64) -> Option<(StreamInfo, H)> {
        let (info, handle) = self.streams.remove(&id)?;
        if info.accepts_jobs {
            unlist(&mut self.apps, &info.namespace, &info.app_id, id);
        }
        for t in &info.actor_types {
            unlist(&mut self.actors, &info.namespace, t, id);
        }
        for prefix in info.prefixes() {
            if let Some(count) = self.prefixes.get_mut(&prefix) {
                *count -= 1;
                if *count == 0 {
                    self.prefixes.remove(&prefix);
                }
            }
        }
        Some((info, handle))
    }

    /// The next stream (round robin) for a trigger on `route`.
    pub fn pick(&mut self, route: &Route) -> Option<(u64, &H)> {
        let (index, namespace, key) = match route {
            Route::App { namespace, app_id } => (&mut self.apps, namespace, app_id),
            Route::Actor {
                namespace,
                actor_type,
            } => (&mut self.actors, namespace, actor_type),
        };
        let id = index.get_mut(namespace)?.get_mut(key)?.pick()?;
        self.streams.get(&id).map(|(_, h)| (id, h))
    }

    /// Whether some connected stream takes the job with composed `name`.
    pub fn deliverable(&self, name: &str) -> bool {
        self.prefixes.keys().any(|p| name.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(app: &str, types: &[&str], jobs: bool, reminders: bool) -> StreamInfo {
        StreamInfo {
            namespace: "ns".into(),
            app_id: app.into(),
            actor_types: types.iter().map(|t| (*t).to_owned()).collect(),
            accepts_jobs: jobs,
            accepts_reminders: reminders,
        }
    }

    fn app(a: &str) -> Route {
        Route::App {
            namespace: "ns".into(),
            app_id: a.into(),
        }
    }

    #[test]
    fn triggers_round_robin_over_an_apps_streams() {
        let mut r = Router::new();
        assert_eq!(
            r.add(1, info("a", &[], true, true), ()),
            vec!["app||ns||a||"]
        );
        assert!(r.add(2, info("a", &[], true, true), ()).is_empty());
        let picks: Vec<u64> = (0..4).map(|_| r.pick(&app("a")).unwrap().0).collect();
        assert_eq!(picks, vec![1, 2, 1, 2]);
        assert!(r.pick(&app("b")).is_none());
        assert!(
            r.pick(&Route::App {
                namespace: "other".into(),
                app_id: "a".into()
            })
            .is_none(),
            "never across namespaces"
        );
    }

    #[test]
    fn prefixes_are_reference_counted_and_removal_is_idempotent() {
        let mut r = Router::new();
        r.add(1, info("a", &["T"], true, true), ());
        r.add(2, info("a", &["T"], true, true), ());
        assert!(r.deliverable("actorreminder||ns||T||id||x"));
        assert!(r.remove(1).is_some());
        assert!(r.remove(1).is_none());
        assert!(r.deliverable("app||ns||a||x"));
        r.remove(2);
        assert!(!r.deliverable("app||ns||a||x"));
        assert!(r.pick(&app("a")).is_none());
        assert!(r.is_empty());
    }

    #[test]
    fn a_reminders_only_stream_gets_no_app_jobs_but_is_indexed_by_actor_type() {
        let mut r = Router::new();
        let fresh = r.add(1, info("a", &["T"], false, true), ());
        assert_eq!(fresh, vec!["actorreminder||ns||T||"]);
        assert!(r.pick(&app("a")).is_none());
        assert!(!r.deliverable("app||ns||a||x"));
        let actor = Route::Actor {
            namespace: "ns".into(),
            actor_type: "T".into(),
        };
        assert_eq!(r.pick(&actor).map(|(id, _)| id), Some(1));
        // `def` never matches `default`: prefixes end with `||`.
        assert!(!r.deliverable("actorreminder||ns||TT||id||x"));
    }
}
