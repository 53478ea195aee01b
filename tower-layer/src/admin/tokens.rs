//! The token routes: list, add (online enrichment), import, update, enable/disable, delete,
//! test and refresh; the masked JSON view of a token.
//!
//! Every change is written to the token store first and then made in the pool (an add is
//! the one exception: the pool assigns the id, so the token is added, written, and removed
//! again if the write fails). Writes hold the `saved` lock, so they never interleave with
//! each other or with [`Admin::save_tokens`](super::Admin::save_tokens).

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{json, Value};
use sora2api_core::lifecycle::{
    token_identity, Enrich, EnrichError, EnrichStep, Refresh, RefreshError, RefreshMaterial,
    RefreshStep, Refreshed, TokenProfile,
};
use sora2api_core::pool::{DisableReason, TokenId, TokenRecord, TokenState, TokenSummary};
use sora2api_core::render::rfc3339_utc;
use sora2api_core::secret::Secret;
use sora2api_core::upstream::Auth;
use sora2api_core::Error;

use super::reply::{self, Body, Failure};
use super::{lock, Inner};
use crate::clock;
use crate::store::StoreError;
use crate::upstream::check_proxy_url;

/// Items one import may carry.
const MAX_IMPORT: usize = 1_000;

/// Concurrency values the API takes (`-1` and `0`: unlimited, as in the original).
const CONCURRENCY: (i64, i64) = (-1, 10_000);

/// What a token can be refreshed with.
pub(super) fn material(r: &TokenRecord) -> RefreshMaterial {
    RefreshMaterial {
        session_token: r.session_token.clone(),
        refresh_token: r.refresh_token.clone(),
        client_id: r.client_id.clone(),
        proxy: r.proxy_url.clone(),
    }
}

/// The JSON view of a token (sora-backend.md 7.2 `GET /api/tokens`, without the dead
/// columns): secrets masked by the pool's snapshot, times RFC 3339 UTC, `-1` for unlimited.
fn view(s: &TokenSummary) -> Value {
    let time = |ms: Option<u64>| ms.map(rfc3339_utc);
    let limit = |l: Option<u32>| l.map_or(-1, i64::from);
    let (state, disabled_reason, cooled_until) = match s.state {
        TokenState::Active => ("active", None, None),
        TokenState::Disabled(reason) => ("disabled", Some(reason.as_str()), None),
        TokenState::CoolingDown { until_ms } => ("cooling_down", None, Some(until_ms)),
        TokenState::QuotaWait { until_ms } => ("quota_wait", None, Some(until_ms)),
    };
    let st = &s.stats;
    json!({
        "id": s.id.0,
        "token": s.access_token,
        "st": s.session_token,
        "rt": s.refresh_token,
        "client_id": s.client_id,
        "proxy_url": s.proxy_url,
        "email": s.email,
        "remark": s.remark,
        "expiry_time": time(s.expires_at_ms),
        "is_expired": s.expired,
        "is_active": !s.state.is_disabled(),
        "state": state,
        "disabled_reason": disabled_reason,
        "cooled_until": time(cooled_until),
        "plan_type": s.plan_type,
        "pro": s.pro,
        "image_enabled": s.image_enabled,
        "video_enabled": s.video_enabled,
        "image_concurrency": limit(s.image_concurrency),
        "video_concurrency": limit(s.video_concurrency),
        "in_flight_image": s.in_flight_image,
        "in_flight_video": s.in_flight_video,
        "use_count": st.use_count,
        "last_used_at": time(st.last_used_ms),
        "image_count": st.image_count,
        "video_count": st.video_count,
        "error_count": st.error_count,
        "today_image_count": st.today_image_count,
        "today_video_count": st.today_video_count,
        "today_error_count": st.today_error_count,
        "consecutive_error_count": st.consecutive_errors,
        "last_error_at": time(st.last_error_ms),
    })
}

/// The body field names of the three secrets: `token`/`st`/`rt` on add and update,
/// `access_token`/`session_token`/`refresh_token` on import.
struct Names {
    access: &'static str,
    session: &'static str,
    refresh: &'static str,
}

