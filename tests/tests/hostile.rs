//! Hostile input (issue 5 item 2): every request of the corpus in `tests/hostile/` is sent
//! raw over TCP to one gateway served by the proxy's own `serve_with` (hyper http1 with the
//! header read timeout), and must get a 4xx, never a 5xx, a hang or a panic; and slow clients
//! trickling headers or a body are cut off without holding up anyone else.
//!
//! What a corpus file holds and how its expectation is written: `tests/hostile/README.md`.
//!
//! Hyper parses the request line and headers before the service sees anything. What it
//! refuses (a bad chunk size, two different `Content-Length`s, a header without a colon, an
//! oversized header block) it answers itself: a bodiless 400 (or 431/414), or it just closes.
//! Such a file says `# hyper-may-refuse`; for it a bodiless 4xx or a close is accepted too,
//! but never a 5xx. Every answer of the gateway itself must be the OpenAI envelope.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sora2api_core::sim::AccountSpec;
use sora2api_proxy::server::{not_found, serve_with, ServeConfig};
use sora2api_tower::sim_server::SimHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

use common::*;

/// The corpus gateway's body limit: small, so the "over the limit" files stay small.
const MAX_BODY: usize = 256 << 10;

/// How long a corpus request may take to be answered (or closed) before it counts as a hang.
const NO_HANG: Duration = Duration::from_secs(5);

/// A running gateway served by `sora2api_proxy::server::serve_with`.
struct Served {
    addr: SocketAddr,
    client: TestClient,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// A gateway over `sim` (one Pro account) with these body and header timeouts.
    async fn start(sim: &SimHandle, body_timeout: Duration, header_timeout: Duration) -> Served {
        let account = sim.add_account(AccountSpec::pro("ada@example.com"));
        let layer = builder(sim, pool_of(&[(&account, true)], 2_000))
            .max_body_bytes(MAX_BODY)
            .body_timeout(body_timeout)
            .build()
            .unwrap();
        let service = tower::Layer::layer(&layer, not_found());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let config =
            ServeConfig::new(Duration::from_millis(200)).header_read_timeout(header_timeout);
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            let served = serve_with(listener, service, shutdown, config).await;
            drop(layer);
            served
        });
        Served { addr, client: TestClient::new(addr), stop: Some(stop), server }
    }

    /// `GET /v1/models` answers 200 on a fresh connection.
    async fn assert_alive(&self, after: &str) {
        let reply = self.client.get("/v1/models").await;
        assert_eq!(reply.status, 200, "the gateway stopped answering after {after}: {reply:?}");
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(LIMIT, self.server).await.unwrap().unwrap().unwrap();
    }
}

// === the corpus ===

/// One corpus file: its name, expectation and the raw request (directives expanded).
struct Case {
    name: String,
    category: String,
    expect: Vec<u16>,
    hyper_may_refuse: bool,
    raw: Vec<u8>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hostile")
}

fn load_corpus() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    paths.sort();
    paths.iter().map(|p| parse_case(p)).collect()
}

fn parse_case(path: &Path) -> Case {
    let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
    let category = name.split('-').nth(1).unwrap_or_else(|| panic!("{name}: no category")).into();
    let data = std::fs::read(path).unwrap();
    let mut rest = &data[..];
    let mut expect = Vec::new();
    let mut hyper_may_refuse = false;
    while rest.starts_with(b"# ") {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or_else(|| panic!("{name}"));
        let line = std::str::from_utf8(&rest[2..end]).unwrap().trim();
        if let Some(codes) = line.strip_prefix("expect:") {
            expect = codes.split_whitespace().map(|c| c.parse().unwrap()).collect();
        } else if line == "hyper-may-refuse" {
            hyper_may_refuse = true;
        }
        rest = &rest[end + 1..];
    }
    assert!(!expect.is_empty(), "{name}: no `# expect:` line");
    assert!(expect.iter().all(|c| (400..500).contains(c)), "{name}: expects only 4xx");
    Case { name, category, expect, hyper_may_refuse, raw: expand(rest) }
}

