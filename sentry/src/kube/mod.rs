//! Kubernetes access for kubernetes mode: the API client (shared, from `dapr-kube-lite`),
//! list+watch caches, the `Configuration` lookup.

pub mod cache;

pub use dapr_kube_lite::client;
pub use dapr_kube_lite::{KubeClient, KubeError};

/// The `Configuration` path for `namespace/name`.
pub fn configuration_path(namespace: &str, name: &str) -> String {
    format!("/apis/dapr.io/v1alpha1/namespaces/{namespace}/configurations/{name}")
}
