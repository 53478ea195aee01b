//! [`Enrich`]: what an access token is worth (sora-backend.md 2.2, 5.5, 7.2 tokens add/test).

use std::fmt;

use super::UnexpectedReply;
use crate::upstream::{
    billing_subscriptions, classify, decode_invite, decode_me, decode_nf_check,
    decode_subscription, invite_mine, jwt_claims, m_bootstrap, me, nf_check, Auth, Class,
    TransportError, UpstreamConfig, UpstreamReply, UpstreamRequest,
};

/// What the upstream says about an access token: the result of [`Enrich`], to store with the
/// token. No secrets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenProfile {
    /// `/me` `email`, else the access token's profile claim.
    pub email: Option<String>,
    /// `/me` `name`.
    pub name: Option<String>,
    /// `/me` `username`; `None` when the account never picked one.
    pub username: Option<String>,
    /// The plan id (`data[0].plan.id`), such as `chatgpt_pro`; `None` for no plan.
    pub plan_type: Option<String>,
    /// The plan title, such as `ChatGPT Pro`.
    pub plan_title: Option<String>,
    /// When the subscription ends (UTC unix ms).
    pub subscription_end_ms: Option<u64>,
    /// Whether the plan is Pro (exactly `chatgpt_pro`).
    pub pro: bool,
    /// Whether the account has Sora 2 (`invite/mine` answered, directly or after
    /// `m/bootstrap`).
    pub sora2_supported: bool,
    /// The Sora 2 invite code.
    pub invite_code: Option<String>,
    /// Invites redeemed.
    pub invite_redeemed_count: Option<u64>,
    /// Invites available in all.
    pub invite_total_count: Option<u64>,
    /// Videos left (`nf/check`); `None` when unknown (no Sora 2, or `nf/check` failed).
    pub quota_remaining: Option<u64>,
    /// When the quota resets (UTC unix ms): `now` + `access_resets_in_seconds`.
    pub quota_resets_at_ms: Option<u64>,
    /// Whether the account's rate limit is reached (until `quota_resets_at_ms`).
    pub rate_limited: bool,
}

impl TokenProfile {
    /// Whether no video can be made until the reset: rate-limited or nothing remains. A
    /// temporary state (B6): the pool waits until `quota_resets_at_ms`, it never disables.
    pub fn quota_exhausted(&self) -> bool {
        self.rate_limited || self.quota_remaining == Some(0)
    }
}

/// The call an enrichment was making when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrichCall {
    /// `GET /me`.
    Me,
    /// `GET /billing/subscriptions`.
    Subscription,
    /// `GET /project_y/invite/mine` (first or second try).
    Invite,
    /// `GET /m/bootstrap`.
    Bootstrap,
    /// `GET /nf/check` (its failures are tolerated; listed for completeness).
    Quota,
}

impl EnrichCall {
    fn as_str(self) -> &'static str {
        match self {
            EnrichCall::Me => "/me",
            EnrichCall::Subscription => "billing/subscriptions",
            EnrichCall::Invite => "project_y/invite/mine",
            EnrichCall::Bootstrap => "m/bootstrap",
            EnrichCall::Quota => "nf/check",
        }
    }
}

/// Why a token could not be enriched. Never carries a secret or an upstream body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnrichError {
    /// A 401 on `/me`, `billing/subscriptions` or `nf/check` other than `token_expired`
    /// (`token_invalidated` included: B22 fixed): the token is invalid. Try a refresh if the
    /// token has an ST or RT, else disable it as `token_invalid`.
    Invalid,
    /// 401 `token_expired`: refresh, else mark the token expired.
    Expired,
    /// `unsupported_country_code`: the token's egress is in a blocked region; mark it
    /// unusable with this reason (or give it another proxy).
    CountryUnsupported {
        /// The country (`error.param`), if it looks like one.
        country: Option<String>,
    },
    /// A failure that says nothing about the token (transport, 5xx, 429, heavy load,
    /// Cloudflare, a reply that does not decode, a 4xx on `/me`): store nothing, try later.
    Transient {
        /// The call that failed.
        call: EnrichCall,
        /// Its status; `None` for a transport failure.
        status: Option<u16>,
    },
}

impl fmt::Display for EnrichError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnrichError::Invalid => f.write_str("upstream rejected the access token"),
            EnrichError::Expired => f.write_str("the access token has expired"),
            EnrichError::CountryUnsupported { country: Some(c) } => {
                write!(f, "Sora is unavailable in the account's country ({c})")
            }
            EnrichError::CountryUnsupported { country: None } => {
                f.write_str("Sora is unavailable in the account's country")
            }
            EnrichError::Transient { call, status: Some(s) } => {
                write!(f, "{} failed with status {s}; try again later", call.as_str())
            }
            EnrichError::Transient { call, status: None } => {
                write!(f, "{} could not be reached; try again later", call.as_str())
            }
        }
    }
}

impl std::error::Error for EnrichError {}

