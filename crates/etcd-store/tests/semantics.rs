//! The etcd-semantics suite: one set of assertions that holds on a real etcd v3.5.30 and on our
//! store. Each test talks gRPC (the dapr-proto etcd clients) to the server at `ETCD_ENDPOINT`
//! under a key prefix of its own, so the tests run in parallel on one server; the few that
//! observe or move the global revision hold the server alone (`support::connect_alone`).
//!
//! Without `ETCD_ENDPOINT` every test prints `skipped: ETCD_ENDPOINT not set` and passes.
//! `hack/etcd/test-store.sh` starts a real etcd (and ours, given `OURS_ETCD_CMD`) and runs this
//! suite, then `semantics_quota` (which fills the database and must run alone), against each.

#[path = "semantics/compact.rs"]
mod compact;
#[path = "semantics/lease.rs"]
mod lease;
#[path = "semantics/maintenance.rs"]
mod maintenance;
#[path = "semantics/range.rs"]
mod range;
#[path = "semantics/support.rs"]
mod support;
#[path = "semantics/txn.rs"]
mod txn;
#[path = "semantics/watch.rs"]
mod watch;
#[path = "semantics/write.rs"]
mod write;