const EDIT_NAMES: Names = Names { access: "token", session: "st", refresh: "rt" };
const IMPORT_NAMES: Names =
    Names { access: "access_token", session: "session_token", refresh: "refresh_token" };

/// The optional token fields of a body, checked. `None`: leave as is; `Some("")` clears.
#[derive(Default)]
struct Fields {
    access_token: Option<String>,
    session_token: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    proxy_url: Option<String>,
    remark: Option<String>,
    image_enabled: Option<bool>,
    video_enabled: Option<bool>,
    image_concurrency: Option<Option<u32>>,
    video_concurrency: Option<Option<u32>>,
    is_active: Option<bool>,
}

impl Fields {
    fn parse(body: &Body, names: &Names) -> Result<Fields, Failure> {
        let trimmed = |name: &str| -> Result<Option<String>, Failure> {
            Ok(body.str(name)?.map(|s| s.trim().to_owned()))
        };
        let limit = |name: &str| -> Result<Option<Option<u32>>, Failure> {
            Ok(body.int_in(name, CONCURRENCY.0, CONCURRENCY.1)?.map(TokenRecord::limit_from_legacy))
        };
        let proxy_url = trimmed("proxy_url")?;
        if let Some(url) = proxy_url.as_deref().filter(|u| !u.is_empty() && !u.contains("***@")) {
            check_proxy_url(url).map_err(|e| Failure::invalid("proxy_url", e.to_string()))?;
        }
        Ok(Fields {
            access_token: trimmed(names.access)?,
            session_token: trimmed(names.session)?,
            refresh_token: trimmed(names.refresh)?,
            client_id: trimmed("client_id")?,
            proxy_url,
            remark: body.str("remark")?,
            image_enabled: body.bool("image_enabled")?,
            video_enabled: body.bool("video_enabled")?,
            image_concurrency: limit("image_concurrency")?,
            video_concurrency: limit("video_concurrency")?,
            is_active: body.bool("is_active")?,
        })
    }

    /// The proxy a new or updated token will have.
    fn proxy_for(&self, current: Option<&TokenRecord>) -> Option<String> {
        match self.proxy_url.as_deref() {
            Some("") => None,
            Some(url)
                if current.and_then(|r| r.proxy_url.as_deref().map(mask)) != Some(url.into()) =>
            {
                Some(url.to_owned())
            }
            _ => current.and_then(|r| r.proxy_url.clone()),
        }
    }

    /// Applies every field but the access token to `r`. A value equal to the current one's
    /// masked form (a UI posting back what it was shown) leaves it.
    fn apply(&self, r: &mut TokenRecord) {
        secret(&mut r.session_token, self.session_token.as_deref());
        secret(&mut r.refresh_token, self.refresh_token.as_deref());
        plain(&mut r.client_id, self.client_id.as_deref());
        let proxy = self.proxy_for(Some(r));
        r.proxy_url = proxy;
        plain(&mut r.remark, self.remark.as_deref());
        if let Some(on) = self.image_enabled {
            r.image_enabled = on;
        }
        if let Some(on) = self.video_enabled {
            r.video_enabled = on;
        }
        if let Some(limit) = self.image_concurrency {
            r.image_concurrency = limit;
        }
        if let Some(limit) = self.video_concurrency {
            r.video_concurrency = limit;
        }
        match self.is_active {
            Some(false) => r.state = TokenState::Disabled(DisableReason::Manual),
            Some(true) if r.state.is_disabled() => enable(r),
            _ => {}
        }
    }
}

fn mask(url: &str) -> String {
    sora2api_core::pool::mask_proxy(url)
}

/// Sets an optional secret: `""` clears, its own masked form leaves it, anything else sets.
fn secret(slot: &mut Option<Secret>, value: Option<&str>) {
    match value {
        None => {}
        Some("") => *slot = None,
        Some(v) if slot.as_ref().is_some_and(|s| s.masked() == v) => {}
        Some(v) => *slot = Some(Secret::new(v)),
    }
}

