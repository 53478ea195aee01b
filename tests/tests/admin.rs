//! The admin API over HTTP (mounted at `/api` beside the client API, one engine): login and
//! sessions, tokens (add with online enrichment, disable, enable, test, refresh), API keys,
//! settings, stats and task cancel; and a whole flow whose every response and every log line
//! (TRACE, every thread) is searched for every secret involved.
//!
//! The in-process details of each route are `tower-layer/tests/admin.rs`'s; here each route
//! is driven as a client would, and its effect is checked on the client API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{json, Value};
use sora2api_core::pool::TokenId;
use sora2api_core::secret::Secret;
use sora2api_core::sim::{AccountSpec, LoggedRequest};
use sora2api_tower::sim_server::SimHandle;
use tracing_subscriber::fmt::format::FmtSpan;

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

// === no secret in any response or log line ===

/// Every log line of this test binary from the first call on: one global `fmt` subscriber
/// at TRACE, without ANSI colours, span opens and closes included, writing into a buffer.
/// Global (not a thread's default), so lines from any thread are kept: the runtime's
/// workers, the blocking pool (password hashing, proof of work, DNS), the engine's drivers.
/// Other tests of the binary may write into it meanwhile; that only adds lines.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        logs
    })
}

/// The log buffer's writer.
struct Sink(Arc<Mutex<Vec<u8>>>);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// Whether `text` gives `secret` away: more than half of it from its start (at least 6
/// characters; a masked form must not show that much), or the part after its last `.` (a
/// JWT's signature, the random tail of a session token) when that is long enough to be
/// telling. The whole secret is caught by the first.
fn holds(text: &str, secret: &str) -> bool {
    let chars = secret.chars().count();
    let head: String = secret.chars().take((chars / 2 + 1).max(6)).collect();
    let tail = secret.rsplit('.').next().filter(|t| t.len() >= 16 && t.len() < secret.len());
    text.contains(&head) || tail.is_some_and(|t| text.contains(t))
}

/// Every response of the flow: what was asked, and the status line, header values and body.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, String)>>);

