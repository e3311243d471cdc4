//! `bench_placement`: dissemination round times with N simulated daprds; see
//! `hack/bench/placement.sh`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    e2e::bench::placement::Args::parse().run().await
}
