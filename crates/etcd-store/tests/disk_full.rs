//! A member whose data directory's disk fills up: puts fail with etcd's space error while
//! deletes still go through, and writes resume by themselves once space is freed — with nothing
//! acknowledged before lost. The disk is a real, size-capped tmpfs: the test re-runs itself in an
//! unprivileged user + mount namespace (`unshare`), as upstream's disk-full cases do.

use std::{
    io::Write as _,
    path::Path,
    process::Command as Process,
    time::{Duration, Instant},
};

use dapr_etcd_store::{
    mvcc::{Command, DeleteRangeRequest, Error, PutRequest, RangeRequest, Response, StoreConfig},
    node::{Node, NodeConfig, NodeError},
};
use dapr_testing::free_port;
use tokio_util::sync::CancellationToken;

/// Set in the re-run inside the namespace.
const INSIDE: &str = "DAPR_ETCD_DISK_TEST_INSIDE";
/// Twice the low-water mark (10 MiB on a small volume) must fit beside the data to resume.
const TMPFS_MIB: u64 = 64;
/// The disk watch reads every second; a change must show well within this.
const NOTICE: Duration = Duration::from_secs(10);

#[test]
fn a_full_disk_refuses_new_data_keeps_deletes_and_recovers_when_freed() {
    if std::env::var_os(INSIDE).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(inside_namespace());
        return;
    }
    if !unshare_works() {
        println!("skipped: unprivileged user namespaces (unshare -Umr) are not available here");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Process::new("unshare")
        .args([
            "--user",
            "--mount",
            "--map-root-user",
            "--propagation=private",
        ])
        .arg(exe)
        .args([
            "--exact",
            "a_full_disk_refuses_new_data_keeps_deletes_and_recovers_when_freed",
            "--nocapture",
        ])
        .env(INSIDE, "1")
        .output()
        .expect("run the test under unshare");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the run inside the namespace failed:\n{log}"
    );
    assert!(
        log.contains("1 passed"),
        "the run inside the namespace did not run the test:\n{log}"
    );
}

fn unshare_works() -> bool {
    Process::new("unshare")
        .args(["--user", "--mount", "--map-root-user", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn inside_namespace() {
    let mount = std::env::temp_dir().join(format!("dapr-etcd-disk-{}", std::process::id()));
    std::fs::create_dir_all(&mount).expect("mount point");
    let status = Process::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_MIB}m"), "tmpfs"])
        .arg(&mount)
        .status()
        .expect("run mount");
    assert!(status.success(), "mount tmpfs: {status}");

    let port = free_port();
    let config = NodeConfig {
        name: "n1".into(),
        initial_cluster: vec![("n1".into(), format!("http://127.0.0.1:{port}"))],
        peer_listen: format!("127.0.0.1:{port}"),
        data_dir: mount.join("data"),
        store: StoreConfig::default(),
        snapshot_count: 10_000,
        auto_compaction: dapr_etcd_store::compactor::AutoCompaction::Off,
        peer_tls: None,
    };
    let token = CancellationToken::new();
    let node = Node::start(config, token.clone()).await.expect("start");
    let mut full = node.disk_full();
    assert!(!*full.borrow(), "a fresh tmpfs is not full");
    for key in ["kept", "doomed"] {
        put_until_leader(&node, key).await;
    }

    let pad = mount.join("pad");
    fill(&pad);
    tokio::time::timeout(NOTICE, full.wait_for(|f| *f))
        .await
        .expect("the member noticed the full disk")
        .expect("disk watch alive");

    let refused = node.write(put("new")).await;
    assert!(
        matches!(refused, Err(NodeError::Store(Error::NoSpace))),
        "a put on a full disk: {refused:?}"
    );
    assert_eq!(
        refused.unwrap_err().to_string(),
        "etcdserver: mvcc: database space exceeded"
    );
    let deleted = node
        .write(Command::DeleteRange(DeleteRangeRequest::key("doomed")))
        .await
        .expect("a delete on a full disk still commits");
    assert!(
        matches!(deleted.result, Some(Ok(Response::DeleteRange(ref d))) if d.deleted == 1),
        "{deleted:?}"
    );

    std::fs::remove_file(&pad).expect("free the disk");
    tokio::time::timeout(NOTICE, full.wait_for(|f| !*f))
        .await
        .expect("the member noticed the freed disk")
        .expect("disk watch alive");
    node.write(put("new"))
        .await
        .expect("a put after space returned");

    let keys = keys(&node);
    assert_eq!(keys, ["kept", "new"], "acknowledged writes, and only those");

    token.cancel();
    node.stop().await;
    let _ = Process::new("umount").arg(&mount).status();
}

fn put(key: &str) -> Command {
    Command::Put(PutRequest::new(key, "v"))
}

/// The first write also waits out the election of this single member.
async fn put_until_leader(node: &Node, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match node.write(put(key)).await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                println!("put {key}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("put {key}: {e}"),
        }
    }
}

/// Writes 1 MiB chunks until the filesystem refuses more (ENOSPC on a write or the close).
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create pad");
    let chunk = vec![0xa5_u8; 1 << 20];
    let mut written = 0_u64;
    let error = loop {
        if let Err(e) = file.write_all(&chunk) {
            break Some(e);
        }
        written += 1;
        assert!(written <= TMPFS_MIB, "wrote more than the tmpfs holds");
    };
    let close = file.sync_all().err();
    let enospc = |e: &Option<std::io::Error>| {
        e.as_ref()
            .is_some_and(|e| e.raw_os_error() == Some(28 /* ENOSPC */))
    };
    assert!(
        enospc(&error) || enospc(&close),
        "filling the disk ended with {error:?} / {close:?}, not ENOSPC"
    );
}

fn keys(node: &Node) -> Vec<String> {
    let range = RangeRequest {
        key: b"\0".to_vec(),
        range_end: b"\0".to_vec(),
        ..RangeRequest::default()
    };
    let store = node.machine().read();
    let result = store.range(&range).expect("range");
    result
        .kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}
