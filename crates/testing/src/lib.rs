//! dapr-testing
