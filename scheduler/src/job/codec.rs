//! The job model's wire forms: the stored protobufs under `dapr/jobs/` and `dapr/counters/`
//! (go-etcd-cron `stored.Job`, `stored.Counter`, spec §11.1) and the Scheduler API's `Job`
//! (spec §6). Byte-compatible with upstream, so either scheduler reads the other's keys.

use chrono::{DateTime, Utc};
use dapr_proto::{
    common::v1 as common,
    etcdcron::{api, stored},
    scheduler::v1 as wire,
};
use prost::Message as _;

use super::model::{Begin, Counter, FailurePolicy, FailurePolicyConstant, Job, StoredJob};

/// A stored value that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("failed to decode stored {what}: {source}")]
pub struct DecodeError {
    what: &'static str,
    #[source]
    source: prost::DecodeError,
}

/// `DateTime` → protobuf `Timestamp`.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos().min(999_999_999) as i32,
    }
}

/// protobuf `Timestamp` → `DateTime` (Go's `AsTime`: out-of-range values clamp to the epoch).
pub fn datetime(t: &prost_types::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(t.seconds, t.nanos.clamp(0, 999_999_999) as u32)
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn policy_to_api(p: &FailurePolicy) -> api::FailurePolicy {
    api::FailurePolicy {
        policy: Some(match p {
            FailurePolicy::Drop => api::failure_policy::Policy::Drop(api::FailurePolicyDrop {}),
            FailurePolicy::Constant(c) => {
                api::failure_policy::Policy::Constant(api::FailurePolicyConstant {
                    interval: c.interval,
                    max_retries: c.max_retries,
                })
            }
        }),
    }
}

fn policy_from_api(p: &api::FailurePolicy) -> Option<FailurePolicy> {
    Some(match p.policy.as_ref()? {
        api::failure_policy::Policy::Drop(_) => FailurePolicy::Drop,
        api::failure_policy::Policy::Constant(c) => {
            FailurePolicy::Constant(FailurePolicyConstant {
                interval: c.interval,
                max_retries: c.max_retries,
            })
        }
    })
}

/// The API's failure policy → the model's (`None` for an absent or empty oneof).
pub fn policy_from_wire(p: Option<&common::JobFailurePolicy>) -> Option<FailurePolicy> {
    Some(match p?.policy.as_ref()? {
        common::job_failure_policy::Policy::Drop(_) => FailurePolicy::Drop,
        common::job_failure_policy::Policy::Constant(c) => {
            FailurePolicy::Constant(FailurePolicyConstant {
                interval: c.interval,
                max_retries: c.max_retries,
            })
        }
    })
}

/// The model's failure policy → the API's.
pub fn policy_to_wire(p: &FailurePolicy) -> common::JobFailurePolicy {
    common::JobFailurePolicy {
        policy: Some(match p {
            FailurePolicy::Drop => {
                common::job_failure_policy::Policy::Drop(common::JobFailurePolicyDrop {})
            }
            FailurePolicy::Constant(c) => {
                common::job_failure_policy::Policy::Constant(common::JobFailurePolicyConstant {
                    interval: c.interval,
                    max_retries: c.max_retries,
                })
            }
        }),
    }
}

impl StoredJob {
    /// The `stored.Job` bytes for `dapr/jobs/<name>`.
    pub fn encode(&self) -> Vec<u8> {
        let job = &self.job;
        stored::Job {
            partition_id: self.partition_id,
            expiration: self.expiration.map(timestamp),
            job: Some(api::Job {
                schedule: job.schedule.clone(),
                due_time: job.due_time.clone(),
                ttl: job.ttl.clone(),
                repeats: job.repeats,
                metadata: job.metadata.clone(),
                payload: job.payload.clone(),
                failure_policy: job.failure_policy.as_ref().map(policy_to_api),
            }),
            begin: self.begin.map(|b| match b {
                Begin::Start(t) => stored::job::Begin::Start(timestamp(t)),
                Begin::DueTime(t) => stored::job::Begin::DueTime(timestamp(t)),
            }),
        }
        .encode_to_vec()
    }

    /// Decodes `dapr/jobs/<name>`'s value.
    pub fn decode(bytes: &[u8]) -> Result<StoredJob, DecodeError> {
        let raw = stored::Job::decode(bytes).map_err(|source| DecodeError {
            what: "job",
            source,
        })?;
        let job = raw.job.unwrap_or_default();
        Ok(StoredJob {
            partition_id: raw.partition_id,
            begin: raw.begin.map(|b| match b {
                stored::job::Begin::Start(t) => Begin::Start(datetime(&t)),
                stored::job::Begin::DueTime(t) => Begin::DueTime(datetime(&t)),
            }),
            expiration: raw.expiration.as_ref().map(datetime),
            job: Job {
                schedule: job.schedule,
                due_time: job.due_time,
                ttl: job.ttl,
                repeats: job.repeats,
                metadata: job.metadata,
                payload: job.payload,
                failure_policy: job.failure_policy.as_ref().and_then(policy_from_api),
            },
        })
    }

    /// The job as GetJob/ListJobs return it (stored strings verbatim, the materialised
    /// default failure policy included).
    pub fn to_wire(&self) -> wire::Job {
        wire::Job {
            schedule: self.job.schedule.clone(),
            repeats: self.job.repeats,
            due_time: self.job.due_time.clone(),
            ttl: self.job.ttl.clone(),
            data: self.job.payload.clone(),
            failure_policy: self.job.failure_policy.as_ref().map(policy_to_wire),
        }
    }

    /// The request metadata stored with the job.
    pub fn metadata(&self) -> Option<wire::JobMetadata> {
        let any = self.job.metadata.as_ref()?;
        wire::JobMetadata::decode(any.value.as_slice()).ok()
    }
}

impl Counter {
    /// The `stored.Counter` bytes for `dapr/counters/<name>`.
    pub fn encode(&self) -> Vec<u8> {
        stored::Counter {
            job_partition_id: self.job_partition_id,
            count: self.count,
            last_trigger: self.last_trigger.map(timestamp),
            attempts: self.attempts,
        }
        .encode_to_vec()
    }

    /// Decodes `dapr/counters/<name>`'s value.
    pub fn decode(bytes: &[u8]) -> Result<Counter, DecodeError> {
        let raw = stored::Counter::decode(bytes).map_err(|source| DecodeError {
            what: "counter",
            source,
        })?;
        Ok(Counter {
            job_partition_id: raw.job_partition_id,
            count: raw.count,
            last_trigger: raw.last_trigger.as_ref().map(datetime),
            attempts: raw.attempts,
        })
    }
}

/// The API's job → the model's, with the request metadata stored beside it as upstream does.
pub fn job_from_wire(job: wire::Job, metadata: &wire::JobMetadata) -> Job {
    Job {
        schedule: job.schedule,
        due_time: job.due_time,
        ttl: job.ttl,
        repeats: job.repeats,
        metadata: Some(prost_types::Any {
            type_url: "type.googleapis.com/dapr.proto.scheduler.v1.JobMetadata".to_owned(),
            value: metadata.encode_to_vec(),
        }),
        payload: job.data,
        failure_policy: policy_from_wire(job.failure_policy.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_job_round_trips_through_its_protobuf() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let job = StoredJob {
            partition_id: 42,
            begin: Some(Begin::DueTime(t)),
            expiration: Some(t + chrono::TimeDelta::seconds(5)),
            job: Job {
                schedule: Some("@every 1s".into()),
                due_time: Some("1s".into()),
                ttl: Some("5s".into()),
                repeats: Some(3),
                metadata: None,
                payload: Some(prost_types::Any {
                    type_url: "x".into(),
                    value: vec![1, 2],
                }),
                failure_policy: Some(FailurePolicy::default_constant()),
            },
        };
        assert_eq!(StoredJob::decode(&job.encode()).unwrap(), job);
    }

    #[test]
    fn counter_round_trips_and_garbage_is_an_error() {
        let c = Counter {
            job_partition_id: 7,
            count: 2,
            last_trigger: DateTime::from_timestamp(5, 0),
            attempts: 1,
        };
        assert_eq!(Counter::decode(&c.encode()).unwrap(), c);
        assert!(Counter::decode(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn an_empty_failure_policy_oneof_is_none() {
        assert_eq!(
            policy_from_wire(Some(&common::JobFailurePolicy { policy: None })),
            None
        );
    }
}
