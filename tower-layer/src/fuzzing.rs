//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! [`http_request`] feeds arbitrary HTTP requests through the whole service: a
//! [`Sora2ApiLayer`] in front of an echoing inner service, with the simulated backend
//! in-process ([`SimUpstream`], instant timings) and a [`MemoryStore`], on a current-thread
//! Tokio runtime whose clock is paused (timers fire as soon as nothing else can run, so a
//! ten-minute wait costs no real time). It must never panic, and every answer must hold the
//! invariants listed on [`http_request`] (a failed assertion is a crash the fuzzer reports).
//!
//! # Input format
//!
//! The bytes decode into one to three requests; a missing byte reads as `0`, and `0` always
//! picks the most ordinary choice (the right key, JSON, a whole body), so short inputs are
//! ordinary requests and the fuzzer spends its effort on the bodies.
//!
//! ```text
//! input    = count request{count}          count: 1 + count % 3 requests
//! request  = method path flags header{n} body
//! method   = u8                            POST GET HEAD PUT DELETE OPTIONS PATCH, or raw:
//!                                          len:u8 bytes (an extension method)
//! path     = u8 [len:u8 bytes]             PATHS: the real routes, the task just created,
//!                                          raw tails, raw paths, paths that are not ours
//! flags    = u8                            bit 0: no `Authorization: Bearer <key>`
//!                                          bit 1: no `Content-Type: application/json`
//!                                          bit 2: `Content-Length` of the body
//!                                          bits 3-5: n extra headers
//!                                          bits 6-7: body delivery (see BodyEnd)
//! header   = name:u8 value:u8 [len:u8 bytes]   HEADER_NAMES x HEADER_VALUES, or raw
//! body     = len:u16le bytes               the last request's body is the rest of the input
//! ```
//!
//! [`encode`] writes this format; the seeds in `fuzz/seeds/http_service/` are made with it
//! (`SORA2API_WRITE_SEEDS=1 cargo test -p sora2api-tower --features fuzzing --lib
//! the_seed_set_is_committed`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{Layer, Service};

use sora2api_core::machine::MachineConfig;
use sora2api_core::pool::{PoolConfig, TokenPool};
use sora2api_core::sim::{AccountSpec, Sim, SimConfig};
use sora2api_core::task::TaskId;
use sora2api_core::translate::{Endpoint, Limits};
use sora2api_core::upstream::UpstreamConfig;

use crate::sim_upstream::SimUpstream;
use crate::upstream::BoxFuture;
use crate::{clock, ApiKeys, EngineConfig, MemoryStore, ResponseBody, Sora2ApiLayer};

/// The API key the fuzzed gateway accepts.
pub const KEY: &str = "han1234";

/// Where the simulated backend pretends to live.
const SIM: &str = "http://sim.test";

/// The longest any one request may take, body included, on virtual time. The slowest
/// legitimate answer is a stream whose task runs into its deadline ([`machine_config`]:
/// 120 s plus one request timeout), so reaching this bound means a hang.
const REQUEST_BOUND: Duration = Duration::from_secs(3600);

/// How long the inner service waits for more of a body that stops sending (virtual).
const INNER_READ_WAIT: Duration = Duration::from_secs(1);

/// The request body limit of the fuzzed layer: small, so 413s are reachable.
const MAX_BODY_BYTES: usize = 8192;

/// How long a blocking request waits before it answers `202` (virtual).
const BLOCKING_WAIT: Duration = Duration::from_secs(60);

/// The header the inner service marks its answers with.
const INNER_MARK: &str = "x-fuzz-inner";

// === the input ===

/// The fixed paths (and the raw-tail families) a request can pick; see [`path_for`].
const PATHS: usize = 20;

/// Extra header names (the last one reads a raw name).
const HEADER_NAMES: [&str; 8] = [
    "authorization",
    "content-type",
    "content-length",
    "transfer-encoding",
    "accept",
    "x-task-id",
    "cookie",
    "", // raw
];

/// Extra header values (the last one reads a raw value; `{len}` and `{len+1}` are the body's
/// length and one more).
const HEADER_VALUES: [&str; 16] = [
    "Bearer han1234",
    "Bearer wrong-key",
    "Basic han1234",
    "han1234",
    "bearer   han1234  ",
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/vnd.api+json",
    "0",
    "99999999999",
    "{len}",
    "{len+1}",
    "chunked",
    "18446744073709551616",
    "", // raw
];

/// How a request body is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// One frame, then the end.
    Whole,
    /// Three frames, then the end.
    Chunked,
    /// The bytes, then a body error (the connection broke).
    Error,
    /// The bytes, then nothing more, ever (a client that stalls).
    Stall,
}

impl BodyEnd {
    const ALL: [BodyEnd; 4] = [BodyEnd::Whole, BodyEnd::Chunked, BodyEnd::Error, BodyEnd::Stall];
}

