//! Accounts and credentials (spec 2.1, 2.2): minting, bearer auth, the session and OAuth
//! exchanges, and the account endpoints (`/me`, `billing/subscriptions`, `invite/*`,
//! `m/bootstrap`, `nf/check`, `username/*`).

use serde_json::json;

use crate::render::rfc3339_utc;
use crate::upstream::{UpstreamReply, UpstreamRequest};

use super::http::{self, invalid_request, json_object, json_reply, req_str};
use super::{faults, jwt, Sim};

/// Whether an account has Sora 2 (spec 2.2 `invite/mine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sora2Access {
    /// `invite/mine` answers the invite code; creates work.
    Enabled,
    /// 401 "Unauthorized" on `invite/mine` and on creates until `GET /m/bootstrap` (or
    /// `invite/accept`) is called once.
    AfterBootstrap,
    /// 401 "Unauthorized" on `invite/mine` and on creates, bootstrap or not.
    Unavailable,
}

/// How to seed one account (spec 8 item 2). Start from [`AccountSpec::pro`] or
/// [`AccountSpec::free`] and change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    /// The email (the account's key, and the JWT profile claim).
    pub email: String,
    /// The plan id of `billing/subscriptions` (`chatgpt_pro` is the only Pro one; `""` means
    /// no subscription: `data: []`).
    pub plan: String,
    /// Sora 2 access.
    pub sora2: Sora2Access,
    /// Videos left in the current quota window (also the refill at each reset).
    pub quota: u32,
    /// Seconds until the quota resets (counted from when the account is added).
    pub quota_reset_s: u64,
    /// `Some(country)`: every BACKEND route answers 403 `unsupported_country_code` with
    /// `param` = the country.
    pub country_blocked: Option<String>,
    /// The username (`None`: `/me` shows `null` until `username/set`).
    pub username: Option<String>,
    /// Revoked: every token answers 401 `token_invalidated`, ST and RT exchanges fail.
    pub revoked: bool,
    /// Lifetime of the minted access token, ms (negative lifetimes are not possible: use
    /// `0` for a token that is already expired).
    pub expires_in_ms: u64,
    /// Mint a session token (ST) for `GET /api/auth/session`.
    pub with_session_token: bool,
    /// Mint a refresh token (RT) for `POST /oauth/token`.
    pub with_refresh_token: bool,
    /// The OAuth client id the RT belongs to (`None`: [`SimConfig::default_client_id`]).
    ///
    /// [`SimConfig::default_client_id`]: super::SimConfig::default_client_id
    pub client_id: Option<String>,
}

impl AccountSpec {
    /// A Pro account (`chatgpt_pro`) with Sora 2, 30 videos, a 10-day token, ST and RT.
    pub fn pro(email: &str) -> Self {
        AccountSpec {
            email: email.to_owned(),
            plan: "chatgpt_pro".into(),
            sora2: Sora2Access::Enabled,
            quota: 30,
            quota_reset_s: 86_400,
            country_blocked: None,
            username: Some(email.split('@').next().unwrap_or(email).replace(['+', '-'], "_")),
            revoked: false,
            expires_in_ms: 10 * 24 * 3_600_000,
            with_session_token: true,
            with_refresh_token: true,
            client_id: None,
        }
    }

    /// The same as [`AccountSpec::pro`] on a non-Pro plan (`chatgpt_plus`).
    pub fn free(email: &str) -> Self {
        AccountSpec { plan: "chatgpt_plus".into(), ..AccountSpec::pro(email) }
    }
}

/// The credentials minted for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedAccount {
    /// The email.
    pub email: String,
    /// The access token (JWT with `exp` and the profile email).
    pub access_token: String,
    /// When the access token expires, unix ms (whole seconds).
    pub expires_at_ms: u64,
    /// The session token, if [`AccountSpec::with_session_token`].
    pub session_token: Option<String>,
    /// The refresh token, if [`AccountSpec::with_refresh_token`].
    pub refresh_token: Option<String>,
    /// The OAuth client id of the refresh token.
    pub client_id: String,
}

