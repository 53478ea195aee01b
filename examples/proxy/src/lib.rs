//! The library half of the `sora2api` proxy: what the binary uses and the tests reach.
//!
//! - [`redb_store`]: the durable [`TaskStore`](sora2api_tower::TaskStore) in a redb file.
//! - [`demo`]: `--demo`, the gateway against the in-process simulated backend.
//! - [`server`]: serving the layer over HTTP/1.1 with graceful shutdown.
#![warn(missing_docs)]

pub mod demo;
pub mod redb_store;
pub mod server;

pub use redb_store::RedbTaskStore;
