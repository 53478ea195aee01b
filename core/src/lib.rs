//! # sora2api-core
//!
//! The sans-IO core of sora2api-rs, a gateway that gives image and video generation an
//! OpenAI-compatible HTTP API.
//!
//! ## The sans-IO contract
//!
//! Nothing in this crate performs IO. It never reads a clock, a random number generator, the
//! environment, a file or a socket, and it depends on no async runtime or HTTP stack (no tokio,
//! hyper, reqwest or redb). Every function that needs the time takes it as an argument (wall
//! clock as unix milliseconds); every function that needs randomness takes the random bits as
//! an argument. The IO shell (`sora2api-tower`) owns the clock, the sockets and the store, and
//! drives this crate with plain data. That keeps every behaviour here deterministic and
//! testable on virtual time.
//!
//! ## Map
//!
//! - [`catalog`]: every model and style we serve.
//! - [`prompt`]: prompt directives (`{style}`, remix ids, generation ids, storyboards).
//! - [`wire`]: the client-facing request shapes, decoded with precise errors.
//! - [`translate`]: client request -> one canonical [`request::GenerationRequest`].
//! - [`render`]: task events -> SSE chunks, `chat.completion`, task JSON, `/v1/models`.
//! - [`error`]: the one error type and its one mapping to HTTP status and envelope.
//! - [`task`]: task ids, events and results shared by the engine and the client faces.
//! - [`lifecycle`]: token refresh (ST/RT -> AT) and enrichment, as sans-IO procedures.
//! - `sim` (feature `sim`): a sans-IO simulated Sora backend, the upstream of tests and demo mode.
//! - [`machine`]: `Generation`, the per-task upstream state machine.
//! - [`pool`]: the token pool policy: leases, concurrency, cooldowns, quota waits, disables.
//! - [`record`]: the durable task record the task store keeps, and its stored form.
//!
//! ```
//! use sora2api_core::{translate, request::{Operation, ResponseMode}};
//!
//! let body = br#"{"model":"sora2-landscape-10s","messages":[{"role":"user","content":"{anime}A cat running"}],"stream":true}"#;
//! let call = translate::chat(body, &translate::Limits::default()).unwrap();
//! assert_eq!(call.mode, ResponseMode::Stream);
//! match call.request.operation {
//!     Operation::TextToVideo { prompt, style } => {
//!         assert_eq!(prompt, "A cat running");
//!         assert_eq!(style.map(|s| s.id), Some("anime"));
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
#![warn(missing_docs)]

pub mod catalog;
pub mod error;
pub mod lifecycle;
pub mod machine;
pub mod pool;
pub mod pow;
pub mod prompt;
pub mod record;
pub mod render;
pub mod request;
pub mod secret;
pub mod task;
pub mod translate;
pub mod upstream;
pub mod wire;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

#[cfg(feature = "sim")]
pub mod sim;

pub use error::Error;