/// Sets an optional plain field: `""` clears.
fn plain(slot: &mut Option<String>, value: Option<&str>) {
    match value {
        None => {}
        Some("") => *slot = None,
        Some(v) => *slot = Some(v.to_owned()),
    }
}

/// Back in service: active, error streak reset.
fn enable(r: &mut TokenRecord) {
    r.state = TokenState::Active;
    r.stats.consecutive_errors = 0;
}

/// Stores what enrichment learned. `new_token`: an add or import, where a token without
/// Sora 2 is not enabled for video. A used-up quota waits until its reset (B6).
fn apply_profile(r: &mut TokenRecord, p: &TokenProfile, now_ms: u64, new_token: bool) {
    if r.email.is_none() {
        r.email.clone_from(&p.email);
    }
    r.plan_type.clone_from(&p.plan_type);
    r.pro = p.pro;
    if new_token && !p.sora2_supported {
        r.video_enabled = false;
    }
    if p.quota_exhausted() && !r.state.is_disabled() {
        if let Some(until_ms) = p.quota_resets_at_ms.filter(|t| *t > now_ms) {
            r.state = TokenState::QuotaWait { until_ms };
        }
    }
}

/// What a refused enrichment answers: 400 for what the upstream says about the token, 502
/// when it could not be asked.
fn enrich_failure(param: &str, error: &EnrichError) -> Failure {
    match error {
        EnrichError::Transient { .. } => {
            Failure::upstream(format!("The token could not be checked: {error}"))
        }
        _ => Failure::new(
            StatusCode::BAD_REQUEST,
            format!("The upstream refused the token: {error}"),
            Some(param),
            "token_refused",
        ),
    }
}

fn not_found(id: TokenId) -> Failure {
    Failure::not_found(format!("Token {id} not found"), "token_not_found")
}

fn bad_jwt(param: &str, error: impl std::fmt::Display) -> Failure {
    Failure::invalid(param, format!("{param} is not an access token: {error}"))
}

/// How an import item ended.
enum Imported {
    Added(TokenId),
    Updated(TokenId),
}

/// The import modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Store the AT as given, no upstream call.
    Offline,
    /// Store the AT and enrich it.
    At,
    /// Convert the ST to an AT, then enrich.
    St,
    /// Convert the RT to an AT, then enrich.
    Rt,
}

// === impl Inner: tokens ===

impl Inner {
    pub(super) fn list_tokens(&self) -> Response<Bytes> {
        let now = clock::now_ms();
        let tokens: Vec<Value> =
            self.engine.with_pool(|p| p.snapshot(now)).iter().map(view).collect();
        reply::ok(&Value::Array(tokens))
    }

    fn record(&self, id: TokenId) -> Option<TokenRecord> {
        self.engine.with_pool(|p| p.get(id).cloned())
    }

    /// A token other than `except` with this access token.
    fn holder_of(&self, access_token: &str, except: Option<TokenId>) -> Option<TokenId> {
        self.engine.with_pool(|p| {
            p.records()
                .find(|r| Some(r.id) != except && r.access_token.expose() == access_token)
                .map(|r| r.id)
        })
    }

    /// Adds a token to the pool and the store (removed again if the store refuses).
    async fn insert(&self, record: TokenRecord) -> Result<TokenId, Failure> {
        let mut saved = self.saved.lock().await;
        let id = self.engine.with_pool(|p| p.add(record));
        let Some(stored) = self.record(id) else { return Err(not_found(id)) };
        if let Err(e) = self.store.put_token(stored.clone()).await {
            self.engine.with_pool(|p| p.remove(id));
            return Err(Failure::store(&e));
        }
        saved.insert(id, stored);
        tracing::info!(token = id.0, "token added");
        Ok(id)
    }

