use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    placement::Options::from_args().run().await
}
