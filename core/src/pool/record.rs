//! The token record (sora-backend.md 5.1), its state and stats, and the masked admin summary.

use std::fmt;

use super::repr;
use super::types::{TokenId, Work};
use crate::secret::Secret;

/// Milliseconds in a UTC day: "today" counters use the day number `now_ms / DAY_MS`.
pub const DAY_MS: u64 = 86_400_000;

/// Why a token is out of service until an administrator (or a refresh) brings it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisableReason {
    /// An administrator disabled it.
    Manual,
    /// Too many consecutive failures ([`super::PoolConfig::error_threshold`]).
    ErrorLimit,
    /// The upstream rejected the access token and a refresh did not help.
    Invalid,
    /// The access token expired and could not be refreshed.
    Expired,
    /// The upstream does not serve the token's country (`unsupported_country_code`).
    Country,
}

impl DisableReason {
    /// The stored name: `manual`, `error_limit`, `token_invalid`, `expired`, `country`.
    pub fn as_str(self) -> &'static str {
        match self {
            DisableReason::Manual => "manual",
            DisableReason::ErrorLimit => "error_limit",
            DisableReason::Invalid => "token_invalid",
            DisableReason::Expired => "expired",
            DisableReason::Country => "country",
        }
    }
}

/// A token's state. Cooldowns and quota waits end by themselves: the pool compares `until_ms`
/// with the `now_ms` it is given and treats an ended wait as [`TokenState::Active`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TokenState {
    /// In service.
    #[default]
    Active,
    /// Out of service until enabled again.
    Disabled(DisableReason),
    /// Rate limited or its egress challenged, until `until_ms` (unix ms).
    CoolingDown {
        /// When the cooldown ends.
        until_ms: u64,
    },
    /// Sora quota used up, until it resets at `until_ms` (unix ms) (B6).
    QuotaWait {
        /// When the quota resets.
        until_ms: u64,
    },
}

impl TokenState {
    /// The state as of `now_ms`: an ended cooldown or quota wait is `Active`.
    pub fn at(self, now_ms: u64) -> TokenState {
        match self {
            TokenState::CoolingDown { until_ms } | TokenState::QuotaWait { until_ms }
                if until_ms <= now_ms =>
            {
                TokenState::Active
            }
            other => other,
        }
    }

    /// When a temporary wait ends, if the state is one.
    pub fn until_ms(self) -> Option<u64> {
        match self {
            TokenState::CoolingDown { until_ms } | TokenState::QuotaWait { until_ms } => {
                Some(until_ms)
            }
            TokenState::Active | TokenState::Disabled(_) => None,
        }
    }

    /// Whether the state is [`TokenState::Disabled`].
    pub fn is_disabled(self) -> bool {
        matches!(self, TokenState::Disabled(_))
    }
}

/// Usage and error counters of one token (the `token_stats` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenStats {
    /// Leases granted on this token.
    pub use_count: u64,
    /// When the last lease was granted (unix ms); least recently used first on ties.
    pub last_used_ms: Option<u64>,
    /// Successful image leases, lifetime.
    pub image_count: u64,
    /// Successful video leases, lifetime.
    pub video_count: u64,
    /// Error outcomes, lifetime (heavy load and rate limits included, content violations not).
    pub error_count: u64,
    /// The UTC day number (`now_ms / DAY_MS`) the `today_*` counters belong to.
    pub today_day: u64,
    /// Successful image leases on `today_day`.
    pub today_image_count: u64,
    /// Successful video leases on `today_day`.
    pub today_video_count: u64,
    /// Error outcomes on `today_day`.
    pub today_error_count: u64,
    /// Failures in a row since the last success; disables at the threshold.
    pub consecutive_errors: u32,
    /// When the last error outcome happened (unix ms).
    pub last_error_ms: Option<u64>,
}

impl TokenStats {
    /// Starts a new UTC day's counters if `now_ms` is on another day than `today_day`.
    pub(crate) fn roll_day(&mut self, now_ms: u64) {
        let day = now_ms / DAY_MS;
        if day != self.today_day {
            self.today_day = day;
            self.today_image_count = 0;
            self.today_video_count = 0;
            self.today_error_count = 0;
        }
    }

