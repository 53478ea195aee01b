//! The admin API against the in-process simulated backend, on virtual time.
//!
//! Every response of every test is kept, and each test ends by checking that no secret (an
//! access, session or refresh token, an API key, the admin password, a proxy or PoW service
//! credential) appears in any of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use serde_json::{json, Value};
use sora2api_core::machine::MachineConfig;
use sora2api_core::pool::{
    DisableReason, PoolConfig, Strategy, TokenId, TokenPool, TokenRecord, TokenState,
};
use sora2api_core::request::ClientCall;
use sora2api_core::sim::{
    mint_offline_token, AccountSpec, MintedAccount, Sim, SimConfig, Sora2Access, Timings,
};
use sora2api_core::task::Event;
use sora2api_core::translate::{self, Limits};
use sora2api_core::upstream::{TransportError, UpstreamConfig, UpstreamReply, UpstreamRequest};
use sora2api_core::Error;
use sora2api_tower::engine::PowMode;
use sora2api_tower::sim_upstream::SimUpstream;
use sora2api_tower::{
    clock, Admin, AdminConfig, AdminError, ApiKeys, BoxFuture, BuildError, Engine, EngineConfig,
    FetchError, MemoryStore, MemoryTokenStore, TokenStore, Upstream,
};
use tokio::sync::broadcast;

const SIM: &str = "http://sim.test";
const POW: &str = "http://pow.test:8002";
const PASSWORD: &str = "admin-password-secret";
const CLIENT_KEY: &str = "client-key-secret-0001";

// === the world ===

struct World {
    admin: Admin,
    engine: Engine,
    sim: SimUpstream,
    tokens: Arc<MemoryTokenStore>,
    keys: ApiKeys,
    accounts: Vec<MintedAccount>,
    /// Every response body so far.
    seen: Mutex<Vec<String>>,
    /// Values no response may contain.
    secrets: Mutex<Vec<String>>,
}

struct Setup {
    specs: Vec<AccountSpec>,
    /// Put the accounts' tokens in the token store before the admin API starts.
    preload: bool,
    timings: Option<Timings>,
    session_ttl: Duration,
    wrap: Box<dyn FnOnce(SimUpstream) -> Arc<dyn Upstream>>,
}

impl Setup {
    fn new(specs: Vec<AccountSpec>) -> Self {
        Setup {
            specs,
            preload: true,
            timings: None,
            session_ttl: Duration::from_secs(12 * 3600),
            wrap: Box::new(|sim| Arc::new(sim)),
        }
    }
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        machine: MachineConfig {
            upstream: UpstreamConfig::at_origin(SIM),
            ..MachineConfig::default()
        },
        ..EngineConfig::default()
    }
}

fn new_engine(upstream: Arc<dyn Upstream>) -> Engine {
    let pool = TokenPool::new(PoolConfig {
        strategy: Strategy::RoundRobin,
        max_wait_ms: 3_600_000,
        ..PoolConfig::default()
    });
    Engine::new(engine_config(), upstream, Arc::new(MemoryStore::new()), pool)
}

fn admin_config(ttl: Duration) -> AdminConfig {
    AdminConfig { session_ttl: ttl, ..AdminConfig::new("admin", PASSWORD) }
}

async fn build(setup: Setup) -> World {
    let mut cfg = SimConfig {
        start_ms: clock::now_ms(),
        media_origin: format!("{SIM}/media"),
        accept_offline_tokens: true,
        ..SimConfig::fast()
    };
    if let Some(timings) = setup.timings {
        cfg.instant = false;
        cfg.timings = timings;
    }
    let sim = SimUpstream::new(Sim::new(cfg));
    let accounts: Vec<MintedAccount> =
        setup.specs.iter().map(|spec| sim.with_sim(|s| s.add_account(spec.clone()))).collect();
    let tokens = Arc::new(MemoryTokenStore::new());
    if setup.preload {
        for (i, (account, spec)) in accounts.iter().zip(&setup.specs).enumerate() {
            let mut record = account.token_record(spec.plan == "chatgpt_pro");
            record.id = TokenId(i as u64 + 1);
            tokens.put_token(record).await.unwrap();
        }
    }
    let engine = new_engine((setup.wrap)(sim.clone()));
    let keys = ApiKeys::new([CLIENT_KEY]);
    let admin =
        Admin::new(admin_config(setup.session_ttl), engine.clone(), tokens.clone(), keys.clone())
            .await
            .unwrap();
    let mut secrets = vec![PASSWORD.to_owned(), CLIENT_KEY.to_owned()];
    for a in &accounts {
        secrets.push(a.access_token.clone());
        secrets.extend(a.session_token.clone());
        secrets.extend(a.refresh_token.clone());
    }
    World {
        admin,
        engine,
        sim,
        tokens,
        keys,
        accounts,
        seen: Mutex::new(Vec::new()),
        secrets: Mutex::new(secrets),
    }
}

async fn world(n: usize) -> World {
    let specs = (0..n).map(|i| AccountSpec::pro(&format!("u{i}@example.com"))).collect();
    build(Setup::new(specs)).await
}

