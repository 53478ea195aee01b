//! # sora2api-tower
//!
//! The IO shell of sora2api-rs as tower middleware.
//!
//! **What exists today:** the [`upstream::Upstream`] IO seam and its reqwest implementation,
//! [`upstream::HttpUpstream`] (rustls, per-request and global HTTP/HTTPS/SOCKS5 proxies,
//! one connection pool per proxy, per-request timeouts, reply size cap), the guarded fetch of
//! client-chosen URLs ([`fetch::FetchPolicy`]), the [`store::TaskStore`] seam with
//! [`store::MemoryStore`], the task [`engine::Engine`] (the driver loop of every task), the
//! single clock read ([`clock`]), the SSE response body of streaming requests
//! ([`sse::SseBody`]: keep-alives, exactly one `[DONE]`), the API keys ([`ApiKeys`]) and the
//! [`TokenStore`] seam, the admin API ([`admin::Admin`]: login, tokens, keys, settings, stats,
//! task cancel), and, with the `sim` feature, the simulated backend served over HTTP
//! (`sim_server`) and in-process (`sim_upstream`).
//!
//! **Still to come in issue 4** ("The tower layer and the sora2api proxy binary"):
//! `Sora2ApiLayer` and its service (which routes the admin prefix to [`admin::Admin`]).
#![warn(missing_docs)]

pub use sora2api_core as core;

pub mod admin;
pub mod auth;
pub mod clock;
pub mod engine;
pub mod fetch;
pub mod sse;
pub mod store;
pub mod upstream;

pub use admin::{Admin, AdminConfig, AdminError};
pub use auth::ApiKeys;
pub use engine::{Engine, EngineConfig, Submitted};
pub use fetch::{FetchError, FetchPolicy};
pub use sse::{sse_headers, SseBody};
pub use store::{MemoryStore, MemoryTokenStore, StoreError, TaskStore, TokenStore};
pub use upstream::{BoxFuture, BuildError, HttpUpstream, HttpUpstreamConfig, Upstream};

#[cfg(feature = "sim")]
pub mod sim_server;
#[cfg(feature = "sim")]
pub mod sim_upstream;
