//! [`Refresh`]: ST -> AT, then RT -> AT (sora-backend.md 2.1, 5.5).

use std::fmt;

use super::UnexpectedReply;
use crate::secret::Secret;
use crate::upstream::{
    classify, decode_oauth, decode_session, jwt_claims, refresh_to_access, session_to_access,
    Class, DecodeError, TransportError, UpstreamConfig, UpstreamReply, UpstreamRequest,
};

/// A sensible `margin_ms` for [`super::refresh_due`]: 24 hours, the window of PY's daily job
/// (access tokens live for days).
pub const DEFAULT_REFRESH_MARGIN_MS: u64 = 24 * 60 * 60 * 1000;

/// What a token can be refreshed with: its ST and RT, the OAuth client id of its RT, and its
/// own proxy. Empty secrets count as absent.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RefreshMaterial {
    /// The session token (ST), exchanged first.
    pub session_token: Option<Secret>,
    /// The refresh token (RT), exchanged if the ST is absent or fails.
    pub refresh_token: Option<Secret>,
    /// The RT's OAuth client id; `None` uses [`UpstreamConfig::default_client_id`].
    pub client_id: Option<String>,
    /// The token's own proxy; `None` lets the shell apply the global one.
    pub proxy: Option<String>,
}

impl RefreshMaterial {
    /// Whether there is anything to refresh with (a non-empty ST or RT). Without it, a 401
    /// leaves nothing to try: the token is invalid.
    pub fn can_refresh(&self) -> bool {
        present(&self.session_token).is_some() || present(&self.refresh_token).is_some()
    }
}

impl fmt::Debug for RefreshMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A proxy URL may carry credentials (`socks5://user:pw@host`).
        f.debug_struct("RefreshMaterial")
            .field("session_token", &self.session_token)
            .field("refresh_token", &self.refresh_token)
            .field("client_id", &self.client_id)
            .field("proxy", &self.proxy.as_ref().map(|_| "<set>"))
            .finish()
    }
}

fn present(secret: &Option<Secret>) -> Option<&Secret> {
    secret.as_ref().filter(|s| !s.is_empty())
}

/// Which credential produced a new access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The session token (`GET <auth_session_url>`).
    SessionToken,
    /// The refresh token (`POST <oauth_token_url>`).
    RefreshToken,
}

/// A new access token. `Debug` shows fingerprints only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// The new access token.
    pub access_token: Secret,
    /// The rotated refresh token, when the OAuth server sent one: store it (the old one may
    /// be single-use). `None`: keep the current RT.
    pub refresh_token: Option<Secret>,
    /// When the new access token expires (UTC unix ms): its JWT `exp`, else `expires_in`
    /// from now (RT) or the session's `expires` (ST); `None` if nothing says.
    pub expires_at_ms: Option<u64>,
    /// The account e-mail: the JWT's profile claim, else the session's `user.email`.
    pub email: Option<String>,
    /// The credential that worked.
    pub via: Credential,
}

/// Why no new access token came out. Never carries a secret or an upstream body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshError {
    /// The token has neither an ST nor an RT: nothing to refresh with.
    NoMaterial,
    /// Every credential tried was refused (401; 400 such as `invalid_grant`; 403 that is not
    /// a Cloudflare challenge; a session reply without `accessToken`): the material is dead.
    /// The shell disables the token as invalid.
    Rejected,
    /// At least one credential failed for a reason that may pass (transport, 5xx, 429, heavy
    /// load, Cloudflare, an unexpected reply shape, a country block of the egress, a 404 from
    /// a misconfigured host): keep the token and try again later.
    Transient,
    /// A credential worked, but the new access token's expiry is already past (and no other
    /// credential did better). The shell marks the token expired.
    AlreadyExpired,
}