/// Expands `{{repeat N TEXT}}` (innermost first, so they nest), then `{{len}}`: the length
/// of the body (everything after the first blank line).
fn expand(raw: &[u8]) -> Vec<u8> {
    const LEN: &[u8] = b"{{len}}";
    const HOLE: &[u8] = b"\0len\0";
    let mut out = raw.to_vec();
    let len_at = find(&out, LEN, 0);
    if let Some(at) = len_at {
        out.splice(at..at + LEN.len(), HOLE.iter().copied());
    }
    while let Some(first) = find(&out, b"{{repeat ", 0) {
        let close = find(&out, b"}}", first).unwrap_or_else(|| panic!("an unclosed {{repeat"));
        let open = rfind(&out[..close], b"{{repeat ").unwrap();
        let inner = &out[open + 9..close];
        let space = inner.iter().position(|&b| b == b' ').unwrap();
        let n: usize = std::str::from_utf8(&inner[..space]).unwrap().parse().unwrap();
        let text = inner[space + 1..].repeat(n);
        out.splice(open..close + 2, text);
    }
    if let Some(at) = find(&out, HOLE, 0) {
        let body_start = find(&out, b"\r\n\r\n", 0).unwrap() + 4;
        let len = (out.len() - body_start).to_string();
        out.splice(at..at + HOLE.len(), len.into_bytes());
    }
    out
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// A response read off the wire.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends `raw` on a new connection and reads until the first final response is complete
/// or the server closes: the responses read (1xx skipped; more than one if the server
/// answered pipelined requests at once). `Err` on a hang.
///
/// The connection is not half-closed: hyper (without `half_close`) takes a read EOF as the
/// client leaving and drops the request.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Result<Vec<RawResponse>, String> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let raw = raw.to_vec();
    // The server may answer (and close) before it has read everything: a failed write is
    // part of the game.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&raw).await;
        // Kept open (not half-closed) until the exchange is over.
        std::future::pending::<()>().await;
        drop(write);
    });
    let mut wire = Vec::new();
    let read_all = async {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => wire.extend_from_slice(&buf[..n]),
            }
            if parse_responses(&wire).is_ok_and(|r| !r.is_empty()) {
                break;
            }
        }
    };
    let finished = tokio::time::timeout(NO_HANG, read_all).await;
    writer.abort();
    if finished.is_err() {
        return Err(format!(
            "no answer within {NO_HANG:?}; got {:?}",
            String::from_utf8_lossy(&wire[..wire.len().min(300)])
        ));
    }
    parse_responses(&wire)
}

