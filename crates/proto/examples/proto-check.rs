//! Compares our `.proto` files with upstream Dapr's, descriptor by descriptor.
//!
//! ```text
//! cargo run -p dapr-proto --example proto-check -- --upstream /root/go/pkg/mod/github.com/dapr/dapr@v1.18.3
//! ```
//!
//! `--upstream` is the directory that contains `dapr/proto/...`. Prints one line per difference
//! and exits 1 if there is any; otherwise prints a single summary line and exits 0. Exits 2 on
//! usage or compile errors.

use std::{path::PathBuf, process::ExitCode};

use dapr_proto::codegen;

const USAGE: &str = "usage: proto-check --upstream <dir containing dapr/proto/...>";

fn main() -> ExitCode {
    let upstream = match parse_args(std::env::args().skip(1)) {
        Ok(dir) => dir,
        Err(message) => {
            eprintln!("proto-check: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (ours, theirs) = match codegen::compile_ours()
        .and_then(|ours| Ok((ours, codegen::compile_upstream(&upstream)?)))
    {
        Ok(compiled) => compiled,
        Err(error) => {
            eprintln!("proto-check: {}", codegen::error_chain(&error));
            return ExitCode::from(2);
        }
    };

    let comparison = codegen::compare(&ours, &theirs);
    if comparison.differences.is_empty() {
        println!(
            "proto-check: no differences ({} files, {} services, {} messages compared)",
            comparison.files, comparison.services, comparison.messages
        );
        ExitCode::SUCCESS
    } else {
        for difference in &comparison.differences {
            println!("{difference}");
        }
        ExitCode::FAILURE
    }
}

/// Accepts `--upstream <dir>` and `--upstream=<dir>` (also with a single dash, as Go tools do).
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<PathBuf, String> {
    let mut upstream = None;
    while let Some(arg) = args.next() {
        let flag = arg.trim_start_matches('-');
        if arg.starts_with('-') && flag == "upstream" {
            upstream = Some(args.next().ok_or("--upstream needs a value")?);
        } else if let Some(value) = flag
            .strip_prefix("upstream=")
            .filter(|_| arg.starts_with('-'))
        {
            upstream = Some(value.to_owned());
        } else if flag == "help" || flag == "h" {
            return Err("help requested".to_owned());
        } else {
            return Err(format!("unexpected argument {arg:?}"));
        }
    }
    upstream
        .map(PathBuf::from)
        .ok_or_else(|| "--upstream is required".to_owned())
}
