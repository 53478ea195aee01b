//! # sora2api-tower
//!
//! The IO shell of sora2api-rs as tower middleware: `Sora2ApiLayer`, the driver loop, the
//! `Upstream` and `TaskStore` seams, SSE framing and the admin API.
//!
//! **Not yet built.** Issue 4 ("The tower layer and the sora2api proxy binary") fills this
//! crate; until then it only re-exports the core so the workspace layout is in place.
#![warn(missing_docs)]

pub use sora2api_core as core;
