//! Command lines as upstream Dapr's Go binaries accept them.
//!
//! Upstream parses flags with `spf13/pflag` after rewriting every argument longer than two
//! characters that starts with a single `-` into its `--` form, so `-port=1`, `--port=1`,
//! `--port 1` and `-port 1` are the same flag. Booleans take `--flag`, `--flag=true` and
//! `--flag=false` (never a separate value). [`normalize`] performs the rewrite; [`parse`] runs a
//! clap parser over the normalised argv. The shared [`groups`] hold the flags every service has.

mod duration;
pub mod groups;
mod normalize;
mod values;

pub use duration::{GoDuration, ParseDurationError};
pub use normalize::normalize;
pub use values::{ParseBoolError, parse_go_bool};

use std::ffi::OsString;

/// Parses the process's own argv with Go-style normalisation.
///
/// On `-h`/`--help` clap prints usage and exits 0; on an unknown flag or a bad value it prints the
/// error with usage and exits 2, as pflag's `ExitOnError` does.
pub fn parse<P: clap::Parser>() -> P {
    parse_from(std::env::args_os())
}

/// Like [`parse`] over an explicit argv (the first element is the program name).
pub fn parse_from<P, I, T>(args: I) -> P
where
    P: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    try_parse_from(args).unwrap_or_else(|e| e.exit())
}

/// Like [`parse_from`] but returns the clap error instead of exiting.
///
/// A flag given twice takes its last value, as with Go's flag packages (clap would reject it).
pub fn try_parse_from<P, I, T>(args: I) -> Result<P, clap::Error>
where
    P: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut command = P::command().args_override_self(true);
    let matches = command.try_get_matches_from_mut(normalize(args))?;
    P::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}
