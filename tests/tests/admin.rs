//! The admin API over HTTP (mounted at `/api` beside the client API, one engine): login and
//! sessions, tokens (add with online enrichment, disable, enable, test, refresh), API keys,
//! settings, stats and task cancel.
//!
//! The in-process details of each route are `tower-layer/tests/admin.rs`'s; here each route
//! is driven as a client would, and its effect is checked on the client API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{json, Value};
use sora2api_core::pool::TokenId;
use sora2api_core::secret::Secret;
use sora2api_core::sim::AccountSpec;
use sora2api_tower::sim_server::SimHandle;

use common::*;

/// An API key the admin API adds (and removes) in the tests.
const NEW_KEY: &str = "e2e-added-client-key-4c9b2e";

/// A request to the admin API: `method path`, with the session (if any) and a JSON body (if
/// any).
fn admin(
    method: &str,
    path: &str,
    session: Option<&str>,
    body: Option<&Value>,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(session) = session {
        req = req.header("authorization", format!("Bearer {session}"));
    }
    match body {
        Some(body) => req
            .header("content-type", "application/json")
            .body(Full::from(body.to_string()))
            .unwrap(),
        None => req.body(Full::default()).unwrap(),
    }
}

/// `GET path` with this bearer (an API key, or anything).
fn get_with(path: &str, bearer: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("authorization", format!("Bearer {bearer}"))
        .body(Full::default())
        .unwrap()
}

fn login_request(password: &str) -> Request<Full<Bytes>> {
    let body = json!({"username": ADMIN_USER, "password": password});
    admin("POST", "/api/login", None, Some(&body))
}

