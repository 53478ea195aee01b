//! The tower service against the in-process simulated backend, on virtual time: routing,
//! authentication, body limits, the three response modes, pass-through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use sora2api_core::machine::MachineConfig;
use sora2api_core::pool::{PoolConfig, TokenPool};
use sora2api_core::sim::{AccountSpec, Sim, SimConfig, Timings};
use sora2api_core::upstream::UpstreamConfig;
use sora2api_tower::sim_upstream::SimUpstream;
use sora2api_tower::{
    clock, ApiKeys, EngineConfig, MemoryStore, ResponseBody, Sora2ApiLayer, Sora2ApiService,
};
use tower::{Layer, Service, ServiceExt};

const SIM: &str = "http://sim.test";
const KEY: &str = "han1234";

type Inner = tower::util::ServiceFn<
    fn(Request<Full<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
>;

fn inner_service() -> Inner {
    fn answer(
        req: Request<Full<Bytes>>,
    ) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
        let body = format!("inner saw {}", req.uri().path());
        std::future::ready(Ok(Response::new(Full::from(body))))
    }
    tower::service_fn(answer as fn(_) -> _)
}

struct World {
    service: Sora2ApiService<Inner>,
    sim: SimUpstream,
    store: Arc<MemoryStore>,
}

fn world_with(
    timings: Option<Timings>,
    tune: impl FnOnce(sora2api_tower::Builder) -> sora2api_tower::Builder,
) -> World {
    let mut cfg = SimConfig {
        start_ms: clock::now_ms(),
        media_origin: format!("{SIM}/media"),
        ..SimConfig::fast()
    };
    if let Some(timings) = timings {
        cfg.instant = false;
        cfg.timings = timings;
    }
    let sim = SimUpstream::new(Sim::new(cfg));
    let account = sim.with_sim(|s| s.add_account(AccountSpec::pro("a@example.com")));
    let mut pool = TokenPool::new(PoolConfig::default());
    pool.add(account.token_record(true));
    let store = Arc::new(MemoryStore::new());
    let engine_config = EngineConfig {
        machine: MachineConfig {
            upstream: UpstreamConfig::at_origin(SIM),
            ..MachineConfig::default()
        },
        ..EngineConfig::default()
    };
    let builder = Sora2ApiLayer::builder()
        .upstream(Arc::new(sim.clone()))
        .task_store(store.clone())
        .token_pool(pool)
        .engine_config(engine_config)
        .api_keys(ApiKeys::new([KEY]));
    let layer = tune(builder).build().unwrap();
    World { service: layer.layer(inner_service()), sim, store }
}

fn world() -> World {
    world_with(None, |b| b)
}

fn post(path: &str, body: Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Full::from(body.to_string()))
        .unwrap()
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("authorization", format!("Bearer {KEY}"))
        .body(Full::default())
        .unwrap()
}