impl Seen {
    fn keep(&self, what: &str, reply: Reply) -> Reply {
        let mut text = format!("{}\n", reply.status);
        for (name, value) in &reply.headers {
            text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        text.push_str(&reply.body);
        self.0.lock().unwrap().push((what.to_owned(), text));
        reply
    }
}

/// Every credential the backend saw in the flow: bearers, session cookies, refresh tokens.
fn credentials_sent(requests: &[LoggedRequest]) -> Vec<String> {
    let mut seen = Vec::new();
    for req in requests {
        if let Some(b) = req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")) {
            seen.push(b.to_owned());
        }
        if let Some(cookies) = req.header("cookie") {
            seen.extend(
                cookies
                    .split(';')
                    .filter_map(|c| c.trim().strip_prefix("__Secure-next-auth.session-token="))
                    .map(str::to_owned),
            );
        }
        if req.path() == "/oauth/token" {
            let body = body_json(req);
            seen.extend(body["refresh_token"].as_str().map(str::to_owned));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_response_or_log_line() {
    // Every log line from here on.
    logs();
    const WRONG_KEY: &str = "e2e-wrong-client-key-93d0aa";
    // Ada and Cleo refresh with their ST, Bob only with his RT (which the sim rotates).
    let sim = fast_sim();
    let ada = sim.add_account(AccountSpec::pro("ada@example.com"));
    let bob = sim.add_account(AccountSpec {
        with_session_token: false,
        ..AccountSpec::pro("bob@example.com")
    });
    let cleo = sim.add_account(AccountSpec::pro("cleo@example.com"));
    // Revoked: the admin API refuses to add it.
    let dan = sim.add_account(AccountSpec { revoked: true, ..AccountSpec::pro("dan@example.com") });
    let gw = admin_gateway(&sim, pool_of(&[(&ada, true), (&bob, true)], 2_000)).await;
    let seen = Seen::default();
    let c = &gw.client;
    let mut task_ids = Vec::new();

    // --- the admin API ---
    seen.keep("bad login", c.send(login_request("not-the-password")).await);
    let reply = seen.keep("login", c.send(login_request(ADMIN_PASSWORD)).await);
    let session = reply.json()["token"].as_str().unwrap().to_owned();
    let s = Some(session.as_str());
    seen.keep("no session", c.send(admin("GET", "/api/tokens", None, None)).await);
    seen.keep("list", c.send(admin("GET", "/api/tokens", s, None)).await);
    let add =
        json!({"token": cleo.access_token, "st": cleo.session_token, "rt": cleo.refresh_token});
    let reply = seen.keep("add", c.send(admin("POST", "/api/tokens", s, Some(&add))).await);
    assert_eq!(reply.status, 200, "{reply:?}");
    let cleo_id = reply.json()["token_id"].as_u64().unwrap();
    let reply = seen.keep("add again", c.send(admin("POST", "/api/tokens", s, Some(&add))).await);
    assert_eq!(reply.status, 409, "a duplicate: {reply:?}");
    let refused =
        json!({"token": dan.access_token, "st": dan.session_token, "rt": dan.refresh_token});
    let reply =
        seen.keep("add refused", c.send(admin("POST", "/api/tokens", s, Some(&refused))).await);
    assert_eq!(reply.json()["error"]["code"], "token_refused", "{reply:?}");
    let bob_id = gw.layer.engine().with_pool(|p| {
        p.records().find(|r| r.email.as_deref() == Some("bob@example.com")).unwrap().id.0
    });
    for (what, path) in [
        ("test", format!("/api/tokens/{cleo_id}/test")),
        ("refresh by ST", format!("/api/tokens/{cleo_id}/refresh")),
        ("refresh by RT", format!("/api/tokens/{bob_id}/refresh")),
    ] {
        let reply = seen.keep(what, c.send(admin("POST", &path, s, None)).await);
        assert_eq!(reply.status, 200, "{what}: {reply:?}");
    }
    assert_eq!(sim_requests(&sim, "/oauth/token").len(), 1, "Bob's RT was used");
    let reply = seen.keep(
        "add key",
        c.send(admin("POST", "/api/admin/apikeys", s, Some(&json!({"key": NEW_KEY})))).await,
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    seen.keep("keys", c.send(admin("GET", "/api/admin/apikeys", s, None)).await);
    seen.keep("config", c.send(admin("GET", "/api/admin/config", s, None)).await);

    // --- the client API ---
    let reply = seen.keep("wrong key", c.send(get_with("/v1/models", WRONG_KEY)).await);
    assert_eq!(reply.status, 401);
    let wrong = Request::post("/v1/videos/generate")
        .header("authorization", format!("Bearer {WRONG_KEY}"))
        .body(Full::from(json!({"prompt": "A cat"}).to_string()))
        .unwrap();
    assert_eq!(seen.keep("wrong key", c.send(wrong).await).status, 401);
    assert_eq!(seen.keep("new key", c.send(get_with("/v1/models", NEW_KEY)).await).status, 200);

    let image =
        seen.keep("image", c.post("/v1/images/generate", &json!({"prompt": "A cat"})).await);
    assert_eq!(image.status, 200, "{image:?}");
    task_ids.push(image.task_id());
    let stream = json!({"prompt": "A cat", "stream": true});
    let reply = seen.keep("video", c.post("/v1/videos/generate", &stream).await);
    assert_eq!(reply.status, 200, "{reply:?}");
    task_ids.push(reply.task_id());
    // 429: the task moves to another token.
    let rotated = json!({"prompt": "A dog #fail=429", "stream": true});
    let reply = seen.keep("429", c.post("/v1/videos/generate", &rotated).await);
    assert!(reply.chunks().last().unwrap().to_string().contains("<video"), "{reply:?}");
    task_ids.push(reply.task_id());
    // 401: the token is refreshed and the task finishes.
    let refreshes =
        sim_requests(&sim, "/api/auth/session").len() + sim_requests(&sim, "/oauth/token").len();
    let invalid = json!({"prompt": "A bird #fail=401", "async_mode": true});
    let reply = seen.keep("401", c.post("/v1/videos/generate", &invalid).await);
    let id = reply.task_id();
    let task = gw.finished_task(&id).await;
    assert_eq!(task["status"], "completed", "{task}");
    let url = task["result_urls"][0].as_str().unwrap().to_owned();
    seen.keep("result file", c.fetch(&url).await);
    seen.keep("task", c.get(&format!("/v1/tasks/{id}")).await);
    task_ids.push(id);
    let after =
        sim_requests(&sim, "/api/auth/session").len() + sim_requests(&sim, "/oauth/token").len();
    assert_eq!(after, refreshes + 1, "the 401 was refreshed");
    let statuses: Vec<_> = sim_creates(&sim).iter().map(|r| r.status).collect();
    assert!(statuses.contains(&Some(429)) && statuses.contains(&Some(401)), "{statuses:?}");
    // A content violation.
    let reply = seen
        .keep("policy", c.post("/v1/videos/generate", &json!({"prompt": "A fox #policy"})).await);
    let error = assert_envelope(&reply, 400, "invalid_request_error");
    assert_eq!(error["code"], "content_policy_violation");
    task_ids.push(reply.task_id());
    // 401 again after the refresh: the token is disabled, another one finishes; a test of the
    // disabled token finds it valid again.
    let invalid = json!({"prompt": "A cow #fail=401x2", "async_mode": true});
    let id = seen.keep("401x2", c.post("/v1/videos/generate", &invalid).await).task_id();
    assert_eq!(gw.finished_task(&id).await["status"], "completed");
    task_ids.push(id);
    let disabled = gw.layer.engine().with_pool(|p| {
        p.records().find(|r| r.state.is_disabled()).map(|r| r.id.0).expect("a disabled token")
    });
    let path = format!("/api/tokens/{disabled}/test");
    let reply = seen.keep("test disabled", c.send(admin("POST", &path, s, None)).await);
    assert_eq!(reply.json()["status"], "success", "{reply:?}");
    seen.keep("stats", c.send(admin("GET", "/api/stats", s, None)).await);
    seen.keep("list", c.send(admin("GET", "/api/tokens", s, None)).await);

    // A line logged on purpose, from a driver-like task and from the blocking pool, so the
    // search below is known to see every thread.
    let canary = format!("{}.{}", "eyJhbGciOiJIUzI1NiJ9.e30", "canary-signature-5e1f0b77d2");
    let tail = canary.rsplit('.').next().unwrap().to_owned();
    let logged = tail.clone();
    tokio::spawn(async move { tracing::info!(token = %logged, "deliberate leak from a task") })
        .await
        .unwrap();
    let logged = tail.clone();
    tokio::task::spawn_blocking(move || tracing::trace!("{logged}: deliberate leak, blocking"))
        .await
        .unwrap();

    // --- every secret involved ---
    let mut secrets =
        vec![ADMIN_PASSWORD.to_owned(), KEY.to_owned(), NEW_KEY.to_owned(), WRONG_KEY.to_owned()];
    for account in [&ada, &bob, &cleo, &dan] {
        secrets.push(account.access_token.clone());
        secrets.extend(account.session_token.clone());
        secrets.extend(account.refresh_token.clone());
    }
    let pool: Vec<(String, Option<String>, Option<String>)> = gw.layer.engine().with_pool(|p| {
        let expose = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_owned());
        p.records()
            .map(|r| {
                (
                    r.access_token.expose().to_owned(),
                    expose(&r.session_token),
                    expose(&r.refresh_token),
                )
            })
            .collect()
    });
    assert_eq!(pool.len(), 3);
    for (at, st, rt) in &pool {
        secrets.push(at.clone());
        secrets.extend(st.clone());
        secrets.extend(rt.clone());
    }
    let minted = [&ada, &bob, &cleo].map(|a| a.access_token.clone());
    let refreshed: Vec<&String> =
        pool.iter().map(|(at, _, _)| at).filter(|at| !minted.contains(at)).collect();
    assert!(refreshed.len() >= 2, "Cleo's and Bob's tokens were refreshed: {refreshed:?}");
    let bob_rt = gw
        .layer
        .engine()
        .with_pool(|p| p.get(TokenId(bob_id)).unwrap().refresh_token.clone().unwrap());
    assert_ne!(Some(bob_rt.expose()), bob.refresh_token.as_deref(), "Bob's RT was rotated");
    secrets.extend(sim.with_sim(|s| credentials_sent(s.requests())));
    secrets.sort();
    secrets.dedup();
    assert!(secrets.iter().all(|s| s.len() >= KEY.len()), "{secrets:?}");

    // --- the search ---
    let logs_text = log_text();
    assert!(!logs_text.is_empty(), "nothing was logged");
    assert!(holds(&logs_text, &canary), "the capture misses lines logged by tasks");
    assert_eq!(logs_text.matches(tail.as_str()).count(), 2, "both deliberate lines are kept");
    assert!(
        !holds(&logs_text, "eyJ0.never-logged-at-all-a81c"),
        "the search finds what is not there"
    );
    // A masked form that shows most of a short key gives it away; a short prefix does not.
    assert!(holds("key: han123…fe689398", "han1234") && holds("x han1234 y", "han1234"));
    assert!(!holds("key: h…fe689398", "han1234") && !holds("eyJhbG…a7192a6c", &canary));
    for id in &task_ids {
        assert!(logs_text.contains(id.as_str()), "the logs name task {id}");
    }
    assert!(logs_text.contains("admin action"), "the admin API's lines are kept");

    // The session may be shown once: in the login answer.
    secrets.push(session.clone());
    for secret in &secrets {
        if holds(&logs_text, secret) {
            let lines: Vec<&str> = logs_text.lines().filter(|l| holds(l, secret)).collect();
            panic!("the logs hold a secret: {lines:#?}");
        }
    }

    let seen = seen.0.lock().unwrap();
    assert!(seen.len() > 20, "{}", seen.len());
    for (what, text) in seen.iter() {
        for secret in &secrets {
            if *what == "login" && *secret == session {
                assert!(holds(text, secret), "the responses are searched: {text}");
                continue;
            }
            assert!(!holds(text, secret), "the {what} response holds a secret: {text}");
        }
    }
    assert_eq!(gw.layer.engine().with_pool(|p| p.total_in_flight()), 0, "every lease released");
}