    /// Changes token `id` with `edit`: the edited record is stored, then the same edit is
    /// made to the pool's record (which may have moved on meanwhile: leases, stats; those
    /// reach the store with the next [`Admin::save_tokens`](super::Admin::save_tokens)).
    /// Returns the record as stored.
    async fn edit(
        &self,
        id: TokenId,
        edit: impl Fn(&mut TokenRecord),
    ) -> Result<TokenRecord, Failure> {
        let mut saved = self.saved.lock().await;
        let Some(mut next) = self.record(id) else { return Err(not_found(id)) };
        edit(&mut next);
        self.store.put_token(next.clone()).await.map_err(|e| Failure::store(&e))?;
        self.engine.with_pool(|p| p.update(id, &edit));
        saved.insert(id, next.clone());
        Ok(next)
    }

    /// Writes token `id` as the pool holds it now (after an engine refresh).
    pub(super) async fn write_token(&self, id: TokenId) -> Result<(), StoreError> {
        let mut saved = self.saved.lock().await;
        let Some(record) = self.record(id) else { return Ok(()) };
        self.store.put_token(record.clone()).await?;
        saved.insert(id, record);
        Ok(())
    }

    /// Runs [`Enrich`] against the engine's upstream.
    async fn enrich(&self, auth: Auth) -> Result<TokenProfile, EnrichError> {
        let cfg = self.engine.machine_config();
        let upstream = self.engine.upstream();
        let mut enrich = Enrich::new(&cfg.upstream, auth);
        loop {
            match enrich.next(clock::now_ms()) {
                EnrichStep::Send(req) => {
                    let outcome = upstream.send(req).await;
                    // `next` just asked for this request: `handle` cannot refuse it.
                    let _ = enrich.handle(clock::now_ms(), outcome);
                }
                EnrichStep::Done(result) => return result,
            }
        }
    }

    /// Runs [`Refresh`] (an ST or RT conversion for an import; nothing is stored).
    async fn convert(&self, material: RefreshMaterial) -> Result<Refreshed, RefreshError> {
        let cfg = self.engine.machine_config();
        let upstream = self.engine.upstream();
        let mut refresh = Refresh::new(&cfg.upstream, material);
        loop {
            match refresh.next(clock::now_ms()) {
                RefreshStep::Send(req) => {
                    let outcome = upstream.send(req).await;
                    let _ = refresh.handle(clock::now_ms(), outcome);
                }
                RefreshStep::Done(result) => return result,
            }
        }
    }

    // --- routes ---

    /// `POST /tokens`: an access token, enriched online, added with the original's single-add
    /// defaults (image concurrency 1, video 3).
    pub(super) async fn add_token(&self, body: &Body) -> Result<Response<Bytes>, Failure> {
        let fields = Fields::parse(body, &EDIT_NAMES)?;
        let at = body.required_str(EDIT_NAMES.access)?;
        let (expires_at_ms, jwt_email) = token_identity(&at).map_err(|e| bad_jwt("token", e))?;
        if self.holder_of(&at, None).is_some() {
            return Err(Failure::conflict("token", "This access token is already in the pool"));
        }
        let auth = Auth {
            access_token: Secret::new(at.clone()),
            session_token: None,
            proxy: fields.proxy_for(None),
        };
        let profile = self.enrich(auth).await.map_err(|e| enrich_failure("token", &e))?;
        let mut record = TokenRecord::new(Secret::new(at));
        record.expires_at_ms = expires_at_ms;
        record.image_concurrency = Some(1);
        record.video_concurrency = Some(3);
        fields.apply(&mut record);
        record.email = profile.email.clone().or(jwt_email);
        apply_profile(&mut record, &profile, clock::now_ms(), true);
        let email = record.email.clone();
        let id = self.insert(record).await?;
        Ok(reply::ok(&json!({
            "success": true,
            "message": "Token added",
            "token_id": id.0,
            "email": email,
        })))
    }

