//! The provider against our real sentry binary: it fetches SVIDs, serves and dials mTLS gRPC
//! with them, and a provider started before sentry waits for it.
//!
//! The sentry binary is looked up beside this test's target directory (`target/debug/sentry`,
//! built by `cargo build -p sentry`) or at `$DAPR_SENTRY_BIN`; without it the tests say so and
//! pass, as cross-crate binaries cannot be depended on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dapr_proto::sentry::v1::ca_client::CaClient;
use dapr_proto::sentry::v1::ca_server::{Ca, CaServer};
use dapr_proto::sentry::v1::{SignCertificateRequest, SignCertificateResponse};
use dapr_security::net::{connect_channel, peer_info, serve_routes};
use dapr_security::{AnchorsSource, KeyKind, Provider, ProviderOptions, Security, SpiffeId};
use dapr_testing::{Child, free_port, wait_for_tcp};
use tokio_util::sync::CancellationToken;

const TRUST_DOMAIN: &str = "integration.test.dapr.io";
const START: Duration = Duration::from_secs(30);

fn sentry_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DAPR_SENTRY_BIN") {
        return Some(PathBuf::from(path));
    }
    // target/<profile>/deps/<this test> -> target/<profile>/sentry
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("sentry");
    path.exists().then_some(path)
}

struct Sentry {
    child: Child,
    port: u16,
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dapr-security-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("creds")).unwrap();
    std::fs::write(dir.join("sentry.yaml"), "").unwrap();
    dir
}

/// Sentry's config with short-lived workload certificates.
const SHORT_TTL_CONFIG: &str = "apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: daprsystem
spec:
  mtls:
    workloadCertTTL: 4s
    allowedClockSkew: 2s
";