impl RefreshError {
    /// Which of two attempt outcomes the whole refresh reports: the most hopeful one
    /// (`Transient` > `AlreadyExpired` > `Rejected`).
    fn merge(self, other: RefreshError) -> RefreshError {
        fn rank(e: RefreshError) -> u8 {
            match e {
                RefreshError::NoMaterial => 0,
                RefreshError::Rejected => 1,
                RefreshError::AlreadyExpired => 2,
                RefreshError::Transient => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefreshError::NoMaterial => "the token has no session or refresh token to refresh with",
            RefreshError::Rejected => "the upstream refused the token's session/refresh token",
            RefreshError::Transient => "the token could not be refreshed now; try again later",
            RefreshError::AlreadyExpired => "the refreshed access token has already expired",
        })
    }
}

impl std::error::Error for RefreshError {}

/// What the shell does next for a [`Refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshStep {
    /// Send this request, then call [`Refresh::handle`] with the reply or transport error.
    Send(UpstreamRequest),
    /// Finished (every later [`Refresh::next`] says the same).
    Done(Result<Refreshed, RefreshError>),
}

/// One refresh of one token: ST -> AT if the token has an ST, then RT -> AT if that failed
/// (or there is no ST) and the token has an RT, as PY's daily job does.
///
/// Call order: [`Refresh::next`]; on [`RefreshStep::Send`], send it and call
/// [`Refresh::handle`] once with the outcome; repeat until [`RefreshStep::Done`]. Calling
/// `next` again before `handle` returns the same request (send it only once). At most two
/// requests are ever emitted.
///
/// ```text
///   new ──> [ST?] ──Send(session)──> handle ──ok──────────────────────────> Done(Ok)
///             │                        │ failed
///             v                        v
///           [RT?] <────────────────────┘
///             │ yes: Send(oauth) ──> handle ──ok──> Done(Ok)
///             │                        └─failed──> Done(Err(most hopeful failure))
///             └ no: Done(Err(NoMaterial, or the ST's failure))
/// ```
#[derive(Debug, Clone)]
pub struct Refresh {
    cfg: UpstreamConfig,
    material: RefreshMaterial,
    state: State,
    /// The most hopeful failure so far.
    failure: Option<RefreshError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Session,
    OAuth,
}

#[derive(Debug, Clone)]
enum State {
    /// The next attempt to make (`None`: none left).
    Ready(Option<Attempt>),
    /// A request is out.
    Awaiting(Attempt),
    Done(Result<Refreshed, RefreshError>),
}

// === impl Refresh ===

impl Refresh {
    /// A refresh of the token with this `material`, against the hosts of `cfg`.
    pub fn new(cfg: &UpstreamConfig, material: RefreshMaterial) -> Self {
        let first = if present(&material.session_token).is_some() {
            Some(Attempt::Session)
        } else if present(&material.refresh_token).is_some() {
            Some(Attempt::OAuth)
        } else {
            None
        };
        let state = match first {
            Some(attempt) => State::Ready(Some(attempt)),
            None => State::Done(Err(RefreshError::NoMaterial)),
        };
        Refresh { cfg: cfg.clone(), material, state, failure: None }
    }

    /// What to do next.
    #[must_use]
    pub fn next(&mut self, _now_ms: u64) -> RefreshStep {
        match &self.state {
            State::Done(result) => RefreshStep::Done(result.clone()),
            State::Awaiting(attempt) => self.request(*attempt),
            State::Ready(Some(attempt)) => {
                let attempt = *attempt;
                match self.request(attempt) {
                    step @ RefreshStep::Send(_) => {
                        self.state = State::Awaiting(attempt);
                        step
                    }
                    done => done,
                }
            }
            State::Ready(None) => {
                let result = Err(self.failure.unwrap_or(RefreshError::NoMaterial));
                self.state = State::Done(result.clone());
                RefreshStep::Done(result)
            }
        }
    }

