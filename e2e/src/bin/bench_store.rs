//! `bench_store`: etcd v3 KV load (puts, txns, ranges) against an endpoint list; see
//! `hack/bench/store.sh`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    e2e::bench::store::Args::parse().run().await
}
