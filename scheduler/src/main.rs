use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    scheduler::Options::from_args().run().await
}
