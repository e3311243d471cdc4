//! A small hand-written Kubernetes API client shared by the control-plane binaries: in-cluster or
//! kubeconfig credentials (client certificates of any type ring takes, bearer tokens, an explicit
//! TLS server name), JSON `GET`s on fixed paths (no discovery) and a list+watch loop that re-lists
//! whenever a watch ends.
//!
//! Why not `kube`: the callers need a handful of fixed paths, and the integration suite's fake API
//! server serves exactly those (no discovery, watches that end at once); this stays small and
//! reuses the hyper/rustls stack already in the graph.

pub mod client;
pub mod http;
pub mod watcher;

pub use client::{KubeClient, KubeError};
pub use watcher::{ListWatch, WatchEvent, object_name};