impl World {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        session: Option<&str>,
    ) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(session) = session {
            req = req.header("authorization", format!("Bearer {session}"));
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = self.admin.handle(req.body(body).unwrap()).await;
        assert_eq!(response.headers()["content-type"], "application/json");
        let text = String::from_utf8(response.body().to_vec()).unwrap();
        self.seen.lock().unwrap().push(text.clone());
        (response.status().as_u16(), serde_json::from_str(&text).unwrap())
    }

    async fn get(&self, path: &str, session: &str) -> (u16, Value) {
        self.call("GET", path, None, Some(session)).await
    }

    async fn post(&self, path: &str, body: Value, session: &str) -> (u16, Value) {
        self.call("POST", path, Some(body), Some(session)).await
    }

    async fn login(&self) -> String {
        let (status, body) = self
            .call("POST", "/login", Some(json!({"username": "admin", "password": PASSWORD})), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    fn secret(&self, value: &str) {
        self.secrets.lock().unwrap().push(value.to_owned());
    }

    /// The token list, by id.
    async fn token(&self, id: u64, session: &str) -> Value {
        let (status, list) = self.get("/tokens", session).await;
        assert_eq!(status, 200);
        list.as_array().unwrap().iter().find(|t| t["id"] == id).cloned().unwrap_or(Value::Null)
    }

    async fn stored(&self, id: u64) -> Option<TokenRecord> {
        self.tokens.tokens().await.unwrap().into_iter().find(|r| r.id == TokenId(id))
    }

    /// No response contained a secret (nor a password hash).
    fn assert_no_secrets(&self) {
        let seen = self.seen.lock().unwrap();
        assert!(!seen.is_empty());
        for secret in self.secrets.lock().unwrap().iter().filter(|s| s.len() >= 8) {
            for body in seen.iter() {
                assert!(!body.contains(secret.as_str()), "a response leaks a secret: {body}");
            }
        }
        assert!(seen.iter().all(|b| !b.contains("$argon2")), "a response shows the hash");
    }
}

fn assert_error(body: &Value, kind: &str, param: Option<&str>) {
    let error = &body["error"];
    assert_eq!(error["type"], kind, "{body}");
    assert_eq!(error["param"], param.map_or(Value::Null, Value::from), "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(error["code"].is_string(), "{body}");
}

fn call(model: &str, prompt: &str) -> ClientCall {
    let body = json!({"model": model, "messages": [{"role": "user", "content": prompt}]});
    translate::chat(body.to_string().as_bytes(), &Limits::default()).unwrap()
}

async fn drain(mut events: broadcast::Receiver<Event>) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match events.recv().await {
            Ok(event) => seen.push(event),
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return seen,
        }
    }
}

fn count_path(sim: &SimUpstream, path: &str) -> usize {
    sim.with_sim(|s| s.requests().iter().filter(|r| r.path() == path).count())
}

/// Compile-time: the admin API can live in a tower service (shared, `Send` futures).
#[allow(dead_code)]
fn admin_fits_a_tower_service(
    admin: &Admin,
    req: Request<Bytes>,
) -> impl std::future::Future + Send + '_ {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    shared::<Admin>();
    async move {
        admin.handle(req).await;
        let _ = admin.save_tokens().await;
        admin.refresh_expiring(0).await;
    }
}

// === login and sessions ===

#[tokio::test(start_paused = true)]
async fn login_logout_and_bad_credentials() {
    let w = world(0).await;
    let session = w.login().await;
    assert!(session.starts_with("admin-") && session.len() == 49, "{session}");

    for (user, password) in [("admin", "wrong"), ("root", PASSWORD), ("", "")] {
        let (status, body) = w
            .call("POST", "/login", Some(json!({"username": user, "password": password})), None)
            .await;
        assert_eq!(status, 401, "{body}");
        assert_error(&body, "authentication_error", None);
        assert_eq!(body["error"]["message"], "Invalid credentials");
    }
    let (status, body) = w.call("GET", "/stats", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "Missing authorization header");
    let (status, body) = w.get("/stats", "admin-not-a-session").await;
    assert_eq!(status, 401);
    assert_error(&body, "authentication_error", None);

    // The raw token without "Bearer" is accepted too.
    let req = Request::builder().uri("/stats").header("authorization", session.as_str());
    let response = w.admin.handle(req.body(Bytes::new()).unwrap()).await;
    assert_eq!(response.status(), 200);

    let (status, body) = w.post("/logout", json!({}), &session).await;
    assert_eq!((status, &body["success"]), (200, &json!(true)));
    assert_eq!(w.get("/stats", &session).await.0, 401, "logged out");
    w.assert_no_secrets();
}

#[tokio::test(start_paused = true)]
async fn sessions_expire() {
    let setup = Setup { session_ttl: Duration::from_secs(60), ..Setup::new(vec![]) };
    let w = build(setup).await;
    let session = w.login().await;
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(w.get("/stats", &session).await.0, 200);
    tokio::time::advance(Duration::from_secs(1)).await;
    let (status, body) = w.get("/stats", &session).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "Invalid or expired token");
    w.assert_no_secrets();
}

#[tokio::test(start_paused = true)]
async fn password_change_ends_every_session_and_is_stored_hashed() {
    let w = world(0).await;
    let (a, b) = (w.login().await, w.login().await);
    let new_password = "new-admin-password-secret";
    w.secret(new_password);
    let (status, body) = w
        .post("/admin/password", json!({"old_password": "wrong", "new_password": new_password}), &a)
        .await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("old_password"));
    let (status, body) =
        w.post("/admin/password", json!({"old_password": PASSWORD, "new_password": ""}), &a).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("new_password"));
    let (status, _) = w
        .post(
            "/admin/password",
            json!({"old_password": PASSWORD, "new_password": new_password, "username": "boss"}),
            &a,
        )
        .await;
    assert_eq!(status, 200);
    for old in [&a, &b] {
        assert_eq!(w.get("/stats", old).await.0, 401, "every session ended");
    }
    let login = |user: &'static str, password: &'static str| {
        w.call("POST", "/login", Some(json!({"username": user, "password": password})), None)
    };
    assert_eq!(login("admin", PASSWORD).await.0, 401);
    assert_eq!(login("admin", new_password).await.0, 401, "the username changed too");
    assert_eq!(login("boss", new_password).await.0, 200);

    let stored = w.tokens.setting("admin.credentials").await.unwrap().unwrap();
    let stored = String::from_utf8(stored).unwrap();
    assert!(stored.contains("$argon2id$"), "{stored}");
    assert!(!stored.contains(new_password) && !stored.contains(PASSWORD), "{stored}");
    w.assert_no_secrets();
}