/// One decoded request, before it is built (so a seed can be written from it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzRequest {
    /// An index into the standard methods, or a raw method (index 7).
    pub method: u8,
    /// An extension method's bytes (for `method` 7).
    pub raw_method: Vec<u8>,
    /// An index into the paths (see the module docs).
    pub path: u8,
    /// The raw part of the path, for the paths that take one.
    pub raw_path: Vec<u8>,
    /// Leave out `Authorization: Bearer <key>`.
    pub no_auth: bool,
    /// Leave out `Content-Type: application/json`.
    pub no_json: bool,
    /// Add `Content-Length` with the body's length.
    pub content_length: bool,
    /// How the body is delivered.
    pub body_end: BodyEnd,
    /// Extra headers: name index, value index, raw bytes (for the raw name or value).
    pub headers: Vec<(u8, u8, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl FuzzRequest {
    /// An ordinary request: the right key, JSON, the whole body at once.
    pub fn new(method: u8, path: u8, body: impl Into<Vec<u8>>) -> Self {
        FuzzRequest {
            method,
            raw_method: vec![],
            path,
            raw_path: vec![],
            no_auth: false,
            no_json: false,
            content_length: false,
            body_end: BodyEnd::Whole,
            headers: vec![],
            body: body.into(),
        }
    }
}

/// Method indices of [`FuzzRequest::method`].
pub mod method {
    /// `POST`.
    pub const POST: u8 = 0;
    /// `GET`.
    pub const GET: u8 = 1;
    /// `HEAD`.
    pub const HEAD: u8 = 2;
    /// `PUT`.
    pub const PUT: u8 = 3;
    /// `DELETE`.
    pub const DELETE: u8 = 4;
    /// A raw (extension) method.
    pub const RAW: u8 = 7;
}

/// Path indices of [`FuzzRequest::path`].
pub mod path {
    /// `/v1/chat/completions`.
    pub const CHAT: u8 = 0;
    /// `/v1/images/generate`, then the other dedicated endpoints in `Endpoint::ALL` order
    /// (`DEDICATED + i`).
    pub const DEDICATED: u8 = 1;
    /// `/v1/models`.
    pub const MODELS: u8 = 9;
    /// `/v1/tasks/{the last X-Task-Id seen}` (a well-formed unknown id before any).
    pub const LAST_TASK: u8 = 10;
    /// `/v1/tasks/{raw}`.
    pub const TASK_RAW: u8 = 11;
    /// `/v1/{raw}`.
    pub const V1_RAW: u8 = 12;
    /// `{raw}` (with a leading `/` added if missing).
    pub const RAW: u8 = 13;
    /// `/health` (not ours).
    pub const HEALTH: u8 = 14;
    /// `/v1x/models` (not ours).
    pub const V1X: u8 = 15;
}

/// Reads the input; missing bytes are zeros.
struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((first, rest)) => {
                self.data = rest;
                *first
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }

    fn short(&mut self) -> Vec<u8> {
        let n = usize::from(self.byte());
        self.take(n)
    }

    fn rest(&mut self) -> Vec<u8> {
        self.take(self.data.len())
    }
}

fn takes_raw_path(path: u8) -> bool {
    matches!(path % PATHS as u8, 11..=13 | 16..=19)
}

/// Decodes the input into requests (never fails: every byte string is some requests).
pub fn decode(data: &[u8]) -> Vec<FuzzRequest> {
    let mut r = Reader { data };
    let count = 1 + usize::from(r.byte() % 3);
    let mut requests = Vec::with_capacity(count);
    for i in 0..count {
        let method = r.byte() % 8;
        let raw_method = if method == method::RAW { r.short() } else { vec![] };
        let path = r.byte() % PATHS as u8;
        let raw_path = if takes_raw_path(path) { r.short() } else { vec![] };
        let flags = r.byte();
        let mut headers = Vec::new();
        for _ in 0..(flags >> 3) & 7 {
            let name = r.byte() % HEADER_NAMES.len() as u8;
            let value = r.byte() % HEADER_VALUES.len() as u8;
            let raw_name = usize::from(name) == HEADER_NAMES.len() - 1;
            let raw_value = usize::from(value) == HEADER_VALUES.len() - 1;
            let raw = if raw_name || raw_value { r.short() } else { vec![] };
            headers.push((name, value, raw));
        }
        let body = if i + 1 == count {
            r.rest()
        } else {
            let len = u16::from_le_bytes([r.byte(), r.byte()]);
            r.take(usize::from(len))
        };
        requests.push(FuzzRequest {
            method,
            raw_method,
            path,
            raw_path,
            no_auth: flags & 1 != 0,
            no_json: flags & 2 != 0,
            content_length: flags & 4 != 0,
            body_end: BodyEnd::ALL[usize::from(flags >> 6)],
            headers,
            body,
        });
    }
    requests
}

