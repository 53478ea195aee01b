//! # sora2api-tower
//!
//! The IO shell of sora2api-rs as tower middleware: `Sora2ApiLayer`, the driver loop, the
//! `Upstream` and `TaskStore` seams, SSE framing and the admin API.
//!
//! **Not yet built.** Issue 4 ("The tower layer and the sora2api proxy binary") fills this
//! crate; until then it re-exports the core and, with the `sim` feature, serves the simulated
//! backend over HTTP ([`sim_server`]).
#![warn(missing_docs)]

pub use sora2api_core as core;

#[cfg(feature = "sim")]
pub mod sim_server;
