//! dapr-proto
