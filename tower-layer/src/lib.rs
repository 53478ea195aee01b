//! # sora2api-tower
//!
//! The IO shell of sora2api-rs as tower middleware.
//!
//! [`Sora2ApiLayer`] puts the whole gateway in front of any tower/hyper/axum service: the
//! client API of client-api.md under `/v1` (and the admin API under its own prefix, if
//! given) is answered here, every other request goes to the inner service untouched.
//!
//! ```no_run
//! # async fn demo(upstream: std::sync::Arc<dyn sora2api_tower::Upstream>) -> Result<(), Box<dyn std::error::Error>> {
//! use sora2api_tower::{ApiKeys, Sora2ApiLayer};
//! use tower::Layer;
//!
//! let layer = Sora2ApiLayer::builder()
//!     .upstream(upstream)                    // HttpUpstream in production
//!     .api_keys(ApiKeys::new(["han1234"]))
//!     .build()?;
//! layer.engine().resume_unfinished().await?; // tasks of an earlier run, from the store
//! let fallback = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
//! });
//! let service = layer.layer(fallback);       // serve with hyper-util's TowerToHyperService
//! # Ok(()) }
//! ```
//!
//! The pieces: the [`Upstream`] IO seam and its reqwest implementation, [`HttpUpstream`]
//! (rustls, per-request and global HTTP/HTTPS/SOCKS5 proxies, one connection pool per proxy,
//! timeouts, reply size cap); the guarded fetch of client-chosen URLs ([`FetchPolicy`]); the
//! [`TaskStore`] and [`TokenStore`] seams with in-memory implementations; the API keys
//! ([`ApiKeys`]) and the admin API ([`Admin`]: login, tokens, keys, settings, stats, task
//! cancel); the task
//! [`Engine`] (the one driver loop of every task); the single clock read ([`clock`]); the SSE
//! body of streaming requests ([`SseBody`]: keep-alives, exactly one `[DONE]`); and, with the
//! `sim` feature, the simulated backend served over HTTP (`sim_server`) and in-process
//! (`sim_upstream`).
#![warn(missing_docs)]

pub use sora2api_core as core;

pub mod admin;
pub mod api;
pub mod auth;
mod body;
pub mod clock;
pub mod engine;
pub mod error;
mod extract;
pub mod fetch;
mod future;
pub mod layer;
mod routes;
mod service;
pub mod sse;
pub mod store;
pub mod upstream;

pub use admin::{Admin, AdminConfig, AdminError};
pub use auth::ApiKeys;
pub use body::ResponseBody;
pub use engine::{Engine, EngineConfig, Submitted};
pub use fetch::{FetchError, FetchPolicy};
pub use future::ResponseFuture;
pub use layer::{AdminHandler, Builder, LayerError, Sora2ApiLayer};
pub use service::Sora2ApiService;
pub use sse::{sse_headers, SseBody};
pub use store::{MemoryStore, MemoryTokenStore, StoreError, TaskStore, TokenStore};
pub use upstream::{BoxFuture, BuildError, HttpUpstream, HttpUpstreamConfig, Upstream};

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "sim")]
pub mod sim_server;
#[cfg(feature = "sim")]
pub mod sim_upstream;