fn start_sentry(binary: &PathBuf, dir: &std::path::Path, port: u16) -> Sentry {
    let args = [
        format!("-issuer-credentials={}", dir.join("creds").display()),
        format!("-config={}", dir.join("sentry.yaml").display()),
        format!("-trust-domain={TRUST_DOMAIN}"),
        format!("-port={port}"),
        format!("-healthz-port={}", free_port()),
        format!("-metrics-port={}", free_port()),
        "-listen-address=127.0.0.1".to_owned(),
        "-healthz-listen-address=127.0.0.1".to_owned(),
        "-metrics-listen-address=127.0.0.1".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = Child::spawn_with_env(binary, &args, &[]).unwrap();
    Sentry { child, port }
}

fn options(app_id: &str, dir: &std::path::Path, port: u16) -> ProviderOptions {
    ProviderOptions {
        app_id: app_id.to_owned(),
        sentry_address: format!("127.0.0.1:{port}"),
        anchors: Some(AnchorsSource::File(dir.join("creds").join("ca.crt"))),
        control_plane_trust_domain: TRUST_DOMAIN.to_owned(),
        control_plane_namespace: "default".to_owned(),
        mtls_enabled: true,
        kubernetes_mode: false,
        key: KeyKind::Ed25519,
        write_identity_dir: None,
    }
}

fn start_provider(
    options: ProviderOptions,
    cancel: &CancellationToken,
) -> (
    Security,
    tokio::task::JoinHandle<Result<(), dapr_security::ProviderError>>,
) {
    let (provider, security) = Provider::new(options).unwrap();
    let task = tokio::spawn(provider.run(cancel.clone()));
    (security, task)
}

/// A CA service that answers with the caller's SPIFFE ID, to see what the server saw.
struct Echo;

#[tonic::async_trait]
impl Ca for Echo {
    async fn sign_certificate(
        &self,
        request: tonic::Request<SignCertificateRequest>,
    ) -> Result<tonic::Response<SignCertificateResponse>, tonic::Status> {
        let peer = peer_info(&request)
            .and_then(|info| info.peer_id.clone())
            .map(|id| id.to_string())
            .unwrap_or_default();
        Ok(tonic::Response::new(SignCertificateResponse {
            workload_certificate: peer.into_bytes(),
            ..Default::default()
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_get_svids_from_sentry_and_talk_mtls_grpc_with_them() {
    let Some(binary) = sentry_binary() else {
        eprintln!("SKIPPED: no sentry binary (run `cargo build -p sentry` or set DAPR_SENTRY_BIN)");
        return;
    };
    let dir = workdir("mtls");
    let mut sentry = start_sentry(&binary, &dir, free_port());
    wait_for_tcp(sentry.port, START).unwrap_or_else(|e| panic!("{e}\n{}", sentry.child.output()));

    let cancel = CancellationToken::new();
    let (placement, placement_task) =
        start_provider(options("dapr-placement", &dir, sentry.port), &cancel);
    let mut scheduler_options = options("dapr-scheduler", &dir, sentry.port);
    scheduler_options.key = KeyKind::Rsa2048;
    let (scheduler, scheduler_task) = start_provider(scheduler_options, &cancel);
    tokio::time::timeout(START, async {
        placement.ready().await;
        scheduler.ready().await;
    })
    .await
    .unwrap_or_else(|_| panic!("no SVID from sentry\n{}", sentry.child.output()));

    let placement_id = placement.control_plane_id("dapr-placement").unwrap();
    let scheduler_id = scheduler.control_plane_id("dapr-scheduler").unwrap();
    assert_eq!(
        placement_id.to_string(),
        format!("spiffe://{TRUST_DOMAIN}/ns/default/dapr-placement")
    );
    assert_eq!(placement.id(), Some(placement_id.clone()));
    assert_eq!(scheduler.id(), Some(scheduler_id.clone()));
    assert!(!placement.trust_anchors().borrow().is_empty());

    // placement serves mTLS gRPC; scheduler dials it expecting placement's ID.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let routes = tonic::service::Routes::new(CaServer::new(Echo));
    let server = tokio::spawn(serve_routes(
        routes,
        listener,
        placement.server_config_mtls(),
        cancel.clone(),
    ));
    let channel = connect_channel(&addr.to_string(), scheduler.client_config(placement_id))
        .await
        .unwrap();
    let answer = CaClient::new(channel)
        .sign_certificate(SignCertificateRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        String::from_utf8(answer.workload_certificate).unwrap(),
        scheduler_id.to_string()
    );

    // Expecting someone else fails the handshake.
    let wrong =
        SpiffeId::parse("spiffe://integration.test.dapr.io/ns/default/dapr-operator").unwrap();
    assert!(
        connect_channel(&addr.to_string(), scheduler.client_config(wrong))
            .await
            .is_err()
    );

    cancel.cancel();
    assert!(placement_task.await.unwrap().is_ok());
    assert!(scheduler_task.await.unwrap().is_ok());
    server.await.unwrap().unwrap();
    sentry.child.interrupt_and_wait(START);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_started_before_sentry_waits_for_it() {
    let Some(binary) = sentry_binary() else {
        eprintln!("SKIPPED: no sentry binary (run `cargo build -p sentry` or set DAPR_SENTRY_BIN)");
        return;
    };
    let dir = workdir("wait");
    let port = free_port();
    let cancel = CancellationToken::new();
    let (security, task) = start_provider(options("dapr-placement", &dir, port), &cancel);

    // Neither the anchors file nor sentry exist yet: not ready, still running.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!security.is_ready());
    assert!(!task.is_finished());

    let mut sentry = start_sentry(&binary, &dir, port);
    tokio::time::timeout(START, security.ready())
        .await
        .unwrap_or_else(|_| panic!("no SVID after sentry started\n{}", sentry.child.output()));
    assert_eq!(
        security.id().unwrap().to_string(),
        format!("spiffe://{TRUST_DOMAIN}/ns/default/dapr-placement")
    );
    cancel.cancel();
    assert!(task.await.unwrap().is_ok());
    sentry.child.interrupt_and_wait(START);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_svids_are_renewed_half_way_through_their_validity() {
    let Some(binary) = sentry_binary() else {
        eprintln!("SKIPPED: no sentry binary (run `cargo build -p sentry` or set DAPR_SENTRY_BIN)");
        return;
    };
    let dir = workdir("renew");
    std::fs::write(dir.join("sentry.yaml"), SHORT_TTL_CONFIG).unwrap();
    let mut sentry = start_sentry(&binary, &dir, free_port());
    wait_for_tcp(sentry.port, START).unwrap_or_else(|e| panic!("{e}\n{}", sentry.child.output()));

    let cancel = CancellationToken::new();
    let (security, task) = start_provider(options("dapr-placement", &dir, sentry.port), &cancel);
    let mut updates = security.svid_updates();
    // Validity [t-2s, t+4s] renews at t+1s: three renewals well within 15 s.
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while seen.len() < 4 {
            updates.changed().await.unwrap();
            if let Some(svid) = updates.borrow_and_update().clone() {
                seen.push(svid);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} SVIDs\n{}", seen.len(), sentry.child.output()));
    for pair in seen.windows(2) {
        assert!(pair[0].not_after() <= pair[1].not_after());
        assert_ne!(
            pair[0].chain()[0],
            pair[1].chain()[0],
            "a new certificate each time"
        );
        assert_eq!(
            pair[1]
                .not_after()
                .duration_since(pair[1].not_before())
                .unwrap(),
            Duration::from_secs(6)
        );
    }
    cancel.cancel();
    assert!(task.await.unwrap().is_ok());
    sentry.child.interrupt_and_wait(START);
    let _ = std::fs::remove_dir_all(&dir);
}
