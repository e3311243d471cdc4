//! The Kubernetes CA store (spec §5.1): Secret and ConfigMap `dapr-trust-bundle` in sentry's
//! namespace. Reading is turned into a snapshot (pure decision: which parts count as found),
//! the shared [`complete`](super::complete) generates what is missing, and only then is
//! anything written back.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::{CaBundle, CaError, Loaded, complete};
use crate::jwt::JwtBundle;
use crate::kube::{KubeClient, KubeError};

/// Name of both objects.
pub const TRUST_BUNDLE: &str = "dapr-trust-bundle";

/// Kubernetes store errors; texts as upstream's.
#[derive(Debug, thiserror::Error)]
pub enum KubeStoreError {
    #[error("failed to get trust bundle secret: {0}")]
    GetSecret(#[source] KubeError),
    #[error("{0}")]
    GetConfigMap(#[source] KubeError),
    #[error("failed to update trust bundle secret: {0}")]
    UpdateSecret(#[source] KubeError),
    #[error("failed to get trust bundle configmap: {0}")]
    GetConfigMapForUpdate(#[source] KubeError),
    #[error("failed to update trust bundle configmap: {0}")]
    UpdateConfigMap(#[source] KubeError),
}

/// The data keys: basenames of the configured file paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub root: String,
    pub issuer_cert: String,
    pub issuer_key: String,
    pub jwt_key: String,
    pub jwks: String,
}

impl Keys {
    /// Basenames of the given paths.
    pub fn from_paths(
        root: &Path,
        issuer_cert: &Path,
        issuer_key: &Path,
        jwt_key: &Path,
        jwks: &Path,
    ) -> Self {
        let base = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        Self {
            root: base(root),
            issuer_cert: base(issuer_cert),
            issuer_key: base(issuer_key),
            jwt_key: base(jwt_key),
            jwks: base(jwks),
        }
    }
}

/// What the two objects hold, as far as loading is concerned.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `None` = regenerate the X.509 bundle.
    pub x509: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// `(jwt.key, jwks.json)` when both are in the Secret.
    pub jwt: Option<(Vec<u8>, Vec<u8>)>,
}

/// The pure decision: secret data (decoded) and configmap data → snapshot. X.509 counts as
/// missing when a Secret key is missing, when the ConfigMap has no root, or when the Secret's
/// root differs from the ConfigMap's.
pub fn snapshot(
    secret: &BTreeMap<String, Vec<u8>>,
    config_map: &BTreeMap<String, String>,
    keys: &Keys,
) -> Snapshot {
    let root = secret.get(&keys.root);
    let x509 = match (
        root,
        secret.get(&keys.issuer_cert),
        secret.get(&keys.issuer_key),
        config_map.get(&keys.root),
    ) {
        (Some(root), Some(chain), Some(key), Some(cm_root)) if cm_root.as_bytes() == root => {
            Some((root.clone(), chain.clone(), key.clone()))
        }
        _ => None,
    };
    let jwt = match (secret.get(&keys.jwt_key), secret.get(&keys.jwks)) {
        (Some(k), Some(j)) => Some((k.clone(), j.clone())),
        _ => None,
    };
    Snapshot { x509, jwt }
}

/// The store.
pub struct KubeStore {
    pub client: KubeClient,
    pub namespace: String,
    pub keys: Keys,
}

impl KubeStore {
    fn secret_path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/secrets/{TRUST_BUNDLE}",
            self.namespace
        )
    }

    fn config_map_path(&self) -> String {
        format!(
            "/api/v1/namespaces/{}/configmaps/{TRUST_BUNDLE}",
            self.namespace
        )
    }

    /// Loads, generates what is missing, and writes back when something was generated.
    pub async fn load(
        &self,
        jwt_enabled: bool,
        key_id: Option<&str>,
        trust_domain: &str,
        sentry_id: &str,
        skew: Duration,
        now: SystemTime,
    ) -> Result<Loaded, CaError> {
        let secret = self
            .client
            .get(&self.secret_path())
            .await
            .map_err(|e| CaError::KubeGet(KubeStoreError::GetSecret(e)))?;
        let config_map = self
            .client
            .get(&self.config_map_path())
            .await
            .map_err(|e| CaError::KubeGet(KubeStoreError::GetConfigMap(e)))?;
        let snap = snapshot(
            &secret_data(&secret),
            &config_map_data(&config_map),
            &self.keys,
        );
        let x509 = match snap.x509 {
            Some((root, chain, key)) => {
                Some(CaBundle::from_pem(&root, &chain, &key, now).map_err(CaError::Verify)?)
            }
            None => None,
        };
        let jwt = match snap.jwt {
            Some((key, jwks)) => {
                Some(JwtBundle::from_pem(key, jwks, key_id).map_err(CaError::Jwt)?)
            }
            None => None,
        };
        let loaded = complete(x509, jwt, jwt_enabled, trust_domain, sentry_id, skew, now)?;
        if loaded.generated {
            self.store(&loaded).await.map_err(CaError::KubeStore)?;
            tracing::info!(
                "Self-signed certs and JWT root key generated and persisted successfully"
            );
        }
        Ok(loaded)
    }

    async fn store(&self, loaded: &Loaded) -> Result<(), KubeStoreError> {
        let mut secret = self
            .client
            .get(&self.secret_path())
            .await
            .map_err(KubeStoreError::GetSecret)?;
        {
            let data = object_map(&mut secret, "data");
            let b = &loaded.bundle;
            data.insert(
                self.keys.root.clone(),
                STANDARD.encode(b.trust_anchors_pem()).into(),
            );
            data.insert(
                self.keys.issuer_cert.clone(),
                STANDARD.encode(b.issuer_chain_pem()).into(),
            );
            data.insert(
                self.keys.issuer_key.clone(),
                STANDARD.encode(b.issuer_key_pem()).into(),
            );
            if let Some(jwt) = &loaded.jwt {
                data.insert(
                    self.keys.jwt_key.clone(),
                    STANDARD.encode(&jwt.key_pem).into(),
                );
                data.insert(
                    self.keys.jwks.clone(),
                    STANDARD.encode(&jwt.jwks_json).into(),
                );
            }
        }
        self.client
            .call(http::Method::PUT, &self.secret_path(), Some(&secret))
            .await
            .map_err(KubeStoreError::UpdateSecret)?;

        let mut config_map = self
            .client
            .get(&self.config_map_path())
            .await
            .map_err(KubeStoreError::GetConfigMapForUpdate)?;
        {
            let data = object_map(&mut config_map, "data");
            data.insert(
                self.keys.root.clone(),
                loaded.bundle.trust_anchors_pem().into(),
            );
            data.remove(&self.keys.jwks);
            if let Some(jwt) = &loaded.jwt {
                data.insert(
                    self.keys.jwks.clone(),
                    String::from_utf8_lossy(&jwt.jwks_json).into_owned().into(),
                );
            }
        }
        self.client
            .call(
                http::Method::PUT,
                &self.config_map_path(),
                Some(&config_map),
            )
            .await
            .map_err(KubeStoreError::UpdateConfigMap)?;
        Ok(())
    }
}

/// `object[field]` as a JSON object, created when absent or null.
fn object_map<'a>(object: &'a mut Value, field: &str) -> &'a mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let Value::Object(obj) = object else {
        unreachable!("just made an object")
    };
    let entry = obj
        .entry(field.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// A Secret's `data`, base64-decoded (undecodable values are skipped).
pub fn secret_data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    secret
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), STANDARD.decode(v.as_str()?).ok()?)))
        .collect()
}

