//! A sans-IO simulated Sora backend (spec section 8): the upstream of every test and of the
//! demo mode, as strict as the real one.
//!
//! [`Sim::handle`] takes the virtual time and one [`UpstreamRequest`] and answers a
//! [`SimResponse`]: a reply, or a transport fault. It routes by method and path (scheme and
//! host are ignored), so point every host of
//! [`UpstreamConfig::at_origin`](crate::upstream::UpstreamConfig::at_origin) at it:
//!
//! | Host group | Routes |
//! |---|---|
//! | BACKEND | `/backend/…`: every row 1-30 of spec 2 (account, uploads, images, videos, drafts, posts, characters, enhance) |
//! | session | `GET /api/auth/session` (cookie `__Secure-next-auth.session-token`) |
//! | OAuth | `POST /oauth/token` (refresh-token grant, rotation knob) |
//! | sentinel | `POST /backend-api/sentinel/req`; `GET /` sets the `oai-did` cookie |
//! | media | `GET <path of media_origin>/{images/<gen>.png, videos/<gen>.mp4, videos/<gen>/download.mp4, videos/<gen>/source.mp4, avatars/<cameo>.webp, files/<file>.webp}` |
//!
//! Nothing here reads a clock or an RNG: time comes in as `now_ms` (unix ms, virtual), and
//! every id, token and proof-of-work seed comes from [`SimConfig::seed`]. No request can make
//! it panic; anything malformed is answered the way the backend would (mostly the observed
//! 400 `invalid_request`).
//!
//! # Strictness
//!
//! - BACKEND routes need `Authorization: Bearer <AT>` of a minted, unrevoked, unexpired token:
//!   else 401 `token_invalidated` (unknown, revoked, missing) or `token_expired`. An account
//!   with a blocked country gets 403 `unsupported_country_code` (`param` = the country) on
//!   every BACKEND route. Cookies, device ids and user agents are never required on GETs.
//! - Sentinel-protected calls (`video_gen`, `nf/create`, `nf/create/storyboard`,
//!   `…/long_video_extension`, `project_y/post`) verify `openai-sentinel-token` as in spec
//!   3.6: a JSON object with string `p,t,c,id,flow`; `c` issued by `sentinel/req`, not expired
//!   ([`SimConfig::sentinel_ttl_ms`]), not used if [`SimConfig::sentinel_single_use`], bound to
//!   the account if `sentinel/req` carried a valid bearer; `flow` one of
//!   `sora_2_create_task__auto` / `sora_2_create_task`; `p` = `gAAAAAB<answer>~S` whose
//!   SHA3-512(seed ‖ answer) meets the difficulty and whose answer is an encoded 18-element
//!   config array; with [`SimConfig::strict_device_id`], `oai-device-id` == `id` == the `id`
//!   sent to `sentinel/req`. Any failure: the exact 400 `invalid_request` of spec 2.4.
//! - Bodies are validated strictly (missing or mistyped fields: 400 `invalid_request`;
//!   unknown fields ignored): see the route docs in the source files. Pro gating (`sy_ore`,
//!   `size: large`, `n_frames: 750` without `chatgpt_pro`) answers
//!   [`SimConfig::pro_gating_status`] (403) with `code: "pro_required"` and `param` naming the
//!   field.
//! - Video creates (`nf/create`, storyboard, extension) spend one quota unit; at zero they get
//!   429 `rate_limit_exceeded` with `Retry-After` = seconds until the reset, and `nf/check`
//!   shows `rate_limit_reached: true`. Image creates do not spend quota.
//!
//! # Scenario markers
//!
//! The request picks its scenario (architecture rule 7): markers in the prompt text (the
//! `prompt` of `video_gen`, `nf/create`, storyboard and `enhance_prompt`; the `user_prompt`
//! of an extension; the `file` part's filename of `characters/upload`). Grammar:
//! `#name[=value][xN][@poll]`; `xN` makes a fault fire N times (default once), `@poll` moves a
//! fault from the submitting request to the polls that report the task. Submit faults are
//! counted per prompt text: the N+1-th submit of the same prompt goes through. Unknown
//! `#words` are plain prompt text.
//!
//! | Marker | Where | Effect |
//! |---|---|---|
//! | `#fail=429` | submit / `@poll` | 429 `rate_limit_exceeded`, `Retry-After: 30` |
//! | `#fail=401` | submit / `@poll` | 401 `token_invalidated` (the account stays valid) |
//! | `#fail=400` | submit / `@poll` | the 400 `invalid_request` of a stale sentinel |
//! | `#fail=5xx` | submit / `@poll` | that status, `code: "internal_error"` |
//! | `#fail=NNN` (other 4xx) | submit / `@poll` | that status, `invalid_request_error` |
//! | `#heavy` / `#heavy=200` | submit / `@poll` | 503 (or the given status, e.g. 200) with `We're under heavy load, please try again later.`, `code: "heavy_load"` |
//! | `#cf` | submit / `@poll` | 403, `cf-mitigated: challenge`, HTML "Just a moment..." page (fires before auth) |
//! | `#country` | submit / `@poll` | 403 `unsupported_country_code`, `param` the account's country or `"CN"` |
//! | `#hang` | submit / `@poll` | [`TransportError::Timeout`] (fires before auth; nothing is created) |
//! | `#reset` | submit / `@poll` | [`TransportError::Reset`] (fires before auth; nothing is created) |
//! | `#lost` | submit | the submit is carried out (created, quota spent), then [`TransportError::Reset`] instead of its reply: the answer a crash or a broken connection loses |
//! | `#html` | submit / `@poll` | 200 with an HTML page |
//! | `#garbage` | submit / `@poll` | 200 `application/json` that is not JSON |
//! | `#policy` | task | video: drafts item `kind: "sora_content_violation"`, `reason_str`, `markdown_reason_str`, `url: null`; image: `recent_tasks` `status: "failed"` with `error_message` and `failure_reason` |
//! | `#queue=N` | task | stays `queued` for N polls that see it queued (`pending/v2`, `recent_tasks`), then the schedule resumes |
//! | `#nourl[=N]` | task | succeeds, but the draft (`url`/`downloadable_url` null) or image (`generations[].url` `""`) has no URL for N polls that see it ([`Timings::nourl_polls`] by default) |
//! | `#slow=MS` | task | the running phase lasts MS virtual ms (at most one virtual day) |
//! | `#cameofail` | cameo | `cameos/in_progress` ends in `status: "failed"` with a `status_message` (in the upload's filename, or in the prompt of the generation of `from-generation`) |
//!
//! Order of checks on a submit: edge faults (`#cf`, `#hang`, `#reset`) → auth → sentinel →
//! the other submit faults → body validation → Pro gating → quota → accepted. A faulted
//! submit creates nothing and spends no quota. Poll faults fire on the polls of the owning
//! account that would report the task (`pending/v2` and drafts for videos, `recent_tasks` for
//! images, `cameos/in_progress` for cameos), from its creation on.
//!
//! # Where the spec is silent (our choices)
//!
//! - Missing or non-bearer `Authorization` is 401 `token_invalidated`, like an unknown token.
//!   Auth runs before routing, so an unknown BACKEND path with a bad token is 401, else 404
//!   (405 for a known path with the wrong method).
//! - Accounts without Sora 2 get 401 `"Unauthorized"` (`code: "unauthorized"`) on
//!   `invite/mine` and on video creates; images are allowed.
//! - Unknown or revoked session tokens: 200 `{}` (next-auth's empty session). OAuth errors use
//!   the OpenAI envelope: `invalid_grant` (401), `refresh_token_reused` (401),
//!   `refresh_token_invalidated` (401), `unsupported_grant_type` (400).
//! - Quota exhaustion: 429 `rate_limit_exceeded`, `Retry-After` = seconds to the reset; a
//!   `#fail=429` says `Retry-After: 30`. Pro gating: 403 `pro_required`.
//! - Uploads must be real images (PNG, JPEG, GIF, WebP magic); character uploads real videos
//!   (MP4, WebM). Upload ids are `media_…`, cameo ids `ch_…`, character ids `char_…`, file ids
//!   `file_<32 hex>`.
//! - `video_gen` sizes: 360×360, 540×360, 360×540 and their doubles; `n_variants` 1-4.
//! - A sentinel token is consumed (single-use knob) when it verifies, even if the body is then
//!   rejected. `flow` must be `sora_2_create_task__auto` or `sora_2_create_task`.
//! - Drafts cursors are opaque (`dc_…`) and stable: items that arrive later do not shift the
//!   next page. Drafts and `pending/v2` list newest first.
//! - Cameo completion answers `status: "finalized"` and `status_message: "Completed"`, and only
//!   then a `profile_asset_url` (PY's and GO's completion tests both hold).
//! - Latency is the shell's business: a sans-IO simulator answers at once; `#hang` is the
//!   timeout.
//!
//! - Offline tokens: with [`SimConfig::accept_offline_tokens`], a bearer minted by
//!   [`mint_offline_token`] for this seed is accepted on first use and creates its account
//!   (what `sora2api sim mint-token` relies on: a separate process mints, the server admits).
//!
//! Per-account knobs live in [`AccountSpec`] (plan, Sora 2 access, quota and reset, blocked
//! country, username, revoked, token lifetime, ST/RT, client id); [`Sim::account_mut`]
//! changes them mid-test (e.g. revoke).
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use sora2api_core::sim::{AccountSpec, Sim, SimConfig, SimResponse};
//! use sora2api_core::upstream::{Method, UpstreamRequest};
//!
//! let mut sim = Sim::new(SimConfig::fast());
//! let account = sim.add_account(AccountSpec::pro("ada@example.com"));
//! let get = |path: &str| UpstreamRequest {
//!     method: Method::Get,
//!     url: format!("http://127.0.0.1:8080{path}"),
//!     headers: vec![("authorization".into(), format!("Bearer {}", account.access_token))],
//!     body: Bytes::new(),
//!     timeout_ms: 30_000,
//!     proxy: None,
//! };
//! let SimResponse::Reply(me) = sim.handle(1_767_225_600_000, &get("/backend/me")) else {
//!     panic!("no reply");
//! };
//! assert_eq!(me.status, 200);
//! let me: serde_json::Value = serde_json::from_slice(&me.body)?;
//! assert_eq!(me["email"], "ada@example.com");
//!
//! // Creates need a sentinel token: without one, the observed 400.
//! let mut create = get("/backend/nf/create");
//! create.method = Method::Post;
//! create.body = Bytes::from_static(br#"{"kind":"video","prompt":"a cat","orientation":"landscape","size":"small","n_frames":300,"model":"sy_8","inpaint_items":[]}"#);
//! let reply = sim.handle(1_767_225_601_000, &create);
//! assert_eq!(reply.status(), Some(400));
//! assert_eq!(sim.creates(), 0);
//! assert_eq!(sim.requests().len(), 2);
//! # Ok::<(), serde_json::Error>(())
//! ```

