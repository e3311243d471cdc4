//! Kubernetes access for kubernetes mode: the API client, list+watch caches, the
//! `Configuration` lookup.

pub mod cache;
pub mod client;

pub use client::{KubeClient, KubeError};

/// The `Configuration` path for `namespace/name`.
pub fn configuration_path(namespace: &str, name: &str) -> String {
    format!("/apis/dapr.io/v1alpha1/namespaces/{namespace}/configurations/{name}")
}
