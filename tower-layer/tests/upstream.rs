//! `HttpUpstream` against servers on `127.0.0.1:0`: raw TCP servers where the exact bytes
//! matter, tiny hyper servers elsewhere. No fixed ports; nothing sleeps to wait for work.
#![expect(
    clippy::unwrap_used,
    reason = "test servers and helpers outside #[test] functions: a failure should fail loudly"
)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sora2api_core::upstream::{Method, TransportError, UpstreamRequest};
use sora2api_tower::{
    BuildError, FetchError, FetchPolicy, HttpUpstream, HttpUpstreamConfig, Upstream,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

// === Test servers ===

type Handler =
    Arc<dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>> + Send + Sync>;

/// What a hyper test server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// The request target as sent: origin-form, or absolute-form through a proxy.
    uri: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

/// A hyper server: every request is collected, reported on the channel, then answered.
async fn serve(handler: Handler) -> (SocketAddr, UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (handler, tx) = (handler.clone(), tx.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (handler, tx) = (handler.clone(), tx.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let seen = Seen {
                            method: parts.method.to_string(),
                            uri: parts.uri.to_string(),
                            headers: parts
                                .headers
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                                .collect(),
                            body,
                        };
                        let _ = tx.send(seen.clone());
                        Ok::<_, Infallible>(handler(seen).await)
                    }
                });
                let io = TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    });
    (addr, rx)
}

fn handler<F>(f: F) -> Handler
where
    F: Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    Arc::new(move |seen| {
        let reply = f(&seen);
        Box::pin(async move { reply })
    })
}

fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Full::new(body.into())).unwrap()
}

/// One request as a raw TCP server read it.
#[derive(Debug)]
struct Raw {
    /// Which accepted connection (0, 1, ...) carried it.
    connection: usize,
    request_line: String,
    /// Header lines exactly as sent, in order.
    header_lines: Vec<String>,
    body: Vec<u8>,
}

/// A raw HTTP/1.1 server: reads each request (head and `content-length` body), reports it and
/// writes `answer` verbatim. With `close`, it closes the connection after answering; without,
/// it waits for the next request on the same connection (keep-alive).
async fn raw_server(answer: Vec<u8>, close: bool) -> (SocketAddr, UnboundedReceiver<Raw>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        let mut connection = 0;
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(raw_connection(stream, connection, answer.clone(), close, tx.clone()));
            connection += 1;
        }
    });
    (addr, rx)
}

async fn raw_connection(
    stream: tokio::net::TcpStream,
    connection: usize,
    answer: Vec<u8>,
    close: bool,
    tx: UnboundedSender<Raw>,
) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut header_lines = Vec::new();
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).await.unwrap();
            let line = line.trim_end_matches("\r\n").to_owned();
            if line.is_empty() {
                break;
            }
            header_lines.push(line);
        }
        let length = header_lines
            .iter()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |n| n.parse().unwrap());
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();
        let request_line = request_line.trim_end().to_owned();
        let _ = tx.send(Raw { connection, request_line, header_lines, body });
        stream.get_mut().write_all(&answer).await.unwrap();
        if close {
            return;
        }
    }
}

/// An address nothing listens on: bind a port, then drop the listener.
async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

// === Helpers ===

fn upstream(cfg: HttpUpstreamConfig) -> HttpUpstream {
    HttpUpstream::new(cfg).unwrap()
}

