//! The standalone `Configuration` file: `$VAR` expansion, YAML parsing, the mtls durations and
//! `tokenValidators`, then each jwks validator's options (durations and `source`). Oracle: no
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentry::config::{self, ValidatorKind};
use sentry::validator::jwks::{JwksOptions, parse_source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Deterministic environment: a few names are set, the rest unset.
    let expanded = config::expand_env(text, |k| match k {
        "TTL" => Some("1h".into()),
        "SOURCE" => Some("{\"keys\":[]}".into()),
        "" => None,
        other if other.len() < 4 => Some(other.repeat(2)),
        _ => None,
    });
    let _ = config::parse(text);
    if let Ok(cfg) = config::parse(&expanded) {
        for (kind, options) in &cfg.token_validators {
            assert_eq!(*kind, ValidatorKind::Jwks);
            let _ = JwksOptions::parse(options);
        }
    }
    // `source` alone: URL, file path, inline JSON or base64 JSON. Skip anything that could name
    // a real file so that the run does not depend on the host's filesystem.
    if !text.contains('/') {
        let _ = parse_source(text);
    }
});
