//! The plain data the pool speaks: ids, requests, leases, outcomes, configuration, decisions.

use std::fmt;

use crate::error::TokenWork;
use crate::secret::Secret;
use crate::Error;

/// A token's id in the pool. Assigned increasing by [`super::TokenPool::add`]; persisted ids
/// come back through [`super::TokenPool::insert_with_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenId(pub u64);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The kind of slot a lease takes. Every video-like operation (video, remix, storyboard,
/// extension, character, prompt enhancement) is [`Work::Video`]: all of them take a slot (B9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Work {
    /// Image generation.
    Image,
    /// Every video-like operation.
    Video,
}

impl Work {
    /// Both kinds, in index order.
    pub const ALL: [Work; 2] = [Work::Image, Work::Video];

    /// 0 for image, 1 for video.
    pub(crate) fn index(self) -> usize {
        match self {
            Work::Image => 0,
            Work::Video => 1,
        }
    }
}

/// What a caller needs a token for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseRequest {
    /// The slot kind.
    pub work: Work,
    /// Whether the model needs a Pro token (`plan_type == "chatgpt_pro"`).
    pub pro: bool,
    /// Only this token: a task the upstream already accepted can only be polled with the
    /// account that owns it (resuming after a restart). Such a request ignores cooldowns and
    /// disables other than invalid/expired (polling an accepted task is not new work), but
    /// respects the concurrency limit; it is refused when the token is gone, expired, or
    /// disabled as invalid or expired.
    pub token: Option<TokenId>,
}

impl LeaseRequest {
    /// Which "No available tokens ..." text (sora-backend.md 6.6) answers this request.
    pub fn token_work(&self) -> TokenWork {
        match (self.pro, self.work) {
            (true, _) => TokenWork::Pro,
            (false, Work::Image) => TokenWork::Image,
            (false, Work::Video) => TokenWork::Video,
        }
    }

    /// The four request classes (work x pro), for per-class bookkeeping.
    /// The request's class (work x pro) for per-class shortcuts; a pinned request has none:
    /// it can only use its own token, so it is judged on its own.
    pub(crate) fn class(&self) -> Option<usize> {
        self.token.is_none().then(|| self.work.index() * 2 + usize::from(self.pro))
    }
}

/// A lease's id, unique within one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(pub u64);

/// What a lease lets the caller send with: copied from the token at grant time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access token (the `Authorization: Bearer` value).
    pub access_token: Secret,
    /// The session token, for an on-demand refresh.
    pub session_token: Option<Secret>,
    /// The token's own proxy URL, if it has one.
    pub proxy: Option<String>,
}

/// One reserved slot on one token. Not `Clone`: it is given back exactly once, by value, with
/// [`super::TokenPool::release`] (B3). `Debug` shows no secret ([`Secret`] masks itself).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a lease must be released with TokenPool::release"]
pub struct Lease {
    /// This lease's id.
    pub id: LeaseId,
    /// The token it reserves a slot on.
    pub token: TokenId,
    /// The slot kind.
    pub work: Work,
    /// What to send with.
    pub credentials: Credentials,
}

/// What happened on the token during a lease; decides cooldowns and disables
/// (sora-backend.md 4.4, decisions 5, 15 and 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The work succeeded: the error streak resets, image/video totals go up.
    Success,
    /// The upstream refused the content: no penalty, streak unchanged (decisions 5).
    ContentViolation,
    /// 429 / rate limit: the token cools down for `retry_after_ms` (0 = no `Retry-After` was
    /// given: [`PoolConfig::default_cooldown_ms`]). Error totals up, streak unchanged.
    RateLimited {
        /// How long the upstream asked us to wait, in ms (0 = not said).
        retry_after_ms: u64,
    },
    /// The Sora quota is used up: the token waits until the reset time and then comes back by
    /// itself (B6). A reset time not in the future waits the default cooldown.
    QuotaExhausted {
        /// When the quota resets, unix ms.
        resets_at_ms: u64,
    },
    /// "Heavy load": error totals up, streak unchanged (never counts towards auto-disable).
    HeavyLoad,
    /// A Cloudflare challenge: the token's egress is challenged, so every usable token on the
    /// same egress (same proxy URL, or no proxy) cools down for `cooldown_ms` (0 = default).
    Cloudflare {
        /// The cooldown in ms (0 = [`PoolConfig::default_cooldown_ms`]).
        cooldown_ms: u64,
    },
    /// `unsupported_country_code`: disabled with [`super::DisableReason::Country`].
    CountryUnsupported,
    /// 401 after the caller already tried a refresh: disabled with
    /// [`super::DisableReason::Invalid`].
    TokenInvalid,
    /// The token expired and could not be refreshed: disabled with
    /// [`super::DisableReason::Expired`].
    TokenExpired,
    /// Any other upstream failure: streak + 1; at [`PoolConfig::error_threshold`] the token is
    /// disabled with [`super::DisableReason::ErrorLimit`].
    Failure,
    /// Cancelled, or the lease was never used: no effect beyond freeing the slot.
    Abandoned,
}

/// How a token is picked among those that can take the work now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Uniformly at random, from the caller's random bits (PY `default`).
    #[default]
    Random,
    /// The next eligible id after the last one used, per request class (PY `polling`).
    RoundRobin,
}

/// The pool's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// How a token is picked.
    pub strategy: Strategy,
    /// Consecutive failures that disable a token ([`Outcome::Failure`]); 0 never disables.
    pub error_threshold: u32,
    /// How long a request waits in the queue before it fails, in ms (0 = never queue).
    pub max_wait_ms: u64,
    /// How many requests may wait at once; beyond that a request is refused as overloaded.
    pub max_waiters: usize,
    /// The cooldown when the upstream does not say how long (429 without `Retry-After`), ms.
    pub default_cooldown_ms: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            strategy: Strategy::Random,
            error_threshold: 3,
            max_wait_ms: 60_000,
            max_waiters: 10_000,
            default_cooldown_ms: 60_000,
        }
    }
}

/// The answer to [`super::TokenPool::request`].
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// A slot is reserved: use it, then release it exactly once.
    Granted(Lease),
    /// The request waits in the queue; a later `release` or `poll` answers it with a
    /// [`PoolEvent`] for the same waiter key, at the latest at `deadline_ms`.
    Queued {
        /// When the wait ends without a token (unix ms).
        deadline_ms: u64,
    },
    /// No token can take the work before the wait would end, or the queue is full:
    /// [`Error::NoAvailableTokens`] or [`Error::Overloaded`].
    Refused(Error),
}

/// The answer to a queued request, from [`super::TokenPool::release`] or
/// [`super::TokenPool::poll`]. Every queued waiter gets exactly one event, unless cancelled.
#[derive(Debug, PartialEq, Eq)]
pub enum PoolEvent {
    /// The waiter got its slot.
    Granted {
        /// The waiter key given to `request`.
        waiter: u64,
        /// The slot; release it exactly once.
        lease: Lease,
    },
    /// The wait ended without a token: the deadline passed, or no token can serve the request
    /// before it would. The error is [`Error::NoAvailableTokens`] with the 6.6 text.
    TimedOut {
        /// The waiter key given to `request`.
        waiter: u64,
        /// What to answer the client.
        error: Error,
    },
}
