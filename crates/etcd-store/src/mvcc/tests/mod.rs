//! Unit tests of the engine, written from etcd's documented behaviour.

mod kv;
mod lease;
mod model;
mod quota;
mod snapshot;
mod support;
mod txn;
mod watch;
