//! The admin API (sora-backend.md 7): tokens, API keys, settings, stats and task cancel,
//! behind an admin login.
//!
//! The service routes every request under its admin prefix (default `/api`) here, with the
//! prefix stripped and the body collected: [`Admin::handle`] takes an
//! `http::Request<Bytes>` whose path is relative to the prefix and answers JSON.
//!
//! # Routes
//!
//! Every route but `POST /login` needs `Authorization: Bearer <session>` (the raw session
//! token without `Bearer` is accepted too); without one, or with an unknown or expired one,
//! the answer is 401.
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `POST /login` | `{username, password}` | `{"success":true,"token":"admin-…","message":"Login successful"}` |
//! | `POST /logout` | - | ends this session |
//! | `POST /admin/password` | `{old_password, new_password, username?}` | ends every session |
//! | `GET /tokens` | - | every token, secrets masked |
//! | `POST /tokens` | `{token, st?, rt?, client_id?, proxy_url?, remark?, image_enabled?, video_enabled?, image_concurrency? (1), video_concurrency? (3)}` | enriched online; `{success, message, token_id, email}` |
//! | `POST /tokens/import` | `{tokens:[{email, access_token?, session_token?, refresh_token?, client_id?, proxy_url?, remark?, is_active?, image_enabled?, video_enabled?, image_concurrency?, video_concurrency?}], mode: offline\|at\|st\|rt}` | upsert by email; `{success, message, added, updated, failed, results}` |
//! | `PUT /tokens/{id}` | any field of `POST /tokens` | a new AT is enriched first |
//! | `DELETE /tokens/{id}` | - | removed from the pool and the store |
//! | `POST /tokens/{id}/enable`, `/disable` | - | in or out of service |
//! | `PUT /tokens/{id}/status` | `{is_active}` | the same, as the original's route |
//! | `POST /tokens/{id}/test` | - | the `/me` check and enrichment (5.5) |
//! | `POST /tokens/{id}/refresh` | - | ST -> AT, then RT -> AT, now |
//! | `GET /admin/apikeys` | - | `{keys:[{key (masked), fingerprint}]}` |
//! | `POST /admin/apikeys` | `{key}` | adds a key |
//! | `DELETE /admin/apikeys/{fingerprint}` | - | removes a key |
//! | `POST /admin/apikeys/delete` | `{key}` (or a fingerprint) | removes a key |
//! | `POST /admin/apikey` | `{new_api_key}` | replaces every key with this one |
//! | `GET/POST /admin/config` | `{error_ban_threshold?, task_retry_enabled?, task_max_retries?, poll_interval?, image_timeout?, video_timeout?, call_mode?}` | settings |
//! | `GET/POST /generation/timeout` | `{image_timeout?, video_timeout?}` | seconds: image 60-3600, video 60-7200 |
//! | `GET/POST /call-logic/config` | `{call_mode?, polling_mode_enabled?, poll_interval?}` | token selection, poll interval |
//! | `GET/POST /proxy/config` | `{proxy_enabled?, proxy_url?}` | the global proxy |
//! | `GET/POST /pow/config` | `{mode?, server_url?, api_key?, use_token_for_pow?}` | the PoW service |
//! | `GET /stats` | - | `{total_tokens, active_tokens, total_images, total_videos, today_images, today_videos, total_errors, today_errors}` |
//! | `POST /tasks/{task_id}/cancel` | - | stops the task and releases its token |
//!
//! Failures use the OpenAI error envelope `{"error":{"message","type","param","code"}}`: 400
//! names the param at fault, 401 for a missing or bad session or wrong credentials, 404 for an
//! unknown route, token, key or task, 405 (with `Allow`) for a wrong method, 409 for a
//! duplicate, 502 when the upstream could not be asked, 503 when the token store refused the
//! change (then nothing changed).
//!
//! **Deliberate differences from the original.** Wrong credentials are a 401 (the original
//! answers 200 with `success: false`), so clients and proxies see the failure. Sessions expire
//! ([`AdminConfig::session_ttl`]). The password is stored only as a salted Argon2id hash.
//! Responses never contain an access, session or refresh token, an API key or a proxy
//! password (decisions 17): they are masked (a short prefix and a fingerprint,
//! [`Secret::masked`](sora2api_core::secret::Secret::masked)). A masked value posted back (a
//! UI that round-trips a GET) means "unchanged".
//! An empty string clears an optional token field (`st`, `rt`, `proxy_url`, `remark`); `null`
//! or an absent field leaves it. Cancelling a task really stops it (B2).
//!
//! # Persistence
//!
//! Every change goes to the [`TokenStore`] before it is answered: tokens with
//! [`TokenStore::put_token`], settings, API keys and the credentials as JSON under
//! `admin.settings`, `admin.api_keys` and `admin.credentials`. On the first start these are
//! seeded from [`AdminConfig`], the [`ApiKeys`] given and the engine's running settings; after
//! that the stored values win (sora-backend.md 7.3). Token statistics and states the engine
//! changes (leases, cooldowns, refreshes) are written by [`Admin::save_tokens`], which the
//! embedder calls periodically and at shutdown.