/// Logs in and returns the session token.
async fn login(gw: &Gateway) -> String {
    let reply = gw.client.send(login_request(ADMIN_PASSWORD)).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["success"], true, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// An admin call with a session that must succeed; its JSON body.
async fn ok(gw: &Gateway, method: &str, path: &str, session: &str, body: Option<Value>) -> Value {
    let reply = gw.client.send(admin(method, path, Some(session), body.as_ref())).await;
    assert_eq!(reply.status, 200, "{method} {path}: {reply:?}");
    assert_eq!(reply.headers["content-type"], "application/json");
    reply.json()
}

/// The token `id` as `GET /api/tokens` lists it.
async fn listed(gw: &Gateway, session: &str, id: u64) -> Value {
    let list = ok(gw, "GET", "/api/tokens", session, None).await;
    let found = list.as_array().unwrap().iter().find(|t| t["id"] == id).cloned();
    found.unwrap_or_else(|| panic!("token {id} is not listed: {list}"))
}

/// The pool's access token of token `id`.
fn access_token(gw: &Gateway, id: u64) -> String {
    gw.layer.engine().with_pool(|p| p.get(TokenId(id)).unwrap().access_token.expose().to_owned())
}

/// A video on the standard model, blocking; the reply.
async fn video(gw: &Gateway, prompt: &str) -> Reply {
    gw.client.post("/v1/videos/generate", &json!({"prompt": prompt})).await
}

/// The bearer of the last create the sim received.
fn last_create_bearer(sim: &SimHandle) -> String {
    bearer(sim_creates(sim).last().expect("a create")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_needs_the_password_and_every_route_a_live_session() {
    let sim = fast_sim();
    let gw = admin_gateway(&sim, pool_of(&[], 300)).await;

    let reply = gw.client.send(login_request("not-the-password")).await;
    let error = assert_envelope(&reply, 401, "authentication_error");
    assert_eq!(error["code"], "invalid_credentials");
    let wrong_user = json!({"username": "root", "password": ADMIN_PASSWORD});
    let reply = gw.client.send(admin("POST", "/api/login", None, Some(&wrong_user))).await;
    assert_envelope(&reply, 401, "authentication_error");

    let session = login(&gw).await;
    assert!(session.starts_with("admin-") && session.len() == 6 + 43, "{session}");

    let reply = gw.client.send(admin("GET", "/api/tokens", None, None)).await;
    let error = assert_envelope(&reply, 401, "authentication_error");
    assert_eq!(error["code"], "missing_authorization");
    for bad in ["admin-not-a-session", KEY] {
        let reply = gw.client.send(admin("GET", "/api/tokens", Some(bad), None)).await;
        let error = assert_envelope(&reply, 401, "authentication_error");
        assert_eq!(error["code"], "invalid_session", "{bad}");
    }
    let reply = gw.client.send(admin("POST", "/api/tokens/1/disable", Some("admin-x"), None)).await;
    assert_envelope(&reply, 401, "authentication_error");
    // A session is not an API key either.
    let reply = gw.client.send(get_with("/v1/models", &session)).await;
    assert_envelope(&reply, 401, "authentication_error");

    assert_eq!(ok(&gw, "GET", "/api/tokens", &session, None).await, json!([]));
    ok(&gw, "POST", "/api/logout", &session, None).await;
    let reply = gw.client.send(admin("GET", "/api/tokens", Some(&session), None)).await;
    assert_envelope(&reply, 401, "authentication_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_token_serves_until_disabled_and_is_tested_and_refreshed() {
    let sim = fast_sim();
    // No token in the pool: every generation below needs the one added.
    let gw = admin_gateway(&sim, pool_of(&[], 300)).await;
    let session = login(&gw).await;
    let cleo = sim.add_account(AccountSpec::pro("cleo@example.com"));

    let added = ok(
        &gw,
        "POST",
        "/api/tokens",
        &session,
        Some(json!({"token": cleo.access_token, "st": cleo.session_token,
                    "rt": cleo.refresh_token, "remark": "e2e"})),
    )
    .await;
    assert_eq!(
        (added["success"].clone(), added["email"].clone()),
        (json!(true), json!(cleo.email))
    );
    let id = added["token_id"].as_u64().unwrap();
    assert!(!sim_requests(&sim, "/backend/me").is_empty(), "enriched online");

    // Listed with every secret masked, and what enrichment learned.
    let token = listed(&gw, &session, id).await;
    let masked = |s: &Option<String>| json!(Secret::new(s.clone().unwrap()).masked());
    assert_eq!(token["token"], json!(Secret::new(cleo.access_token.clone()).masked()));
    assert_eq!(token["st"], masked(&cleo.session_token));
    assert_eq!(token["rt"], masked(&cleo.refresh_token));
    assert_eq!(token["email"], "cleo@example.com");
    assert_eq!(
        (token["plan_type"].clone(), token["pro"].clone()),
        (json!("chatgpt_pro"), json!(true))
    );
    assert_eq!(
        (token["state"].clone(), token["is_active"].clone()),
        (json!("active"), json!(true))
    );
    assert_eq!(token["remark"], "e2e");

    let reply = video(&gw, "A cat").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(last_create_bearer(&sim), cleo.access_token, "the added token did the work");

    // Disabled: out of service, so a video has no token.
    let off = ok(&gw, "POST", &format!("/api/tokens/{id}/disable"), &session, None).await;
    assert_eq!(off["is_active"], false);
    let token = listed(&gw, &session, id).await;
    assert_eq!(
        (token["state"].clone(), token["disabled_reason"].clone()),
        (json!("disabled"), json!("manual"))
    );
    let creates = sim_creates(&sim).len();
    let reply = video(&gw, "A dog").await;
    let error = assert_envelope(&reply, 503, "server_error");
    assert_eq!(error["code"], "no_available_tokens");
    assert_eq!(sim_creates(&sim).len(), creates, "nothing went upstream");

    // Enabled: in service again.
    let on = ok(&gw, "POST", &format!("/api/tokens/{id}/enable"), &session, None).await;
    assert_eq!(on["is_active"], true);
    let reply = video(&gw, "A dog").await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // Tested: the `/me` check passes.
    let tested = ok(&gw, "POST", &format!("/api/tokens/{id}/test"), &session, None).await;
    assert_eq!(
        (tested["status"].clone(), tested["email"].clone()),
        (json!("success"), json!(cleo.email)),
        "{tested}"
    );

    // Refreshed: a new access token (ST first), used by the next task.
    let refreshed = ok(&gw, "POST", &format!("/api/tokens/{id}/refresh"), &session, None).await;
    assert_eq!(refreshed["success"], true, "{refreshed}");
    assert!(refreshed["expiry_time"].as_str().unwrap().ends_with('Z'), "{refreshed}");
    assert_eq!(sim_requests(&sim, "/api/auth/session").len(), 1, "ST -> AT");
    let fresh = access_token(&gw, id);
    assert_ne!(fresh, cleo.access_token);
    assert_eq!(
        listed(&gw, &session, id).await["token"],
        json!(Secret::new(fresh.clone()).masked())
    );
    let reply = video(&gw, "A bird").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(last_create_bearer(&sim), fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_api_key_works_until_removed() {
    let sim = fast_sim();
    let gw = admin_gateway(&sim, pool_of(&[], 300)).await;
    let session = login(&gw).await;
    let models = |key: &str| gw.client.send(get_with("/v1/models", key));

    assert_envelope(&models(NEW_KEY).await, 401, "authentication_error");
    ok(&gw, "POST", "/api/admin/apikeys", &session, Some(json!({"key": NEW_KEY}))).await;
    assert_eq!(models(NEW_KEY).await.status, 200);
    assert_eq!(models(KEY).await.status, 200, "the first key still works");

    let keys = ok(&gw, "GET", "/api/admin/apikeys", &session, None).await;
    let keys = keys["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let new = Secret::new(NEW_KEY);
    let listed = keys.iter().find(|k| k["key"] == new.masked()).expect("listed masked");
    assert_eq!(listed["fingerprint"], new.fingerprint());

    let path = format!("/api/admin/apikeys/{}", new.fingerprint());
    ok(&gw, "DELETE", &path, &session, None).await;
    assert_envelope(&models(NEW_KEY).await, 401, "authentication_error");
    assert_eq!(models(KEY).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changes_read_back_and_stats_count_generations() {
    let sim = fast_sim();
    let ada = sim.add_account(AccountSpec::pro("ada@example.com"));
    let gw = admin_gateway(&sim, pool_of(&[(&ada, true)], 300)).await;
    let session = login(&gw).await;

    // Seeded from the running engine.
    let config = ok(&gw, "GET", "/api/admin/config", &session, None).await;
    assert_eq!(config["poll_interval"], 0.04, "{config}");
    assert_eq!(config["admin_username"], ADMIN_USER);
    let change = json!({"poll_interval": 0.25, "task_max_retries": 2, "task_retry_enabled": true});
    let changed = ok(&gw, "POST", "/api/admin/config", &session, Some(change)).await;
    assert_eq!(changed["success"], true, "{changed}");
    let config = ok(&gw, "GET", "/api/admin/config", &session, None).await;
    assert_eq!(
        (config["poll_interval"].clone(), config["task_max_retries"].clone()),
        (json!(0.25), json!(2)),
        "{config}"
    );
    let call_logic = ok(&gw, "GET", "/api/call-logic/config", &session, None).await;
    assert_eq!(call_logic["config"]["poll_interval"], 0.25, "{call_logic}");
    let machine = gw.layer.engine().machine_config();
    assert_eq!((machine.poll_interval_ms, machine.max_retries), (250, 2), "applied to the engine");

    // Stats: one token, and each finished generation counted once.
    let before = ok(&gw, "GET", "/api/stats", &session, None).await;
    assert_eq!(
        (before["total_tokens"].clone(), before["active_tokens"].clone()),
        (json!(1), json!(1))
    );
    let reply = video(&gw, "A cat").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = gw.client.post("/v1/images/generate", &json!({"prompt": "A cat"})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let after = ok(&gw, "GET", "/api/stats", &session, None).await;
    for (field, more) in [
        ("total_videos", 1),
        ("today_videos", 1),
        ("total_images", 1),
        ("today_images", 1),
        ("total_errors", 0),
    ] {
        let (b, a) = (before[field].as_u64().unwrap(), after[field].as_u64().unwrap());
        assert_eq!(a, b + more, "{field}: {before} -> {after}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_task_and_frees_its_token() {
    let sim = fast_sim();
    let ada = sim.add_account(AccountSpec::pro("ada@example.com"));
    let gw = admin_gateway(&sim, pool_of(&[(&ada, true)], 300)).await;
    let session = login(&gw).await;
    let engine = gw.layer.engine();

    // Queued for 1 000 polls (40 s at 40 ms): running until cancelled.
    let reply = gw
        .client
        .post(
            "/v1/videos/generate",
            &json!({"prompt": "A slow cat #queue=1000", "async_mode": true}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let id = reply.json()["task_id"].as_str().unwrap().to_owned();
    // Bounded wait until the backend has the task and its status is being polled.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while sim_requests(&sim, "/backend/nf/pending/v2").len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the task never started polling");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(engine.with_pool(|p| p.total_in_flight()), 1, "the task holds its token");
    let (_, task) = gw.client.get_json(&format!("/v1/tasks/{id}")).await;
    assert_eq!(task["status"], "processing", "{task}");

    let cancelled = ok(&gw, "POST", &format!("/api/tasks/{id}/cancel"), &session, None).await;
    assert_eq!(
        (cancelled["stopped"].clone(), cancelled["task_id"].clone()),
        (json!(true), json!(id)),
        "{cancelled}"
    );
    assert_eq!(engine.with_pool(|p| p.total_in_flight()), 0, "the token is free again");
    let (status, task) = gw.client.get_json(&format!("/v1/tasks/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(task["status"], "failed", "{task}");
    assert_eq!(task["error_message"], "The task was cancelled by an administrator", "{task}");
    assert_eq!(engine.live_tasks(), 0);

    // Nothing more is asked of the backend, and a second cancel finds nothing to stop.
    let polls = sim_requests(&sim, "/backend/nf/pending/v2").len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim_requests(&sim, "/backend/nf/pending/v2").len(), polls, "no more polling");
    let reply = gw
        .client
        .send(admin("POST", &format!("/api/tasks/{id}/cancel"), Some(&session), None))
        .await;
    let error = assert_envelope(&reply, 404, "invalid_request_error");
    assert_eq!(error["code"], "task_finished");
    // The token serves the next task.
    assert_eq!(video(&gw, "A cat").await.status, 200);
}