impl MintedAccount {
    /// The pool record of this account's token (access, session and refresh tokens, client
    /// id, email, expiry), as a test or the demo registers it with a `TokenPool`.
    pub fn token_record(&self, pro: bool) -> crate::pool::TokenRecord {
        use crate::secret::Secret;
        let mut record = crate::pool::TokenRecord::new(Secret::new(self.access_token.clone()));
        record.pro = pro;
        record.session_token = self.session_token.clone().map(Secret::new);
        record.refresh_token = self.refresh_token.clone().map(Secret::new);
        record.client_id = Some(self.client_id.clone());
        record.email = Some(self.email.clone());
        record.expires_at_ms = Some(self.expires_at_ms);
        record
    }
}

/// An account as the simulator sees it now. Fields are public so tests can read them and
/// change them through [`Sim::account_mut`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    /// The email.
    pub email: String,
    /// `user-…` id.
    pub user_id: String,
    /// The plan id.
    pub plan: String,
    /// Sora 2 access.
    pub sora2: Sora2Access,
    /// Videos left in this window.
    pub quota_remaining: u32,
    /// The refill at each reset.
    pub quota_limit: u32,
    /// When the quota resets, unix ms.
    pub quota_resets_at_ms: u64,
    /// A blocked country.
    pub country: Option<String>,
    /// The username.
    pub username: Option<String>,
    /// Revoked.
    pub revoked: bool,
    /// The OAuth client id of its refresh tokens.
    pub client_id: String,
    /// The invite code `invite/mine` shows.
    pub invite_code: String,
    /// Lifetime of access tokens minted for it by [`Sim::mint_access_token`], ms.
    pub token_ttl_ms: u64,
    /// Accepted video creates so far.
    pub videos_created: u32,
}

impl AccountState {
    /// Whether the plan is Pro (`chatgpt_pro`, the only Pro id).
    pub fn is_pro(&self) -> bool {
        self.plan == "chatgpt_pro"
    }

    /// The title `billing/subscriptions` shows for the plan.
    fn plan_title(&self) -> String {
        match self.plan.as_str() {
            "chatgpt_pro" => "ChatGPT Pro".into(),
            "chatgpt_plus" | "chatgptplusplan" => "ChatGPT Plus".into(),
            "chatgpt_team" => "ChatGPT Business".into(),
            other => other.to_owned(),
        }
    }
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(super) struct IssuedToken {
    pub(super) account: usize,
    pub(super) expires_at_ms: u64,
}

/// An issued refresh token.
#[derive(Debug, Clone)]
pub(super) struct IssuedRefresh {
    pub(super) account: usize,
    pub(super) used: bool,
}

// === impl Sim: accounts ===

impl Sim {
    /// Adds an account and mints its credentials. Times are relative to the latest virtual
    /// time the simulator has seen ([`SimConfig::start_ms`](super::SimConfig::start_ms) before
    /// the first request). Adding an email twice adds a second, separate account that
    /// [`Sim::account`] does not find; use distinct emails.
    pub fn add_account(&mut self, spec: AccountSpec) -> MintedAccount {
        let now = self.clock_ms;
        let index = self.accounts.len();
        let client_id =
            spec.client_id.clone().unwrap_or_else(|| self.cfg.default_client_id.clone());
        let user_id = format!("user-{}", self.rng.token_text(24).replace(['-', '_'], "x"));
        let invite_code = self.rng.hex(6).to_uppercase();
        self.accounts.push(AccountState {
            email: spec.email.clone(),
            user_id,
            plan: spec.plan.clone(),
            sora2: spec.sora2,
            quota_remaining: spec.quota,
            quota_limit: spec.quota,
            quota_resets_at_ms: now.saturating_add(spec.quota_reset_s.saturating_mul(1000)),
            country: spec.country_blocked.clone(),
            username: spec.username.clone(),
            revoked: spec.revoked,
            client_id: client_id.clone(),
            invite_code,
            token_ttl_ms: spec.expires_in_ms,
            videos_created: 0,
        });
        let expires_at_ms = now.saturating_add(spec.expires_in_ms);
        let access_token = self.mint(now, index, expires_at_ms);
        let session_token = spec.with_session_token.then(|| {
            let st =
                format!("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..{}", self.rng.token_text(96));
            self.session_tokens.insert(st.clone(), index);
            st
        });
        let refresh_token = spec.with_refresh_token.then(|| self.new_refresh_token(index));
        MintedAccount {
            email: spec.email,
            access_token,
            expires_at_ms: expires_at_ms / 1000 * 1000,
            session_token,
            refresh_token,
            client_id,
        }
    }

