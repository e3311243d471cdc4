//! `bench_store`: etcd v3 KV load (puts, txns, ranges) against an endpoint list; see
//! `hack/bench/store.sh`.

use clap::Parser;

/// A current-thread runtime: the requests one batch of responses unblocks are all queued before
/// a connection task runs, so they leave in one write (see `e2e::bench::h2grpc`).
fn main() -> anyhow::Result<()> {
    let args = e2e::bench::store::Args::parse();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(args.run())
}