// === tokens ===

#[tokio::test(start_paused = true)]
async fn add_a_token_with_online_enrichment() {
    let specs = vec![
        AccountSpec::pro("pro@example.com"),
        AccountSpec::free("plus@example.com"),
        AccountSpec { sora2: Sora2Access::Unavailable, ..AccountSpec::free("nosora@example.com") },
        AccountSpec { revoked: true, ..AccountSpec::pro("revoked@example.com") },
    ];
    let w = build(Setup { preload: false, ..Setup::new(specs) }).await;
    let s = w.login().await;
    let [pro, plus, nosora, revoked] = [0, 1, 2, 3].map(|i| w.accounts[i].clone());

    let (status, body) = w
        .post(
            "/tokens",
            json!({"token": pro.access_token, "st": pro.session_token, "rt": pro.refresh_token,
                   "client_id": pro.client_id, "remark": "main", "proxy_url": "socks5://u:proxy-pw-secret@p:1080"}),
            &s,
        )
        .await;
    w.secret("proxy-pw-secret");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "pro@example.com");
    let id = body["token_id"].as_u64().unwrap();
    assert!(count_path(&w.sim, "/backend/me") >= 1, "enriched online");

    let view = w.token(id, &s).await;
    assert_eq!(view["plan_type"], "chatgpt_pro");
    assert_eq!(view["pro"], true);
    assert_eq!(view["video_enabled"], true);
    assert_eq!(
        (view["image_concurrency"].clone(), view["video_concurrency"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(view["remark"], "main");
    assert_eq!(view["proxy_url"], "socks5://***@p:1080");
    assert!(view["token"].as_str().unwrap().starts_with("eyJ"));
    assert!(view["expiry_time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(view["state"], "active");
    let stored = w.stored(id).await.expect("written to the store at once");
    assert_eq!(stored.access_token.expose(), pro.access_token);
    assert_eq!(stored.email.as_deref(), Some("pro@example.com"));
    assert_eq!(w.engine.with_pool(|p| p.get(TokenId(id)).map(|r| r.pro)), Some(true));

    let (status, body) = w.post("/tokens", json!({"token": plus.access_token}), &s).await;
    assert_eq!(status, 200, "{body}");
    let plus_id = body["token_id"].as_u64().unwrap();
    assert_eq!(w.token(plus_id, &s).await["pro"], false);
    let (status, body) = w.post("/tokens", json!({"token": nosora.access_token}), &s).await;
    assert_eq!(status, 200, "{body}");
    let nosora_view = w.token(body["token_id"].as_u64().unwrap(), &s).await;
    assert_eq!(nosora_view["video_enabled"], false, "no Sora 2: no video work");

    let (status, body) = w.post("/tokens", json!({"token": pro.access_token}), &s).await;
    assert_eq!(status, 409, "{body}");
    assert_error(&body, "invalid_request_error", Some("token"));
    let (status, body) = w.post("/tokens", json!({"token": "not-a-jwt"}), &s).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("token"));
    let (status, body) = w.post("/tokens", json!({}), &s).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("token"));
    let (status, body) = w.post("/tokens", json!({"token": revoked.access_token}), &s).await;
    assert_eq!(status, 400, "the upstream refuses it: {body}");
    assert_eq!(body["error"]["code"], "token_refused");
    let (status, body) =
        w.post("/tokens", json!({"token": plus.access_token, "proxy_url": "ftp://x"}), &s).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("proxy_url"));
    assert_eq!(w.tokens.tokens().await.unwrap().len(), 3);
    w.assert_no_secrets();
}

#[tokio::test(start_paused = true)]
async fn import_in_every_mode_upserts_by_email() {
    let specs = vec![
        AccountSpec::pro("at@example.com"),
        AccountSpec::pro("st@example.com"),
        AccountSpec::pro("rt@example.com"),
    ];
    let w = build(Setup { preload: false, ..Setup::new(specs) }).await;
    let s = w.login().await;
    let [at, st, rt] = [0, 1, 2].map(|i| w.accounts[i].clone());
    let now = clock::now_ms();
    let seed = w.sim.with_sim(|sim| sim.config().seed);
    let offline = mint_offline_token(seed, "off@example.com", "chatgpt_plus", now, now + 3_600_000);
    w.secret(&offline);

    let before = w.sim.with_sim(|sim| sim.requests().len());
    let (status, body) = w
        .post("/tokens/import", json!({"mode": "offline", "tokens": [{"email": "off@example.com", "access_token": offline}]}), &s)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["added"].clone(), body["failed"].clone()), (json!(1), json!(0)));
    assert_eq!(w.sim.with_sim(|sim| sim.requests().len()), before, "offline: no upstream call");

    let (status, body) = w
        .post("/tokens/import", json!({"mode": "at", "tokens": [{"email": "at@example.com", "access_token": at.access_token}]}), &s)
        .await;
    assert_eq!((status, body["added"].clone()), (200, json!(1)), "{body}");
    let at_id = body["results"][0]["token_id"].as_u64().unwrap();
    assert_eq!(w.token(at_id, &s).await["plan_type"], "chatgpt_pro", "enriched");

    let (status, body) = w
        .post("/tokens/import", json!({"mode": "st", "tokens": [{"email": "st@example.com", "session_token": st.session_token}]}), &s)
        .await;
    assert_eq!((status, body["added"].clone()), (200, json!(1)), "{body}");
    let st_id = body["results"][0]["token_id"].as_u64().unwrap();
    let st_record = w.stored(st_id).await.unwrap();
    assert_ne!(st_record.access_token.expose(), st.access_token, "a fresh AT from the ST");
    w.secret(st_record.access_token.expose());

    let (status, body) = w
        .post("/tokens/import", json!({"mode": "rt", "tokens": [{"email": "rt@example.com", "refresh_token": rt.refresh_token, "client_id": rt.client_id}]}), &s)
        .await;
    assert_eq!((status, body["added"].clone()), (200, json!(1)), "{body}");
    let rt_id = body["results"][0]["token_id"].as_u64().unwrap();
    let rt_record = w.stored(rt_id).await.unwrap();
    let rotated = rt_record.refresh_token.clone().unwrap();
    assert_ne!(Some(rotated.expose()), rt.refresh_token.as_deref(), "the rotated RT is kept");
    w.secret(rotated.expose());
    w.secret(rt_record.access_token.expose());

    // The same email again: updated in place, id kept.
    let (status, body) = w
        .post("/tokens/import", json!({"mode": "at", "tokens": [
            {"email": "AT@example.com", "access_token": at.access_token, "remark": "again", "is_active": false},
            {"access_token": at.access_token},
            {"email": "bad@example.com", "access_token": "garbage"},
        ]}), &s)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["added"].clone(), body["updated"].clone(), body["failed"].clone()),
        (json!(0), json!(1), json!(2))
    );
    assert_eq!(body["results"][0]["token_id"], at_id);
    assert_eq!(body["results"][1]["status"], "failed");
    assert!(body["results"][2]["error"].as_str().unwrap().contains("access_token"), "{body}");
    let view = w.token(at_id, &s).await;
    assert_eq!(
        (view["remark"].clone(), view["state"].clone()),
        (json!("again"), json!("disabled"))
    );
    assert_eq!(view["disabled_reason"], "manual");

    let (status, body) = w.post("/tokens/import", json!({"mode": "json", "tokens": []}), &s).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("mode"));
    let (status, body) = w.post("/tokens/import", json!({"mode": "at"}), &s).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("tokens"));
    assert_eq!(w.tokens.tokens().await.unwrap().len(), 4);
    w.assert_no_secrets();
}

