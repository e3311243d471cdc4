//! Regenerates `src/gen/` (Rust code and `descriptor.bin`) from `proto/`.
//!
//! Run with `cargo run -p dapr-proto --example gen` (what `make gen` does). The generator links
//! this crate, so it generates into a scratch directory first and only replaces `src/gen/` once
//! generation succeeded: a failed run never leaves the crate without its generated code.

use std::{fs, path::Path, process::ExitCode};

use dapr_proto::codegen::{self, Error};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gen: {}", codegen::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Error> {
    let scratch = std::env::temp_dir().join(format!("dapr-proto-gen-{}", std::process::id()));
    recreate(&scratch)?;
    let generated = codegen::generate(&scratch);
    let replaced = generated.and_then(|()| replace(&scratch, &codegen::gen_dir()));
    let _ = fs::remove_dir_all(&scratch);
    replaced
}

/// Makes `to` hold exactly the files of `from` (so files of removed packages do not linger).
fn replace(from: &Path, to: &Path) -> Result<(), Error> {
    recreate(to)?;
    for entry in fs::read_dir(from).map_err(io(from))? {
        let source = entry.map_err(io(from))?.path();
        let target = to.join(source.file_name().unwrap_or_default());
        fs::copy(&source, &target).map_err(io(&target))?;
    }
    Ok(())
}

fn recreate(dir: &Path) -> Result<(), Error> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    fs::create_dir_all(dir).map_err(io(dir))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}