async fn send(w: &World, req: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, String) {
    let response: Response<ResponseBody<Full<Bytes>>> =
        w.service.clone().oneshot(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn send_json(w: &World, req: Request<Full<Bytes>>) -> (StatusCode, Value) {
    let (status, headers, body) = send(w, req).await;
    assert_eq!(headers["content-type"], "application/json", "{body}");
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

fn assert_envelope(body: &Value, kind: &str) {
    let err = &body["error"];
    assert_eq!(err["type"], kind, "{body}");
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(err.get("param").is_some() && err.get("code").is_some(), "{body}");
}

// === tests ===

#[tokio::test(start_paused = true)]
async fn other_paths_pass_through_untouched() {
    let w = world();
    for path in ["/", "/health", "/v1x/models", "/api/login", "/v2/models"] {
        let req = Request::get(path).body(Full::default()).unwrap();
        let (status, _, body) = send(&w, req).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, format!("inner saw {path}").as_str()));
    }
}

#[tokio::test(start_paused = true)]
async fn every_owned_route_needs_the_key() {
    let w = world();
    let wrong = ["", "Bearer nope", "Bearer han12345", "Basic han1234", "han1234"];
    for path in ["/v1/models", "/v1/unknown", "/v1/tasks/task_x"] {
        for auth in wrong {
            let mut req = Request::get(path);
            if !auth.is_empty() {
                req = req.header("authorization", auth);
            }
            let (status, headers, body) = send(&w, req.body(Full::default()).unwrap()).await;
            assert_eq!(status, 401, "{path} {auth}");
            assert_eq!(headers["www-authenticate"], "Bearer");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_envelope(&body, "authentication_error");
            assert_eq!(body["error"]["message"], "Invalid API key");
        }
    }
    assert_eq!(w.sim.with_sim(|s| s.requests().len()), 0);
}

#[tokio::test(start_paused = true)]
async fn models_and_route_errors() {
    let w = world();
    let (status, body) = send_json(&w, get("/v1/models")).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"].as_array().unwrap().len(), 31);

    let (status, body) = send_json(&w, get("/v1/nothing/here")).await;
    assert_eq!(status, 404);
    assert_envelope(&body, "invalid_request_error");

    let (status, headers, body) = send(&w, get("/v1/chat/completions")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
    assert_envelope(&serde_json::from_str(&body).unwrap(), "invalid_request_error");

    let (status, body) = send_json(&w, get("/v1/tasks/task_../../etc/passwd")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = send_json(&w, get("/v1/tasks/not-an-id")).await;
    assert_eq!((status.as_u16(), body["error"]["param"].as_str()), (400, Some("task_id")));
    let unknown = sora2api_core::task::TaskId::new(1_700_000_000_000, 1);
    let (status, body) = send_json(&w, get(&format!("/v1/tasks/{unknown}"))).await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"].as_str().unwrap().contains(unknown.as_str()));
}

#[tokio::test(start_paused = true)]
async fn bad_bodies_get_clear_4xx() {
    let w = world_with(None, |b| b.max_body_bytes(1000));
    let path = "/v1/images/generate";
    type Case = (Request<Full<Bytes>>, u16, Option<&'static str>);
    let cases: Vec<Case> = vec![
        (
            Request::post(path)
                .header("authorization", format!("Bearer {KEY}"))
                .body(Full::from(r#"{"prompt":"x"}"#))
                .unwrap(),
            415,
            None,
        ),
        (
            Request::post(path)
                .header("authorization", format!("Bearer {KEY}"))
                .header("content-type", "application/json")
                .body(Full::from("{\"prompt\": "))
                .unwrap(),
            400,
            None,
        ),
        (post(path, json!({"prompt": "x".repeat(2000)})), 413, None),
        (post(path, json!({})), 400, Some("prompt")),
        (post(path, json!({"prompt": "x", "model": "nope"})), 400, Some("model")),
        (post(path, json!({"prompt": "x", "model": "sora2-landscape-10s"})), 400, Some("model")),
        (post("/v1/videos/generate", json!({"prompt": "x", "style": "nope"})), 400, Some("style")),
        (
            post("/v1/videos/remix", json!({"prompt": "x", "remix_target_id": "bad"})),
            400,
            Some("remix_target_id"),
        ),
        (
            post("/v1/images/transform", json!({"prompt": "x", "image": "!!notbase64"})),
            400,
            Some("image"),
        ),
        (post("/v1/videos/storyboard", json!({"prompt": "no shots here"})), 400, Some("prompt")),
    ];
    for (req, want, param) in cases {
        let (status, body) = send_json(&w, req).await;
        assert_eq!(status.as_u16(), want, "{body}");
        assert_envelope(&body, "invalid_request_error");
        if let Some(param) = param {
            assert_eq!(body["error"]["param"], param, "{body}");
        }
    }
    assert_eq!(w.store.len(), 0, "no task for a refused request");
    assert_eq!(w.sim.with_sim(|s| s.creates()), 0);
}

#[tokio::test(start_paused = true)]
async fn async_mode_answers_at_once_and_the_task_completes() {
    let w = world();
    let (status, headers, body) =
        send(&w, post("/v1/videos/generate", json!({"prompt": "A cat", "async_mode": true}))).await;
    assert_eq!(status, 200);
    let ack: Value = serde_json::from_str(&body).unwrap();
    let id = ack["task_id"].as_str().unwrap().to_owned();
    assert_eq!(headers["x-task-id"], id.as_str());
    assert_eq!(
        (ack["task_type"].as_str(), ack["status"].as_str()),
        (Some("video"), Some("processing"))
    );
    // Poll as a client would, on virtual time.
    let task = loop {
        let (status, task) = send_json(&w, get(&format!("/v1/tasks/{id}"))).await;
        assert_eq!(status, 200);
        if task["status"] != "processing" {
            break task;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["progress"], 100.0);
    assert!(task["result_urls"][0].as_str().unwrap().starts_with(SIM));
    assert_eq!(w.sim.with_sim(|s| s.creates()), 1);
}

#[tokio::test(start_paused = true)]
async fn blocking_mode_waits_for_the_result() {
    let w = world();
    let (status, headers, body) =
        send(&w, post("/v1/images/generate", json!({"prompt": "A cat"}))).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let id = headers["x-task-id"].to_str().unwrap();
    assert_eq!(body["id"], format!("chatcmpl-{id}"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-image");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with("![Generated Image]("), "{content}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
}

#[tokio::test(start_paused = true)]
async fn blocking_mode_answers_the_failure_with_its_status() {
    let w = world();
    let (status, body) =
        send_json(&w, post("/v1/videos/generate", json!({"prompt": "A cat #policy"}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "content_policy_violation");
    let (status, body) =
        send_json(&w, post("/v1/videos/generate", json!({"prompt": "A cat #fail=500x9"}))).await;
    assert!(status.is_client_error() || status.is_server_error(), "{body}");
    assert_envelope(&body, body["error"]["type"].as_str().unwrap());
    assert!(!body.to_string().contains("sim"), "no upstream body: {body}");
}

#[tokio::test(start_paused = true)]
async fn blocking_mode_answers_no_tokens_with_503_and_retry_after() {
    let w = world_with(None, |b| b.token_pool(TokenPool::new(PoolConfig::default())));
    let (status, headers, body) =
        send(&w, post("/v1/videos/generate", json!({"prompt": "A cat"}))).await;
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_envelope(&body, "server_error");
    assert_eq!(body["error"]["code"], "no_available_tokens");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0);
}

#[tokio::test(start_paused = true)]
async fn blocking_mode_hands_out_the_task_after_the_wait_limit() {
    let w = world_with(Some(Timings::observed()), |b| b.blocking_wait(Duration::from_secs(30)));
    let (status, headers, body) =
        send(&w, post("/v1/videos/generate", json!({"prompt": "A cat"}))).await;
    assert_eq!(status, 202, "{body}");
    let ack: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ack["task_id"], headers["x-task-id"].to_str().unwrap());
    assert_eq!(ack["status"], "processing");
    let id = ack["task_id"].as_str().unwrap();
    let (_, task) = send_json(&w, get(&format!("/v1/tasks/{id}"))).await;
    assert_eq!(task["status"], "processing");
}

#[tokio::test(start_paused = true)]
async fn streams_keep_alive_and_end_once() {
    let w = world_with(Some(Timings::observed()), |b| b);
    let (status, headers, body) =
        send(&w, post("/v1/videos/generate", json!({"prompt": "A cat", "stream": true}))).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let id = headers["x-task-id"].to_str().unwrap();
    assert!(body.contains(": keep-alive\n\n"), "a 2.5 min video stream had silent 15 s spans");
    assert_eq!(body.matches("data: [DONE]").count(), 1);
    assert!(body.ends_with("data: [DONE]\n\n"));
    let chunks: Vec<Value> = body
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|f| *f != "[DONE]")
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["id"] == format!("chatcmpl-{id}")));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(last["choices"][0]["delta"]["content"].as_str().unwrap().contains("<video"));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_stream_does_not_stop_the_task() {
    let w = world_with(Some(Timings::observed()), |b| b);
    let response = w
        .service
        .clone()
        .oneshot(post("/v1/videos/generate", json!({"prompt": "A cat", "stream": true})))
        .await
        .unwrap();
    let id = response.headers()["x-task-id"].to_str().unwrap().to_owned();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some());
    drop(body);
    let engine = w.service.engine().clone();
    while engine.live_tasks() > 0 {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    let (_, task) = send_json(&w, get(&format!("/v1/tasks/{id}"))).await;
    assert_eq!(task["status"], "completed", "{task}");
}

#[tokio::test(start_paused = true)]
async fn the_service_can_be_polled_like_any_tower_service() {
    let mut w = world();
    let ready = w.service.ready().await.unwrap();
    let response = ready.call(get("/v1/models")).await.unwrap();
    assert_eq!(response.status(), 200);
    let inner = *w.service.get_ref();
    let response = inner.oneshot(Request::get("/x").body(Full::default()).unwrap()).await;
    assert_eq!(response.unwrap().status(), 200);
}

#[test]
fn the_builder_refuses_bad_settings() {
    use sora2api_tower::LayerError;
    let sim = || {
        Arc::new(SimUpstream::new(Sim::new(SimConfig::fast()))) as Arc<dyn sora2api_tower::Upstream>
    };
    let keys = || ApiKeys::new([KEY]);
    assert_eq!(
        Sora2ApiLayer::builder().api_keys(keys()).build().unwrap_err(),
        LayerError::MissingUpstream
    );
    assert_eq!(
        Sora2ApiLayer::builder().upstream(sim()).build().unwrap_err(),
        LayerError::NoApiKeys
    );
    assert!(Sora2ApiLayer::builder().upstream(sim()).without_auth().build().is_ok());
    for bad in ["v1", "/x/", "/x?y", "//x"] {
        let err =
            Sora2ApiLayer::builder().upstream(sim()).api_keys(keys()).path_prefix(bad).build();
        assert!(matches!(err, Err(LayerError::InvalidPrefix { .. })), "{bad}");
    }
    let admin: sora2api_tower::AdminHandler =
        Arc::new(|_| Box::pin(async { Response::new(Bytes::new()) }));
    let err = Sora2ApiLayer::builder().upstream(sim()).api_keys(keys()).admin("/v1", admin).build();
    assert_eq!(err.unwrap_err(), LayerError::OverlappingPrefixes);
    let err = Sora2ApiLayer::builder().upstream(sim()).api_keys(keys()).max_body_bytes(0).build();
    assert!(matches!(err, Err(LayerError::InvalidLimit { name: "max_body_bytes", .. })));
    let err = Sora2ApiLayer::builder()
        .upstream(sim())
        .api_keys(keys())
        .keep_alive(Duration::ZERO)
        .build();
    assert!(err.unwrap_err().to_string().contains("keep_alive"));
}

#[tokio::test(start_paused = true)]
async fn a_path_prefix_moves_the_api() {
    let w = world_with(None, |b| b.path_prefix("/sora"));
    let (status, _, body) = send(&w, get("/v1/models")).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "inner saw /v1/models"));
    let (status, body) = send_json(&w, get("/sora/v1/models")).await;
    assert_eq!((status.as_u16(), body["object"].as_str()), (200, Some("list")));
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_refuses_new_tasks_with_503_and_recovers() {
    let w = world();
    w.store.set_fail_writes(true);
    for mode in [json!({}), json!({"stream": true}), json!({"async_mode": true})] {
        let mut body = json!({"prompt": "A cat"});
        body.as_object_mut().unwrap().extend(mode.as_object().unwrap().clone());
        let (status, headers, text) = send(&w, post("/v1/images/generate", body)).await;
        assert_eq!(status, 503, "{text}");
        assert_eq!(headers["retry-after"], "5");
        assert!(headers.get("x-task-id").is_none(), "no task was accepted");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_envelope(&body, "server_error");
        assert_eq!(body["error"]["code"], "store_unavailable");
    }
    assert_eq!(w.sim.with_sim(|s| s.requests().len()), 0, "nothing went upstream");
    w.store.set_fail_writes(false);
    let (status, _, _) = send(&w, post("/v1/images/generate", json!({"prompt": "A cat"}))).await;
    assert_eq!(status, 200);
}