    /// `PUT /tokens/{id}`: a new access token is checked online first (refused: nothing
    /// changes) and, if valid, brings a token disabled as invalid or expired back.
    pub(super) async fn update_token(
        &self,
        id: TokenId,
        body: &Body,
    ) -> Result<Response<Bytes>, Failure> {
        let fields = Fields::parse(body, &EDIT_NAMES)?;
        let Some(current) = self.record(id) else { return Err(not_found(id)) };
        let new_at = match fields.access_token.as_deref() {
            Some("") => return Err(Failure::invalid("token", "token must not be empty")),
            Some(at)
                if at != current.access_token.expose() && at != current.access_token.masked() =>
            {
                Some(at.to_owned())
            }
            _ => None,
        };
        let mut fresh = None;
        if let Some(at) = new_at {
            let (expires_at_ms, _) = token_identity(&at).map_err(|e| bad_jwt("token", e))?;
            if self.holder_of(&at, Some(id)).is_some() {
                return Err(Failure::conflict(
                    "token",
                    "This access token belongs to another token",
                ));
            }
            let auth = Auth {
                access_token: Secret::new(at.clone()),
                session_token: None,
                proxy: fields.proxy_for(Some(&current)),
            };
            let profile = self.enrich(auth).await.map_err(|e| enrich_failure("token", &e))?;
            fresh = Some((Secret::new(at), expires_at_ms, profile));
        }
        let now = clock::now_ms();
        let record = self
            .edit(id, |r| {
                fields.apply(r);
                if let Some((at, expires_at_ms, profile)) = &fresh {
                    r.access_token = at.clone();
                    r.expires_at_ms = *expires_at_ms;
                    if matches!(
                        r.state,
                        TokenState::Disabled(DisableReason::Invalid | DisableReason::Expired)
                    ) {
                        enable(r);
                    }
                    apply_profile(r, profile, now, false);
                }
            })
            .await?;
        tracing::info!(token = id.0, new_access_token = fresh.is_some(), "token updated");
        Ok(reply::ok(&json!({
            "success": true,
            "message": "Token updated",
            "token_id": id.0,
            "is_active": !record.state.is_disabled(),
        })))
    }

    /// `POST /tokens/{id}/enable` and `/disable`.
    pub(super) async fn set_enabled(
        &self,
        id: TokenId,
        on: bool,
    ) -> Result<Response<Bytes>, Failure> {
        self.edit(id, |r| {
            if on {
                enable(r);
            } else {
                r.state = TokenState::Disabled(DisableReason::Manual);
            }
        })
        .await?;
        tracing::info!(token = id.0, enabled = on, "token switched");
        Ok(reply::ok(&json!({
            "success": true,
            "message": if on { "Token enabled" } else { "Token disabled" },
            "token_id": id.0,
            "is_active": on,
        })))
    }

    /// `DELETE /tokens/{id}`: out of the store, then out of the pool (leases in flight stay
    /// valid until released).
    pub(super) async fn delete_token(&self, id: TokenId) -> Result<Response<Bytes>, Failure> {
        let mut saved = self.saved.lock().await;
        if self.record(id).is_none() {
            return Err(not_found(id));
        }
        self.store.remove_token(id).await.map_err(|e| Failure::store(&e))?;
        self.engine.with_pool(|p| p.remove(id));
        saved.remove(&id);
        lock(&self.refresh_tried).remove(&id);
        tracing::info!(token = id.0, "token deleted");
        Ok(reply::ok(&json!({"success": true, "message": "Token deleted", "token_id": id.0})))
    }

