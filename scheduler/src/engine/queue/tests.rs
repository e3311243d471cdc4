use chrono::TimeDelta;
use dapr_proto::scheduler::v1::{JobTargetMetadata, TargetActorReminder, TargetJob};
use prost::Message as _;

use super::*;
use crate::job::{FailurePolicy, Job, parse_job};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn secs(n: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(n)
}

fn app_meta() -> prost_types::Any {
    prost_types::Any {
        type_url: "type.googleapis.com/dapr.proto.scheduler.v1.JobMetadata".into(),
        value: JobMetadata {
            app_id: "app1".into(),
            namespace: "default".into(),
            target: Some(JobTargetMetadata {
                r#type: Some(job_target_metadata::Type::Job(TargetJob {})),
            }),
            concurrency_key: None,
        }
        .encode_to_vec(),
    }
}

fn job(schedule: Option<&str>, due: Option<&str>, repeats: Option<u32>) -> StoredJob {
    parse_job(
        Job {
            schedule: schedule.map(Into::into),
            due_time: due.map(Into::into),
            repeats,
            metadata: Some(app_meta()),
            failure_policy: Some(FailurePolicy::Drop),
            ..Job::default()
        },
        t0(),
        7,
    )
    .unwrap()
}

const NAME: &str = "app||default||app1||j1";

#[test]
fn a_one_shot_fires_at_its_due_time_never_before_and_finishes_on_success() {
    let mut q = Queue::new();
    assert_eq!(
        q.upsert(NAME, 5, &job(None, Some("2s"), None), None),
        Upserted::Queued(None)
    );
    assert_eq!(q.next_due(), Some(secs(2)));
    assert!(q.pop_due(secs(1), 10).is_empty());
    let fires = q.pop_due(secs(2), 10);
    assert_eq!(fires.len(), 1);
    assert_eq!(fires[0].delivery.name.as_deref(), Some("j1"));
    assert_eq!(
        fires[0].delivery.route,
        Some(Route::App {
            namespace: "default".into(),
            app_id: "app1".into()
        })
    );
    // In flight: not due again until its result.
    assert!(q.pop_due(secs(100), 10).is_empty());
    let op = q.result(
        NAME,
        fires[0].generation,
        TriggerResult::Success,
        secs(2),
        |_| true,
    );
    assert_eq!(
        op,
        Some(StoreOp::Finish {
            name: NAME.into(),
            mod_revision: 5
        })
    );
    assert!(q.is_empty());
}

