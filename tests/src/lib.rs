//! End-to-end tests of sora2api-rs: the simulated backend served over HTTP on `127.0.0.1:0`,
//! the gateway in front of it, one test per endpoint and mode, restart and resume, the axum
//! mount.
//!
//! **Not yet built.** Issue 4 fills this crate; the core's own tests live in `core/`.
