use std::process::ExitCode;

/// mimalloc: the embedded store allocates per write; glibc's allocator cost ~15 % of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    scheduler::Options::from_args().run().await
}