    /// Mints another access token for the account with this email, valid for its
    /// [`AccountState::token_ttl_ms`] from `now_ms`. `None` for an unknown email.
    pub fn mint_access_token(&mut self, now_ms: u64, email: &str) -> Option<String> {
        let index = self.accounts.iter().position(|a| a.email == email)?;
        let ttl = self.accounts.get(index)?.token_ttl_ms;
        Some(self.mint(now_ms, index, now_ms.saturating_add(ttl)))
    }

    fn mint(&mut self, now: u64, index: usize, expires_at_ms: u64) -> String {
        let (email, user_id, plan) = match self.accounts.get(index) {
            Some(a) => (a.email.clone(), a.user_id.clone(), a.plan.clone()),
            None => Default::default(),
        };
        let token = jwt::mint(&mut self.rng, &email, &user_id, &plan, now, expires_at_ms);
        // `exp` is whole seconds: the token expires when its claim says so.
        let expires_at_ms = expires_at_ms / 1000 * 1000;
        self.access_tokens.insert(token.clone(), IssuedToken { account: index, expires_at_ms });
        token
    }

    /// With [`SimConfig::accept_offline_tokens`](super::SimConfig::accept_offline_tokens), an
    /// offline token signed for this seed: registered on the account with its email (created
    /// if none: [`AccountSpec::pro`] with the token's plan, no ST or RT).
    fn admit_offline(&mut self, token: &str) -> Option<IssuedToken> {
        if !self.cfg.accept_offline_tokens {
            return None;
        }
        let claims = jwt::verify_offline(self.cfg.seed, token)?;
        let account = match self.accounts.iter().position(|a| a.email == claims.email) {
            Some(index) => index,
            None => {
                self.add_account(AccountSpec {
                    plan: claims.plan,
                    with_session_token: false,
                    with_refresh_token: false,
                    ..AccountSpec::pro(&claims.email)
                });
                self.accounts.len().checked_sub(1)?
            }
        };
        let issued = IssuedToken { account, expires_at_ms: claims.expires_at_ms };
        self.access_tokens.insert(token.to_owned(), issued.clone());
        Some(issued)
    }

    fn new_refresh_token(&mut self, index: usize) -> String {
        let rt = format!("rt_{}", self.rng.token_text(43));
        self.refresh_tokens.insert(rt.clone(), IssuedRefresh { account: index, used: false });
        rt
    }

    /// The account of the request's bearer token, or the 401/403 the backend answers.
    /// Also refills the quota when its window has passed.
    pub(super) fn authenticate(
        &mut self,
        now: u64,
        req: &UpstreamRequest,
    ) -> Result<usize, UpstreamReply> {
        let token = req
            .header("authorization")
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let issued = match token {
            Some(t) => self.access_tokens.get(t).cloned().or_else(|| self.admit_offline(t)),
            None => None,
        };
        let Some(issued) = issued else {
            return Err(token_invalidated());
        };
        let window_ms = self.cfg.quota_window_s.saturating_mul(1000).max(1);
        let Some(account) = self.accounts.get_mut(issued.account) else {
            return Err(token_invalidated());
        };
        if account.revoked {
            return Err(token_invalidated());
        }
        if now >= issued.expires_at_ms {
            return Err(http::error(
                401,
                "Provided authentication token is expired. Please try signing in again.",
                "invalid_request_error",
                None,
                "token_expired",
            ));
        }
        if let Some(country) = &account.country {
            return Err(faults::country_blocked(country));
        }
        if now >= account.quota_resets_at_ms {
            account.quota_remaining = account.quota_limit;
            let windows = (now - account.quota_resets_at_ms) / window_ms + 1;
            account.quota_resets_at_ms =
                account.quota_resets_at_ms.saturating_add(windows.saturating_mul(window_ms));
        }
        Ok(issued.account)
    }