mod accounts;
mod characters;
mod config;
mod drafts;
mod faults;
mod http;
mod images;
mod jwt;
mod log;
mod media;
mod rng;
mod schedule;
mod sentinel;
mod videos;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::upstream::{Method, TransportError, UpstreamReply, UpstreamRequest};

pub use accounts::{AccountSpec, AccountState, MintedAccount, Sora2Access};
pub use config::{SimConfig, Timings};
pub use http::{HEAVY_LOAD_MESSAGE, INVALID_REQUEST_MESSAGE};
pub use jwt::mint_offline_token;
pub use log::LoggedRequest;

use faults::{Fault, Markers, Outcome, Phase};
use rng::Rng;

/// What the simulator answers: a reply, or a transport fault (`#hang` -> `Timeout`,
/// `#reset` -> `Reset`) the shell reports as if the network failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimResponse {
    /// An HTTP reply.
    Reply(UpstreamReply),
    /// No reply.
    Transport(TransportError),
}

impl SimResponse {
    /// The reply, if there is one.
    pub fn reply(&self) -> Option<&UpstreamReply> {
        match self {
            SimResponse::Reply(reply) => Some(reply),
            SimResponse::Transport(_) => None,
        }
    }

    /// The reply's status, if there is a reply.
    pub fn status(&self) -> Option<u16> {
        self.reply().map(|r| r.status)
    }