fn parse_responses(mut wire: &[u8]) -> Result<Vec<RawResponse>, String> {
    let mut responses = Vec::new();
    while !wire.is_empty() {
        let head_end = find(wire, b"\r\n\r\n", 0)
            .ok_or_else(|| format!("incomplete head: {:?}", String::from_utf8_lossy(wire)))?;
        let head = std::str::from_utf8(&wire[..head_end]).map_err(|e| e.to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        wire = &wire[head_end + 4..];
        if (100..200).contains(&status) {
            continue;
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
        if wire.len() < len {
            return Err(format!("incomplete body: {} of {len} bytes", wire.len()));
        }
        responses.push(RawResponse { status, headers, body: wire[..len].to_vec() });
        wire = &wire[len..];
    }
    Ok(responses)
}

/// Why `response` is not the OpenAI envelope with a message, if it is not.
fn envelope_problem(response: &RawResponse) -> Option<String> {
    if response.header("content-type") != Some("application/json") {
        return Some(format!("content-type {:?}", response.header("content-type")));
    }
    let body: Value = match serde_json::from_slice(&response.body) {
        Ok(body) => body,
        Err(e) => return Some(format!("not JSON ({e})")),
    };
    let Some(error) = body.get("error").and_then(Value::as_object) else {
        return Some(format!("no error object: {body}"));
    };
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["code", "message", "param", "type"] || body.as_object().unwrap().len() != 1 {
        return Some(format!("not exactly the four keys: {body}"));
    }
    if error["message"].as_str().is_none_or(|m| m.trim().is_empty()) {
        return Some(format!("empty message: {body}"));
    }
    if error["type"].as_str().is_none_or(str::is_empty) {
        return Some(format!("no type: {body}"));
    }
    None
}

/// What one file got, as a row of the summary: the status (or `closed`) and whether hyper
/// answered it itself.
fn judge(case: &Case, responses: &[RawResponse]) -> Result<String, String> {
    for response in responses {
        if response.status >= 500 {
            return Err(format!("a {} on the connection: {response:?}", response.status));
        }
    }
    let Some(first) = responses.first() else {
        return if case.hyper_may_refuse {
            Ok("closed (hyper)".to_owned())
        } else {
            Err("closed without an answer".to_owned())
        };
    };
    let problem = envelope_problem(first);
    if case.hyper_may_refuse && first.body.is_empty() && (400..500).contains(&first.status) {
        return Ok(format!("{} (hyper)", first.status));
    }
    if !case.expect.contains(&first.status) {
        return Err(format!(
            "status {} (expected {:?}): {}",
            first.status,
            case.expect,
            String::from_utf8_lossy(&first.body)
        ));
    }
    if let Some(problem) = problem {
        return Err(format!("{} without the envelope: {problem}", first.status));
    }
    Ok(first.status.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_a_4xx_envelope_and_the_server_lives_on() {
    let started = Instant::now();
    let corpus = load_corpus();
    assert!(corpus.len() >= 200, "the corpus has {} files", corpus.len());
    let sim = fast_sim();
    let gw = Served::start(&sim, Duration::from_secs(2), Duration::from_secs(3)).await;

    // status -> category -> count
    let mut table: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, case) in corpus.iter().enumerate() {
        let outcome = match exchange(gw.addr, &case.raw).await {
            Ok(responses) => judge(case, &responses),
            Err(hang) => Err(hang),
        };
        match outcome {
            Ok(row) => {
                *table.entry(row).or_default().entry(case.category.clone()).or_default() += 1
            }
            Err(why) => failures.push(format!("{}: {why}", case.name)),
        }
        if (i + 1) % 50 == 0 {
            gw.assert_alive(&case.name).await;
        }
    }
    gw.assert_alive("the whole corpus").await;

    println!("\n{} hostile requests in {:?}", corpus.len(), started.elapsed());
    println!("{:<16} {:>5}  categories", "answer", "files");
    for (row, categories) in &table {
        let total: usize = categories.values().sum();
        let detail: Vec<String> = categories.iter().map(|(c, n)| format!("{c} {n}")).collect();
        println!("{row:<16} {total:>5}  {}", detail.join(", "));
    }
    assert!(failures.is_empty(), "{} of {} files failed:\n{}", failures.len(), corpus.len(), {
        failures.join("\n")
    });
    let creates = sim_creates(&sim);
    assert!(creates.is_empty(), "{} request(s) reached the backend: {creates:?}", creates.len());
    gw.stop().await;
}

// === slow clients ===

/// What a trickling client saw.
struct Trickled {
    /// From the connect to the server's answer or close.
    cut_after: Duration,
    /// How many of the trickled bytes went out before that.
    sent: usize,
    responses: Vec<RawResponse>,
}

/// Sends `prefix` at once, then `dribble` one byte every `pace`, until the server answers
/// (a complete response) or closes the connection.
async fn trickle(addr: SocketAddr, prefix: Vec<u8>, dribble: Vec<u8>, pace: Duration) -> Trickled {
    let start = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let reader = tokio::spawn(async move {
        let mut wire = Vec::new();
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => wire.extend_from_slice(&buf[..n]),
            }
            if parse_responses(&wire).is_ok_and(|r| !r.is_empty()) {
                break;
            }
        }
        (start.elapsed(), wire)
    });
    let mut sent = 0;
    if write.write_all(&prefix).await.is_ok() {
        for byte in &dribble {
            if reader.is_finished() || write.write_all(&[*byte]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(pace).await;
        }
    }
    let (cut_after, wire) = tokio::time::timeout(LIMIT, reader).await.unwrap().unwrap();
    Trickled { cut_after, sent, responses: parse_responses(&wire).unwrap() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_without_holding_up_others() {
    let cut = Duration::from_millis(300);
    let pace = Duration::from_millis(20);
    let sim = fast_sim();
    let gw = Served::start(&sim, cut, cut).await;
    let head = format!(
        "POST /v1/videos/generate HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer \
         {KEY}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    );
    // A whole request would take seconds at this pace: headers ~150 bytes, body 200 bytes.
    let body = format!("{{\"prompt\":\"{}\"}}", "a".repeat(187));
    assert_eq!(body.len(), 200);

    // Three header tricklers and three body tricklers: more than the two worker threads.
    let started = Instant::now();
    let mut tricklers = Vec::new();
    for _ in 0..3 {
        let headers = tokio::spawn(trickle(gw.addr, Vec::new(), head.clone().into_bytes(), pace));
        let bodies = tokio::spawn(trickle(
            gw.addr,
            head.clone().into_bytes(),
            body.clone().into_bytes(),
            pace,
        ));
        tricklers.push(("headers", headers));
        tricklers.push(("body", bodies));
    }
    // Meanwhile, normal requests on other connections are answered at once.
    let mut answered_at = Vec::new();
    for _ in 0..3 {
        let asked = Instant::now();
        let reply = gw.client.get("/v1/models").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        answered_at.push((started.elapsed(), asked.elapsed()));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    let mut cuts = Vec::new();
    for (what, trickler) in tricklers {
        let t = trickler.await.unwrap();
        let total = if what == "headers" { head.len() } else { body.len() };
        assert!(t.sent < total, "{what}: the whole request went out ({} bytes)", t.sent);
        assert!(
            t.cut_after >= cut - Duration::from_millis(50) && t.cut_after < cut * 6,
            "{what}: cut after {:?} (timeout {cut:?})",
            t.cut_after
        );
        match what {
            // hyper closes the connection without a word when the headers are late.
            "headers" => assert!(t.responses.is_empty(), "{what}: {:?}", t.responses),
            // The layer answers a late body with the 408 envelope.
            _ => {
                assert_eq!(t.responses.len(), 1, "{what}: {:?}", t.responses);
                let response = &t.responses[0];
                assert_eq!(response.status, 408, "{response:?}");
                assert_eq!(envelope_problem(response), None, "{response:?}");
            }
        }
        cuts.push((what, t.cut_after, t.sent));
    }
    let first_cut = cuts.iter().map(|c| c.1).min().unwrap();
    println!("slow clients (timeout {cut:?}, one byte every {pace:?}):");
    for (what, after, sent) in &cuts {
        println!("  {what:<8} cut after {after:>10.3?} with {sent:>3} bytes trickled");
    }
    for (at, took) in &answered_at {
        println!("  GET /v1/models at {at:>10.3?} answered in {took:.3?}");
    }
    // At least the first normal request was answered while every trickler was still
    // connected: they hold no worker.
    assert!(answered_at[0].0 < first_cut, "{answered_at:?} vs first cut at {first_cut:?}");
    assert!(answered_at.iter().all(|(_, took)| *took < cut), "{answered_at:?}");
    // And afterwards the server is as good as new.
    gw.assert_alive("the slow clients").await;
    assert!(sim_creates(&sim).is_empty());
    gw.stop().await;
}