    /// 401 "Unauthorized" unless the account has Sora 2 (creates and `invite/mine`).
    pub(super) fn require_sora2(&self, account: usize) -> Result<(), UpstreamReply> {
        match self.accounts.get(account).map(|a| a.sora2) {
            Some(Sora2Access::Enabled) => Ok(()),
            _ => {
                Err(http::error(401, "Unauthorized", "invalid_request_error", None, "unauthorized"))
            }
        }
    }

    // === account endpoints ===

    /// `GET /me`.
    pub(super) fn me(&self, account: usize) -> Result<UpstreamReply, UpstreamReply> {
        let a = self.accounts.get(account).ok_or_else(token_invalidated)?;
        let name = a.email.split('@').next().unwrap_or_default();
        Ok(json_reply(
            200,
            &json!({
                "id": a.user_id, "email": a.email, "name": name, "username": a.username,
                "picture": null, "plan_type": a.plan, "is_underage": false,
            }),
        ))
    }

    /// `GET /billing/subscriptions`: `data[0].plan.{id,title}`, `end_ts`; `data: []` without
    /// a plan.
    pub(super) fn subscriptions(&self, account: usize) -> Result<UpstreamReply, UpstreamReply> {
        let a = self.accounts.get(account).ok_or_else(token_invalidated)?;
        let data = if a.plan.is_empty() {
            json!([])
        } else {
            let end = rfc3339_utc(self.cfg.start_ms.saturating_add(30 * 86_400_000));
            json!([{
                "id": format!("sub_{}", a.user_id.trim_start_matches("user-")),
                "plan": {"id": a.plan, "title": a.plan_title()},
                "end_ts": end.replace(".000Z", "Z"),
                "status": "active",
            }])
        };
        Ok(json_reply(200, &json!({ "data": data })))
    }

    /// `GET /project_y/invite/mine`.
    pub(super) fn invite_mine(&self, account: usize) -> Result<UpstreamReply, UpstreamReply> {
        self.require_sora2(account)?;
        let a = self.accounts.get(account).ok_or_else(token_invalidated)?;
        Ok(json_reply(
            200,
            &json!({"invite_code": a.invite_code, "redeemed_count": 0, "total_count": 4}),
        ))
    }

    /// `POST /project_y/invite/accept` `{invite_code}`: enables Sora 2 unless unavailable.
    pub(super) fn invite_accept(
        &mut self,
        account: usize,
        body: &[u8],
    ) -> Result<UpstreamReply, UpstreamReply> {
        let obj = json_object(body)?;
        req_str(&obj, "invite_code")?;
        let a = self.accounts.get_mut(account).ok_or_else(token_invalidated)?;
        let already = a.sora2 == Sora2Access::Enabled;
        if a.sora2 == Sora2Access::Unavailable {
            return Ok(json_reply(200, &json!({"success": false, "already_accepted": false})));
        }
        a.sora2 = Sora2Access::Enabled;
        Ok(json_reply(200, &json!({"success": true, "already_accepted": already})))
    }

    /// `GET /m/bootstrap`: enables a [`Sora2Access::AfterBootstrap`] account.
    pub(super) fn bootstrap(&mut self, account: usize) -> Result<UpstreamReply, UpstreamReply> {
        let a = self.accounts.get_mut(account).ok_or_else(token_invalidated)?;
        if a.sora2 == Sora2Access::AfterBootstrap {
            a.sora2 = Sora2Access::Enabled;
        }
        Ok(json_reply(200, &json!({"ok": true})))
    }