mod reply;
mod routes;
mod session;
mod settings;
mod tokens;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use sora2api_core::lifecycle::refresh_due;
use sora2api_core::pool::{DisableReason, TokenId, TokenRecord, TokenState, DAY_MS};
use sora2api_core::task::TaskId;
use sora2api_core::Error;
use tokio::sync::broadcast::error::RecvError;
use tracing::Instrument;

use self::reply::{Body, Failure};
use self::routes::Route;
use self::session::{PasswordHash, Sessions};
use self::settings::{
    Settings, StoredCredentials, StoredKeys, View, API_KEYS, CREDENTIALS, SETTINGS,
};
use crate::auth::ApiKeys;
use crate::clock;
use crate::engine::Engine;
use crate::store::{StoreError, TokenStore};

/// How long a cancel waits for the task to stop before it answers anyway.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// A token whose ahead-of-expiry refresh was tried is not tried again for this long (an ST
/// may keep handing back an access token that is just as close to expiry).
const REFRESH_RETRY_MS: u64 = 15 * 60 * 1000;

/// The admin API's settings from the embedder's configuration. They seed the store on the
/// first start; after that the stored values win. `Debug` hides the password.
#[derive(Clone)]
pub struct AdminConfig {
    /// The admin username (`global.admin_username`).
    pub username: String,
    /// The admin password in plaintext, as configured (`global.admin_password`). Hashed at
    /// once by [`Admin::new`] (first start) and never kept.
    pub password: String,
    /// How long a login session lasts (default 12 h).
    pub session_ttl: Duration,
    /// The global proxy the upstream was configured with (seeds the proxy setting).
    pub proxy_url: Option<String>,
}