    /// The outcome of the request [`Refresh::next`] asked for. `now_ms` is when it arrived
    /// (an access token that expires by then counts as [`RefreshError::AlreadyExpired`]).
    pub fn handle(
        &mut self,
        now_ms: u64,
        outcome: Result<UpstreamReply, TransportError>,
    ) -> Result<(), UnexpectedReply> {
        let State::Awaiting(attempt) = self.state else {
            return Err(UnexpectedReply);
        };
        let result = match &outcome {
            Ok(reply) => match attempt {
                Attempt::Session => from_session(now_ms, reply),
                Attempt::OAuth => from_oauth(now_ms, reply),
            },
            Err(_) => Err(RefreshError::Transient),
        };
        match result {
            Ok(fresh) => self.state = State::Done(Ok(fresh)),
            Err(error) => {
                self.failure = Some(self.failure.map_or(error, |f| f.merge(error)));
                let next = match attempt {
                    Attempt::Session if present(&self.material.refresh_token).is_some() => {
                        Some(Attempt::OAuth)
                    }
                    Attempt::Session | Attempt::OAuth => None,
                };
                self.state = State::Ready(next);
            }
        }
        Ok(())
    }

    /// Whether the refresh is finished.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    fn request(&self, attempt: Attempt) -> RefreshStep {
        let m = &self.material;
        let proxy = m.proxy.clone();
        match attempt {
            Attempt::Session => match present(&m.session_token) {
                Some(st) => RefreshStep::Send(session_to_access(&self.cfg, st, proxy)),
                None => RefreshStep::Done(Err(RefreshError::NoMaterial)),
            },
            Attempt::OAuth => match present(&m.refresh_token) {
                Some(rt) => RefreshStep::Send(refresh_to_access(
                    &self.cfg,
                    rt,
                    m.client_id.as_deref(),
                    proxy,
                )),
                None => RefreshStep::Done(Err(RefreshError::NoMaterial)),
            },
        }
    }
}

/// What a failed exchange says about the material.
fn failure(class: &Class) -> RefreshError {
    match class {
        // 401 and 400 (`invalid_grant`, `invalid_client`, a dead session): the material is
        // dead. A 403 here is a refusal too, once Cloudflare and country blocks (which
        // `classify` reports first) are ruled out.
        Class::TokenInvalid
        | Class::TokenExpired
        | Class::InvalidRequest
        | Class::Fatal { status: 400 | 403 } => RefreshError::Rejected,
        // Everything else says nothing about the material: a 404 is a misconfigured host,
        // a country block is the egress's, the rest passes.
        _ => RefreshError::Transient,
    }
}

fn from_session(now_ms: u64, reply: &UpstreamReply) -> Result<Refreshed, RefreshError> {
    let class = classify(reply);
    if class != Class::Ok {
        return Err(failure(&class));
    }
    let session = decode_session(reply).map_err(|e| match e {
        // next-auth answers `{}` for an expired or unknown session.
        DecodeError::Missing { .. } => RefreshError::Rejected,
        _ => RefreshError::Transient,
    })?;
    finish(now_ms, session.access_token, None, session.expires_unix_ms, session.email)
        .map(|r| Refreshed { via: Credential::SessionToken, ..r })
}

fn from_oauth(now_ms: u64, reply: &UpstreamReply) -> Result<Refreshed, RefreshError> {
    let class = classify(reply);
    if class != Class::Ok {
        return Err(failure(&class));
    }
    let tokens = decode_oauth(reply).map_err(|_| RefreshError::Transient)?;
    let expires = tokens.expires_in_s.map(|s| now_ms.saturating_add(s.saturating_mul(1000)));
    finish(now_ms, tokens.access_token, tokens.refresh_token, expires, None)
        .map(|r| Refreshed { via: Credential::RefreshToken, ..r })
}

/// The JWT's claims win over what the exchange said; an AT that is not a JWT is taken as is
/// (the upstream issued it; the next call tells).
fn finish(
    now_ms: u64,
    access_token: Secret,
    refresh_token: Option<Secret>,
    fallback_expiry_ms: Option<u64>,
    fallback_email: Option<String>,
) -> Result<Refreshed, RefreshError> {
    let claims = jwt_claims(access_token.expose()).unwrap_or_default();
    let expires_at_ms = claims.exp_unix_ms.or(fallback_expiry_ms);
    if expires_at_ms.is_some_and(|exp| exp <= now_ms) {
        return Err(RefreshError::AlreadyExpired);
    }
    Ok(Refreshed {
        access_token,
        refresh_token,
        expires_at_ms,
        email: claims.email.or(fallback_email),
        via: Credential::SessionToken,
    })
}

#[cfg(test)]
mod tests;
