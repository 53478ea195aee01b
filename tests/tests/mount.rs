//! The mount contract (architecture property 3): the layer nested in an axum `Router` under
//! `/sora`, behind an `axum::middleware::from_fn` gate, served by `axum::serve` on
//! `127.0.0.1:0`; and the type-level contract (`Clone + Send + Sync + 'static`, a `Send`
//! future, `Infallible` errors, `Data = Bytes`), checked at compile time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::convert::Infallible;
use std::future::Ready;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use serde_json::json;
use sora2api_core::sim::AccountSpec;
use sora2api_tower::{ResponseBody, Sora2ApiLayer, Sora2ApiService};
use tower::{Layer, Service};

use common::*;

type Fallback =
    tower::util::ServiceFn<fn(Request) -> Ready<Result<http::Response<Full<Bytes>>, Infallible>>>;

/// The same over hyper's request body.
type HyperFallback = tower::util::ServiceFn<
    fn(
        hyper::Request<hyper::body::Incoming>,
    ) -> Ready<Result<http::Response<Full<Bytes>>, Infallible>>,
>;

fn fallback_service() -> Fallback {
    fn answer(req: Request) -> Ready<Result<http::Response<Full<Bytes>>, Infallible>> {
        let body = format!("inner saw {}", req.uri().path());
        std::future::ready(Ok(http::Response::new(Full::from(body))))
    }
    tower::service_fn(answer as fn(_) -> _)
}

// === the contract, at compile time ===

fn clone_send_sync_static<T: Clone + Send + Sync + 'static>() {}

fn infallible_service_with_send_future<S, ReqBody>()
where
    S: Service<http::Request<ReqBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
}

fn bytes_body<B: http_body::Body<Data = Bytes> + Send + 'static>() {}

/// Compiles only if the contract holds (running it does nothing).
#[test]
fn the_mount_contract_holds_at_compile_time() {
    clone_send_sync_static::<Sora2ApiLayer>();
    clone_send_sync_static::<Sora2ApiService<Fallback>>();
    // axum's request body, and hyper's (what TowerToHyperService hands in).
    infallible_service_with_send_future::<Sora2ApiService<Fallback>, Body>();
    infallible_service_with_send_future::<Sora2ApiService<HyperFallback>, hyper::body::Incoming>();
    bytes_body::<ResponseBody<Full<Bytes>>>();
    nestable::<Sora2ApiService<Fallback>>();
}

/// The bounds of axum's `Router::nest_service` / `route_service`.
fn nestable<S>()
where
    S: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
}

// === at run time ===

/// Rejects requests with `x-block`, marks every other response with `x-gate: passed`.
async fn gate(req: Request, next: Next) -> Response {
    if req.headers().contains_key("x-block") {
        return (StatusCode::FORBIDDEN, "blocked by the gate").into_response();
    }
    let mut response = next.run(req).await;
    response.headers_mut().insert("x-gate", http::HeaderValue::from_static("passed"));
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_nested_in_an_axum_router_behind_middleware() {
    let sim = fast_sim();
    let account = sim.add_account(AccountSpec::pro("ada@example.com"));
    let layer = builder(&sim, pool_of(&[(&account, true)], 2_000)).build().unwrap();
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest_service("/sora", layer.layer(fallback_service()))
        .layer(middleware::from_fn(gate));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TestClient::new(listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // The Router's own routes still work, through the gate.
    let reply = client.send(http::Request::get("/health").body(Full::default()).unwrap()).await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "ok"));
    assert_eq!(reply.headers["x-gate"], "passed");

    // The client API under /sora, in all three modes.
    let reply = client.get("/sora/v1/models").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-gate"], "passed");
    assert_eq!(reply.json()["data"].as_array().unwrap().len(), 31);

    let reply = client.post("/sora/v1/images/generate", &json!({"prompt": "A cat"})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let content = reply.json()["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    assert!(content.starts_with("![Generated Image](http://"), "{content}");

    let reply =
        client.post("/sora/v1/videos/generate", &json!({"prompt": "A cat", "stream": true})).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-gate"], "passed");
    let chunks = reply.chunks();
    let last = &chunks.last().unwrap()["choices"][0];
    assert!(last["delta"]["content"].as_str().unwrap().contains("<video src='"), "{last}");

    let reply = client
        .post("/sora/v1/videos/generate", &json!({"prompt": "A dog", "async_mode": true}))
        .await;
    let id = reply.task_id();
    // Wait on the engine's signal, then read the task through the mount.
    let gateway_view = layer.engine().clone();
    if let Some(mut events) =
        gateway_view.subscribe(&sora2api_core::task::TaskId::parse(&id).unwrap())
    {
        tokio::time::timeout(LIMIT, async { while events.recv().await.is_ok() {} }).await.unwrap();
    }
    let (status, task) = client.get_json(&format!("/sora/v1/tasks/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(sim.with_sim(|s| s.creates()), 3);

    // Other paths under /sora reach the inner service, prefix stripped by axum.
    let reply =
        client.send(http::Request::get("/sora/elsewhere").body(Full::default()).unwrap()).await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "inner saw /elsewhere"));
    // The layer still checks the key under the mount.
    let reply =
        client.send(http::Request::get("/sora/v1/models").body(Full::default()).unwrap()).await;
    assert_envelope(&reply, 401, "authentication_error");
    // The gate runs first: a blocked request never reaches the layer or the sim.
    let blocked = {
        let mut req = post("/sora/v1/images/generate", &json!({"prompt": "A cat"}));
        req.headers_mut().insert("x-block", http::HeaderValue::from_static("1"));
        client.send(req).await
    };
    assert_eq!((blocked.status.as_u16(), blocked.body.as_str()), (403, "blocked by the gate"));
    assert_eq!(sim.with_sim(|s| s.creates()), 3);
    // Outside the mount, /v1 is not served.
    assert_eq!(client.get("/v1/models").await.status, 404);

    server.abort();
}