/// Writes requests in the input format ([`decode`] reads them back); for seeds.
pub fn encode(requests: &[FuzzRequest]) -> Vec<u8> {
    let mut out = vec![u8::try_from(requests.len().clamp(1, 3) - 1).unwrap_or(0)];
    let short = |out: &mut Vec<u8>, bytes: &[u8]| {
        let bytes = &bytes[..bytes.len().min(255)];
        out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(bytes);
    };
    for (i, req) in requests.iter().take(3).enumerate() {
        out.push(req.method);
        if req.method == method::RAW {
            short(&mut out, &req.raw_method);
        }
        out.push(req.path);
        if takes_raw_path(req.path) {
            short(&mut out, &req.raw_path);
        }
        let end = BodyEnd::ALL.iter().position(|e| *e == req.body_end).unwrap_or(0);
        let flags = u8::from(req.no_auth)
            | u8::from(req.no_json) << 1
            | u8::from(req.content_length) << 2
            | (u8::try_from(req.headers.len().min(7)).unwrap_or(0)) << 3
            | u8::try_from(end).unwrap_or(0) << 6;
        out.push(flags);
        for (name, value, raw) in req.headers.iter().take(7) {
            out.extend([*name, *value]);
            let raw_name = usize::from(*name) == HEADER_NAMES.len() - 1;
            let raw_value = usize::from(*value) == HEADER_VALUES.len() - 1;
            if raw_name || raw_value {
                short(&mut out, raw);
            }
        }
        if i + 1 == requests.len().min(3) {
            out.extend_from_slice(&req.body);
        } else {
            let body = &req.body[..req.body.len().min(usize::from(u16::MAX))];
            out.extend(u16::try_from(body.len()).unwrap_or(u16::MAX).to_le_bytes());
            out.extend_from_slice(body);
        }
    }
    out
}

/// The path and query of path index `index` (see [`path`]).
fn path_for(index: u8, raw: &[u8], last_task: Option<&str>) -> Vec<u8> {
    let with = |prefix: &str| [prefix.as_bytes(), raw].concat();
    match index {
        path::CHAT => b"/v1/chat/completions".to_vec(),
        1..=8 => Endpoint::ALL[usize::from(index - path::DEDICATED)].path().as_bytes().to_vec(),
        path::MODELS => b"/v1/models".to_vec(),
        path::LAST_TASK => match last_task {
            Some(id) => format!("/v1/tasks/{id}").into_bytes(),
            None => format!("/v1/tasks/{}", TaskId::new(1_767_225_600_000, 1)).into_bytes(),
        },
        path::TASK_RAW => with("/v1/tasks/"),
        path::V1_RAW => with("/v1/"),
        path::RAW if raw.first() == Some(&b'/') => raw.to_vec(),
        path::RAW => with("/"),
        path::HEALTH => b"/health".to_vec(),
        path::V1X => b"/v1x/models".to_vec(),
        16 => with("/v1/models?"),
        17 => with("/v2/"),
        18 => with("/api/"),
        _ => with("/V1/"),
    }
}

fn method_for(index: u8, raw: &[u8]) -> Method {
    match index {
        method::POST => Method::POST,
        method::GET => Method::GET,
        method::HEAD => Method::HEAD,
        method::PUT => Method::PUT,
        method::DELETE => Method::DELETE,
        5 => Method::OPTIONS,
        6 => Method::PATCH,
        _ => Method::from_bytes(raw).unwrap_or(Method::POST),
    }
}

/// The request to send; `None` when its URI does not parse (such a request never reaches a
/// tower service: the HTTP server refuses it).
fn build(req: &FuzzRequest, last_task: Option<&str>) -> Option<Request<FuzzBody>> {
    let uri = Uri::try_from(path_for(req.path, &req.raw_path, last_task)).ok()?;
    let mut builder = Request::builder().method(method_for(req.method, &req.raw_method)).uri(uri);
    if !req.no_auth {
        builder = builder.header("authorization", format!("Bearer {KEY}"));
    }
    if !req.no_json {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    if req.content_length {
        builder = builder.header("content-length", req.body.len());
    }
    for (name, value, raw) in &req.headers {
        let name = match HEADER_NAMES[usize::from(*name)] {
            "" => HeaderName::from_bytes(raw).ok(),
            known => Some(HeaderName::from_static(known)),
        };
        let value = match HEADER_VALUES[usize::from(*value)] {
            "{len}" => Some(HeaderValue::from(req.body.len())),
            "{len+1}" => Some(HeaderValue::from(req.body.len() + 1)),
            "" if usize::from(*value) == HEADER_VALUES.len() - 1 => {
                HeaderValue::from_bytes(raw).ok()
            }
            known => HeaderValue::from_str(known).ok(),
        };
        if let (Some(name), Some(value)) = (name, value) {
            builder = builder.header(name, value);
        }
    }
    builder.body(FuzzBody::new(&req.body, req.body_end)).ok()
}

// === the request body ===

/// A request body delivered as [`BodyEnd`] says.
#[derive(Debug)]
pub struct FuzzBody {
    frames: VecDeque<Bytes>,
    end: BodyEnd,
    len: u64,
}

/// The error of a [`BodyEnd::Error`] body.
#[derive(Debug)]
pub struct BrokenBody;

impl fmt::Display for BrokenBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the client's connection broke")
    }
}