    /// As the `Result` an upstream transport returns.
    pub fn into_result(self) -> Result<UpstreamReply, TransportError> {
        match self {
            SimResponse::Reply(reply) => Ok(reply),
            SimResponse::Transport(error) => Err(error),
        }
    }
}

impl From<UpstreamReply> for SimResponse {
    fn from(reply: UpstreamReply) -> Self {
        SimResponse::Reply(reply)
    }
}

/// The simulated backend. Deterministic: the same configuration, accounts and requests at
/// the same virtual times give the same answers, byte for byte.
///
/// Call order: [`Sim::new`], [`Sim::add_account`] for each account, then [`Sim::handle`] for
/// each request with non-decreasing `now_ms` (an earlier time is treated as the latest seen).
/// `Send + Sync` plain data: a shell serves it from behind a mutex; `Clone` snapshots it.
#[derive(Debug, Clone)]
pub struct Sim {
    cfg: SimConfig,
    rng: Rng,
    /// The latest virtual time seen (construction: `cfg.start_ms`).
    clock_ms: u64,
    accounts: Vec<AccountState>,
    access_tokens: BTreeMap<String, accounts::IssuedToken>,
    session_tokens: BTreeMap<String, usize>,
    refresh_tokens: BTreeMap<String, accounts::IssuedRefresh>,
    sentinels: BTreeMap<String, sentinel::Issued>,
    sentinel_attempts: u64,
    uploads: BTreeMap<String, usize>,
    files: BTreeMap<String, characters::FileAsset>,
    image_tasks: Vec<images::ImageTask>,
    video_tasks: Vec<videos::VideoTask>,
    posts: BTreeMap<String, drafts::Post>,
    cameos: BTreeMap<String, characters::Cameo>,
    characters: BTreeMap<String, characters::Character>,
    /// Media paths (relative to the media path) that exist, and what they are.
    media: BTreeMap<String, media::MediaKind>,
    /// Submit faults fired so far, by (prompt, index of the fault among its markers).
    fired: BTreeMap<(String, usize), u32>,
    creates: usize,
    seq: u64,
    log: Vec<LoggedRequest>,
}