    /// Counts a success of `work` at `now_ms` and resets the streak.
    pub(crate) fn success(&mut self, now_ms: u64, work: Work) {
        self.roll_day(now_ms);
        self.consecutive_errors = 0;
        match work {
            Work::Image => {
                self.image_count = self.image_count.saturating_add(1);
                self.today_image_count = self.today_image_count.saturating_add(1);
            }
            Work::Video => {
                self.video_count = self.video_count.saturating_add(1);
                self.today_video_count = self.today_video_count.saturating_add(1);
            }
        }
    }

    /// Counts an error at `now_ms`; `streak` says whether it extends the failure streak.
    pub(crate) fn error(&mut self, now_ms: u64, streak: bool) {
        self.roll_day(now_ms);
        self.error_count = self.error_count.saturating_add(1);
        self.today_error_count = self.today_error_count.saturating_add(1);
        self.last_error_ms = Some(now_ms);
        if streak {
            self.consecutive_errors = self.consecutive_errors.saturating_add(1);
        }
    }
}

/// One token (sora-backend.md 5.1, without the dead and display-only columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The pool's id (assigned by [`super::TokenPool::add`]).
    pub id: TokenId,
    /// The access token (a JWT).
    pub access_token: Secret,
    /// The session token, for ST -> AT refresh.
    pub session_token: Option<Secret>,
    /// The refresh token, for RT -> AT refresh.
    pub refresh_token: Option<Secret>,
    /// The OAuth client id that goes with the refresh token.
    pub client_id: Option<String>,
    /// A per-token proxy URL.
    pub proxy_url: Option<String>,
    /// The account's email.
    pub email: Option<String>,
    /// The plan type from `billing/subscriptions` (`chatgpt_pro`, ...).
    pub plan_type: Option<String>,
    /// Whether the account is Pro (only Pro tokens serve Pro models).
    pub pro: bool,
    /// Whether the token may take image work.
    pub image_enabled: bool,
    /// Whether the token may take video work (and supports Sora 2).
    pub video_enabled: bool,
    /// Concurrent image leases allowed; `None` = unlimited, `Some(0)` = none.
    pub image_concurrency: Option<u32>,
    /// Concurrent video leases allowed; `None` = unlimited, `Some(0)` = none.
    pub video_concurrency: Option<u32>,
    /// Active, disabled, cooling down or waiting for its quota.
    pub state: TokenState,
    /// When the access token expires (unix ms, UTC, B17); `None` = unknown, still usable.
    pub expires_at_ms: Option<u64>,
    /// Free text for administrators.
    pub remark: Option<String>,
    /// Usage and error counters.
    pub stats: TokenStats,
}

impl TokenRecord {
    /// A fresh, active token with image and video enabled, unlimited concurrency, no expiry
    /// known and zeroed stats. The id is assigned when it is added to a pool.
    pub fn new(access_token: Secret) -> Self {
        TokenRecord {
            id: TokenId(0),
            access_token,
            session_token: None,
            refresh_token: None,
            client_id: None,
            proxy_url: None,
            email: None,
            plan_type: None,
            pro: false,
            image_enabled: true,
            video_enabled: true,
            image_concurrency: None,
            video_concurrency: None,
            state: TokenState::Active,
            expires_at_ms: None,
            remark: None,
            stats: TokenStats::default(),
        }
    }

    /// A stored PY-style limit (`-1` and `0` mean unlimited, only `> 0` counts) as a limit.
    pub fn limit_from_legacy(value: i64) -> Option<u32> {
        if value > 0 {
            Some(u32::try_from(value).unwrap_or(u32::MAX))
        } else {
            None
        }
    }

    /// Whether the plan type is `chatgpt_pro`.
    pub fn is_pro_plan(plan_type: Option<&str>) -> bool {
        plan_type == Some("chatgpt_pro")
    }

    /// The concurrency limit for `work`.
    pub fn limit(&self, work: Work) -> Option<u32> {
        match work {
            Work::Image => self.image_concurrency,
            Work::Video => self.video_concurrency,
        }
    }

    /// Whether the token is switched on for `work`.
    pub fn enabled_for(&self, work: Work) -> bool {
        match work {
            Work::Image => self.image_enabled,
            Work::Video => self.video_enabled,
        }
    }

