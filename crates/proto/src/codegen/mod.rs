//! The generator behind `make gen` and the upstream comparison behind `proto-check`.
//!
//! Both compile `.proto` files with protox (pure Rust), so neither needs `protoc`. Normal builds
//! never run this: its output under `src/gen/` is committed, and `tests/generated.rs` fails when
//! that output is stale.

mod diff;

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use prost::Message as _;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

pub use self::diff::{Comparison, Difference, compare};

/// The upstream files this crate mirrors. Their `dapr/...` imports are mirrored too; proto-check
/// follows them, so a file missing here or on disk is reported rather than silently skipped.
pub const ROOTS: &[&str] = &[
    "dapr/proto/sentry/v1/sentry.proto",
    "dapr/proto/placement/v1/placement.proto",
    "dapr/proto/placement/v1/state.proto",
    "dapr/proto/scheduler/v1/scheduler.proto",
    "dapr/proto/operator/v1/operator.proto",
    "dapr/proto/operator/v1/resource.proto",
    // Scheduler's in-flight trigger type (`JobEvent`).
    "dapr/proto/internals/v1/jobs.proto",
];

/// Name of the encoded `FileDescriptorSet` written next to the generated Rust files.
pub const DESCRIPTOR_FILE: &str = "descriptor.bin";

/// Failures of compiling protos or writing generated files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to compile protos under {}", root.display())]
    Compile {
        root: PathBuf,
        #[source]
        source: Box<protox::Error>,
    },
    #[error("failed to generate Rust code into {}", dir.display())]
    Generate {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The directory holding our `.proto` files (the one containing `dapr/proto/...`).
pub fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("proto")
}

/// The directory the committed generated code lives in.
pub fn gen_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("gen")
}

/// Every `.proto` file under [`proto_dir`], as import paths (`dapr/proto/...`), sorted.
pub fn our_files() -> Result<Vec<String>, Error> {
    let root = proto_dir();
    let mut files = Vec::new();
    collect_protos(&root, &root, &mut files)?;
    files.sort();
    Ok(files)
}

/// Compiles all of our files; the result holds only `dapr/...` files (no well-known types).
/// The etcd v3 API under `etcd/` is generated like the rest but left out here: it mirrors etcd,
/// not Dapr, and the etcd-semantics suite (`crates/etcd-store/tests`) checks it against real etcd.
pub fn compile_ours() -> Result<Vec<FileDescriptorProto>, Error> {
    let fds = compile(&proto_dir(), &our_files()?, false, true)?;
    Ok(dapr_files(fds))
}

/// Compiles upstream's [`ROOTS`] from `root` (the directory containing `dapr/proto/...`); the
/// result holds the roots and every `dapr/...` file they import.
pub fn compile_upstream(root: &Path) -> Result<Vec<FileDescriptorProto>, Error> {
    let fds = compile(root, ROOTS, false, true)?;
    Ok(dapr_files(fds))
}

/// Writes the Rust code (one file per package, clients and servers for every service) and the
/// encoded descriptor set for all of our files into `out_dir`.
pub fn generate(out_dir: &Path) -> Result<(), Error> {
    let root = proto_dir();
    let files = our_files()?;

    // Source info carries the proto comments into the generated doc comments.
    let with_comments = compile(&root, &files, true, true)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir(out_dir)
        .compile_fds(with_comments)
        .map_err(|source| Error::Generate {
            dir: out_dir.to_owned(),
            source,
        })?;

    // The runtime descriptor set is self-contained (includes the well-known types it imports),
    // as gRPC reflection needs, and drops comments to stay small.
    let descriptor = compile(&root, &files, false, true)?.encode_to_vec();
    let path = out_dir.join(DESCRIPTOR_FILE);
    fs::write(&path, descriptor).map_err(|source| Error::Io { path, source })
}

fn compile<P: AsRef<Path>>(
    root: &Path,
    files: &[P],
    source_info: bool,
    imports: bool,
) -> Result<FileDescriptorSet, Error> {
    let failed = |source| Error::Compile {
        root: root.to_owned(),
        source: Box::new(source),
    };
    let mut compiler = protox::Compiler::new([root]).map_err(failed)?;
    compiler
        .include_source_info(source_info)
        .include_imports(imports);
    for file in files {
        // Relative names resolve against the include root, exactly like `import` statements.
        compiler.open_file(file.as_ref()).map_err(failed)?;
    }
    Ok(compiler.file_descriptor_set())
}

fn dapr_files(fds: FileDescriptorSet) -> Vec<FileDescriptorProto> {
    fds.file
        .into_iter()
        .filter(|f| f.name().starts_with("dapr/"))
        .collect()
}

fn collect_protos(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), Error> {
    let io_err = |source| Error::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if path.is_dir() {
            collect_protos(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name: Vec<_> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect();
            out.push(name.join("/"));
        }
    }
    Ok(())
}

/// Formats an error and its `source()` chain on one line (`a: b: c`), for the example binaries.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
