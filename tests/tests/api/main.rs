//! The client API of client-api.md over HTTP: the gateway (hyper-util `TowerToHyperService`
//! around `Sora2ApiLayer`, `HttpUpstream`) in front of the simulated backend, both on
//! `127.0.0.1:0`.
//!
//! - `endpoints`: every dedicated endpoint in stream, non-stream and async mode;
//! - `chat`: `/v1/chat/completions` and its prompt directives and media parts;
//! - `errors`: every error row, with the OpenAI envelope.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../common/mod.rs"]
mod common;

mod chat;
mod endpoints;
mod errors;