fn get(url: String) -> UpstreamRequest {
    UpstreamRequest {
        method: Method::Get,
        url,
        headers: vec![],
        body: Bytes::new(),
        timeout_ms: 5_000,
        proxy: None,
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

// === send ===

#[tokio::test]
async fn send_passes_the_request_exactly_and_returns_the_reply() {
    let answer = b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\nx-reply: one\r\n\
                   set-cookie: a=1\r\nset-cookie: b=2\r\n\r\nhello"
        .to_vec();
    let (addr, mut seen) = raw_server(answer, false).await;
    let up = upstream(HttpUpstreamConfig::default());
    let body = Bytes::from_static(br#"{"prompt":"a cat"}"#);
    let req = UpstreamRequest {
        method: Method::Post,
        url: format!("http://{addr}/backend/nf/create?x=1&y=a%20b"),
        headers: pairs(&[
            ("authorization", "Bearer at-secret"),
            ("user-agent", "Sora/1.2026.007 (Android 15; 24122RKC7C; build 2600700)"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("x-dup", "first"),
            ("x-dup", "second"),
        ]),
        body: body.clone(),
        timeout_ms: 5_000,
        proxy: None,
    };
    let got = up.send(req).await.unwrap();
    assert_eq!(got.status, 201);
    assert_eq!(got.body, Bytes::from_static(b"hello"));
    assert_eq!(got.header("x-reply"), Some("one"));
    let cookies: Vec<_> = got.headers.iter().filter(|(k, _)| k == "set-cookie").collect();
    assert_eq!(cookies.len(), 2, "{:?}", got.headers);

    let raw = seen.recv().await.unwrap();
    assert_eq!(raw.request_line, "POST /backend/nf/create?x=1&y=a%20b HTTP/1.1");
    assert_eq!(
        raw.header_lines,
        [
            "authorization: Bearer at-secret",
            "user-agent: Sora/1.2026.007 (Android 15; 24122RKC7C; build 2600700)",
            "accept: application/json",
            "content-type: application/json",
            "x-dup: first",
            "x-dup: second",
            &format!("host: {addr}"),
            "content-length: 18",
        ],
        "only host and content-length are added"
    );
    assert_eq!(raw.body, body);
}

#[tokio::test]
async fn send_adds_only_accept_and_host_and_reuses_the_connection() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec();
    let (addr, mut seen) = raw_server(answer, false).await;
    let up = upstream(HttpUpstreamConfig::default());
    for _ in 0..2 {
        let mut req = get(format!("http://{addr}/backend/me"));
        req.headers = pairs(&[("user-agent", "ua-from-core")]);
        let got = up.send(req).await.unwrap();
        assert_eq!((got.status, &got.body[..]), (200, &b"ok"[..]));
    }
    let first = seen.recv().await.unwrap();
    let second = seen.recv().await.unwrap();
    assert_eq!(first.request_line, "GET /backend/me HTTP/1.1");
    assert_eq!(
        first.header_lines,
        ["user-agent: ua-from-core", "accept: */*", &format!("host: {addr}")],
        "no default user-agent; accept only because the request had none"
    );
    assert_eq!((first.connection, second.connection), (0, 0), "one kept-alive connection");
}

#[tokio::test]
async fn redirects_come_back_as_replies() {
    let (addr, mut seen) =
        serve(handler(|_| reply(302, &[("location", "http://127.0.0.1:9/elsewhere")], ""))).await;
    let up = upstream(HttpUpstreamConfig::default());
    let got = up.send(get(format!("http://{addr}/backend/me"))).await.unwrap();
    assert_eq!((got.status, got.header("location")), (302, Some("http://127.0.0.1:9/elsewhere")));
    assert_eq!(seen.recv().await.unwrap().uri, "/backend/me");
    assert!(seen.try_recv().is_err(), "not followed");
}

#[tokio::test]
async fn a_slow_reply_times_out() {
    let never: Handler = Arc::new(|_| Box::pin(std::future::pending()));
    let (addr, _seen) = serve(never).await;
    let up = upstream(HttpUpstreamConfig::default());
    let mut req = get(format!("http://{addr}/slow"));
    req.timeout_ms = 100;
    assert_eq!(up.send(req).await, Err(TransportError::Timeout));
}

#[tokio::test]
async fn the_timeout_covers_the_body() {
    // The head arrives at once; the body never finishes, the connection stays open.
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc".to_vec();
    let (addr, _seen) = raw_server(answer, false).await;
    let up = upstream(HttpUpstreamConfig::default());
    let mut req = get(format!("http://{addr}/stall"));
    req.timeout_ms = 100;
    assert_eq!(up.send(req).await, Err(TransportError::Timeout));
}

#[tokio::test]
async fn connection_refused_is_connect() {
    let addr = dead_addr().await;
    let up = upstream(HttpUpstreamConfig::default());
    assert_eq!(up.send(get(format!("http://{addr}/"))).await, Err(TransportError::Connect));
}

#[tokio::test]
async fn a_reply_over_the_cap_is_too_large() {
    let cfg = HttpUpstreamConfig { max_reply_bytes: 150, ..HttpUpstreamConfig::default() };
    let up = upstream(cfg);
    // Declared by content-length: refused before reading.
    let (addr, _seen) = serve(handler(|_| reply(200, &[], vec![b'x'; 151]))).await;
    assert_eq!(up.send(get(format!("http://{addr}/"))).await, Err(TransportError::TooLarge));
    // Exactly the cap is fine.
    let (addr, _seen) = serve(handler(|_| reply(200, &[], vec![b'x'; 150]))).await;
    assert_eq!(up.send(get(format!("http://{addr}/"))).await.unwrap().body.len(), 150);
    // Chunked, no length: refused when the second chunk would pass the cap.
    let mut answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..2 {
        answer.extend_from_slice(b"64\r\n");
        answer.extend_from_slice(&[b'y'; 100]);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"0\r\n\r\n");
    let (addr, _seen) = raw_server(answer, false).await;
    assert_eq!(up.send(get(format!("http://{addr}/"))).await, Err(TransportError::TooLarge));
}

#[tokio::test]
async fn a_connection_closed_mid_body_is_reset() {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc".to_vec();
    let (addr, _seen) = raw_server(answer, true).await;
    let up = upstream(HttpUpstreamConfig::default());
    assert_eq!(up.send(get(format!("http://{addr}/"))).await, Err(TransportError::Reset));
}

#[tokio::test]
async fn a_connection_closed_before_the_reply_is_reset() {
    let (addr, _seen) = raw_server(Vec::new(), true).await;
    let up = upstream(HttpUpstreamConfig::default());
    assert_eq!(up.send(get(format!("http://{addr}/"))).await, Err(TransportError::Reset));
}

// === send through proxies ===

fn proxy_reply(name: &'static str) -> Handler {
    handler(move |_| reply(200, &[], name))
}

#[tokio::test]
async fn a_request_proxy_gets_the_absolute_form_request() {
    let (proxy, mut at_proxy) = serve(proxy_reply("via proxy")).await;
    let up = upstream(HttpUpstreamConfig::default());
    let mut req = get("http://sora.invalid:8443/backend/nf/pending/v2?x=1".into());
    req.headers = pairs(&[("authorization", "Bearer at")]);
    req.proxy = Some(format!("http://{proxy}"));
    let got = up.send(req).await.unwrap();
    assert_eq!(&got.body[..], b"via proxy");
    let seen = at_proxy.recv().await.unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.uri, "http://sora.invalid:8443/backend/nf/pending/v2?x=1");
    assert!(seen.headers.contains(&("host".into(), "sora.invalid:8443".into())));
    assert!(seen.headers.contains(&("authorization".into(), "Bearer at".into())));
    assert!(seen.body.is_empty());
}

#[tokio::test]
async fn proxy_credentials_become_proxy_authorization() {
    let (proxy, mut at_proxy) = serve(proxy_reply("ok")).await;
    let up = upstream(HttpUpstreamConfig::default());
    let mut req = get("http://sora.invalid/backend/me".into());
    req.proxy = Some(format!("http://user:pass@{proxy}"));
    up.send(req).await.unwrap();
    let seen = at_proxy.recv().await.unwrap();
    // base64("user:pass")
    assert!(seen.headers.contains(&("proxy-authorization".into(), "Basic dXNlcjpwYXNz".into())));
}

#[tokio::test]
async fn the_global_proxy_serves_requests_without_their_own() {
    let (global, mut at_global) = serve(proxy_reply("global")).await;
    let (own, mut at_own) = serve(proxy_reply("own")).await;
    let cfg = HttpUpstreamConfig {
        global_proxy: Some(format!("http://{global}")),
        ..HttpUpstreamConfig::default()
    };
    let up = upstream(cfg);
    let plain = up.send(get("http://sora.invalid/a".into())).await.unwrap();
    assert_eq!(&plain.body[..], b"global");
    assert_eq!(at_global.recv().await.unwrap().uri, "http://sora.invalid/a");

    let mut req = get("http://sora.invalid/b".into());
    req.proxy = Some(format!("http://{own}"));
    assert_eq!(&up.send(req.clone()).await.unwrap().body[..], b"own");
    assert_eq!(at_own.recv().await.unwrap().uri, "http://sora.invalid/b");
    // The cached client for that proxy serves the next request too.
    assert_eq!(&up.send(req).await.unwrap().body[..], b"own");
    assert_eq!(at_own.recv().await.unwrap().uri, "http://sora.invalid/b");
    assert!(at_global.try_recv().is_err());
}

#[tokio::test]
async fn a_dead_or_bad_proxy_is_a_proxy_error() {
    let dead = dead_addr().await;
    let up = upstream(HttpUpstreamConfig::default());
    for proxy in [
        format!("http://{dead}"),
        format!("socks5://{dead}"),
        format!("socks5h://{dead}"),
        "ftp://proxy:21".to_owned(),
        "not a url".to_owned(),
    ] {
        let mut req = get("http://sora.invalid/backend/me".into());
        req.proxy = Some(proxy.clone());
        assert_eq!(up.send(req).await, Err(TransportError::Proxy), "{proxy}");
    }
}

#[tokio::test]
async fn a_bad_global_proxy_is_a_build_error() {
    let build = |proxy: &str| {
        HttpUpstream::new(HttpUpstreamConfig {
            global_proxy: Some(proxy.into()),
            ..HttpUpstreamConfig::default()
        })
        .map(|_| ())
    };
    assert_eq!(build("ftp://proxy:21"), Err(BuildError::ProxyScheme("ftp".into())));
    assert_eq!(build("proxy.example"), Err(BuildError::ProxyUrl));
    assert_eq!(build("socks5://user:pw@proxy:1080"), Ok(()));
    let message = build("gopher://user:secret@proxy").unwrap_err().to_string();
    assert!(!message.contains("secret"), "{message}");
}

// === fetch ===

fn fetcher(policy: FetchPolicy) -> HttpUpstream {
    upstream(HttpUpstreamConfig { fetch: policy, ..HttpUpstreamConfig::default() })
}

fn loopback_allowed() -> FetchPolicy {
    FetchPolicy { allow_loopback: true, ..FetchPolicy::default() }
}

/// A video server: `/video` is the file, `/to/<target>` redirects (relative or absolute),
/// `/missing` is a 404, `/big` is larger than the tests' cap.
async fn video_server() -> (SocketAddr, UnboundedReceiver<Seen>) {
    serve(handler(|seen| match seen.uri.as_str() {
        "/video" => reply(200, &[("content-type", "video/mp4")], "MP4DATA"),
        "/big" => reply(200, &[], vec![0u8; 2048]),
        "/loop" => reply(302, &[("location", "/loop")], ""),
        "/missing" => reply(404, &[], "secret upstream body"),
        uri => match uri.strip_prefix("/to/") {
            Some(target) => reply(307, &[("location", target)], ""),
            None => reply(500, &[], ""),
        },
    }))
    .await
}

#[tokio::test]
async fn loopback_is_refused_by_default_before_any_request() {
    let (addr, mut seen) = video_server().await;
    let up = fetcher(FetchPolicy::default());
    assert_eq!(up.fetch(format!("http://{addr}/video")).await, Err(FetchError::Address));
    // By name: the guarded resolver refuses it.
    let by_name = format!("http://localhost:{}/video", addr.port());
    assert_eq!(up.fetch(by_name).await, Err(FetchError::Address));
    assert_eq!(up.fetch("http://[::1]/video".into()).await, Err(FetchError::Address));
    assert!(seen.try_recv().is_err(), "nothing reached the server");
}

#[tokio::test]
async fn loopback_is_fetched_when_allowed() {
    let (addr, _seen) = video_server().await;
    let up = fetcher(loopback_allowed());
    assert_eq!(up.fetch(format!("http://{addr}/video")).await.unwrap(), "MP4DATA");
    let by_name = format!("http://localhost:{}/video", addr.port());
    assert_eq!(up.fetch(by_name).await.unwrap(), "MP4DATA");
}

#[tokio::test]
async fn only_http_and_https_are_fetched() {
    let up = fetcher(loopback_allowed());
    for url in ["file:///etc/passwd", "ftp://example.com/a.mp4", "data:video/mp4;base64,AAAA"] {
        assert_eq!(up.fetch(url.into()).await, Err(FetchError::Scheme), "{url}");
    }
    assert_eq!(up.fetch("not a url".into()).await, Err(FetchError::Url));
}

#[tokio::test]
async fn redirects_are_followed_and_rechecked() {
    let (addr, _seen) = video_server().await;
    let up = fetcher(loopback_allowed());
    assert_eq!(up.fetch(format!("http://{addr}/to//video")).await.unwrap(), "MP4DATA");
    let absolute = format!("http://{addr}/to/http://{addr}/video");
    assert_eq!(up.fetch(absolute).await.unwrap(), "MP4DATA");
    let cases = [
        ("file:///etc/passwd", FetchError::Scheme),
        ("http://10.0.0.1/video", FetchError::Address),
        ("http://169.254.169.254/latest/meta-data/", FetchError::Address),
        ("http://[fe80::1]/video", FetchError::Address),
    ];
    for (target, want) in cases {
        let url = format!("http://{addr}/to/{target}");
        assert_eq!(up.fetch(url).await, Err(want), "{target}");
    }
}

#[tokio::test]
async fn redirects_are_limited() {
    let (addr, mut seen) = video_server().await;
    let up = fetcher(FetchPolicy { max_redirects: 3, ..loopback_allowed() });
    assert_eq!(up.fetch(format!("http://{addr}/loop")).await, Err(FetchError::Redirect));
    for _ in 0..4 {
        assert_eq!(seen.recv().await.unwrap().uri, "/loop");
    }
    assert!(seen.try_recv().is_err(), "the first request and 3 redirects");
    let none = fetcher(FetchPolicy { max_redirects: 0, ..loopback_allowed() });
    assert_eq!(none.fetch(format!("http://{addr}/to//video")).await, Err(FetchError::Redirect));
}

#[tokio::test]
async fn fetch_limits_size_and_reports_status() {
    let (addr, _seen) = video_server().await;
    let up = fetcher(FetchPolicy { max_bytes: 1024, ..loopback_allowed() });
    assert_eq!(
        up.fetch(format!("http://{addr}/big")).await,
        Err(FetchError::TooLarge { limit: 1024 })
    );
    let missing = up.fetch(format!("http://{addr}/missing")).await.unwrap_err();
    assert_eq!(missing, FetchError::Status(404));
    assert!(!missing.to_string().contains("secret"), "{missing}");
}

#[tokio::test]
async fn fetch_times_out_and_reports_dead_hosts() {
    let never: Handler = Arc::new(|_| Box::pin(std::future::pending()));
    let (addr, _seen) = serve(never).await;
    let up = fetcher(FetchPolicy { timeout_ms: 100, ..loopback_allowed() });
    assert_eq!(up.fetch(format!("http://{addr}/video")).await, Err(FetchError::Timeout));
    let dead = dead_addr().await;
    assert_eq!(up.fetch(format!("http://{dead}/video")).await, Err(FetchError::Connect));
}

#[tokio::test]
async fn fetch_ignores_the_global_proxy() {
    let (proxy, mut at_proxy) = serve(proxy_reply("from proxy")).await;
    let (addr, _seen) = video_server().await;
    let up = upstream(HttpUpstreamConfig {
        global_proxy: Some(format!("http://{proxy}")),
        fetch: loopback_allowed(),
        ..HttpUpstreamConfig::default()
    });
    assert_eq!(up.fetch(format!("http://{addr}/video")).await.unwrap(), "MP4DATA");
    assert!(at_proxy.try_recv().is_err());
}

#[tokio::test]
async fn the_seam_is_object_safe() {
    let (addr, _seen) = video_server().await;
    let up: Arc<dyn Upstream> = Arc::new(fetcher(loopback_allowed()));
    let shared = Arc::clone(&up);
    let got = tokio::spawn(async move { shared.send(get(format!("http://{addr}/video"))).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got.body[..], b"MP4DATA");
    assert_eq!(up.fetch(format!("http://{addr}/video")).await.unwrap(), "MP4DATA");
}