#[tokio::test(start_paused = true)]
async fn update_enable_disable_and_delete() {
    let w = world(2).await;
    let s = w.login().await;
    let view = w.token(1, &s).await;
    assert_eq!(view["email"], "u0@example.com", "loaded from the store");

    let (status, body) = w
        .call(
            "PUT",
            "/tokens/1",
            Some(json!({"remark": "edited", "image_concurrency": 2, "video_concurrency": -1,
            "proxy_url": "http://u:pw-secret-2@proxy:8080", "image_enabled": false})),
            Some(&s),
        )
        .await;
    w.secret("pw-secret-2");
    assert_eq!(status, 200, "{body}");
    let view = w.token(1, &s).await;
    assert_eq!(view["remark"], "edited");
    assert_eq!(
        (view["image_concurrency"].clone(), view["video_concurrency"].clone()),
        (json!(2), json!(-1))
    );
    assert_eq!(view["image_enabled"], false);
    let stored = w.stored(1).await.unwrap();
    assert_eq!(stored.proxy_url.as_deref(), Some("http://u:pw-secret-2@proxy:8080"));
    assert_eq!(stored.image_concurrency, Some(2));

    // What a GET showed, posted back, changes nothing; "" clears.
    let (status, _) = w
        .call("PUT", "/tokens/1", Some(json!({"token": view["token"], "st": view["st"], "rt": view["rt"], "proxy_url": view["proxy_url"]})), Some(&s))
        .await;
    assert_eq!(status, 200);
    let stored = w.stored(1).await.unwrap();
    assert_eq!(stored.access_token.expose(), w.accounts[0].access_token);
    assert_eq!(
        stored.session_token.as_ref().map(|t| t.expose().to_owned()),
        w.accounts[0].session_token
    );
    assert_eq!(stored.proxy_url.as_deref(), Some("http://u:pw-secret-2@proxy:8080"));
    w.call("PUT", "/tokens/1", Some(json!({"remark": "", "proxy_url": ""})), Some(&s)).await;
    let stored = w.stored(1).await.unwrap();
    assert_eq!((stored.remark, stored.proxy_url), (None, None));

    // A new access token is checked online and replaces the old one.
    let fresh =
        w.sim.with_sim(|sim| sim.mint_access_token(clock::now_ms(), "u0@example.com")).unwrap();
    w.secret(&fresh);
    let (status, body) = w.call("PUT", "/tokens/1", Some(json!({"token": fresh})), Some(&s)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.stored(1).await.unwrap().access_token.expose(), fresh);
    let (status, body) = w.call("PUT", "/tokens/2", Some(json!({"token": fresh})), Some(&s)).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) =
        w.call("PUT", "/tokens/1", Some(json!({"video_concurrency": "3"})), Some(&s)).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("video_concurrency"));

    let (status, body) = w.post("/tokens/2/disable", json!({}), &s).await;
    assert_eq!((status, body["is_active"].clone()), (200, json!(false)));
    assert_eq!(w.token(2, &s).await["disabled_reason"], "manual");
    assert!(w.stored(2).await.unwrap().state.is_disabled(), "stored at once");
    let (status, _) = w.post("/tokens/2/enable", json!({}), &s).await;
    assert_eq!(status, 200);
    assert_eq!(w.token(2, &s).await["state"], "active");
    let (status, _) =
        w.call("PUT", "/tokens/2/status", Some(json!({"is_active": false})), Some(&s)).await;
    assert_eq!(status, 200);
    assert_eq!(w.token(2, &s).await["is_active"], false);
    let (status, body) = w.call("PUT", "/tokens/2/status", Some(json!({})), Some(&s)).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("is_active"));

    let (status, _) = w.call("DELETE", "/tokens/2", None, Some(&s)).await;
    assert_eq!(status, 200);
    assert!(w.stored(2).await.is_none());
    assert!(w.engine.with_pool(|p| p.get(TokenId(2)).is_none()));
    for (method, path) in [
        ("DELETE", "/tokens/2"),
        ("PUT", "/tokens/9"),
        ("POST", "/tokens/9/enable"),
        ("POST", "/tokens/9/test"),
        ("POST", "/tokens/9/refresh"),
    ] {
        let (status, body) = w.call(method, path, Some(json!({})), Some(&s)).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "token_not_found");
    }
    w.assert_no_secrets();
}

