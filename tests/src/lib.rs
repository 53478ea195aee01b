//! End-to-end tests of sora2api-rs: the simulated backend served over HTTP on `127.0.0.1:0`,
//! the gateway in front of it, one test per endpoint and mode, restart and resume, the axum
//! mount.
//!
//! The tests live in `tests/` (the library itself is empty); each binary runs on its own:
//!
//! | `cargo test -p sora2api-tests --test …` | What it proves |
//! |---|---|
//! | `api` | every dedicated endpoint in stream, non-stream and async mode; `/v1/chat/completions` directives and media parts; every error row in the OpenAI envelope |
//! | `tokens` | Pro models only on Pro accounts; rotation on 429 (cooldown) and 401 (disable) |
//! | `durability` | a dropped stream and a restarted gateway (redb task store) do not lose the task, and never create twice |
//! | `mount` | the layer nested in an axum `Router` behind middleware; the type-level mount contract |
//! | `sim_server` | the simulated backend over HTTP, driven by the core's request builders |
//!
//! The shared harness is `tests/common/mod.rs`: the sim (`sim_server::SimServer`), the
//! gateway (`Sora2ApiLayer` around a fallback service, `HttpUpstream` at the sim's origin,
//! served by hyper-util's `TowerToHyperService`) and a small hyper-util client. Tests wait on a task's
//! event channel or a bounded poll, never a fixed sleep, and use the sim's fast timings.