/// A ConfigMap's `data`.
pub fn config_map_data(config_map: &Value) -> BTreeMap<String, String> {
    config_map
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys {
            root: "ca.crt".into(),
            issuer_cert: "issuer.crt".into(),
            issuer_key: "issuer.key".into(),
            jwt_key: "jwt.key".into(),
            jwks: "jwks.json".into(),
        }
    }

    fn secret(with_jwt: bool) -> BTreeMap<String, Vec<u8>> {
        let mut s: BTreeMap<String, Vec<u8>> = [
            ("ca.crt", "root"),
            ("issuer.crt", "chain"),
            ("issuer.key", "key"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
        if with_jwt {
            s.insert("jwt.key".into(), b"jk".to_vec());
            s.insert("jwks.json".into(), b"{}".to_vec());
        }
        s
    }

    fn cm(root: Option<&str>) -> BTreeMap<String, String> {
        root.map(|r| ("ca.crt".to_owned(), r.to_owned()))
            .into_iter()
            .collect()
    }

    #[test]
    fn a_complete_matching_pair_is_used_as_found() {
        let s = snapshot(&secret(true), &cm(Some("root")), &keys());
        assert!(s.x509.is_some());
        assert_eq!(s.jwt, Some((b"jk".to_vec(), b"{}".to_vec())));
    }

    #[test]
    fn x509_is_regenerated_when_a_key_is_missing_or_the_roots_differ() {
        let mut partial = secret(false);
        partial.remove("issuer.key");
        assert!(
            snapshot(&partial, &cm(Some("root")), &keys())
                .x509
                .is_none()
        );
        assert!(snapshot(&secret(false), &cm(None), &keys()).x509.is_none());
        assert!(
            snapshot(&secret(false), &cm(Some("other")), &keys())
                .x509
                .is_none()
        );
        assert!(
            snapshot(&secret(false), &cm(Some("root")), &keys())
                .jwt
                .is_none()
        );
    }

    #[test]
    fn secret_data_is_base64_decoded() {
        let s = serde_json::json!({"data":{"ca.crt": STANDARD.encode("x"), "bad": 1}});
        assert_eq!(secret_data(&s).get("ca.crt").unwrap(), b"x");
        assert_eq!(secret_data(&s).len(), 1);
    }
}