#[test]
fn a_recurring_job_persists_its_counter_and_catches_up_missed_ticks_in_order() {
    let mut q = Queue::new();
    q.upsert(NAME, 5, &job(Some("@every 1s"), None, Some(3)), None);
    // Downtime: three ticks are overdue at t=10; they fire back to back, one at a time.
    let mut scheduled = Vec::new();
    for _ in 0..3 {
        let fires = q.pop_due(secs(10), 10);
        assert_eq!(fires.len(), 1, "one trigger in flight per job");
        scheduled.push(fires[0].scheduled);
        let op = q.result(
            NAME,
            fires[0].generation,
            TriggerResult::Success,
            secs(10),
            |_| true,
        );
        match op {
            Some(StoreOp::PutCounter { counter, .. }) => assert!(counter.count < 3),
            Some(StoreOp::Finish { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(scheduled, vec![secs(1), secs(2), secs(3)]);
    assert!(q.is_empty(), "repeats used up");
}

#[test]
fn a_stored_counter_resumes_where_it_left_off() {
    let mut q = Queue::new();
    let j = job(Some("@every 1s"), None, Some(5));
    let counter = Counter {
        job_partition_id: 7,
        count: 2,
        last_trigger: Some(secs(2)),
        attempts: 0,
    };
    assert_eq!(q.upsert(NAME, 5, &j, Some(counter)), Upserted::Queued(None));
    assert_eq!(q.next_due(), Some(secs(3)));
    // A counter of an earlier job of the same name (other partition id) is reset and rewritten.
    let stale = Counter {
        job_partition_id: 99,
        count: 4,
        last_trigger: Some(secs(4)),
        attempts: 0,
    };
    let Upserted::Queued(Some(StoreOp::PutCounter { counter, .. })) =
        q.upsert(NAME, 6, &j, Some(stale))
    else {
        panic!("expected a reset")
    };
    assert_eq!(counter.count, 0);
    assert_eq!(q.next_due(), Some(secs(1)));
}

#[test]
fn undeliverable_jobs_are_staged_until_a_matching_prefix_connects() {
    let mut q = Queue::new();
    q.upsert(NAME, 5, &job(None, Some("0s"), None), None);
    let fire = q.pop_due(secs(0), 10).remove(0);
    assert_eq!(
        q.result(
            NAME,
            fire.generation,
            TriggerResult::Undeliverable,
            secs(1),
            |_| false
        ),
        None
    );
    assert_eq!(q.staged(), 1);
    assert_eq!(q.next_due(), None);
    assert_eq!(q.unstage("app||default||other||", secs(2)), 0);
    assert_eq!(q.unstage("app||default||app1||", secs(3)), 1);
    assert_eq!(q.pop_due(secs(3), 10).len(), 1);
}

#[test]
fn undeliverable_with_another_stream_is_requeued_now() {
    let mut q = Queue::new();
    q.upsert(NAME, 5, &job(None, Some("0s"), None), None);
    let fire = q.pop_due(secs(0), 10).remove(0);
    q.result(
        NAME,
        fire.generation,
        TriggerResult::Undeliverable,
        secs(4),
        |_| true,
    );
    assert_eq!(q.next_due(), Some(secs(4)));
}

#[test]
fn results_of_a_replaced_or_removed_job_are_ignored() {
    let mut q = Queue::new();
    q.upsert(NAME, 5, &job(None, Some("0s"), None), None);
    let fire = q.pop_due(secs(0), 10).remove(0);
    // Overwritten while in flight: the new version waits for its own time.
    q.upsert(NAME, 8, &job(None, Some("10s"), None), None);
    assert_eq!(
        q.result(
            NAME,
            fire.generation,
            TriggerResult::Success,
            secs(1),
            |_| true
        ),
        None
    );
    assert_eq!(q.next_due(), Some(secs(10)));
    // A delete of the older version does not remove the newer one.
    assert!(!q.remove(NAME, Some(5)));
    assert!(q.remove(NAME, Some(8)));
    assert!(q.is_empty());
    assert_eq!(q.next_due(), None);
}

#[test]
fn failed_triggers_follow_the_failure_policy() {
    let mut q = Queue::new();
    let mut j = job(None, Some("0s"), None);
    j.job.failure_policy = Some(FailurePolicy::default_constant());
    q.upsert(NAME, 5, &j, None);
    let mut deliveries = 0;
    let mut now = secs(0);
    loop {
        let fires = q.pop_due(now, 10);
        if fires.is_empty() {
            match q.next_due() {
                Some(at) => {
                    assert!(at > now);
                    now = at;
                    continue;
                }
                None => break,
            }
        }
        deliveries += 1;
        q.result(
            NAME,
            fires[0].generation,
            TriggerResult::Failed,
            now,
            |_| true,
        );
    }
    assert_eq!(deliveries, 4, "3 retries after the first attempt");
    assert_eq!(now, secs(3), "1 s apart");
}

#[test]
fn an_actor_reminder_routes_by_type_and_strips_its_id_prefix() {
    let meta = JobMetadata {
        app_id: "app1".into(),
        namespace: "ns".into(),
        target: Some(JobTargetMetadata {
            r#type: Some(job_target_metadata::Type::Actor(TargetActorReminder {
                id: "a||b".into(),
                r#type: "T".into(),
            })),
        }),
        concurrency_key: None,
    };
    let mut j = job(None, Some("0s"), None);
    j.job.metadata = Some(prost_types::Any {
        type_url: String::new(),
        value: meta.encode_to_vec(),
    });
    let d = Delivery::of("actorreminder||ns||T||a||b||r||1", &j);
    assert_eq!(d.name.as_deref(), Some("r||1"));
    assert_eq!(
        d.route,
        Some(Route::Actor {
            namespace: "ns".into(),
            actor_type: "T".into()
        })
    );
    // Metadata that does not match the key: not deliverable.
    assert_eq!(Delivery::of("app||x||y||z", &j).name, None);
}
