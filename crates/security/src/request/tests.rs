use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

/// A scripted environment: variables and files.
#[derive(Default)]
struct FakeEnv {
    vars: HashMap<String, String>,
    files: HashMap<PathBuf, Vec<u8>>,
}

impl FakeEnv {
    fn var(mut self, k: &str, v: &str) -> Self {
        self.vars.insert(k.to_owned(), v.to_owned());
        self
    }

    fn file(mut self, p: &str, contents: &str) -> Self {
        self.files
            .insert(PathBuf::from(p), contents.as_bytes().to_vec());
        self
    }
}

impl Env for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

#[test]
fn without_token_sources_the_token_is_empty_and_the_validator_unknown() {
    for kube in [false, true] {
        let (token, validator) = sentry_token(&FakeEnv::default(), kube).unwrap();
        assert_eq!((token.as_str(), validator), ("", TokenValidator::Unknown));
    }
}

#[test]
fn the_token_file_env_wins_with_jwks_in_standalone_and_kubernetes_in_kubernetes() {
    let env = FakeEnv::default()
        .var(TOKEN_FILE_ENV, "/tok")
        .file("/tok", "abc")
        .file(KUBE_TOKEN_PATH, "kube");
    assert_eq!(
        sentry_token(&env, false).unwrap(),
        ("abc".to_owned(), TokenValidator::Jwks)
    );
    assert_eq!(
        sentry_token(&env, true).unwrap(),
        ("abc".to_owned(), TokenValidator::Kubernetes)
    );
}

#[test]
fn a_bad_token_file_env_is_an_error() {
    let empty_var = FakeEnv::default().var(TOKEN_FILE_ENV, "");
    assert_eq!(
        sentry_token(&empty_var, false).unwrap_err().to_string(),
        "environmental variable DAPR_SENTRY_TOKEN_FILE is set with an empty value"
    );
    let missing = FakeEnv::default().var(TOKEN_FILE_ENV, "/nope");
    assert!(
        sentry_token(&missing, false)
            .unwrap_err()
            .to_string()
            .starts_with("failed to read token at path '/nope': ")
    );
    let empty = FakeEnv::default()
        .var(TOKEN_FILE_ENV, "/tok")
        .file("/tok", "");
    assert_eq!(
        sentry_token(&empty, false).unwrap_err().to_string(),
        "token at path '/tok' is empty"
    );
}

#[test]
fn kubernetes_mode_reads_the_projected_token_then_the_legacy_one() {
    let projected = FakeEnv::default()
        .file(KUBE_TOKEN_PATH, "new")
        .file(LEGACY_KUBE_TOKEN_PATH, "old");
    assert_eq!(
        sentry_token(&projected, true).unwrap(),
        ("new".to_owned(), TokenValidator::Kubernetes)
    );
    let legacy = FakeEnv::default().file(LEGACY_KUBE_TOKEN_PATH, "old");
    assert_eq!(
        sentry_token(&legacy, true).unwrap(),
        ("old".to_owned(), TokenValidator::Kubernetes)
    );
    // An empty projected token does not fall back to the legacy one.
    let empty = FakeEnv::default()
        .file(KUBE_TOKEN_PATH, "")
        .file(LEGACY_KUBE_TOKEN_PATH, "old");
    assert_eq!(
        sentry_token(&empty, true).unwrap(),
        (String::new(), TokenValidator::Unknown)
    );
    // Standalone mode never reads Kubernetes tokens.
    assert_eq!(
        sentry_token(&projected, false).unwrap(),
        (String::new(), TokenValidator::Unknown)
    );
}

#[test]
fn control_plane_apps_in_the_control_plane_namespace_ask_for_the_control_plane_trust_domain() {
    let env = FakeEnv::default().var("NAMESPACE", "dapr-system");
    let t = RequestTemplate::new(&env, "dapr-placement", "cluster.local", "dapr-system", true);
    assert_eq!(
        t,
        RequestTemplate {
            id: "dapr-placement".to_owned(),
            namespace: "dapr-system".to_owned(),
            trust_domain: "cluster.local".to_owned(),
            kubernetes: true,
        }
    );
    // Another namespace, or another app: no trust domain.
    let t = RequestTemplate::new(&env, "dapr-placement", "cluster.local", "other", true);
    assert_eq!(t.trust_domain, "");
    let t = RequestTemplate::new(&env, "myapp", "cluster.local", "dapr-system", true);
    assert_eq!(t.trust_domain, "");
}

#[test]
fn the_namespace_defaults_and_the_local_identity_overrides_the_app_id() {
    let t = RequestTemplate::new(
        &FakeEnv::default(),
        "dapr-scheduler",
        "localhost",
        "default",
        false,
    );
    assert_eq!(t.namespace, "default");
    assert_eq!(t.trust_domain, "localhost");
    let env = FakeEnv::default()
        .var("SENTRY_LOCAL_IDENTITY", "custom")
        .var("NAMESPACE", "");
    let t = RequestTemplate::new(&env, "dapr-scheduler", "localhost", "default", false);
    assert_eq!((t.id.as_str(), t.namespace.as_str()), ("custom", ""));
    let env = FakeEnv::default().var("SENTRY_LOCAL_IDENTITY", "");
    let t = RequestTemplate::new(&env, "dapr-scheduler", "localhost", "default", false);
    assert_eq!(t.id, "dapr-scheduler");
}

#[test]
fn requests_carry_the_template_csr_and_current_token() {
    let env = FakeEnv::default()
        .var("NAMESPACE", "ns")
        .var(TOKEN_FILE_ENV, "/tok")
        .file("/tok", "t");
    let t = RequestTemplate::new(&env, "dapr-operator", "td", "ns", false);
    let req = t.request(&env, b"CSR".to_vec()).unwrap();
    assert_eq!(req.id, "dapr-operator");
    assert_eq!(req.namespace, "ns");
    assert_eq!(req.trust_domain, "td");
    assert_eq!(req.token, "t");
    assert_eq!(req.token_validator, TokenValidator::Jwks as i32);
    assert_eq!(req.certificate_signing_request, b"CSR");
    assert!(req.jwt_audiences.is_empty());
}
