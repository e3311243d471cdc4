//! Kubernetes CustomResource types for the Dapr CRDs (filled in by the operator issue).
