//! `bench_scheduler`: ScheduleJob throughput and job trigger timing against one scheduler; see
//! `hack/bench/scheduler.sh`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    e2e::bench::scheduler::Args::parse().run().await
}