    /// Whether the access token has expired at `now_ms` (no expiry known: not expired, B17).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// The stored form: versioned JSON (`"v":1`) with every field, state, stats and the
    /// secrets in clear (the token store is the one place secrets are written; protect its
    /// file). [`TokenRecord::from_bytes`] reads back an equal record, whatever it holds.
    pub fn to_bytes(&self) -> Vec<u8> {
        repr::encode(self)
    }

    /// Reads a stored record. Never panics, whatever the bytes: a wrong shape, truncation or
    /// garbage is [`TokenRecordError::Malformed`], another version
    /// [`TokenRecordError::UnsupportedVersion`], an unknown disable reason
    /// [`TokenRecordError::InvalidField`]. No error message quotes a secret.
    pub fn from_bytes(bytes: &[u8]) -> Result<TokenRecord, TokenRecordError> {
        repr::decode(bytes)
    }
}

/// A stored token record could not be read back ([`TokenRecord::from_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenRecordError {
    /// The bytes are not a record: not JSON, truncated, or fields missing or of the wrong
    /// shape. The detail names the category and position, never a stored value.
    Malformed(String),
    /// A record of a version this build does not read.
    UnsupportedVersion(u64),
    /// A field is well-formed but its value is not one this build knows (a disable reason).
    InvalidField {
        /// The field, as a path (`state.disabled`).
        field: &'static str,
        /// The stored value (its first 80 characters).
        value: String,
    },
}

impl fmt::Display for TokenRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRecordError::Malformed(detail) => write!(f, "malformed token record: {detail}"),
            TokenRecordError::UnsupportedVersion(v) => {
                let supported = repr::VERSION;
                write!(
                    f,
                    "token record version {v} is not supported (this build reads {supported})"
                )
            }
            TokenRecordError::InvalidField { field, value } => {
                write!(f, "token record field {field} is invalid: {value:?}")
            }
        }
    }
}

impl std::error::Error for TokenRecordError {}

/// One token for the admin API: secrets masked ([`Secret::masked`]), proxy credentials hidden,
/// state as of the given time, with in-flight counts (decisions 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary {
    /// The token's id.
    pub id: TokenId,
    /// The access token, masked.
    pub access_token: String,
    /// The session token, masked.
    pub session_token: Option<String>,
    /// The refresh token, masked.
    pub refresh_token: Option<String>,
    /// The OAuth client id.
    pub client_id: Option<String>,
    /// The proxy URL with any `user:password@` replaced by `***@`.
    pub proxy_url: Option<String>,
    /// The account's email.
    pub email: Option<String>,
    /// The plan type.
    pub plan_type: Option<String>,
    /// Whether the account is Pro.
    pub pro: bool,
    /// Whether image work is enabled.
    pub image_enabled: bool,
    /// Whether video work is enabled.
    pub video_enabled: bool,
    /// The image concurrency limit (`None` = unlimited).
    pub image_concurrency: Option<u32>,
    /// The video concurrency limit (`None` = unlimited).
    pub video_concurrency: Option<u32>,
    /// The state as of the snapshot time (ended waits show as active).
    pub state: TokenState,
    /// Whether the access token has expired at the snapshot time.
    pub expired: bool,
    /// When the access token expires (unix ms).
    pub expires_at_ms: Option<u64>,
    /// Free text.
    pub remark: Option<String>,
    /// Image leases in flight.
    pub in_flight_image: u32,
    /// Video leases in flight.
    pub in_flight_video: u32,
    /// Usage and error counters.
    pub stats: TokenStats,
}

/// A proxy URL fit for display: `scheme://user:pass@host...` -> `scheme://***@host...`;
/// other URLs unchanged. [`TokenSummary::proxy_url`] is masked with it.
///
/// ```
/// use sora2api_core::pool::mask_proxy;
///
/// assert_eq!(mask_proxy("socks5://u:secret@proxy:1080"), "socks5://***@proxy:1080");
/// assert_eq!(mask_proxy("http://proxy:8080"), "http://proxy:8080");
/// ```
pub fn mask_proxy(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i.saturating_add(3)),
        None => ("", url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest.get(..authority_end).and_then(|authority| authority.rfind('@')) {
        Some(at) => format!("{scheme}***{}", rest.get(at..).unwrap_or_default()),
        None => url.to_owned(),
    }
}