    /// `POST /tokens/{id}/test`: the enrichment of 5.5. A token the upstream refuses is
    /// refreshed once if it can be (single-flight with the tasks); if it is still refused it
    /// is disabled with the reason (invalid, expired, country). A token that passes is
    /// updated (plan, quota) and, if it was disabled for one of those reasons, enabled.
    pub(super) async fn test_token(&self, id: TokenId) -> Result<Response<Bytes>, Failure> {
        let Some(current) = self.record(id) else { return Err(not_found(id)) };
        let auth = |at: Secret, proxy: Option<String>| Auth {
            access_token: at,
            session_token: None,
            proxy,
        };
        let mut result =
            self.enrich(auth(current.access_token.clone(), current.proxy_url.clone())).await;
        let mut refreshed = false;
        if matches!(result, Err(EnrichError::Invalid | EnrichError::Expired))
            && material(&current).can_refresh()
        {
            if let Ok(credentials) = self.engine.refresh(id).await {
                refreshed = true;
                result = self.enrich(auth(credentials.access_token, credentials.proxy)).await;
            }
        }
        let now = clock::now_ms();
        let (status, message, username) = match &result {
            Ok(profile) => {
                self.edit(id, |r| {
                    apply_profile(r, profile, now, false);
                    if matches!(
                        r.state,
                        TokenState::Disabled(
                            DisableReason::Invalid
                                | DisableReason::Expired
                                | DisableReason::Country
                        )
                    ) {
                        enable(r);
                    }
                })
                .await?;
                ("success", "Token is valid".to_owned(), profile.username.clone())
            }
            Err(error @ EnrichError::Transient { .. }) => {
                if refreshed {
                    self.write_token(id).await.map_err(|e| Failure::store(&e))?;
                }
                ("failed", format!("The token could not be checked: {error}"), None)
            }
            Err(error) => {
                let reason = match error {
                    EnrichError::Expired => DisableReason::Expired,
                    EnrichError::CountryUnsupported { .. } => DisableReason::Country,
                    _ => DisableReason::Invalid,
                };
                self.edit(id, |r| r.state = TokenState::Disabled(reason)).await?;
                ("failed", format!("{error}; the token was disabled ({})", reason.as_str()), None)
            }
        };
        tracing::info!(token = id.0, status, refreshed, "token tested");
        let email = self.record(id).and_then(|r| r.email);
        Ok(reply::ok(&json!({
            "success": true,
            "status": status,
            "message": message,
            "token_id": id.0,
            "email": email,
            "username": username,
            "refreshed": refreshed,
        })))
    }

    /// `POST /tokens/{id}/refresh`: ST -> AT, then RT -> AT, now (joining a refresh a task
    /// already runs), and the result stored.
    pub(super) async fn refresh_token(&self, id: TokenId) -> Result<Response<Bytes>, Failure> {
        if self.record(id).is_none() {
            return Err(not_found(id));
        }
        match self.engine.refresh(id).await {
            Ok(_) => {
                self.write_token(id).await.map_err(|e| Failure::store(&e))?;
                tracing::info!(token = id.0, "token refreshed");
                let expiry = self.record(id).and_then(|r| r.expires_at_ms).map(rfc3339_utc);
                Ok(reply::ok(&json!({
                    "success": true,
                    "message": "Token refreshed",
                    "token_id": id.0,
                    "expiry_time": expiry,
                })))
            }
            Err(error) => {
                tracing::info!(token = id.0, %error, "token refresh failed");
                let code = match error {
                    RefreshError::Transient => return Err(Failure::upstream(error.to_string())),
                    RefreshError::NoMaterial => "no_refresh_material",
                    RefreshError::AlreadyExpired => "refresh_expired",
                    _ => "refresh_rejected",
                };
                Err(Failure::new(StatusCode::BAD_REQUEST, error.to_string(), None, code))
            }
        }
    }

