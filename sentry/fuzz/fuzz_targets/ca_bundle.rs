//! `CaBundle::from_pem`, the validation of user-supplied trust anchors, issuer chain and issuer
//! key (spec §5.3). The input is split on NUL bytes into the three files; most mutations start
//! from the fixture's own valid PEM (see the seed corpus). Oracle: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentry::ca::CaBundle;
use sentry_fuzz::fixture;

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut parts = data.splitn(3, |&b| b == 0);
    let anchors = parts.next().unwrap_or_default();
    let chain = parts.next().unwrap_or_default();
    let key = parts.next().unwrap_or_default();
    if let Ok(bundle) = CaBundle::from_pem(anchors, chain, key, f.now) {
        assert!(!bundle.issuer_chain().is_empty());
        let _ = bundle.issuer_not_after();
    }
    // The fixture's key and anchors with a fuzzed chain, and so on: one part fuzzed at a time
    // reaches the later checks far more often.
    let p = &f.pem;
    let _ = CaBundle::from_pem(
        p.trust_anchors.as_bytes(),
        data,
        p.issuer_key.as_bytes(),
        f.now,
    );
    let _ = CaBundle::from_pem(
        p.trust_anchors.as_bytes(),
        p.issuer_chain.as_bytes(),
        data,
        f.now,
    );
    let _ = CaBundle::from_pem(
        data,
        p.issuer_chain.as_bytes(),
        p.issuer_key.as_bytes(),
        f.now,
    );
});
