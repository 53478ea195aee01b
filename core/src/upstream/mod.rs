//! The Sora backend client, sans-IO: request builders, reply decoding and the one
//! classification of replies (sora-backend.md sections 1-4, decisions 12-17).
//!
//! Everything Sora-specific lives here and in [`crate::sim`]; the task engine above speaks in
//! canonical requests, events and outcomes.

mod config;
mod http;

pub use config::UpstreamConfig;
pub use http::{Method, TransportError, UpstreamReply, UpstreamRequest};
