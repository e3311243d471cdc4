//! The committed generated code must be what the generator produces from `proto/` today.

use std::{collections::BTreeMap, fs, path::Path};

use dapr_proto::codegen;

#[test]
fn committed_generated_code_matches_a_fresh_generation() {
    let fresh_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dapr-proto-gen");
    if fresh_dir.exists() {
        fs::remove_dir_all(&fresh_dir).expect("clear scratch dir");
    }
    fs::create_dir_all(&fresh_dir).expect("create scratch dir");
    codegen::generate(&fresh_dir)
        .unwrap_or_else(|e| panic!("generation failed: {}", codegen::error_chain(&e)));

    let committed = read_dir(&codegen::gen_dir());
    let fresh = read_dir(&fresh_dir);
    let mut stale = Vec::new();
    for (name, content) in &fresh {
        match committed.get(name) {
            None => stale.push(format!("{name} is missing")),
            Some(c) if c != content => stale.push(format!("{name} differs")),
            Some(_) => {}
        }
    }
    stale.extend(
        committed
            .keys()
            .filter(|name| !fresh.contains_key(*name))
            .map(|name| format!("{name} is no longer generated")),
    );
    assert!(
        stale.is_empty(),
        "generated code is stale: run `make gen` (cargo run -p dapr-proto --example gen): {}",
        stale.join(", ")
    );
}

fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let content =
                fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            (name, content)
        })
        .collect()
}