    /// `POST /tokens/import`: upsert by email, item by item; one item's failure does not
    /// stop the others.
    pub(super) async fn import(&self, body: &Body) -> Result<Response<Bytes>, Failure> {
        let mode = match body.required_str("mode")?.as_str() {
            "offline" => Mode::Offline,
            "at" => Mode::At,
            "st" => Mode::St,
            "rt" => Mode::Rt,
            _ => return Err(Failure::invalid("mode", "mode must be offline, at, st or rt")),
        };
        let items = body.array("tokens")?.ok_or_else(|| Failure::from(Error::missing("tokens")))?;
        if items.len() > MAX_IMPORT {
            return Err(Failure::invalid(
                "tokens",
                format!("at most {MAX_IMPORT} tokens per import"),
            ));
        }
        let (mut added, mut updated, mut failed) = (0u32, 0u32, 0u32);
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let email = item.get("email").and_then(Value::as_str).map(str::to_owned);
            match self.import_one(item, mode).await {
                Ok(Imported::Added(id)) => {
                    added += 1;
                    results.push(json!({"email": email, "status": "added", "success": true, "token_id": id.0}));
                }
                Ok(Imported::Updated(id)) => {
                    updated += 1;
                    results.push(json!({"email": email, "status": "updated", "success": true, "token_id": id.0}));
                }
                Err(failure) => {
                    failed += 1;
                    results.push(json!({"email": email, "status": "failed", "success": false, "error": failure.message()}));
                }
            }
        }
        tracing::info!(?mode, added, updated, failed, "tokens imported");
        Ok(reply::ok(&json!({
            "success": true,
            "message": format!("Import done: {added} added, {updated} updated, {failed} failed"),
            "added": added,
            "updated": updated,
            "failed": failed,
            "results": results,
        })))
    }

    async fn import_one(&self, item: Value, mode: Mode) -> Result<Imported, Failure> {
        let body = Body::from_value(item, "tokens")?;
        let email = body.required_str("email")?;
        let fields = Fields::parse(&body, &IMPORT_NAMES)?;
        let existing = self.engine.with_pool(|p| {
            p.records()
                .find(|r| r.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&email)))
                .cloned()
        });
        let proxy = fields.proxy_for(existing.as_ref());
        let required = |value: &Option<String>, name: &str| -> Result<String, Failure> {
            value
                .clone()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::missing(name.to_owned()).into())
        };
        let (at, rotated, converted_expiry) = match mode {
            Mode::Offline | Mode::At => {
                (required(&fields.access_token, IMPORT_NAMES.access)?, None, None)
            }
            Mode::St | Mode::Rt => {
                let mut material =
                    RefreshMaterial { proxy: proxy.clone(), ..RefreshMaterial::default() };
                if mode == Mode::St {
                    material.session_token =
                        Some(Secret::new(required(&fields.session_token, IMPORT_NAMES.session)?));
                } else {
                    material.refresh_token =
                        Some(Secret::new(required(&fields.refresh_token, IMPORT_NAMES.refresh)?));
                    material.client_id = fields.client_id.clone().filter(|c| !c.is_empty());
                }
                let param =
                    if mode == Mode::St { IMPORT_NAMES.session } else { IMPORT_NAMES.refresh };
                let fresh = self.convert(material).await.map_err(|e| match e {
                    RefreshError::Transient => Failure::upstream(e.to_string()),
                    _ => Failure::invalid(param, e.to_string()),
                })?;
                (fresh.access_token.expose().to_owned(), fresh.refresh_token, fresh.expires_at_ms)
            }
        };
        let (jwt_expiry, _) = token_identity(&at).map_err(|e| bad_jwt(IMPORT_NAMES.access, e))?;
        if self.holder_of(&at, existing.as_ref().map(|r| r.id)).is_some() {
            return Err(Failure::conflict(
                IMPORT_NAMES.access,
                "This access token belongs to another token",
            ));
        }
        let profile = match mode {
            Mode::Offline => None,
            _ => {
                let auth =
                    Auth { access_token: Secret::new(at.clone()), session_token: None, proxy };
                Some(self.enrich(auth).await.map_err(|e| enrich_failure(IMPORT_NAMES.access, &e))?)
            }
        };
        let now = clock::now_ms();
        let expires_at_ms = jwt_expiry.or(converted_expiry);
        let fill = |r: &mut TokenRecord| {
            r.access_token = Secret::new(at.clone());
            r.expires_at_ms = expires_at_ms;
            fields.apply(r);
            if let Some(rt) = &rotated {
                r.refresh_token = Some(rt.clone());
            }
            r.email = Some(email.clone());
            if let Some(profile) = &profile {
                apply_profile(r, profile, now, existing.is_none());
            }
        };
        match &existing {
            Some(current) => {
                self.edit(current.id, fill).await?;
                Ok(Imported::Updated(current.id))
            }
            None => {
                let mut record = TokenRecord::new(Secret::new(at.clone()));
                fill(&mut record);
                Ok(Imported::Added(self.insert(record).await?))
            }
        }
    }
}