impl AdminConfig {
    /// A configuration with this username and password, 12 h sessions and no global proxy.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        AdminConfig {
            username: username.into(),
            password: password.into(),
            session_ttl: Duration::from_secs(12 * 3600),
            proxy_url: None,
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("session_ttl", &self.session_ttl)
            .field("proxy_url", &self.proxy_url.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Why [`Admin::new`] could not start the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminError {
    /// The configured username or password is empty (checked on the first start, when it is
    /// what gets stored).
    EmptyCredentials,
    /// The token store failed while loading or seeding.
    Store(StoreError),
    /// A stored setting does not parse (its name): fix or remove it in the store.
    CorruptSetting(&'static str),
    /// The OS random source failed, so the password could not be salted.
    NoRandomness,
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::EmptyCredentials => {
                f.write_str("the admin username and password must not be empty")
            }
            AdminError::Store(e) => write!(f, "admin settings could not be loaded: {e}"),
            AdminError::CorruptSetting(name) => write!(f, "stored setting {name} is unreadable"),
            AdminError::NoRandomness => f.write_str("the OS random source is unavailable"),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

/// The admin API. Cheap to clone (an `Arc`); every clone is the same API, so the service can
/// hold one per request future.
#[derive(Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

/// The admin username and password hash.
struct Login {
    username: String,
    hash: PasswordHash,
}

struct Inner {
    engine: Engine,
    store: Arc<dyn TokenStore>,
    keys: ApiKeys,
    session_ttl_ms: u64,
    login: Mutex<Login>,
    sessions: Mutex<Sessions>,
    /// The settings as stored; held while a change is applied and stored, so changes are
    /// applied in the order they are stored.
    settings: tokio::sync::Mutex<Settings>,
    /// Each token as last written to the store; held across every token write, so writes
    /// (admin changes, [`Admin::save_tokens`]) do not interleave.
    saved: tokio::sync::Mutex<HashMap<TokenId, TokenRecord>>,
    /// When each token's ahead-of-expiry refresh was last tried (unix ms).
    refresh_tried: Mutex<HashMap<TokenId, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data: a panic elsewhere leaves it consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs a password hash or check off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

// === impl Admin ===

impl Admin {
    /// Loads the stored credentials, API keys, settings and tokens (seeding each from `cfg`,
    /// `keys` and the engine's running settings when the store has none), applies the
    /// settings to the engine, pool and upstream, and loads the stored tokens into the
    /// engine's pool. Tokens already in the pool are kept and written to the store, unless the
    /// store has a token with the same id (the stored one wins).
    ///
    /// `keys` is the set the service checks: it is replaced by the stored keys, if any.
    pub async fn new(
        cfg: AdminConfig,
        engine: Engine,
        tokens: Arc<dyn TokenStore>,
        keys: ApiKeys,
    ) -> Result<Admin, AdminError> {
        let store = tokens;
        let login = match store.setting(CREDENTIALS).await? {
            Some(bytes) => {
                let stored: StoredCredentials = serde_json::from_slice(&bytes)
                    .map_err(|_| AdminError::CorruptSetting(CREDENTIALS))?;
                let hash = PasswordHash::from_phc(stored.password_hash)
                    .ok_or(AdminError::CorruptSetting(CREDENTIALS))?;
                Login { username: stored.username, hash }
            }
            None => {
                let AdminConfig { username, password, .. } = &cfg;
                if username.trim().is_empty() || password.is_empty() {
                    return Err(AdminError::EmptyCredentials);
                }
                let password = password.clone();
                let hash = blocking(move || PasswordHash::new(&password))
                    .await
                    .and_then(Result::ok)
                    .ok_or(AdminError::NoRandomness)?;
                let login = Login { username: username.trim().to_owned(), hash };
                store.put_setting(CREDENTIALS, credentials_bytes(&login)).await?;
                login
            }
        };
        match store.setting(API_KEYS).await? {
            Some(bytes) => {
                let stored: StoredKeys = serde_json::from_slice(&bytes)
                    .map_err(|_| AdminError::CorruptSetting(API_KEYS))?;
                keys.replace(stored.keys);
            }
            None => store.put_setting(API_KEYS, keys_bytes(&keys)).await?,
        }
        let settings = match store.setting(SETTINGS).await? {
            Some(bytes) => {
                let settings =
                    Settings::from_bytes(&bytes).ok_or(AdminError::CorruptSetting(SETTINGS))?;
                if let Err(error) = engine.upstream().set_global_proxy(settings.global_proxy()) {
                    tracing::warn!(%error, "the stored global proxy could not be applied");
                }
                settings
            }
            None => {
                let machine = engine.machine_config();
                let pool = engine.with_pool(|p| p.config().clone());
                let seeded = Settings::seed(
                    &machine,
                    &pool,
                    &engine.pow_service(),
                    cfg.proxy_url.as_deref(),
                );
                store.put_setting(SETTINGS, seeded.to_bytes()).await?;
                seeded
            }
        };
        settings.apply(&engine);

        let mut saved = HashMap::new();
        for record in store.tokens().await? {
            saved.insert(record.id, record.clone());
            engine.with_pool(|p| p.insert_with_id(record));
        }
        let unsaved: Vec<TokenRecord> = engine
            .with_pool(|p| p.records().filter(|r| !saved.contains_key(&r.id)).cloned().collect());
        for record in unsaved {
            store.put_token(record.clone()).await?;
            saved.insert(record.id, record);
        }
        tracing::info!(tokens = saved.len(), api_keys = keys.len(), "admin API ready");

        Ok(Admin {
            inner: Arc::new(Inner {
                engine,
                store,
                keys,
                session_ttl_ms: u64::try_from(cfg.session_ttl.as_millis()).unwrap_or(u64::MAX),
                login: Mutex::new(login),
                sessions: Mutex::new(Sessions::default()),
                settings: tokio::sync::Mutex::new(settings),
                saved: tokio::sync::Mutex::new(saved),
                refresh_tried: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Answers one admin request; `req.uri().path()` is relative to the admin prefix
    /// (`/login`, `/tokens`, `/tokens/3/enable`, ...). Never fails: every problem is an error
    /// response (see the [module docs](self) for the routes and statuses).
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Bytes> {
        let (parts, body) = req.into_parts();
        let route = match Route::resolve(parts.uri.path()) {
            Some(route) => route,
            None => {
                return Failure::from(Error::RouteNotFound {
                    method: parts.method.to_string(),
                    path: parts.uri.path().chars().take(200).collect(),
                })
                .into_response()
            }
        };
        if !route.allows(&parts.method) {
            return Failure::from(Error::MethodNotAllowed {
                method: parts.method.to_string(),
                allowed: route.allowed(),
            })
            .into_response();
        }
        let span = tracing::info_span!("admin", action = route.action(&parts.method));
        async {
            let result = match route {
                Route::Login => self.login(&body).await,
                route => match self.session(&parts.headers) {
                    Ok(session) => self.dispatch(route, &parts.method, &body, &session).await,
                    Err(failure) => Err(failure),
                },
            };
            match result {
                Ok(response) => {
                    tracing::info!(status = response.status().as_u16(), "admin action");
                    response
                }
                Err(failure) => {
                    tracing::info!(status = failure.status().as_u16(), "admin action refused");
                    failure.into_response()
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Writes every token whose pool record changed since it was last written (statistics,
    /// state, refreshed credentials) to the token store; returns how many were written. The
    /// embedder calls it periodically and at shutdown. A failed write stops the pass; the
    /// tokens not written are tried again next time.
    pub async fn save_tokens(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let mut saved = inner.saved.lock().await;
        let changed: Vec<TokenRecord> = inner
            .engine
            .with_pool(|p| p.records().filter(|r| saved.get(&r.id) != Some(*r)).cloned().collect());
        let mut written = 0;
        for record in changed {
            inner.store.put_token(record.clone()).await?;
            saved.insert(record.id, record);
            written += 1;
        }
        if written > 0 {
            tracing::debug!(written, "tokens saved");
        }
        Ok(written)
    }

    /// Refreshes (ST, then RT; single-flight with the tasks' refreshes through
    /// [`Engine::refresh`]) every token in service (or disabled as expired) whose access
    /// token expires within
    /// `margin_ms` ([`refresh_due`]; decisions 16, B15), writes each refreshed token to the
    /// store at once (a rotated refresh token must not be lost), and returns how many were
    /// refreshed. Tokens without an ST or RT are skipped, and a token tried in the last 15
    /// minutes is not tried again. The embedder calls it on a timer.
    pub async fn refresh_expiring(&self, margin_ms: u64) -> usize {
        let inner = &self.inner;
        let now = clock::now_ms();
        let due: Vec<TokenId> = inner.engine.with_pool(|p| {
            p.records()
                .filter(|r| {
                    // An expired token is refreshed too: a new access token revives it.
                    let expired = r.state == TokenState::Disabled(DisableReason::Expired);
                    (!r.state.is_disabled() || expired)
                        && refresh_due(now, r.expires_at_ms, margin_ms)
                        && tokens::material(r).can_refresh()
                })
                .map(|r| r.id)
                .collect()
        });
        let mut refreshed = 0;
        for id in due {
            {
                let mut tried = lock(&inner.refresh_tried);
                if tried.get(&id).is_some_and(|at| now.saturating_sub(*at) < REFRESH_RETRY_MS) {
                    continue;
                }
                tried.insert(id, now);
            }
            match inner.engine.refresh(id).await {
                Ok(_) => {
                    refreshed += 1;
                    tracing::info!(token = id.0, "token refreshed ahead of expiry");
                    if let Err(error) = self.inner.write_token(id).await {
                        tracing::warn!(token = id.0, %error, "refreshed token not saved");
                    }
                }
                Err(error) => {
                    tracing::info!(token = id.0, %error, "refresh ahead of expiry failed")
                }
            }
        }
        refreshed
    }

    // --- routing ---

    async fn dispatch(
        &self,
        route: Route,
        method: &Method,
        body: &[u8],
        session: &str,
    ) -> Result<Response<Bytes>, Failure> {
        let inner = &self.inner;
        let get = *method == Method::GET;
        match route {
            Route::Login => self.login(body).await,
            Route::Logout => {
                lock(&inner.sessions).revoke(session);
                Ok(reply::ok(&json!({"success": true, "message": "Logged out"})))
            }
            Route::Password => self.change_password(&Body::parse(body)?).await,
            Route::Tokens if get => Ok(inner.list_tokens()),
            Route::Tokens => inner.add_token(&Body::parse(body)?).await,
            Route::Import => inner.import(&Body::parse(body)?).await,
            Route::Token(id) if *method == Method::DELETE => inner.delete_token(id).await,
            Route::Token(id) => inner.update_token(id, &Body::parse(body)?).await,
            Route::Enable(id) => inner.set_enabled(id, true).await,
            Route::Disable(id) => inner.set_enabled(id, false).await,
            Route::Test(id) => inner.test_token(id).await,
            Route::Refresh(id) => inner.refresh_token(id).await,
            Route::Status(id) => match Body::parse(body)?.bool("is_active")? {
                Some(on) => inner.set_enabled(id, on).await,
                None => Err(Error::missing("is_active").into()),
            },
            Route::ApiKeys if get => Ok(inner.list_keys()),
            Route::ApiKeys => {
                let key = Body::parse(body)?.required_str("key")?;
                inner
                    .change_keys(|keys| {
                        if keys.add(key.clone()) {
                            Ok("API key added")
                        } else {
                            Err(Failure::conflict("key", "This API key already exists"))
                        }
                    })
                    .await
            }
            Route::ApiKey(fingerprint) => inner.remove_key(&fingerprint).await,
            Route::ApiKeysDelete => {
                let body = Body::parse(body)?;
                let key = match body.str("fingerprint")? {
                    Some(fp) if !fp.is_empty() => fp,
                    _ => body.required_str("key")?,
                };
                inner.remove_key(&key).await
            }
            Route::ApiKeyReplace => {
                let key = Body::parse(body)?.required_str("new_api_key")?;
                inner
                    .change_keys(|keys| {
                        keys.replace([key.clone()]);
                        Ok("API key updated")
                    })
                    .await
            }
            Route::Settings(view) if get => {
                let username = lock(&inner.login).username.clone();
                Ok(reply::ok(&view.show(&*inner.settings.lock().await, &username)))
            }
            Route::Settings(view) => inner.change_settings(view, &Body::parse(body)?).await,
            Route::Stats => Ok(inner.stats()),
            Route::Cancel(task) => inner.cancel(&task).await,
        }
    }

    /// The session a request presents, if live.
    fn session(&self, headers: &HeaderMap) -> Result<String, Failure> {
        let Some(token) = session::presented(headers) else {
            return Err(Failure::unauthorized(
                "Missing authorization header",
                "missing_authorization",
            ));
        };
        if lock(&self.inner.sessions).check(token, clock::now_ms()) {
            Ok(token.to_owned())
        } else {
            Err(Failure::unauthorized("Invalid or expired token", "invalid_session"))
        }
    }

    // --- login and password ---

    async fn login(&self, body: &[u8]) -> Result<Response<Bytes>, Failure> {
        let body = Body::parse(body)?;
        let username = body.str("username")?.unwrap_or_default();
        let password = body.str("password")?.unwrap_or_default();
        let (expected, hash) = {
            let login = lock(&self.inner.login);
            (login.username.clone(), login.hash.clone())
        };
        // The hash is checked even for a wrong username: the answer takes as long either way.
        let password_ok = blocking(move || hash.verify(&password)).await.unwrap_or(false);
        let user_ok = crate::auth::constant_time_eq(username.as_bytes(), expected.as_bytes());
        if !(password_ok && user_ok) {
            return Err(Failure::unauthorized("Invalid credentials", "invalid_credentials"));
        }
        let token = lock(&self.inner.sessions)
            .issue(clock::now_ms(), self.inner.session_ttl_ms)
            .map_err(|_| {
                Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "No session could be created (the OS random source failed)",
                    None,
                    "no_randomness",
                )
            })?;
        Ok(reply::ok(&json!({"success": true, "token": token, "message": "Login successful"})))
    }

    async fn change_password(&self, body: &Body) -> Result<Response<Bytes>, Failure> {
        let old = body.str("old_password")?.unwrap_or_default();
        let new = body.str("new_password")?.unwrap_or_default();
        let username = body.str("username")?.map(|u| u.trim().to_owned());
        if new.is_empty() {
            return Err(Error::missing("new_password").into());
        }
        if username.as_deref() == Some("") {
            return Err(Failure::invalid("username", "username must not be empty"));
        }
        let hash = lock(&self.inner.login).hash.clone();
        if !blocking(move || hash.verify(&old)).await.unwrap_or(false) {
            return Err(Failure::invalid("old_password", "The old password is not correct"));
        }
        let fresh = blocking(move || PasswordHash::new(&new))
            .await
            .and_then(Result::ok)
            .ok_or_else(|| {
                Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The password could not be hashed (the OS random source failed)",
                    None,
                    "no_randomness",
                )
            })?;
        let login = Login {
            username: username.unwrap_or_else(|| lock(&self.inner.login).username.clone()),
            hash: fresh,
        };
        self.inner
            .store
            .put_setting(CREDENTIALS, credentials_bytes(&login))
            .await
            .map_err(|e| Failure::store(&e))?;
        *lock(&self.inner.login) = login;
        lock(&self.inner.sessions).clear();
        tracing::info!("admin password changed; all sessions ended");
        Ok(reply::ok(&json!({
            "success": true,
            "message": "Password changed; every session has ended, log in again",
        })))
    }
}

fn credentials_bytes(login: &Login) -> Vec<u8> {
    let stored = StoredCredentials {
        username: login.username.clone(),
        password_hash: login.hash.as_phc().to_owned(),
    };
    serde_json::to_vec(&stored).unwrap_or_default()
}

fn keys_bytes(keys: &ApiKeys) -> Vec<u8> {
    let stored =
        StoredKeys { keys: keys.secrets().iter().map(|k| k.expose().to_owned()).collect() };
    serde_json::to_vec(&stored).unwrap_or_default()
}

// === impl Inner: keys, settings, stats, tasks ===

impl Inner {
    fn list_keys(&self) -> Response<Bytes> {
        let keys: Vec<Value> = self
            .keys
            .secrets()
            .iter()
            .map(|k| json!({"key": k.masked(), "fingerprint": k.fingerprint()}))
            .collect();
        reply::ok(&json!({"success": true, "keys": keys}))
    }

    /// Changes the key set with `edit` and stores it; a store failure restores the old set.
    async fn change_keys(
        &self,
        edit: impl FnOnce(&ApiKeys) -> Result<&'static str, Failure>,
    ) -> Result<Response<Bytes>, Failure> {
        // The settings lock also orders key changes.
        let _order = self.settings.lock().await;
        let before: Vec<String> =
            self.keys.secrets().iter().map(|k| k.expose().to_owned()).collect();
        let message = edit(&self.keys)?;
        if let Err(e) = self.store.put_setting(API_KEYS, keys_bytes(&self.keys)).await {
            self.keys.replace(before);
            return Err(Failure::store(&e));
        }
        Ok(reply::ok(&json!({"success": true, "message": message, "count": self.keys.len()})))
    }

    async fn remove_key(&self, key_or_fingerprint: &str) -> Result<Response<Bytes>, Failure> {
        self.change_keys(|keys| {
            if keys.remove(key_or_fingerprint) {
                Ok("API key removed")
            } else {
                Err(Failure::not_found("No such API key", "api_key_not_found"))
            }
        })
        .await
    }

    async fn change_settings(&self, view: View, body: &Body) -> Result<Response<Bytes>, Failure> {
        let mut current = self.settings.lock().await;
        let mut next = current.clone();
        view.change(&mut next, body)?;
        let proxy_changed = next.global_proxy() != current.global_proxy();
        let upstream = self.engine.upstream();
        if proxy_changed {
            upstream.set_global_proxy(next.global_proxy()).map_err(|e| {
                Failure::invalid("proxy_url", format!("The global proxy cannot be set: {e}"))
            })?;
        }
        if let Err(e) = self.store.put_setting(SETTINGS, next.to_bytes()).await {
            if proxy_changed {
                let _ = upstream.set_global_proxy(current.global_proxy());
            }
            return Err(Failure::store(&e));
        }
        next.apply(&self.engine);
        *current = next;
        let username = lock(&self.login).username.clone();
        let mut shown = view.show(&current, &username);
        if let Some(object) = shown.as_object_mut() {
            object.insert("success".into(), true.into());
            object.insert("message".into(), "Settings updated".into());
        }
        Ok(reply::ok(&shown))
    }

    fn stats(&self) -> Response<Bytes> {
        let now = clock::now_ms();
        let today = now / DAY_MS;
        let (mut total, mut active) = (0u64, 0u64);
        let (mut images, mut videos, mut errors) = (0u64, 0u64, 0u64);
        let (mut today_images, mut today_videos, mut today_errors) = (0u64, 0u64, 0u64);
        self.engine.with_pool(|p| {
            for r in p.records() {
                total += 1;
                if !r.state.is_disabled() && !r.is_expired(now) {
                    active += 1;
                }
                let s = &r.stats;
                images = images.saturating_add(s.image_count);
                videos = videos.saturating_add(s.video_count);
                errors = errors.saturating_add(s.error_count);
                if s.today_day == today {
                    today_images = today_images.saturating_add(s.today_image_count);
                    today_videos = today_videos.saturating_add(s.today_video_count);
                    today_errors = today_errors.saturating_add(s.today_error_count);
                }
            }
        });
        reply::ok(&json!({
            "total_tokens": total,
            "active_tokens": active,
            "total_images": images,
            "total_videos": videos,
            "today_images": today_images,
            "today_videos": today_videos,
            "total_errors": errors,
            "today_errors": today_errors,
        }))
    }

    /// Cancels a running task and waits (a bounded time) until its driver has stopped: its
    /// lease released, its final record written.
    async fn cancel(&self, task: &str) -> Result<Response<Bytes>, Failure> {
        let id = TaskId::parse(task)?;
        let events = self.engine.subscribe(&id);
        if !self.engine.cancel(&id) {
            let known = self.engine.get(&id).await.ok().flatten().is_some();
            let message = if known {
                format!("Task {id} has already finished; there is nothing to cancel")
            } else {
                format!("Task {id} not found")
            };
            let code = if known { "task_finished" } else { "task_not_found" };
            return Err(Failure::not_found(message, code));
        }
        tracing::info!(task = %id, "task cancel requested");
        let stopped = match events {
            Some(mut events) => tokio::time::timeout(CANCEL_WAIT, async {
                // Until the driver is gone: the channel closes after its final write.
                while !matches!(events.recv().await, Err(RecvError::Closed)) {}
            })
            .await
            .is_ok(),
            None => false,
        };
        Ok(reply::ok(&json!({
            "success": true,
            "message": if stopped { "Task cancelled" } else { "Cancel requested; the task is stopping" },
            "task_id": id.as_str(),
            "stopped": stopped,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_the_password() {
        let cfg = AdminConfig {
            proxy_url: Some("http://u:pw-secret@p:1".into()),
            ..AdminConfig::new("admin", "hunter2-secret")
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2-secret") && !shown.contains("pw-secret"), "{shown}");
        assert_eq!(cfg.session_ttl, Duration::from_secs(43_200));
    }
}