#[tokio::test(start_paused = true)]
async fn test_and_refresh_a_token() {
    let specs = vec![
        AccountSpec::pro("good@example.com"),
        AccountSpec {
            with_session_token: false,
            with_refresh_token: false,
            ..AccountSpec::pro("bare@example.com")
        },
        AccountSpec::pro("refreshable@example.com"),
    ];
    let w = build(Setup::new(specs)).await;
    let s = w.login().await;

    let (status, body) = w.post("/tokens/1/test", json!({}), &s).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["status"].clone(), body["email"].clone()),
        (json!("success"), json!("good@example.com"))
    );

    // Revoked without ST/RT: the test disables it as invalid.
    w.sim.with_sim(|sim| sim.account_mut("bare@example.com").unwrap().revoked = true);
    let (status, body) = w.post("/tokens/2/test", json!({}), &s).await;
    assert_eq!((status, body["status"].clone()), (200, json!("failed")), "{body}");
    assert_eq!(w.token(2, &s).await["disabled_reason"], "token_invalid");
    assert!(w.stored(2).await.unwrap().state.is_disabled());
    let (status, body) = w.post("/tokens/2/refresh", json!({}), &s).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "no_refresh_material");

    // A forced refresh: a new AT (and the rotated RT) stored at once.
    let old = w.stored(3).await.unwrap();
    let (status, body) = w.post("/tokens/3/refresh", json!({}), &s).await;
    assert_eq!(status, 200, "{body}");
    let new = w.stored(3).await.unwrap();
    assert_ne!(new.access_token, old.access_token);
    w.secret(new.access_token.expose());
    assert_eq!(count_path(&w.sim, "/api/auth/session"), 1, "ST first");
    w.assert_no_secrets();
}

// === API keys ===

#[tokio::test(start_paused = true)]
async fn api_keys_are_listed_masked_and_persisted() {
    let w = world(0).await;
    let s = w.login().await;
    let (status, body) = w.get("/admin/apikeys", &s).await;
    assert_eq!(status, 200);
    assert_eq!(body["keys"].as_array().unwrap().len(), 1);
    let second = "client-key-secret-0002";
    w.secret(second);
    let (status, _) = w.post("/admin/apikeys", json!({"key": second}), &s).await;
    assert_eq!(status, 200);
    assert!(w.keys.check(second), "the service sees it at once");
    let (status, body) = w.post("/admin/apikeys", json!({"key": second}), &s).await;
    assert_eq!(status, 409);
    assert_error(&body, "invalid_request_error", Some("key"));
    let (status, body) = w.post("/admin/apikeys", json!({"key": ""}), &s).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("key"));

    let (_, body) = w.get("/admin/apikeys", &s).await;
    let fingerprint = body["keys"][1]["fingerprint"].as_str().unwrap().to_owned();
    let (status, _) =
        w.call("DELETE", &format!("/admin/apikeys/{fingerprint}"), None, Some(&s)).await;
    assert_eq!(status, 200);
    assert!(!w.keys.check(second));
    let (status, body) =
        w.call("DELETE", &format!("/admin/apikeys/{fingerprint}"), None, Some(&s)).await;
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("api_key_not_found")));
    let (status, _) = w.post("/admin/apikeys/delete", json!({"key": CLIENT_KEY}), &s).await;
    assert_eq!(status, 200);
    assert!(w.keys.is_empty());

    let third = "client-key-secret-0003";
    w.secret(third);
    w.post("/admin/apikeys", json!({"key": second}), &s).await;
    let (status, _) = w.post("/admin/apikey", json!({"new_api_key": third}), &s).await;
    assert_eq!(status, 200);
    assert!(w.keys.check(third) && !w.keys.check(second) && w.keys.len() == 1, "replaced all");
    let stored = w.tokens.setting("admin.api_keys").await.unwrap().unwrap();
    let stored: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored["keys"], json!([third]));
    w.assert_no_secrets();
}

// === settings ===

