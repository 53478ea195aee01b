//! Every error row of client-api.md over HTTP, in the OpenAI envelope
//! `{"error":{"message","type","param","code"}}`, with the status and headers it needs.

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{json, Value};
use sora2api_core::pool::DisableReason;
use sora2api_core::sim::AccountSpec;

use crate::common::*;

const NO_VIDEO_TOKENS: &str = "No available tokens for video generation. All tokens are either disabled, cooling down, Sora2 quota exhausted, don't support Sora2, or expired.";
const NO_IMAGE_TOKENS: &str = "No available tokens for image generation. All tokens are either disabled, cooling down, locked, or expired.";

fn raw(path: &str, content_type: Option<&str>, body: &str) -> Request<Full<Bytes>> {
    let mut req = Request::post(path).header("authorization", format!("Bearer {KEY}"));
    if let Some(content_type) = content_type {
        req = req.header("content-type", content_type);
    }
    req.body(Full::from(body.to_owned())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_key_is_401() {
    let (sim, _, gw) = one_account_world().await;
    let wrong = [None, Some("Bearer nope"), Some("Bearer han12345"), Some("Basic han1234")];
    for (method, path) in
        [("POST", "/v1/videos/generate"), ("GET", "/v1/models"), ("GET", "/v1/nothing")]
    {
        for auth in wrong {
            let mut req = Request::builder().method(method).uri(path);
            if let Some(auth) = auth {
                req = req.header("authorization", auth);
            }
            let req = req
                .header("content-type", "application/json")
                .body(Full::from(json!({"prompt": "A cat"}).to_string()))
                .unwrap();
            let reply = gw.client.send(req).await;
            let error = assert_envelope(&reply, 401, "authentication_error");
            assert_eq!(error["message"], "Invalid API key", "{method} {path} {auth:?}");
            assert_eq!(error["param"], Value::Null);
            assert_eq!(reply.headers["www-authenticate"], "Bearer");
        }
    }
    assert!(sim.with_sim(|s| s.requests().is_empty()), "nothing went upstream");
    assert_eq!(gw.layer.engine().live_tasks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_400s_that_name_the_field() {
    let (sim, _, gw) = one_account_world().await;
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "A cat"}]});
    // "this is just text"
    let not_an_image = "dGhpcyBpcyBqdXN0IHRleHQ=";
    // (path, body, param, the exact message or its start)
    let cases: Vec<(&str, Value, Option<&str>, &str)> = vec![
        (
            "/v1/chat/completions",
            chat("invalid-model"),
            Some("model"),
            "Invalid model: invalid-model",
        ),
        (
            "/v1/videos/generate",
            json!({"prompt": "x", "model": "invalid-model"}),
            Some("model"),
            "Invalid model: invalid-model",
        ),
        ("/v1/images/generate", json!({}), Some("prompt"), "prompt is required"),
        ("/v1/videos/generate", json!({"prompt": "   "}), Some("prompt"), "prompt is required"),
        (
            "/v1/images/generate",
            json!({"prompt": "x", "model": "sora2-landscape-10s"}),
            Some("model"),
            "Invalid model: sora2-landscape-10s",
        ),
        (
            "/v1/videos/generate",
            json!({"prompt": "x", "model": "gpt-image"}),
            Some("model"),
            "Invalid model: gpt-image",
        ),
        (
            "/v1/videos/generate",
            json!({"prompt": "x", "style": "cubism"}),
            Some("style"),
            "Invalid style: cubism",
        ),
        (
            "/v1/videos/remix",
            json!({"prompt": "x", "remix_target_id": "s_123"}),
            Some("remix_target_id"),
            "Invalid remix_target_id",
        ),
        (
            "/v1/videos/remix",
            json!({"prompt": "x"}),
            Some("remix_target_id"),
            "remix_target_id is required",
        ),
        (
            "/v1/images/transform",
            json!({"prompt": "x", "image": "%%% not base64 %%%"}),
            Some("image"),
            "image",
        ),
        (
            "/v1/images/transform",
            json!({"prompt": "x", "image": not_an_image}),
            Some("image"),
            "image is not a PNG, JPEG, GIF or WebP image",
        ),
        ("/v1/characters/create", json!({"video": "@@@"}), Some("video"), "video"),
        (
            "/v1/videos/storyboard",
            json!({"prompt": "no shots here"}),
            Some("prompt"),
            "prompt is not a storyboard",
        ),
        ("/v1/videos/generate", json!({"prompt": 5}), Some("prompt"), "prompt"),
        ("/v1/videos/generate", json!({"prompt": "x", "stream": "yes"}), Some("stream"), "stream"),
    ];
    for (path, body, param, message) in cases {
        let reply = gw.client.post(path, &body).await;
        let error = assert_envelope(&reply, 400, "invalid_request_error");
        assert_eq!(error["param"].as_str(), param, "{path} {body}: {error}");
        let text = error["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{path} {body}: {error}");
        assert!(reply.headers.get("x-task-id").is_none(), "no task for a refused request");
    }

    // Malformed JSON and a body that is not JSON at all.
    let reply =
        gw.client.send(raw("/v1/images/generate", Some("application/json"), "{\"prompt\": ")).await;
    let error = assert_envelope(&reply, 400, "invalid_request_error");
    assert!(error["message"].as_str().unwrap().starts_with("Request body is not valid JSON"));
    let reply =
        gw.client.send(raw("/v1/chat/completions", Some("application/json"), "[1, 2]")).await;
    assert_envelope(&reply, 400, "invalid_request_error");
    let reply =
        gw.client.send(raw("/v1/images/generate", Some("text/plain"), "{\"prompt\": \"x\"}")).await;
    assert_envelope(&reply, 415, "invalid_request_error");

    assert!(sim.with_sim(|s| s.requests().is_empty()), "nothing went upstream");
    assert_eq!(gw.layer.engine().live_tasks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_413() {
    let sim = fast_sim();
    let account = sim.add_account(AccountSpec::pro("ada@example.com"));
    let layer =
        builder(&sim, pool_of(&[(&account, true)], 1_000)).max_body_bytes(1024).build().unwrap();
    let gw = Gateway::start(layer).await;
    let big = json!({"prompt": "A cat", "image": PNG_B64.repeat(30)});
    let reply = gw.client.post("/v1/images/transform", &big).await;
    let error = assert_envelope(&reply, 413, "invalid_request_error");
    assert!(error["message"].as_str().unwrap().contains("1024 bytes"), "{error}");
    // A body within the limit goes through.
    let reply = gw.client.post("/v1/images/generate", &json!({"prompt": "A cat"})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(sim.with_sim(|s| s.creates()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let (_sim, _, gw) = one_account_world().await;
    let reply = gw.client.get("/v1/nothing/here").await;
    let error = assert_envelope(&reply, 404, "invalid_request_error");
    assert!(error["message"].as_str().unwrap().contains("/v1/nothing/here"), "{error}");

    let unknown = sora2api_core::task::TaskId::new(1_700_000_000_000, 7);
    let reply = gw.client.get(&format!("/v1/tasks/{unknown}")).await;
    let error = assert_envelope(&reply, 404, "invalid_request_error");
    assert!(error["message"].as_str().unwrap().contains(unknown.as_str()), "{error}");

    for (method, path, allow) in [
        ("GET", "/v1/images/generate", "POST"),
        ("PUT", "/v1/chat/completions", "POST"),
        ("POST", "/v1/models", "GET"),
        ("DELETE", "/v1/tasks/task_01m87dzfjyrybwzzbeww1w2xft", "GET"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {KEY}"))
            .body(Full::default())
            .unwrap();
        let reply = gw.client.send(req).await;
        assert_envelope(&reply, 405, "invalid_request_error");
        assert_eq!(reply.headers["allow"], allow, "{method} {path}");
    }

    // Paths outside /v1 are not ours: the inner service answers, without a key.
    for path in ["/", "/health", "/v1x/models", "/api/tokens"] {
        let reply = gw.client.send(Request::get(path).body(Full::default()).unwrap()).await;
        assert_eq!(
            (reply.status.as_u16(), reply.body.as_str()),
            (200, format!("fallback saw {path}").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tokens_is_503_with_retry_after_in_every_mode() {
    // An empty pool.
    let sim = fast_sim();
    let gw = Gateway::start(builder(&sim, pool_of(&[], 300)).build().unwrap()).await;
    let body = json!({"prompt": "A cat"});

    let reply = gw.client.post("/v1/videos/generate", &body).await;
    let error = assert_envelope(&reply, 503, "server_error");
    assert_eq!(error["message"], NO_VIDEO_TOKENS);
    assert_eq!(error["param"], Value::Null);
    let retry_after: u64 = reply
        .headers
        .get("retry-after")
        .expect("Retry-After on a 503")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);

    let reply =
        gw.client.post("/v1/videos/generate", &json!({"prompt": "A cat", "stream": true})).await;
    assert_eq!(reply.status, 200);
    let events = reply.sse();
    let error: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(error["error"]["message"], NO_VIDEO_TOKENS, "{events:?}");
    assert_eq!(error["error"]["type"], "server_error");

    let reply = gw
        .client
        .post("/v1/videos/generate", &json!({"prompt": "A cat", "async_mode": true}))
        .await;
    assert_eq!(reply.status, 200);
    let task = gw.finished_task(&reply.task_id()).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert_eq!(task["error_message"], NO_VIDEO_TOKENS);
    assert!(sim.with_sim(|s| s.requests().is_empty()));

    // Every token disabled.
    let sim = fast_sim();
    let account = sim.add_account(AccountSpec::pro("ada@example.com"));
    let gw =
        Gateway::start(builder(&sim, pool_of(&[(&account, true)], 300)).build().unwrap()).await;
    gw.layer.engine().with_pool(|pool| {
        let ids: Vec<_> = pool.records().map(|r| r.id).collect();
        for id in ids {
            assert!(pool.disable(id, DisableReason::Manual));
        }
    });
    let reply = gw.client.post("/v1/images/generate", &body).await;
    let error = assert_envelope(&reply, 503, "server_error");
    assert_eq!(error["message"], NO_IMAGE_TOKENS);
    assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
    assert!(sim.with_sim(|s| s.requests().is_empty()));
}
