//! `bench_sentry`: SignCertificate load at fixed concurrency levels; see `hack/bench/sentry.sh`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    e2e::bench::sentry::Args::parse().run().await
}