impl std::error::Error for BrokenBody {}

impl FuzzBody {
    fn new(body: &[u8], end: BodyEnd) -> Self {
        let body = Bytes::copy_from_slice(body);
        let mut frames = VecDeque::new();
        if end == BodyEnd::Chunked && body.len() >= 3 {
            let third = body.len() / 3;
            frames.extend([
                body.slice(..third),
                body.slice(third..2 * third),
                body.slice(2 * third..),
            ]);
        } else if !body.is_empty() {
            frames.push_back(body.clone());
        }
        FuzzBody { frames, end, len: body.len() as u64 }
    }
}

impl Body for FuzzBody {
    type Data = Bytes;
    type Error = BrokenBody;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BrokenBody>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        match self.end {
            BodyEnd::Whole | BodyEnd::Chunked => Poll::Ready(None),
            BodyEnd::Error => {
                self.end = BodyEnd::Whole;
                Poll::Ready(Some(Err(BrokenBody)))
            }
            // Never wakes: only a timer can end the wait.
            BodyEnd::Stall => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && matches!(self.end, BodyEnd::Whole | BodyEnd::Chunked)
    }

    fn size_hint(&self) -> SizeHint {
        match self.end {
            BodyEnd::Whole | BodyEnd::Chunked => SizeHint::with_exact(self.len),
            BodyEnd::Error | BodyEnd::Stall => SizeHint::default(),
        }
    }
}

// === the inner service ===

/// What the inner service received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// The service behind the layer: records what reaches it and answers `200` with
/// [`INNER_MARK`].
#[derive(Clone, Default)]
struct Inner {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Inner {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Service<Request<FuzzBody>> for Inner {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<FuzzBody>) -> Self::Future {
        let seen = self.seen.clone();
        Box::pin(async move {
            let (parts, mut body) = req.into_parts();
            let mut bytes = Vec::new();
            // Read what the client sends; a stalled body is read until it stalls.
            while let Ok(Some(Ok(frame))) =
                tokio::time::timeout(INNER_READ_WAIT, body.frame()).await
            {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
            }
            seen.lock().unwrap_or_else(PoisonError::into_inner).push(Seen {
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body: bytes,
            });
            let mut response = Response::new(Full::from("inner"));
            response.headers_mut().insert(INNER_MARK, HeaderValue::from_static("1"));
            Ok(response)
        })
    }
}

// === the world ===

/// The state machine's settings for fuzzing: the simulator everywhere, short deadlines (so a
/// stalled task ends in a few virtual minutes, not fifty).
fn machine_config() -> MachineConfig {
    MachineConfig {
        upstream: UpstreamConfig::at_origin(SIM),
        image_timeout_ms: 60_000,
        video_timeout_ms: 120_000,
        ..MachineConfig::default()
    }
}

/// Small media limits, so the size checks are reachable with small inputs.
fn media_limits() -> Limits {
    Limits {
        max_image_bytes: 4096,
        max_video_bytes: 4096,
        max_prompt_bytes: 2048,
        max_url_bytes: 512,
    }
}

type Gateway = crate::Sora2ApiService<Inner>;

fn world() -> Option<(Gateway, Inner, SimUpstream)> {
    let sim_config = SimConfig {
        start_ms: clock::now_ms(),
        media_origin: format!("{SIM}/media"),
        // A remix of a well-formed but unknown share id is a legitimate upstream refusal
        // (a 502 without any marker); accepting any id keeps "5xx only after a scripted
        // fault" a sharp invariant.
        accept_any_remix_target: true,
        ..SimConfig::fast()
    };
    let sim = SimUpstream::new(Sim::new(sim_config));
    let account = sim.with_sim(|s| s.add_account(AccountSpec::pro("fuzz@example.com")));
    let mut pool = TokenPool::new(PoolConfig::default());
    pool.add(account.token_record(true));
    let layer = Sora2ApiLayer::builder()
        .upstream(Arc::new(sim.clone()))
        .task_store(Arc::new(MemoryStore::new()))
        .token_pool(pool)
        .engine_config(EngineConfig { machine: machine_config(), ..EngineConfig::default() })
        .api_keys(ApiKeys::new([KEY]))
        .media_limits(media_limits())
        .max_body_bytes(MAX_BODY_BYTES)
        .blocking_wait(BLOCKING_WAIT)
        .build()
        .ok()?;
    let inner = Inner::default();
    Some((layer.layer(inner.clone()), inner, sim))
}

// === the entry point ===

/// Arbitrary HTTP requests through the whole service (see the [module docs](self) for the
/// input format). Invariants, checked for every request:
///
/// - nothing panics, and the response and its whole body arrive within a virtual hour;
/// - a path not under `/v1` reaches the inner service untouched (method, URI, headers and
///   body as sent) and its answer comes back as it was; a path under `/v1` never reaches it;
/// - every answer of ours is `200`/`202` JSON that parses, a `200` SSE stream that is
///   well-formed (only `data:` events and comments) and ends with exactly one
///   `data: [DONE]` with nothing after it, or an error: the OpenAI envelope with all four of
///   `message`, `type`, `param`, `code`, and a 4xx status, or 502/503/504 only after the
///   input scripted an upstream fault (a `#` marker in a body); never a 500;
/// - stream error events carry the same envelope (`server_error` ones only after a fault);
/// - at the end, once every task has had time to finish: no task is left running, no token
///   slot or pool waiter is left behind, and every task id an answer named (`X-Task-Id`)
///   answers `GET /v1/tasks/{id}` as completed or failed.
pub fn http_request(data: &[u8]) {
    let requests = decode(data);
    #[expect(
        clippy::expect_used,
        reason = "a runtime that cannot be built is a broken fuzzing host, not a finding"
    )]
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(run(requests));
}