#[tokio::test(start_paused = true)]
async fn settings_are_checked_applied_and_stored() {
    let w = world(0).await;
    let s = w.login().await;
    let (status, body) = w.get("/admin/config", &s).await;
    assert_eq!(status, 200);
    assert_eq!(body["image_timeout"], 300);
    assert_eq!(body["poll_interval"], 2.5);
    assert_eq!(body["call_mode"], "polling", "seeded from the running pool");
    assert_eq!(body["admin_username"], "admin");

    for (path, json, param) in [
        ("/admin/config", json!({"error_ban_threshold": "3"}), "error_ban_threshold"),
        ("/admin/config", json!({"task_max_retries": 99}), "task_max_retries"),
        ("/admin/config", json!({"call_mode": "sticky"}), "call_mode"),
        ("/generation/timeout", json!({"video_timeout": 10}), "video_timeout"),
        ("/call-logic/config", json!({"poll_interval": -1}), "poll_interval"),
        ("/proxy/config", json!({"proxy_url": "gopher://x"}), "proxy_url"),
        ("/pow/config", json!({"mode": "external", "server_url": ""}), "server_url"),
    ] {
        let (status, body) = w.post(path, json, &s).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_error(&body, "invalid_request_error", Some(param));
    }
    assert_eq!(w.engine.machine_config().image_timeout_ms, 300_000, "nothing applied");

    let (status, body) = w
        .post("/admin/config", json!({"error_ban_threshold": 7, "task_max_retries": 1, "poll_interval": 1.5, "call_mode": "default"}), &s)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["error_ban_threshold"], 7);
    let (status, body) = w
        .post("/generation/timeout", json!({"image_timeout": 600, "video_timeout": 1200}), &s)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["video_timeout"], 1200);
    let machine = w.engine.machine_config();
    assert_eq!((machine.max_retries, machine.poll_interval_ms), (1, 1_500));
    assert_eq!((machine.image_timeout_ms, machine.video_timeout_ms), (600_000, 1_200_000));
    let pool = w.engine.with_pool(|p| p.config().clone());
    assert_eq!((pool.error_threshold, pool.strategy), (7, Strategy::Random));
    let (_, body) = w.post("/call-logic/config", json!({"polling_mode_enabled": true}), &s).await;
    assert_eq!(body["config"]["call_mode"], "polling");
    assert_eq!(w.engine.with_pool(|p| p.config().strategy), Strategy::RoundRobin);

    let (status, body) = w
        .post(
            "/proxy/config",
            json!({"proxy_enabled": true, "proxy_url": "socks5h://u:global-pw-secret@gw:1080"}),
            &s,
        )
        .await;
    w.secret("global-pw-secret");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["proxy_url"], "socks5h://***@gw:1080");
    assert_eq!(w.sim.global_proxy().as_deref(), Some("socks5h://u:global-pw-secret@gw:1080"));
    let (_, body) = w.post("/proxy/config", json!({"proxy_enabled": false}), &s).await;
    assert_eq!(body["proxy_enabled"], false);
    assert_eq!(w.sim.global_proxy(), None, "disabled: direct");

    let pow_key = "pow-api-key-secret";
    w.secret(pow_key);
    let (status, body) = w
        .post("/pow/config", json!({"mode": "external", "server_url": POW, "api_key": pow_key, "use_token_for_pow": true}), &s)
        .await;
    assert_eq!(status, 200, "{body}");
    let pow = w.engine.pow_service();
    assert_eq!(
        (pow.mode, pow.server_url.as_str(), pow.api_key.expose()),
        (PowMode::External, POW, pow_key)
    );
    let (_, body) = w.get("/pow/config", &s).await;
    assert_eq!(body["config"]["mode"], "external");
    assert!(body["config"]["api_key"].as_str().unwrap().contains('…'));

    let stored = w.tokens.setting("admin.settings").await.unwrap().unwrap();
    let stored: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored["image_timeout_ms"], 600_000);
    assert_eq!(stored["pow_mode"], "external");
    w.assert_no_secrets();
}

#[tokio::test(start_paused = true)]
async fn a_settings_change_applies_to_the_next_task() {
    let w = world(1).await;
    let s = w.login().await;
    let (status, _) = w.post("/admin/config", json!({"task_retry_enabled": false}), &s).await;
    assert_eq!(status, 200);
    let submitted = w.engine.submit(call("gpt-image", "A cat #fail=500x1")).await.unwrap();
    let events = drain(submitted.events).await;
    assert!(matches!(events.last(), Some(Event::Failed(_))), "no retry: {events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Retrying { .. })));

    let (status, _) = w
        .post("/admin/config", json!({"task_retry_enabled": true, "task_max_retries": 2}), &s)
        .await;
    assert_eq!(status, 200);
    let submitted = w.engine.submit(call("gpt-image", "A dog #fail=500x1")).await.unwrap();
    let events = drain(submitted.events).await;
    assert!(events.iter().any(|e| matches!(e, Event::Retrying { .. })), "{events:?}");
    assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");
    w.assert_no_secrets();
}

// === stats, persistence, refresh ===

#[tokio::test(start_paused = true)]
async fn stats_and_save_tokens_follow_the_pool() {
    let w = world(2).await;
    let s = w.login().await;
    assert_eq!(w.admin.save_tokens().await.unwrap(), 0, "nothing changed yet");
    let submitted = w.engine.submit(call("gpt-image", "A cat")).await.unwrap();
    assert!(matches!(drain(submitted.events).await.last(), Some(Event::Completed(_))));
    w.post("/tokens/2/disable", json!({}), &s).await;

    let (status, body) = w.get("/stats", &s).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"total_tokens": 2, "active_tokens": 1, "total_images": 1, "total_videos": 0,
               "today_images": 1, "today_videos": 0, "total_errors": 0, "today_errors": 0})
    );
    assert_eq!(w.admin.save_tokens().await.unwrap(), 1, "the token that ran the task");
    let images: u64 = w.tokens.tokens().await.unwrap().iter().map(|r| r.stats.image_count).sum();
    assert_eq!(images, 1);
    assert_eq!(w.admin.save_tokens().await.unwrap(), 0);
    w.assert_no_secrets();
}