/// What the shell does next for an [`Enrich`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrichStep {
    /// Send this request, then call [`Enrich::handle`] with the reply or transport error.
    Send(UpstreamRequest),
    /// Finished (every later [`Enrich::next`] says the same).
    Done(Result<TokenProfile, EnrichError>),
}

/// The online enrichment of an access token, for a token added online (and after ST/RT
/// conversion on import) and for the admin "test" action (5.5). At most six requests:
///
/// ```text
///   me ──> billing/subscriptions ──> invite/mine ──ok──────────────────────────> nf/check ──> Done(Ok)
///                                     │ 401 (not token_expired)                      ^
///                                     v                                              │
///                                  m/bootstrap ──2xx──> invite/mine ──ok─────────────┘
///                                     │ refused          │ refused
///                                     └──────────────────┴──> Done(Ok, sora2_supported: false)
/// ```
///
/// - `/me`: any 401 is [`EnrichError::Invalid`] (`token_expired`: [`EnrichError::Expired`]);
///   any other failure is [`EnrichError::Transient`].
/// - `billing/subscriptions`: 401 as for `/me`; another 4xx is "no plan" (as PY); 5xx and
///   the like are transient (a Pro account must not be stored as non-Pro by accident).
/// - `invite/mine`: `unsupported_country_code` is [`EnrichError::CountryUnsupported`]; a
///   401 means "no Sora 2 yet" (`/me` just accepted the token, so the spec's `Unauthorized`
///   message needs no check): `m/bootstrap` once, then `invite/mine` again; a refusal there
///   (or another 4xx) means `sora2_supported: false`; transient failures are transient.
/// - `nf/check` runs for Sora 2 accounts only; a 429 or a quota error marks the account
///   rate-limited; other failures (401 aside) leave the quota unknown: it is advisory.
///
/// Call order as [`super::Refresh`]: `next`, send, `handle`, until `Done`; `next` before
/// `handle` repeats the request. The username fix-up of PY (random names) is not part of it.
///
/// ```
/// use sora2api_core::lifecycle::{Enrich, EnrichStep};
/// use sora2api_core::secret::Secret;
/// use sora2api_core::upstream::{Auth, UpstreamConfig, UpstreamReply};
///
/// let cfg = UpstreamConfig::at_origin("http://127.0.0.1:8080");
/// let mut enrich = Enrich::new(&cfg, Auth::new(Secret::new("eyJ.at.sig")));
/// let now_ms = 1_767_225_600_000;
/// let profile = loop {
///     match enrich.next(now_ms) {
///         EnrichStep::Send(req) => {
///             // The shell sends `req`; here, canned replies by path.
///             let body = match req.path_and_query() {
///                 "/backend/me" => r#"{"email":"a@b.c","name":"A","username":"ab"}"#,
///                 "/backend/billing/subscriptions" => r#"{"data":[{"plan":{"id":"chatgpt_pro","title":"ChatGPT Pro"},"end_ts":"2026-11-13T16:58:21Z"}]}"#,
///                 "/backend/project_y/invite/mine" => r#"{"invite_code":"ABC123","redeemed_count":0,"total_count":4}"#,
///                 "/backend/nf/check" => r#"{"rate_limit_and_credit_balance":{"estimated_num_videos_remaining":27,"rate_limit_reached":false,"access_resets_in_seconds":46833}}"#,
///                 other => unreachable!("{other}"),
///             };
///             enrich.handle(now_ms, Ok(UpstreamReply::json(200, body))).unwrap();
///         }
///         EnrichStep::Done(result) => break result.unwrap(),
///     }
/// };
/// assert!(profile.pro && profile.sora2_supported);
/// assert_eq!(profile.quota_remaining, Some(27));
/// assert_eq!(profile.quota_resets_at_ms, Some(now_ms + 46_833_000));
/// ```
#[derive(Debug, Clone)]
pub struct Enrich {
    cfg: UpstreamConfig,
    auth: Auth,
    phase: Phase,
    awaiting: bool,
    profile: TokenProfile,
    done: Option<Result<TokenProfile, EnrichError>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Me,
    Subscription,
    Invite,
    Bootstrap,
    InviteAgain,
    Quota,
}

impl Phase {
    fn call(self) -> EnrichCall {
        match self {
            Phase::Me => EnrichCall::Me,
            Phase::Subscription => EnrichCall::Subscription,
            Phase::Invite | Phase::InviteAgain => EnrichCall::Invite,
            Phase::Bootstrap => EnrichCall::Bootstrap,
            Phase::Quota => EnrichCall::Quota,
        }
    }
}

/// Where a reply leads.
enum Next {
    Phase(Phase),
    Finish,
    Fail(EnrichError),
}

// === impl Enrich ===

impl Enrich {
    /// An enrichment of the token `auth` (its access token and own proxy; the session token
    /// is not used), against the hosts of `cfg`.
    pub fn new(cfg: &UpstreamConfig, auth: Auth) -> Self {
        Enrich {
            cfg: cfg.clone(),
            auth,
            phase: Phase::Me,
            awaiting: false,
            profile: TokenProfile::default(),
            done: None,
        }
    }