async fn run(requests: Vec<FuzzRequest>) {
    let Some((mut service, inner, _sim)) = world() else {
        // `build()` refusing the fuzzing settings would be a bug in this module.
        unreachable_world();
        return;
    };
    let mut last_task: Option<String> = None;
    let mut tasks = Vec::new();
    let mut faults = false;
    for req in &requests {
        faults |= scripts_a_fault(&req.body);
        let Some(request) = build(req, last_task.as_deref()) else { continue };
        let sent = Seen {
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            body: req.body.clone(),
        };
        let before = inner.seen().len();
        let outcome = tokio::time::timeout(REQUEST_BOUND, send(&mut service, request)).await;
        let Ok((status, headers, body)) = outcome else {
            hang(&sent);
            return;
        };
        let seen = inner.seen();
        if under_v1(sent.uri.path()) {
            assert_eq!(seen.len(), before, "{} reached the inner service", sent.uri);
            check_ours(status, &headers, &body, faults, &sent);
            if let Some(id) = headers.get("x-task-id").and_then(|v| v.to_str().ok()) {
                last_task = Some(id.to_owned());
                tasks.push(id.to_owned());
            }
        } else {
            assert_eq!(seen.len(), before + 1, "{} did not reach the inner service", sent.uri);
            assert_eq!(seen.last(), Some(&sent), "the inner service saw another request");
            assert_eq!(status, StatusCode::OK, "{}: the inner answer changed", sent.uri);
            assert!(headers.contains_key(INNER_MARK), "{}: not the inner answer", sent.uri);
            assert_eq!(&body[..], b"inner", "{}: the inner body changed", sent.uri);
        }
    }
    // Let every task run to its end (deadlines are minutes of virtual time), then nothing
    // may be left: no live task, no token slot, no waiter.
    let engine = service.engine().clone();
    let deadline = tokio::time::Instant::now() + REQUEST_BOUND;
    while engine.live_tasks() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    assert_eq!(engine.live_tasks(), 0, "a task was still running after a virtual hour");
    let (in_flight, waiting) = engine.with_pool(|p| (p.total_in_flight(), p.waiting()));
    assert_eq!((in_flight, waiting), (0, 0), "token slots or waiters left behind");
    // Every task a client was told about answers, finished.
    for id in tasks {
        let request = Request::get(format!("/v1/tasks/{id}"))
            .header("authorization", format!("Bearer {KEY}"))
            .body(FuzzBody::new(b"", BodyEnd::Whole));
        let Ok(request) = request else { continue };
        let (status, _, body) = send(&mut service, request).await;
        let view: Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "task {id} does not answer: {view}");
        let ended = view["status"] == "completed" || view["status"] == "failed";
        assert!(ended, "task {id} has not ended after its deadline: {view}");
    }
}

#[expect(clippy::panic, reason = "the fuzz target's failure report")]
fn unreachable_world() {
    panic!("the fuzzing layer's settings were refused");
}

#[expect(clippy::panic, reason = "the fuzz target's failure report")]
fn hang(sent: &Seen) {
    panic!("no complete answer within {REQUEST_BOUND:?} (virtual) to {} {}", sent.method, sent.uri);
}