// === impl Sim ===

impl Sim {
    /// A simulator with no accounts and [`SimConfig::seeded_posts`] public posts.
    pub fn new(config: SimConfig) -> Self {
        let mut sim = Sim {
            rng: Rng::new(config.seed),
            clock_ms: config.start_ms,
            cfg: config,
            accounts: Vec::new(),
            access_tokens: BTreeMap::new(),
            session_tokens: BTreeMap::new(),
            refresh_tokens: BTreeMap::new(),
            sentinels: BTreeMap::new(),
            sentinel_attempts: 0,
            uploads: BTreeMap::new(),
            files: BTreeMap::new(),
            image_tasks: Vec::new(),
            video_tasks: Vec::new(),
            posts: BTreeMap::new(),
            cameos: BTreeMap::new(),
            characters: BTreeMap::new(),
            media: BTreeMap::new(),
            fired: BTreeMap::new(),
            creates: 0,
            seq: 0,
            log: Vec::new(),
        };
        for _ in 0..sim.cfg.seeded_posts {
            let id = format!("s_{}", sim.rng.hex(32));
            sim.posts.insert(id, drafts::Post { account: None, generation_id: None });
        }
        sim
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Answers one request at virtual time `now_ms` (unix ms) and records it in
    /// [`Sim::requests`]. Never panics, whatever the request.
    pub fn handle(&mut self, now_ms: u64, req: &UpstreamRequest) -> SimResponse {
        self.clock_ms = self.clock_ms.max(now_ms);
        let now = self.clock_ms;
        let response = self.route(now, req);
        self.log.push(LoggedRequest::new(now, req, response.status()));
        response
    }

    /// Every request received, in order (since the last [`Sim::take_requests`]).
    pub fn requests(&self) -> &[LoggedRequest] {
        &self.log
    }

    /// Drains the request log (a long-running demo server calls this to bound memory).
    pub fn take_requests(&mut self) -> Vec<LoggedRequest> {
        std::mem::take(&mut self.log)
    }

    /// How many create calls were accepted (`video_gen`, `nf/create`, storyboard, extension).
    pub fn creates(&self) -> usize {
        self.creates
    }

    /// The account with this email.
    pub fn account(&self, email: &str) -> Option<&AccountState> {
        self.accounts.iter().find(|a| a.email == email)
    }

    /// The account with this email, to change its knobs mid-test (revoke it, block its
    /// country, empty its quota...).
    pub fn account_mut(&mut self, email: &str) -> Option<&mut AccountState> {
        self.accounts.iter_mut().find(|a| a.email == email)
    }

    /// Every post id (`s_…`) that exists now: the seeded public posts and the published
    /// drafts, in id order. Any of them is a valid `remix_target_id`.
    pub fn posts(&self) -> Vec<String> {
        self.posts.keys().cloned().collect()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    // === routing ===

    fn route(&mut self, now: u64, req: &UpstreamRequest) -> SimResponse {
        let path_and_query = req.path_and_query();
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        if let Some(rest) = path.strip_prefix("/backend/") {
            return self.backend(now, req, rest, query);
        }
        match (req.method, path) {
            (Method::Get, "/") => self.chatgpt_root().into(),
            (Method::Get, "/api/auth/session") => self.auth_session(now, req).into(),
            (Method::Post, "/oauth/token") => self.oauth_token(now, req).into(),
            (Method::Post, "/backend-api/sentinel/req") => self.sentinel_req(now, req).into(),
            (Method::Get, _) => match self.media_file(path) {
                Some(reply) => reply.into(),
                None => http::not_found("Route").into(),
            },
            (_, "/" | "/api/auth/session" | "/oauth/token" | "/backend-api/sentinel/req") => {
                method_not_allowed().into()
            }
            _ => http::not_found("Route").into(),
        }
    }

    fn backend(&mut self, now: u64, req: &UpstreamRequest, rest: &str, query: &str) -> SimResponse {
        let segments: Vec<&str> = rest.split('/').collect();
        let route = Route::parse(req.method, &segments);

        // Markers of a prompt-bearing submit.
        let submit = route.as_ref().and_then(|r| r.submit_text(req));
        let markers = submit.as_deref().map(Markers::parse).unwrap_or_default();
        let prompt = submit.unwrap_or_default();
        let edge = |f: &Fault| matches!(f, Fault::Cloudflare | Fault::Hang | Fault::Reset);
        let lost = |f: &Fault| *f == Fault::LostReply;
        if let Some(response) = self.fire_submit_fault(&prompt, &markers, edge, "CN") {
            return response;
        }

        let account = match self.authenticate(now, req) {
            Ok(account) => account,
            Err(reply) => return reply.into(),
        };
        let Some(route) = route else {
            return if Route::known_path(&segments) {
                method_not_allowed().into()
            } else {
                http::not_found("Route").into()
            };
        };
        if route.needs_sentinel() {
            if let Err(reply) = self.verify_sentinel(now, req, account) {
                return reply.into();
            }
        }
        let country = self.accounts.get(account).and_then(|a| a.country.clone());
        let country = country.as_deref().unwrap_or("CN");
        let other = |f: &Fault| !edge(f) && !lost(f);
        if let Some(response) = self.fire_submit_fault(&prompt, &markers, other, country) {
            return response;
        }
        if let Some(kind) = route.poll_kind() {
            if let Some(response) = self.fire_poll_fault(account, kind, country) {
                return response;
            }
        }
        let result = self.dispatch(now, req, account, route, query, &markers);
        if result.is_ok() {
            if let Some(response) = self.fire_submit_fault(&prompt, &markers, lost, country) {
                return response;
            }
        }
        match result {
            Ok(reply) | Err(reply) => reply.into(),
        }
    }

    fn dispatch(
        &mut self,
        now: u64,
        req: &UpstreamRequest,
        account: usize,
        route: Route<'_>,
        query: &str,
        markers: &Markers,
    ) -> Result<UpstreamReply, UpstreamReply> {
        let body = &req.body[..];
        match route {
            Route::Me => self.me(account),
            Route::Subscriptions => self.subscriptions(account),
            Route::InviteMine => self.invite_mine(account),
            Route::InviteAccept => self.invite_accept(account, body),
            Route::Bootstrap => self.bootstrap(account),
            Route::NfCheck => self.nf_check(now, account),
            Route::UsernameCheck => self.username_check(account, body),
            Route::UsernameSet => self.username_set(account, body),
            Route::Uploads => self.upload(now, account, req),
            Route::VideoGen => self.video_gen(now, account, body, markers),
            Route::RecentTasks => self.recent_tasks(now, account, query),
            Route::NfCreate => self.nf_create(now, account, body, markers),
            Route::Storyboard => self.storyboard(now, account, body, markers),
            Route::Extension(gen) => self.extension(now, account, gen, body, markers),
            Route::Pending => self.pending(now, account),
            Route::Drafts { v2 } => self.drafts(now, account, query, v2),
            Route::PostCreate => self.post_create(now, account, body),
            Route::PostGet(id) => self.post_get(account, id, req),
            Route::PostDelete(id) => self.post_delete(account, id),
            Route::CharacterUpload => self.character_upload(now, account, req, markers),
            Route::CharacterFromGeneration => self.character_from_generation(now, account, body),
            Route::CameoProgress(id) => self.cameo_progress(account, id),
            Route::FileUpload => self.file_upload(account, req),
            Route::Finalize => self.finalize(now, account, body),
            Route::CameoUpdate(id) => self.cameo_update(account, id, body),
            Route::CharacterDelete(id) => self.character_delete(account, id),
            Route::Enhance => self.enhance(body),
        }
    }

    /// Fires the first submit fault of `markers` that `select` picks and that has firings
    /// left for this prompt.
    fn fire_submit_fault(
        &mut self,
        prompt: &str,
        markers: &Markers,
        select: impl Fn(&Fault) -> bool,
        country: &str,
    ) -> Option<SimResponse> {
        for (index, injected) in markers.faults.iter().enumerate() {
            if injected.phase != Phase::Submit || !select(&injected.fault) {
                continue;
            }
            let fired = self.fired.entry((prompt.to_owned(), index)).or_insert(0);
            if *fired < injected.times {
                *fired += 1;
                return Some(fault_response(&injected.fault, country));
            }
        }
        None
    }

    /// Fires a poll fault of a task of `account` of this kind that has firings left.
    fn fire_poll_fault(
        &mut self,
        account: usize,
        kind: PollKind,
        country: &str,
    ) -> Option<SimResponse> {
        let slots: Vec<&mut PollFaults> = match kind {
            PollKind::Video => self
                .video_tasks
                .iter_mut()
                .filter(|t| t.account == account)
                .map(|t| &mut t.poll_faults)
                .collect(),
            PollKind::Image => self
                .image_tasks
                .iter_mut()
                .filter(|t| t.account == account)
                .map(|t| &mut t.poll_faults)
                .collect(),
            PollKind::Cameo => self
                .cameos
                .values_mut()
                .filter(|c| c.account == account)
                .map(|c| &mut c.poll_faults)
                .collect(),
        };
        for slot in slots {
            if let Some(fault) = slot.take() {
                return Some(fault_response(&fault, country));
            }
        }
        None
    }
}

fn fault_response(fault: &Fault, country: &str) -> SimResponse {
    match faults::outcome(fault, country) {
        Outcome::Reply(reply) => SimResponse::Reply(reply),
        Outcome::Transport(error) => SimResponse::Transport(error),
    }
}

fn method_not_allowed() -> UpstreamReply {
    http::error(405, "Method Not Allowed", "invalid_request_error", None, "method_not_allowed")
}

/// The poll faults of one task: each fault with its firings left.
#[derive(Debug, Clone, Default)]
struct PollFaults(Vec<(Fault, u32)>);

impl PollFaults {
    fn from_markers(markers: &Markers) -> Self {
        PollFaults(markers.at(Phase::Poll).map(|f| (f.fault.clone(), f.times)).collect())
    }

    /// The next fault to fire, spending one firing.
    fn take(&mut self) -> Option<Fault> {
        let (fault, left) = self.0.iter_mut().find(|(_, left)| *left > 0)?;
        *left -= 1;
        Some(fault.clone())
    }
}

/// Which polls a poll fault fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollKind {
    Video,
    Image,
    Cameo,
}

/// Whether `path` (without query) is a sentinel-protected POST route.
pub(crate) fn is_sentinel_path(path: &str) -> bool {
    path.strip_prefix("/backend/").is_some_and(|rest| {
        let segments: Vec<&str> = rest.split('/').collect();
        Route::parse(Method::Post, &segments).is_some_and(|r| r.needs_sentinel())
    })
}

/// A BACKEND route (spec 2, rows 1-30).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Me,
    Subscriptions,
    InviteMine,
    InviteAccept,
    Bootstrap,
    NfCheck,
    UsernameCheck,
    UsernameSet,
    Uploads,
    VideoGen,
    RecentTasks,
    NfCreate,
    Storyboard,
    Extension(&'a str),
    Pending,
    Drafts { v2: bool },
    PostCreate,
    PostGet(&'a str),
    PostDelete(&'a str),
    CharacterUpload,
    CharacterFromGeneration,
    CameoProgress(&'a str),
    FileUpload,
    Finalize,
    CameoUpdate(&'a str),
    CharacterDelete(&'a str),
    Enhance,
}

impl<'a> Route<'a> {
    fn parse(method: Method, segments: &[&'a str]) -> Option<Self> {
        use Method::{Delete, Get, Post};
        Some(match (method, segments) {
            (Get, ["me"]) => Route::Me,
            (Get, ["billing", "subscriptions"]) => Route::Subscriptions,
            (Get, ["project_y", "invite", "mine"]) => Route::InviteMine,
            (Post, ["project_y", "invite", "accept"]) => Route::InviteAccept,
            (Get, ["m", "bootstrap"]) => Route::Bootstrap,
            (Get, ["nf", "check"]) => Route::NfCheck,
            (Post, ["project_y", "profile", "username", "check"]) => Route::UsernameCheck,
            (Post, ["project_y", "profile", "username", "set"]) => Route::UsernameSet,
            (Post, ["uploads"]) => Route::Uploads,
            (Post, ["video_gen"]) => Route::VideoGen,
            (Get, ["v2", "recent_tasks"]) => Route::RecentTasks,
            (Post, ["nf", "create"]) => Route::NfCreate,
            (Post, ["nf", "create", "storyboard"]) => Route::Storyboard,
            (Post, ["project_y", "profile", "drafts", gen, "long_video_extension"]) => {
                Route::Extension(gen)
            }
            (Get, ["nf", "pending", "v2"]) => Route::Pending,
            (Get, ["project_y", "profile", "drafts"]) => Route::Drafts { v2: false },
            (Get, ["project_y", "profile", "drafts", "v2"]) => Route::Drafts { v2: true },
            (Post, ["project_y", "post"]) => Route::PostCreate,
            (Get, ["project_y", "post", id]) => Route::PostGet(id),
            (Delete, ["project_y", "post", id]) => Route::PostDelete(id),
            (Post, ["characters", "upload"]) => Route::CharacterUpload,
            (Post, ["characters", "from-generation"]) => Route::CharacterFromGeneration,
            (Get, ["project_y", "cameos", "in_progress", id]) => Route::CameoProgress(id),
            (Post, ["project_y", "file", "upload"]) => Route::FileUpload,
            (Post, ["characters", "finalize"]) => Route::Finalize,
            (Post, ["project_y", "cameos", "by_id", id, "update_v2"]) => Route::CameoUpdate(id),
            (Delete, ["project_y", "characters", id]) => Route::CharacterDelete(id),
            (Post, ["editor", "enhance_prompt"]) => Route::Enhance,
            _ => return None,
        })
    }

    /// Whether some method serves this path (for 405 versus 404).
    fn known_path(segments: &[&str]) -> bool {
        [Method::Get, Method::Post, Method::Put, Method::Delete]
            .into_iter()
            .any(|m| Route::parse(m, segments).is_some())
    }

    fn needs_sentinel(&self) -> bool {
        matches!(
            self,
            Route::VideoGen
                | Route::NfCreate
                | Route::Storyboard
                | Route::Extension(_)
                | Route::PostCreate
        )
    }

    fn poll_kind(&self) -> Option<PollKind> {
        match self {
            Route::Pending | Route::Drafts { .. } => Some(PollKind::Video),
            Route::RecentTasks => Some(PollKind::Image),
            Route::CameoProgress(_) => Some(PollKind::Cameo),
            _ => None,
        }
    }

    /// The text scenario markers are read from, for routes that submit one.
    fn submit_text(&self, req: &UpstreamRequest) -> Option<String> {
        let field = match self {
            Route::VideoGen | Route::NfCreate | Route::Storyboard | Route::Enhance => "prompt",
            Route::Extension(_) => "user_prompt",
            Route::CharacterUpload => {
                let parts = http::multipart(req.header("content-type"), &req.body)?;
                return http::part(&parts, "file")?.filename.clone();
            }
            _ => return None,
        };
        let body: serde_json::Value = serde_json::from_slice(&req.body).ok()?;
        body.get(field)?.as_str().map(str::to_owned)
    }
}
