use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    operator::Options::from_args().run().await
}
