//! The library half of the `sora2api` proxy: what the binary uses and the tests reach.
//!
//! - [`redb_store`]: the durable [`TaskStore`](sora2api_tower::TaskStore) in a redb file.
#![warn(missing_docs)]

pub mod redb_store;

pub use redb_store::RedbTaskStore;
