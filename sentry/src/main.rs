use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    sentry::Options::from_args().run().await
}
