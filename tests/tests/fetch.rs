//! Video URLs end to end: `/v1/characters/create` and `/v1/characters/generate` take a
//! `video` URL the gateway downloads under its fetch policy. Over HTTP, each refusal is a 400
//! in the OpenAI envelope on `video` whose message says why (scheme, private address,
//! redirect, size, time), nothing reaches the backend, and an allowed URL works.
//!
//! `tower-layer/tests/upstream.rs` covers `HttpUpstream::fetch` itself (every `FetchError`);
//! this is what a client of the gateway sees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sora2api_core::sim::AccountSpec;
use sora2api_tower::sim_server::SimHandle;
use sora2api_tower::{FetchPolicy, HttpUpstream, HttpUpstreamConfig};
use tokio::net::TcpListener;

use common::*;

/// A video server on loopback: `/video.mp4` is a tiny MP4, `/big.mp4` is 4 KiB, `/stall`
/// never answers, `/to?<url>` redirects (302) to `<url>`.
async fn video_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let mut reply = Response::new(Full::new(Bytes::new()));
                match req.uri().path() {
                    "/video.mp4" => *reply.body_mut() = Full::new(Bytes::from_static(MP4)),
                    "/big.mp4" => {
                        let mut big = MP4.to_vec();
                        big.resize(4096, 0);
                        *reply.body_mut() = Full::new(Bytes::from(big));
                    }
                    "/stall" => std::future::pending::<()>().await,
                    "/to" => {
                        *reply.status_mut() = http::StatusCode::FOUND;
                        let target = req.uri().query().unwrap_or_default().to_owned();
                        reply.headers_mut().insert("location", target.parse().unwrap());
                    }
                    _ => *reply.status_mut() = http::StatusCode::NOT_FOUND,
                }
                Ok::<_, Infallible>(reply)
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A sim with one Pro account and a gateway whose fetch policy is `policy`.
async fn world(policy: FetchPolicy) -> (SimHandle, Gateway) {
    let sim = fast_sim();
    let account = sim.add_account(AccountSpec::pro("ada@example.com"));
    let upstream =
        HttpUpstream::new(HttpUpstreamConfig { fetch: policy, ..HttpUpstreamConfig::default() })
            .unwrap();
    let layer = builder(&sim, pool_of(&[(&account, true)], 2_000))
        .upstream(Arc::new(upstream))
        .build()
        .unwrap();
    (sim, Gateway::start(layer).await)
}

/// Loopback allowed (the video server and the sim live there), 1 KiB, 300 ms.
fn tight() -> FetchPolicy {
    FetchPolicy { allow_loopback: true, max_bytes: 1024, timeout_ms: 300, ..FetchPolicy::default() }
}

/// Every call the backend saw that a character would make.
fn character_calls(sim: &SimHandle) -> usize {
    sim.with_sim(|s| {
        s.requests()
            .iter()
            .filter(|r| r.path().starts_with("/backend/characters/") || r.is_sentinel_route())
            .count()
    })
}

/// The refusal of `url` on both character endpoints, blocking: a 400 envelope on `video`
/// whose message contains `why`; the task (named by `X-Task-Id`, if there is one) failed with
/// the same words; the backend saw nothing of it.
async fn refused(gw: &Gateway, sim: &SimHandle, url: &str, why: &str) {
    let bodies = [
        ("/v1/characters/create", json!({"video": url})),
        ("/v1/characters/generate", json!({"prompt": "dances", "video": url})),
    ];
    for (path, body) in bodies {
        let reply = gw.client.post(path, &body).await;
        let error = assert_envelope(&reply, 400, "invalid_request_error");
        assert_eq!(error["param"], "video", "{path} {url}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(why), "{path} {url}: {message:?} does not say {why:?}");
        if let Some(id) = reply.headers.get("x-task-id") {
            let task = gw.finished_task(id.to_str().unwrap()).await;
            assert_eq!(task["status"], "failed", "{task}");
            let stored = task["error_message"].as_str().unwrap_or_default();
            assert!(stored.contains(why), "{path} {url}: the task says {stored:?}");
        }
    }
    assert_eq!(character_calls(sim), 0, "{url}: the backend saw a character call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_schemes_are_refused() {
    let (sim, gw) = world(tight()).await;
    for url in ["file:///etc/passwd", "ftp://example.com/a.mp4", "gopher://example.com/v"] {
        // Refused when the request is read (no task): the translation checks the scheme.
        refused(&gw, &sim, url, "video URL must use http or https").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_unless_allowed() {
    let server = video_server().await;
    // The default policy: no loopback, no private ranges, no link-local.
    let (sim, gw) = world(FetchPolicy::default()).await;
    let why = "private, loopback or link-local address";
    for url in [
        format!("http://{server}/video.mp4"),
        format!("http://localhost:{}/video.mp4", server.port()),
        "http://10.0.0.1/video.mp4".to_owned(),
        "http://192.168.1.1/video.mp4".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fe80::1]/video.mp4".to_owned(),
        "http://[::1]/video.mp4".to_owned(),
    ] {
        refused(&gw, &sim, &url, why).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_checked_like_the_url() {
    let server = video_server().await;
    let (sim, gw) = world(tight()).await;
    let to = |target: &str| format!("http://{server}/to?{target}");
    refused(&gw, &sim, &to("file:///etc/passwd"), "not an http or https URL").await;
    let why = "private, loopback or link-local address";
    refused(&gw, &sim, &to("http://10.0.0.1/video.mp4"), why).await;
    refused(&gw, &sim, &to("http://169.254.169.254/latest/meta-data/"), why).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_and_time_are_limited() {
    let server = video_server().await;
    let (sim, gw) = world(tight()).await;
    let big = format!("http://{server}/big.mp4");
    refused(&gw, &sim, &big, "larger than the limit of 1024 bytes").await;
    let stall = format!("http://{server}/stall");
    refused(&gw, &sim, &stall, "timed out").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_loopback_url_makes_a_character() {
    let server = video_server().await;
    let (sim, gw) = world(tight()).await;
    let url = format!("http://{server}/video.mp4");
    let reply = gw.client.post("/v1/characters/create", &json!({"video": url})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let task = gw.finished_task(&reply.task_id()).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert!(task["result_urls"]["username"].is_string(), "{task}");
    // The upload carried the fetched bytes.
    let uploads = sim_requests(&sim, "/backend/characters/upload");
    assert_eq!(uploads.len(), 1);
    let body: &[u8] = &uploads[0].body;
    assert!(body.windows(MP4.len()).any(|w| w == MP4), "the fetched video was uploaded");
    // Through a redirect on loopback too.
    let url = format!("http://{server}/to?http://{server}/video.mp4");
    let body = json!({"prompt": "dances", "video": url, "stream": true});
    let reply = gw.client.post("/v1/characters/generate", &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let last: Value = reply.chunks().pop().unwrap();
    let content = last["choices"][0]["delta"]["content"].as_str().unwrap_or_default();
    assert!(content.contains("<video src='"), "{last}");
}