#[tokio::test(start_paused = true)]
async fn tokens_close_to_expiry_are_refreshed_and_stored() {
    let specs = vec![
        AccountSpec { expires_in_ms: 3_600_000, ..AccountSpec::pro("soon@example.com") },
        AccountSpec::pro("later@example.com"),
        AccountSpec {
            expires_in_ms: 3_600_000,
            with_session_token: false,
            ..AccountSpec::pro("dead@example.com")
        },
        AccountSpec { expires_in_ms: 0, ..AccountSpec::pro("expired@example.com") },
    ];
    let w = build(Setup::new(specs)).await;
    w.sim.with_sim(|sim| sim.account_mut("dead@example.com").unwrap().revoked = true);
    w.engine.with_pool(|p| p.disable(TokenId(4), DisableReason::Expired));
    let old = w.stored(1).await.unwrap();
    assert_eq!(w.admin.refresh_expiring(24 * 3_600_000).await, 2);
    assert_eq!(
        w.stored(4).await.unwrap().state,
        TokenState::Active,
        "a token disabled as expired comes back with a fresh access token"
    );
    let new = w.stored(1).await.unwrap();
    assert_ne!(new.access_token, old.access_token, "stored at once");
    assert!(new.expires_at_ms > old.expires_at_ms);
    assert_eq!(w.stored(2).await.unwrap().access_token.expose(), w.accounts[1].access_token);
    let oauth = count_path(&w.sim, "/oauth/token");
    assert_eq!(oauth, 1, "the revoked one was tried once");
    assert_eq!(w.admin.refresh_expiring(24 * 3_600_000).await, 0);
    assert_eq!(count_path(&w.sim, "/oauth/token"), oauth, "not retried within 15 minutes");
    tokio::time::advance(Duration::from_secs(16 * 60)).await;
    assert_eq!(w.admin.refresh_expiring(24 * 3_600_000).await, 0);
    assert_eq!(count_path(&w.sim, "/oauth/token"), oauth + 1, "tried again later");
}

#[tokio::test(start_paused = true)]
async fn stored_settings_keys_and_tokens_win_on_restart() {
    let w = world(1).await;
    let s = w.login().await;
    w.post("/generation/timeout", json!({"image_timeout": 900}), &s).await;
    w.post("/admin/apikey", json!({"new_api_key": "stored-key-secret"}), &s).await;
    w.secret("stored-key-secret");

    // A new process: same token store, other configuration, empty pool.
    let engine = new_engine(Arc::new(w.sim.clone()));
    let keys = ApiKeys::new(["config-key-secret"]);
    let cfg = AdminConfig::new("admin", "a-different-password");
    let admin = Admin::new(cfg, engine.clone(), w.tokens.clone(), keys.clone()).await.unwrap();
    assert!(keys.check("stored-key-secret") && !keys.check("config-key-secret"));
    assert_eq!(engine.machine_config().image_timeout_ms, 900_000);
    assert_eq!(engine.with_pool(|p| p.records().count()), 1);
    let login = |password: &str| {
        let body = json!({"username": "admin", "password": password}).to_string();
        admin.handle(Request::post("/login").body(Bytes::from(body)).unwrap())
    };
    assert_eq!(login(PASSWORD).await.status(), 200, "the stored password wins");
    assert_eq!(login("a-different-password").await.status(), 401);

    let empty = Admin::new(
        AdminConfig::new("admin", ""),
        new_engine(Arc::new(w.sim.clone())),
        Arc::new(MemoryTokenStore::new()),
        ApiKeys::default(),
    )
    .await;
    assert_eq!(empty.map(|_| ()), Err(AdminError::EmptyCredentials));
    w.assert_no_secrets();
}

// === tasks ===

#[tokio::test(start_paused = true)]
async fn cancel_stops_the_task_and_releases_its_token() {
    let setup = Setup {
        timings: Some(Timings::observed()),
        ..Setup::new(vec![AccountSpec::pro("a@example.com")])
    };
    let w = build(setup).await;
    let s = w.login().await;
    let submitted = w.engine.submit(call("sora2-landscape-10s", "A slow cat")).await.unwrap();
    let mut events = submitted.events;
    loop {
        if let Event::VideoProgress { .. } = events.recv().await.unwrap() {
            break;
        }
    }
    assert_eq!(w.engine.with_pool(|p| p.in_flight(TokenId(1))), (0, 1));
    let path = format!("/tasks/{}/cancel", submitted.id);
    let (status, body) = w.post(&path, json!({}), &s).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["success"].clone(), body["stopped"].clone()), (json!(true), json!(true)));
    assert_eq!(w.engine.with_pool(|p| p.in_flight(TokenId(1))), (0, 0), "released");
    let record = w.engine.get(&submitted.id).await.unwrap().unwrap();
    assert_eq!(record.error.map(|e| e.code), Some(Error::Cancelled.code().to_owned()));
    let sent = w.sim.with_sim(|sim| sim.requests().len());
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(w.sim.with_sim(|sim| sim.requests().len()), sent, "no more polling");

    let (status, body) = w.post(&path, json!({}), &s).await;
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("task_finished")));
    let (status, body) =
        w.post("/tasks/task_01jzzzzzzzzzzzzzzzzzzzzzzz/cancel", json!({}), &s).await;
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("task_not_found")), "{body}");
    let (status, body) = w.post("/tasks/not-a-task/cancel", json!({}), &s).await;
    assert_eq!(status, 400);
    assert_error(&body, "invalid_request_error", Some("task_id"));
    w.assert_no_secrets();
}