    /// `GET /nf/check`.
    pub(super) fn nf_check(
        &self,
        now: u64,
        account: usize,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let a = self.accounts.get(account).ok_or_else(token_invalidated)?;
        Ok(json_reply(
            200,
            &json!({"rate_limit_and_credit_balance": {
                "estimated_num_videos_remaining": a.quota_remaining,
                "rate_limit_reached": a.quota_remaining == 0,
                "access_resets_in_seconds": a.quota_resets_at_ms.saturating_sub(now).div_ceil(1000),
            }}),
        ))
    }

    /// `POST /project_y/profile/username/check` `{username}` -> `{available}`.
    pub(super) fn username_check(
        &self,
        account: usize,
        body: &[u8],
    ) -> Result<UpstreamReply, UpstreamReply> {
        let obj = json_object(body)?;
        let name = req_str(&obj, "username")?;
        let available = valid_username(name) && !self.username_taken(name, Some(account));
        Ok(json_reply(200, &json!({ "available": available })))
    }

    /// `POST /project_y/profile/username/set` `{username}`: 400 if malformed, 409 if taken.
    pub(super) fn username_set(
        &mut self,
        account: usize,
        body: &[u8],
    ) -> Result<UpstreamReply, UpstreamReply> {
        let obj = json_object(body)?;
        let name = req_str(&obj, "username")?;
        if !valid_username(name) {
            return Err(invalid_request());
        }
        if self.username_taken(name, Some(account)) {
            return Err(username_taken());
        }
        let a = self.accounts.get_mut(account).ok_or_else(token_invalidated)?;
        a.username = Some(name.to_owned());
        Ok(json_reply(200, &json!({"id": a.user_id, "username": name, "email": a.email})))
    }

    /// Whether another account, a character or the configured list holds `name`.
    pub(super) fn username_taken(&self, name: &str, except: Option<usize>) -> bool {
        let lower = name.to_ascii_lowercase();
        self.cfg.taken_usernames.iter().any(|t| t.eq_ignore_ascii_case(&lower))
            || self.accounts.iter().enumerate().any(|(i, a)| {
                Some(i) != except
                    && a.username.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(&lower))
            })
            || self.characters.values().any(|c| c.username.eq_ignore_ascii_case(&lower))
    }

    // === credential exchanges ===

    /// `GET /` on the chatgpt host: sets the `oai-did` device-id cookie.
    pub(super) fn chatgpt_root(&mut self) -> UpstreamReply {
        let did = self.rng.uuid4();
        let mut reply = http::html(
            200,
            "<!DOCTYPE html><html><head><title>ChatGPT</title></head><body></body></html>",
        );
        reply.headers.push((
            "set-cookie".into(),
            format!("oai-did={did}; Path=/; Max-Age=31536000; SameSite=Lax; Secure"),
        ));
        reply
    }

    /// `GET /api/auth/session` with `Cookie: __Secure-next-auth.session-token=<ST>`: a fresh
    /// AT; `{}` (200, like next-auth) for a missing, unknown or revoked session.
    pub(super) fn auth_session(&mut self, now: u64, req: &UpstreamRequest) -> UpstreamReply {
        let st = req.header("cookie").and_then(|cookies| {
            cookies.split(';').find_map(|c| {
                c.trim().strip_prefix("__Secure-next-auth.session-token=").map(str::to_owned)
            })
        });
        let account = st.and_then(|st| self.session_tokens.get(&st).copied());
        let Some(account) = account.filter(|&i| self.accounts.get(i).is_some_and(|a| !a.revoked))
        else {
            return json_reply(200, &json!({}));
        };
        let expires_at = now.saturating_add(self.cfg.refreshed_token_ttl_ms);
        let at = self.mint(now, account, expires_at);
        let (email, user_id) = match self.accounts.get(account) {
            Some(a) => (a.email.clone(), a.user_id.clone()),
            None => Default::default(),
        };
        json_reply(
            200,
            &json!({
                "user": {"id": user_id, "name": email.split('@').next().unwrap_or_default(), "email": email, "image": null},
                "expires": rfc3339_utc(now.saturating_add(30 * 86_400_000)),
                "accessToken": at,
                "authProvider": "openai",
            }),
        )
    }

