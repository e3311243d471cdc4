//! dapr-security