#[tokio::test(start_paused = true)]
async fn unknown_routes_and_wrong_methods() {
    let w = world(0).await;
    let s = w.login().await;
    let (status, body) = w.get("/nope", &s).await;
    assert_eq!(status, 404);
    assert_error(&body, "invalid_request_error", None);
    let response = w.admin.handle(Request::delete("/stats").body(Bytes::new()).unwrap()).await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
    let (status, _) = w.call("GET", "/login", None, None).await;
    assert_eq!(status, 405);
    let (status, body) = w.call("POST", "/admin/config", None, Some(&s)).await;
    assert_eq!(status, 200, "an empty body changes nothing: {body}");
    let req = Request::post("/tokens").header("authorization", format!("Bearer {s}"));
    let response = w.admin.handle(req.body(Bytes::from_static(b"{not json")).unwrap()).await;
    assert_eq!(response.status(), 400);
    w.assert_no_secrets();
}

// === the external PoW service ===

/// The simulator, plus a PoW service at [`POW`] that records what it is asked.
struct PowDouble {
    sim: SimUpstream,
    asked: Mutex<Vec<UpstreamRequest>>,
    answer: Mutex<Result<UpstreamReply, TransportError>>,
}

impl Upstream for PowDouble {
    fn send(&self, req: UpstreamRequest) -> BoxFuture<'_, Result<UpstreamReply, TransportError>> {
        if req.url.starts_with(POW) {
            self.asked.lock().unwrap().push(req);
            let answer = self.answer.lock().unwrap().clone();
            return Box::pin(std::future::ready(answer));
        }
        self.sim.send(req)
    }

    fn fetch(&self, url: String) -> BoxFuture<'_, Result<Bytes, FetchError>> {
        self.sim.fetch(url)
    }

    fn set_global_proxy(&self, url: Option<&str>) -> Result<(), BuildError> {
        self.sim.set_global_proxy(url)
    }
}

const EXTERNAL_SENTINEL: &str = r#"{"p":"gAAAAABexternal~S","t":"x","c":"external-c","id":"dev-ext","flow":"sora_2_create_task"}"#;

#[tokio::test(start_paused = true)]
async fn external_pow_service_is_asked_and_falls_back_to_local() {
    let double: Arc<Mutex<Option<Arc<PowDouble>>>> = Arc::new(Mutex::new(None));
    let slot = double.clone();
    let setup = Setup {
        wrap: Box::new(move |sim| {
            let reply =
                json!({"sentinel_token": EXTERNAL_SENTINEL, "device_id": "dev-ext"}).to_string();
            let d = Arc::new(PowDouble {
                sim,
                asked: Mutex::new(Vec::new()),
                answer: Mutex::new(Ok(UpstreamReply::json(200, reply))),
            });
            *slot.lock().unwrap() = Some(d.clone());
            d
        }),
        ..Setup::new(vec![AccountSpec::pro("a@example.com")])
    };
    let w = build(setup).await;
    let double = double.lock().unwrap().clone().unwrap();
    let s = w.login().await;

    // Local mode (the default): the service is never asked.
    let submitted = w.engine.submit(call("gpt-image", "A local cat")).await.unwrap();
    assert!(matches!(drain(submitted.events).await.last(), Some(Event::Completed(_))));
    assert!(double.asked.lock().unwrap().is_empty());
    let local_sentinels = count_path(&w.sim, "/backend-api/sentinel/req");
    assert!(local_sentinels >= 1);

    let pow_key = "pow-api-key-secret";
    w.secret(pow_key);
    let (status, _) = w
        .post("/pow/config", json!({"mode": "external", "server_url": POW, "api_key": pow_key, "use_token_for_pow": true}), &s)
        .await;
    assert_eq!(status, 200);
    // Another proxy, so another sentinel cache key: nothing cached for it yet.
    w.call("PUT", "/tokens/1", Some(json!({"proxy_url": "http://proxy.test:3128"})), Some(&s))
        .await;
    let submitted = w.engine.submit(call("gpt-image", "An external cat")).await.unwrap();
    let events = drain(submitted.events).await;
    assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");
    {
        let asked = double.asked.lock().unwrap();
        assert_eq!(asked.len(), 1, "asked once, after the lease");
        let req = &asked[0];
        assert_eq!(req.url, format!("{POW}/api/v1/sora/sentinel-token"));
        assert_eq!(req.header("authorization"), Some(format!("Bearer {pow_key}").as_str()));
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["device_type"], "ios");
        assert_eq!(body["access_token"], w.accounts[0].access_token.as_str(), "use_token_for_pow");
    }
    let first_create = w.sim.with_sim(|sim| {
        sim.requests()
            .iter()
            .filter(|r| r.path() == "/backend/video_gen")
            .nth(1)
            .and_then(|r| r.header("openai-sentinel-token").map(str::to_owned))
    });
    assert_eq!(first_create.as_deref(), Some(EXTERNAL_SENTINEL), "the service's token was sent");

    // The service fails: solved locally, silently.
    *double.answer.lock().unwrap() = Ok(UpstreamReply::json(500, "{}"));
    w.call(
        "PUT",
        "/tokens/1",
        Some(json!({"proxy_url": "http://other-proxy.test:3128"})),
        Some(&s),
    )
    .await;
    let before = count_path(&w.sim, "/backend-api/sentinel/req");
    let submitted = w.engine.submit(call("gpt-image", "A fallback cat")).await.unwrap();
    let events = drain(submitted.events).await;
    assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");
    assert_eq!(double.asked.lock().unwrap().len(), 2);
    assert!(count_path(&w.sim, "/backend-api/sentinel/req") > before, "solved locally");
    w.assert_no_secrets();
}