    /// `POST /oauth/token` `{client_id, grant_type: "refresh_token", redirect_uri?,
    /// refresh_token}` (JSON or form-encoded) -> `{access_token, refresh_token, expires_in}`.
    ///
    /// Errors: 400 `invalid_request` (malformed or missing fields), 400
    /// `unsupported_grant_type`, 401 `invalid_grant` (unknown RT, or not this client's), 401
    /// `refresh_token_reused` (a rotated-away RT), 401 `refresh_token_invalidated` (revoked
    /// account).
    pub(super) fn oauth_token(&mut self, now: u64, req: &UpstreamRequest) -> UpstreamReply {
        let form = parse_token_form(req);
        let Some(form) = form else {
            return invalid_request();
        };
        let field = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let (Some(grant), Some(client_id), Some(rt)) =
            (field("grant_type"), field("client_id"), field("refresh_token"))
        else {
            return invalid_request();
        };
        if grant != "refresh_token" {
            return http::error(
                400,
                "Unsupported grant type.",
                "invalid_request_error",
                Some("grant_type"),
                "unsupported_grant_type",
            );
        }
        let invalid_grant = || {
            http::error(
                401,
                "Could not validate your refresh token. Please try signing in again.",
                "invalid_request_error",
                None,
                "invalid_grant",
            )
        };
        let Some(issued) = self.refresh_tokens.get(rt).cloned() else {
            return invalid_grant();
        };
        let Some(account) = self.accounts.get(issued.account) else {
            return invalid_grant();
        };
        if account.client_id != client_id {
            return invalid_grant();
        }
        if account.revoked {
            return http::error(
                401,
                "Your refresh token has been invalidated. Please try signing in again.",
                "invalid_request_error",
                None,
                "refresh_token_invalidated",
            );
        }
        if issued.used {
            return http::error(401, "Your refresh token has already been used to generate a new access token. Please try signing in again.", "invalid_request_error", None, "refresh_token_reused");
        }
        let ttl = self.cfg.refreshed_token_ttl_ms;
        let at = self.mint(now, issued.account, now.saturating_add(ttl));
        let new_rt = if self.cfg.rotate_refresh_tokens {
            if let Some(old) = self.refresh_tokens.get_mut(rt) {
                old.used = true;
            }
            self.new_refresh_token(issued.account)
        } else {
            rt.to_owned()
        };
        json_reply(
            200,
            &json!({
                "access_token": at, "refresh_token": new_rt, "expires_in": ttl / 1000,
                "token_type": "Bearer", "scope": "openid profile email offline_access",
            }),
        )
    }
}

/// The fields of a token request: a JSON object of strings, or a form-encoded body.
fn parse_token_form(req: &UpstreamRequest) -> Option<Vec<(String, String)>> {
    if let Ok(obj) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&req.body)
    {
        return Some(
            obj.into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect(),
        );
    }
    let is_form = req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let text = std::str::from_utf8(&req.body).ok().filter(|_| is_form)?;
    Some(
        ["grant_type", "client_id", "refresh_token", "redirect_uri"]
            .iter()
            .filter_map(|k| http::query_param(text, k).map(|v| ((*k).to_owned(), v)))
            .collect(),
    )
}

/// 401 `token_invalidated`.
pub(super) fn token_invalidated() -> UpstreamReply {
    http::error(
        401,
        "Your authentication token has been invalidated. Please try signing in again.",
        "invalid_request_error",
        None,
        "token_invalidated",
    )
}

/// 409 `username_taken`.
pub(super) fn username_taken() -> UpstreamReply {
    http::error(
        409,
        "This username is already taken.",
        "invalid_request_error",
        Some("username"),
        "username_taken",
    )
}

/// 3-30 characters of `a-z`, `0-9`, `.` and `_`, starting with a letter or digit.
pub(super) fn valid_username(name: &str) -> bool {
    (3..=30).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
}
