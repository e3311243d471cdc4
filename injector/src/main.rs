use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    injector::Options::from_args().run().await
}
