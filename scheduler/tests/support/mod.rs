//! Helpers shared by the scheduler's process-level tests.

use std::path::PathBuf;

use dapr_proto::scheduler::v1::{JobMetadata, JobTargetMetadata, TargetJob, job_target_metadata};

/// The metadata of an app job (`app1` in `default`) for Schedule/Get/Delete requests.
pub fn metadata() -> JobMetadata {
    JobMetadata {
        app_id: "app1".into(),
        namespace: "default".into(),
        target: Some(JobTargetMetadata {
            r#type: Some(job_target_metadata::Type::Job(TargetJob {})),
        }),
        concurrency_key: None,
    }
}

/// A fresh (removed if left over) directory under the temp dir for this test process.
#[allow(dead_code)] // not every test binary needs one
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scheduler-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