    /// What to do next.
    #[must_use]
    pub fn next(&mut self, _now_ms: u64) -> EnrichStep {
        if let Some(result) = &self.done {
            return EnrichStep::Done(result.clone());
        }
        let (cfg, auth) = (&self.cfg, &self.auth);
        let req = match self.phase {
            Phase::Me => me(cfg, auth),
            Phase::Subscription => billing_subscriptions(cfg, auth),
            Phase::Invite | Phase::InviteAgain => invite_mine(cfg, auth),
            Phase::Bootstrap => m_bootstrap(cfg, auth),
            Phase::Quota => nf_check(cfg, auth),
        };
        self.awaiting = true;
        EnrichStep::Send(req)
    }

    /// The outcome of the request [`Enrich::next`] asked for; `now_ms` is when it arrived
    /// (the quota reset time counts from it).
    pub fn handle(
        &mut self,
        now_ms: u64,
        outcome: Result<UpstreamReply, TransportError>,
    ) -> Result<(), UnexpectedReply> {
        if !self.awaiting || self.done.is_some() {
            return Err(UnexpectedReply);
        }
        self.awaiting = false;
        let next = match outcome {
            Ok(reply) => self.on_reply(now_ms, &reply),
            // The quota is advisory: an unreachable nf/check leaves it unknown.
            Err(_) if self.phase == Phase::Quota => Next::Finish,
            Err(_) => Next::Fail(EnrichError::Transient { call: self.phase.call(), status: None }),
        };
        match next {
            Next::Phase(phase) => self.phase = phase,
            Next::Finish => self.done = Some(Ok(self.profile.clone())),
            Next::Fail(error) => self.done = Some(Err(error)),
        }
        Ok(())
    }

    /// Whether the enrichment is finished.
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }

    fn on_reply(&mut self, now_ms: u64, reply: &UpstreamReply) -> Next {
        let phase = self.phase;
        let transient =
            Next::Fail(EnrichError::Transient { call: phase.call(), status: Some(reply.status) });
        let p = &mut self.profile;
        match (phase, classify(reply)) {
            (Phase::Me, Class::Ok) => match decode_me(reply) {
                Ok(m) => {
                    p.email = m.email.or_else(|| {
                        jwt_claims(self.auth.access_token.expose()).ok().and_then(|c| c.email)
                    });
                    p.name = m.name;
                    p.username = m.username;
                    Next::Phase(Phase::Subscription)
                }
                Err(_) => transient,
            },
            (Phase::Subscription, Class::Ok) => match decode_subscription(reply) {
                Ok(s) => {
                    p.pro = s.is_pro();
                    p.plan_type = s.plan_id;
                    p.plan_title = s.plan_title;
                    p.subscription_end_ms = s.end_unix_ms;
                    Next::Phase(Phase::Invite)
                }
                Err(_) => transient,
            },
            // As PY: a refused subscription call (403, 404) is no plan.
            (Phase::Subscription, Class::Fatal { .. }) => Next::Phase(Phase::Invite),
            (Phase::Invite | Phase::InviteAgain, Class::Ok) => match decode_invite(reply) {
                Ok(i) => {
                    p.sora2_supported = true;
                    p.invite_code = i.invite_code;
                    p.invite_redeemed_count = i.redeemed_count;
                    p.invite_total_count = i.total_count;
                    Next::Phase(Phase::Quota)
                }
                Err(_) => transient,
            },
            (Phase::Invite, Class::TokenInvalid) => Next::Phase(Phase::Bootstrap),
            (Phase::Bootstrap, Class::Ok) => Next::Phase(Phase::InviteAgain),
            // No Sora 2, so no quota to check.
            (
                Phase::Invite | Phase::InviteAgain | Phase::Bootstrap,
                Class::TokenInvalid | Class::Fatal { .. },
            ) => Next::Finish,
            (Phase::Quota, Class::Ok) => {
                if let Ok(q) = decode_nf_check(reply) {
                    p.quota_remaining = q.remaining;
                    p.rate_limited = q.rate_limit_reached;
                    p.quota_resets_at_ms = q.resets_in_ms.map(|ms| now_ms.saturating_add(ms));
                }
                Next::Finish
            }
            (
                Phase::Quota,
                Class::QuotaExhausted { resets_in_ms: reset }
                | Class::RateLimited { retry_after_ms: reset },
            ) => {
                p.rate_limited = true;
                p.quota_resets_at_ms = reset.map(|ms| now_ms.saturating_add(ms));
                Next::Finish
            }
            (_, Class::TokenExpired) => Next::Fail(EnrichError::Expired),
            (_, Class::TokenInvalid) => Next::Fail(EnrichError::Invalid),
            (_, Class::CountryUnsupported { country }) => {
                Next::Fail(EnrichError::CountryUnsupported { country })
            }
            (Phase::Quota, _) => Next::Finish,
            _ => transient,
        }
    }
}

#[cfg(test)]
mod tests;