/// Sends one request (waiting for readiness like a server would) and collects the answer.
async fn send(service: &mut Gateway, request: Request<FuzzBody>) -> (StatusCode, HeaderMap, Bytes) {
    let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
    let response: Response<ResponseBody<Full<Bytes>>> = match ready {
        Ok(()) => match service.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    (parts.status, parts.headers, bytes)
}

/// Whether the path is the client API's (`/v1` or below it).
fn under_v1(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// Whether a body can script an upstream fault: a `#` marker in a prompt, written as is or
/// as a JSON escape.
fn scripts_a_fault(body: &[u8]) -> bool {
    body.contains(&b'#') || body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0023"))
}

/// An answer of the gateway's own.
fn check_ours(status: StatusCode, headers: &HeaderMap, body: &[u8], faults: bool, sent: &Seen) {
    let what = format!("{} {} -> {status}", sent.method, sent.uri);
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type == "text/event-stream" {
        assert_eq!(status, StatusCode::OK, "{what}: a stream with another status");
        assert!(headers.contains_key("x-task-id"), "{what}: a stream without X-Task-Id");
        check_sse(body, faults, &what);
        return;
    }
    assert_eq!(content_type, "application/json", "{what}: content type {content_type:?}");
    let json: Result<Value, _> = serde_json::from_slice(body);
    assert!(json.is_ok(), "{what}: not JSON: {}", String::from_utf8_lossy(body));
    let json = json.unwrap_or_default();
    match status.as_u16() {
        200 | 202 => {
            assert!(json.get("error").is_none(), "{what}: an error with a success");
            check_task_header(headers, &json, &what);
        }
        400..=499 => check_envelope(&json, &what),
        502..=504 if faults => check_envelope(&json, &what),
        _ => failed(&format!("{what} without a scripted upstream fault: {json}")),
    }
}

/// A generation's answer (a chat completion, or the acknowledgement of a task) names its
/// task in `X-Task-Id`.
fn check_task_header(headers: &HeaderMap, json: &Value, what: &str) {
    let header = headers.get("x-task-id").and_then(|v| v.to_str().ok());
    if json["object"] == "chat.completion" {
        let id = json["id"].as_str().and_then(|id| id.strip_prefix("chatcmpl-"));
        assert!(id.is_some() && id == header, "{what}: id {id:?}, X-Task-Id {header:?}");
    } else if json.get("message").is_some() {
        let id = json["task_id"].as_str();
        assert!(id.is_some() && id == header, "{what}: task_id {id:?}, X-Task-Id {header:?}");
    }
}

#[expect(clippy::panic, reason = "the fuzz target's failure report")]
fn failed(message: &str) {
    panic!("{message}");
}

/// `{"error":{"message","type","param","code"}}`: all four keys, a non-empty message and a
/// type, `param` and `code` strings or null.
fn check_envelope(json: &Value, what: &str) {
    let error = json.get("error").and_then(Value::as_object);
    assert!(error.is_some(), "{what}: no error envelope: {json}");
    let error = error.cloned().unwrap_or_default();
    assert!(
        error.get("message").and_then(Value::as_str).is_some_and(|m| !m.is_empty()),
        "{what}: no message: {json}"
    );
    assert!(
        error.get("type").and_then(Value::as_str).is_some_and(|t| !t.is_empty()),
        "{what}: no type: {json}"
    );
    for key in ["param", "code"] {
        assert!(
            error.get(key).is_some_and(|v| v.is_null() || v.is_string()),
            "{what}: {key} missing or not a string or null: {json}"
        );
    }
}

/// A well-formed event stream: events separated by blank lines, each a comment or one
/// `data: ` line (JSON, or the final `[DONE]`), ending with exactly one `data: [DONE]`; the
/// event just before it (comments aside) is the one terminal event, the result (a chunk with
/// a `finish_reason`) or an error, and nothing but comments comes between them.
fn check_sse(body: &[u8], faults: bool, what: &str) {
    let text = std::str::from_utf8(body);
    assert!(text.is_ok(), "{what}: a stream that is not UTF-8");
    let text = text.unwrap_or_default();
    assert!(text.ends_with("data: [DONE]\n\n"), "{what}: does not end with [DONE]: {text}");
    assert_eq!(text.matches("data: [DONE]").count(), 1, "{what}: [DONE] not once: {text}");
    let events = text.strip_suffix("\n\n").unwrap_or_default().split("\n\n");
    let mut ended = false;
    for event in events {
        if event.starts_with(':') {
            assert!(!event.contains('\n'), "{what}: a comment over lines: {event:?}");
            continue;
        }
        let data = event.strip_prefix("data: ");
        assert!(data.is_some(), "{what}: not a data event: {event:?}");
        let data = data.unwrap_or_default();
        assert!(!data.contains('\n'), "{what}: an event over lines: {event:?}");
        if data == "[DONE]" {
            assert!(ended, "{what}: [DONE] without a result or an error: {text}");
            continue;
        }
        assert!(!ended, "{what}: an event after the terminal one: {text}");
        let json: Result<Value, _> = serde_json::from_str(data);
        assert!(json.is_ok(), "{what}: an event that is not JSON: {data}");
        let json = json.unwrap_or_default();
        if json.get("error").is_some() {
            check_envelope(&json, what);
            let server = json["error"]["type"] == "server_error";
            assert!(!server || faults, "{what}: a server error without a fault: {json}");
            ended = true;
        } else {
            assert_eq!(json["object"], "chat.completion.chunk", "{what}: {json}");
            ended = !json["choices"][0]["finish_reason"].is_null();
        }
    }
}

// === seeds ===

/// Runs [`http_request`] over the committed seeds (`fuzz/seeds/http_service/`) and
/// deterministic mutations of them, like the core's seed tests, so `cargo test` catches a
/// broken invariant without a fuzzer.
#[cfg(test)]
mod seed_tests {
    use std::path::PathBuf;

    use super::*;

    fn seed_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/http_service")
    }

    fn seeds() -> Vec<Vec<u8>> {
        let dir = seed_dir();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds in {}", dir.display());
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    #[test]
    fn http_request_over_the_seeds() {
        for seed in seeds() {
            // A few prefixes and 8 flips (each input runs a whole gateway; the core's take 64).
            for input in sora2api_core::fuzzing::mutations(&seed, (seed.len() / 4).max(1), 8) {
                http_request(&input);
            }
        }
    }

    #[test]
    fn decode_reads_what_encode_writes() {
        for requests in super::seed_set::all() {
            assert_eq!(decode(&encode(&requests)), requests);
        }
    }

    /// Every seed of [`super::seed_set`] is committed under `fuzz/seeds/http_service/`. With
    /// `SORA2API_WRITE_SEEDS=1` in the environment it writes them there instead (after a
    /// change to the seed set).
    #[test]
    fn the_seed_set_is_committed() {
        if std::env::var_os("SORA2API_WRITE_SEEDS").is_some() {
            let dir = seed_dir();
            std::fs::create_dir_all(&dir).unwrap();
            for (i, requests) in super::seed_set::all().iter().enumerate() {
                std::fs::write(dir.join(format!("seed{i:02}.bin")), encode(requests)).unwrap();
            }
        }
        let committed = seeds();
        for requests in super::seed_set::all() {
            let seed = encode(&requests);
            assert!(
                committed.contains(&seed),
                "not committed (SORA2API_WRITE_SEEDS=1 writes them): {requests:?}"
            );
        }
    }
}

/// The requests the committed seeds hold: every endpoint in the three modes, the reads,
/// scripted upstream faults, and bad requests.
#[cfg(test)]
mod seed_set {
    use super::*;

    const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    const MP4: &str = "data:video/mp4;base64,AAAAIGZ0eXBpc29tAAACAGlzb21pc28yYXZjMW1wNDE=";

    fn post(path: u8, body: Value) -> FuzzRequest {
        FuzzRequest::new(method::POST, path, body.to_string())
    }

    fn get(path: u8) -> FuzzRequest {
        FuzzRequest::new(method::GET, path, "")
    }

    fn with_mode(mut body: Value, mode: &str) -> Value {
        if let (Some(map), false) = (body.as_object_mut(), mode.is_empty()) {
            map.insert(mode.to_owned(), Value::Bool(true));
        }
        body
    }

    pub(super) fn all() -> Vec<Vec<FuzzRequest>> {
        use serde_json::json;
        let chat = |model: &str, content: Value| json!({"model": model, "messages": [{"role": "user", "content": content}]});
        let generations: Vec<(u8, Value)> = vec![
            (path::CHAT, chat("sora2-landscape-10s", json!("{anime}A cat running"))),
            (path::CHAT, chat("gpt-image", json!("A kitten"))),
            (
                path::CHAT,
                chat(
                    "sora2-portrait-10s",
                    json!([{"type": "text", "text": "The cat jumps"}, {"type": "image_url", "image_url": {"url": PNG}}]),
                ),
            ),
            (path::DEDICATED, json!({"prompt": "A cute kitten", "model": "gpt-image"})),
            (path::DEDICATED + 1, json!({"prompt": "As an oil painting", "image": PNG})),
            (
                path::DEDICATED + 2,
                json!({"prompt": "A cat running on the grass", "model": "sora2-landscape-10s", "style": "anime"}),
            ),
            (path::DEDICATED + 3, json!({"prompt": "The cat jumps", "image": PNG})),
            (
                path::DEDICATED + 4,
                json!({"prompt": "Ink painting style", "remix_target_id": "s_68e3a06dcd888191b150971da152c1f5"}),
            ),
            (
                path::DEDICATED + 5,
                json!({"prompt": "[5.0s]The cat jumps out of the plane [5.0s]The cat lands [10.0s]The cat runs across the field"}),
            ),
            (path::DEDICATED + 6, json!({"video": MP4})),
            (path::DEDICATED + 7, json!({"prompt": "The character dances", "video": MP4})),
        ];
        let mut seeds = Vec::new();
        for (path, body) in &generations {
            for mode in ["stream", "", "async_mode"] {
                seeds.push(vec![post(*path, with_mode(body.clone(), mode))]);
            }
        }
        // Reads: the models, a task just created, an unknown task, a malformed id.
        seeds.push(vec![get(path::MODELS)]);
        seeds.push(vec![
            post(path::DEDICATED + 2, json!({"prompt": "A cat", "async_mode": true})),
            get(path::LAST_TASK),
        ]);
        seeds.push(vec![
            post(path::DEDICATED, json!({"prompt": "A cat", "stream": true})),
            get(path::LAST_TASK),
            get(path::MODELS),
        ]);
        seeds.push(vec![get(path::LAST_TASK)]);
        let mut bad_id = get(path::TASK_RAW);
        bad_id.raw_path = b"not-an-id".to_vec();
        seeds.push(vec![bad_id]);
        // Scripted upstream faults, in each mode.
        for (path, prompt, mode) in [
            (path::DEDICATED + 2, "A cat #fail=500x9", "stream"),
            (path::DEDICATED + 2, "A cat #fail=429", ""),
            (path::DEDICATED + 2, "A cat #policy", "stream"),
            (path::DEDICATED + 2, "A cat #policy", ""),
            (path::DEDICATED, "A cat #policy", "stream"),
            (path::DEDICATED + 2, "A cat #hang", "stream"),
            (path::DEDICATED + 2, "A cat #garbage x3", ""),
            (path::DEDICATED + 2, "A cat #heavyx9", "async_mode"),
            (path::DEDICATED + 2, "A cat #slow=600000", ""),
            (path::DEDICATED, "A cat #fail=401", "stream"),
            (path::DEDICATED + 2, "A cat #queue=3 #nourl", "stream"),
        ] {
            seeds.push(vec![post(path, with_mode(json!({"prompt": prompt}), mode))]);
        }
        seeds.push(vec![
            post(
                path::CHAT,
                with_mode(chat("sora2-landscape-10s", json!("A cat #fail=429x9")), "stream"),
            ),
            post(path::DEDICATED, json!({"prompt": "A dog"})),
        ]);
        // Bad requests.
        let body = json!({"prompt": "A cat"});
        let mut no_key = post(path::DEDICATED, body.clone());
        no_key.no_auth = true;
        let mut wrong_key = post(path::DEDICATED, body.clone());
        wrong_key.no_auth = true;
        wrong_key.headers.push((0, 1, vec![]));
        let mut two_keys = post(path::DEDICATED, body.clone());
        two_keys.headers.push((0, 0, vec![]));
        let mut no_json = post(path::DEDICATED, body.clone());
        no_json.no_json = true;
        let mut text = post(path::DEDICATED, body.clone());
        text.no_json = true;
        text.headers.push((1, 7, vec![]));
        let mut too_long = post(path::DEDICATED, body.clone());
        too_long.headers.push((2, 10, vec![]));
        let mut lying = post(path::DEDICATED, body.clone());
        lying.headers.push((2, 12, vec![]));
        let mut stalled = post(path::DEDICATED, body.clone());
        stalled.body_end = BodyEnd::Stall;
        let mut broken = post(path::CHAT, chat("gpt-image", json!("A cat")));
        broken.body_end = BodyEnd::Error;
        let mut chunked = post(path::CHAT, with_mode(chat("gpt-image", json!("A cat")), "stream"));
        chunked.body_end = BodyEnd::Chunked;
        chunked.content_length = true;
        let mut raw_method = get(path::MODELS);
        raw_method.method = method::RAW;
        raw_method.raw_method = b"BREW".to_vec();
        let mut unknown = get(path::V1_RAW);
        unknown.raw_path = b"images?x=1".to_vec();
        let mut query = get(16);
        query.raw_path = b"limit=5&x=%00".to_vec();
        let mut passthrough = FuzzRequest::new(method::PUT, path::HEALTH, "{\"any\": \"body\"}");
        passthrough.headers.push((7, 15, b"x-custom".to_vec()));
        let mut stalled_inner = FuzzRequest::new(method::POST, path::V1X, "partial");
        stalled_inner.body_end = BodyEnd::Stall;
        let mut raw = get(path::RAW);
        raw.raw_path = b"/v1".to_vec();
        for bad in [
            no_key,
            wrong_key,
            two_keys,
            no_json,
            text,
            too_long,
            lying,
            stalled,
            broken,
            chunked,
            raw_method,
            unknown,
            query,
            passthrough,
            stalled_inner,
            raw,
            FuzzRequest::new(method::POST, path::DEDICATED, "{\"prompt\": "),
            FuzzRequest::new(method::POST, path::DEDICATED + 5, "{\"prompt\": \"no shots\"}"),
            FuzzRequest::new(
                method::POST,
                path::DEDICATED + 4,
                "{\"prompt\": \"x\", \"remix_target_id\": \"bad\"}",
            ),
            FuzzRequest::new(
                method::POST,
                path::DEDICATED,
                "{\"prompt\": \"x\", \"model\": \"nope\"}",
            ),
            FuzzRequest::new(method::GET, path::CHAT, ""),
            FuzzRequest::new(method::DELETE, path::MODELS, ""),
            FuzzRequest::new(method::HEAD, path::DEDICATED, ""),
        ] {
            seeds.push(vec![bad]);
        }
        seeds
    }
}
