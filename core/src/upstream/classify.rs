//! The one classification of upstream replies (sora-backend.md 4, decisions 15, B13, B14).
//!
//! A reply is classified from its status, its headers and the structured `error` object of
//! its JSON body (`{"error":{"message","type","param","code"}}`), never from substrings of a
//! formatted error text. The only body text checks are the two the spec names: the heavy-load
//! message and the Cloudflare challenge markers in an HTML page.
//!
//! Rules, first match wins:
//!
//! | # | Condition | Class |
//! |---|---|---|
//! | 1 | 403/429/503 with `cf-mitigated: challenge`, or an HTML body with `Just a moment` or `challenge-platform` | [`Class::Cloudflare`] |
//! | 2 | any status: `error.code` `heavy_load`, or an error message (or a non-JSON body) saying `under heavy load` | [`Class::HeavyLoad`] |
//! | 3 | 2xx | [`Class::Ok`] |
//! | 4 | `error.code == "unsupported_country_code"` | [`Class::CountryUnsupported`] (`error.param`) |
//! | 5 | 401 with `error.code == "token_expired"` | [`Class::TokenExpired`] |
//! | 6 | any other 401 | [`Class::TokenInvalid`] |
//! | 7 | `error.code` `insufficient_quota`/`quota_exceeded`, or `rate_limit_and_credit_balance.rate_limit_reached: true` | [`Class::QuotaExhausted`] |
//! | 8 | 429, or `error.code == "rate_limit_exceeded"` | [`Class::RateLimited`] |
//! | 9 | `error.code` `content_policy_violation`/`moderation_blocked` | [`Class::ContentPolicy`] |
//! | 10 | 400 with `error.code == "invalid_request"` | [`Class::InvalidRequest`] |
//! | 11 | 408, 425, 5xx, and any non-2xx outside 4xx | [`Class::Transient`] |
//! | 12 | any other 4xx (a 400 without `invalid_request` included) | [`Class::Fatal`] |
//!
//! ```
//! use sora2api_core::upstream::{classify, Class, UpstreamReply};
//!
//! let reply = UpstreamReply::json(401, r#"{"error":{"message":"Token expired","code":"token_expired"}}"#);
//! assert_eq!(classify(&reply), Class::TokenExpired);
//! assert!(Class::TokenExpired.is_retryable() && Class::TokenExpired.counts_against_token());
//!
//! // B13: "401" somewhere in a 500's text is not an auth failure.
//! let reply = UpstreamReply::json(500, r#"{"error":{"message":"upstream 401 at task_401"}}"#);
//! assert_eq!(classify(&reply), Class::Transient { status: Some(500) });
//! ```

use std::borrow::Cow;

use serde::Deserialize;

use super::decode::{depth_below, seconds_to_ms, starts_with, Lenient, RawFields, FAST_DEPTH};
use super::http::{TransportError, UpstreamReply};

/// What an upstream reply means for the call, the task and the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// A 2xx reply: decode it.
    Ok,
    /// 429 (not a Cloudflare challenge, not quota), or `error.code == "rate_limit_exceeded"`.
    /// Cool the token down for `retry_after_ms` and retry on another token.
    RateLimited {
        /// From `Retry-After` (delta seconds), else the body's `access_resets_in_seconds`.
        retry_after_ms: Option<u64>,
    },
    /// The account's video quota is used up (`insufficient_quota`/`quota_exceeded`, or a
    /// `rate_limit_and_credit_balance` saying `rate_limit_reached`). The token waits until the
    /// reset (B6: a temporary state, never a disable); retry on another token.
    QuotaExhausted {
        /// The body's `access_resets_in_seconds`, else `Retry-After`, in ms.
        resets_in_ms: Option<u64>,
    },
    /// 401 `token_invalidated`, or any 401 without `token_expired` (including the
    /// `invite/mine` "Unauthorized"): try one ST/RT refresh, else mark the token invalid;
    /// retry on another token.
    TokenInvalid,
    /// 401 `token_expired`: refresh (ST/RT) if the token can, else mark it expired; retry on
    /// another token.
    TokenExpired,
    /// "We're under heavy load" (any status): retry with backoff; does not count towards
    /// auto-disable.
    HeavyLoad,
    /// A Cloudflare challenge (403/429/503 with `cf-mitigated: challenge` or a challenge page):
    /// fail this attempt and cool down the token's egress (proxy); not the token's fault.
    Cloudflare,
    /// `error.code == "unsupported_country_code"`: the token's egress is in a blocked region.
    /// Mark the token unusable with this reason; retry on another token.
    CountryUnsupported {
        /// `error.param` when it looks like a country code (ASCII letters/digits, at most 8).
        country: Option<String>,
    },
    /// 400 `invalid_request`: a stale or wrong sentinel, or a malformed body. On a
    /// sentinel-protected call, refresh the sentinel and retry once (decisions 13).
    InvalidRequest,
    /// The reply itself says the content is not allowed (`content_policy_violation`,
    /// `moderation_blocked`); also built by the caller from a draft or image-task violation.
    /// Final: never resubmitted (B10), never held against the token (decisions 5).
    ContentPolicy {
        /// The upstream's reason meant for the user, if one is known.
        reason: Option<String>,
    },
    /// 5xx, 408, 425, other unexpected statuses and gateway pages, and transport failures:
    /// retry with backoff.
    Transient {
        /// The status, or `None` for a transport failure.
        status: Option<u16>,
    },
    /// Any other 4xx (404, 410, 403 without a known code, 400 without `invalid_request`):
    /// this call will not succeed by retrying it. Drafts v2 falls back to legacy drafts on
    /// `Fatal { status: 404 | 410 }` (decisions 14).
    Fatal {
        /// The status.
        status: u16,
    },
}

impl Class {
    /// Whether the task may try again (the same call later, or on another token).
    pub fn is_retryable(&self) -> bool {
        match self {
            Class::Ok | Class::ContentPolicy { .. } | Class::Fatal { .. } => false,
            Class::RateLimited { .. }
            | Class::QuotaExhausted { .. }
            | Class::TokenInvalid
            | Class::TokenExpired
            | Class::HeavyLoad
            | Class::Cloudflare
            | Class::CountryUnsupported { .. }
            | Class::InvalidRequest
            | Class::Transient { .. } => true,
        }
    }

    /// Whether it counts as an error of the token (towards the consecutive-error
    /// auto-disable). Rate limits and quota put the token in a cooldown instead; heavy load,
    /// Cloudflare, a stale sentinel and content violations are not the token's fault.
    pub fn counts_against_token(&self) -> bool {
        match self {
            Class::TokenInvalid
            | Class::TokenExpired
            | Class::CountryUnsupported { .. }
            | Class::Transient { .. }
            | Class::Fatal { .. } => true,
            Class::Ok
            | Class::RateLimited { .. }
            | Class::QuotaExhausted { .. }
            | Class::HeavyLoad
            | Class::Cloudflare
            | Class::InvalidRequest
            | Class::ContentPolicy { .. } => false,
        }
    }

    /// Whether it is an authentication failure (refresh, then invalidate).
    pub fn is_auth(&self) -> bool {
        matches!(self, Class::TokenInvalid | Class::TokenExpired)
    }

    /// A short message for the client, in our words: no upstream body, no secret.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Class::Ok => "Upstream request succeeded".into(),
            Class::RateLimited { .. } => "Upstream rate limit reached; try again later".into(),
            Class::QuotaExhausted { .. } => {
                "Upstream video quota exhausted for this account".into()
            }
            Class::TokenInvalid => "Upstream rejected the account's access token".into(),
            Class::TokenExpired => "The account's access token has expired".into(),
            Class::HeavyLoad => "Upstream is under heavy load; try again later".into(),
            Class::Cloudflare => "Upstream blocked the request with a Cloudflare challenge".into(),
            Class::CountryUnsupported { country: Some(c) } => {
                format!("Sora is unavailable in the account's country ({c})").into()
            }
            Class::CountryUnsupported { country: None } => {
                "Sora is unavailable in the account's country".into()
            }
            Class::InvalidRequest => "Upstream rejected the request as invalid".into(),
            Class::ContentPolicy { reason } => {
                let reason: String = reason
                    .as_deref()
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or("Content violates guardrails")
                    .chars()
                    .take(500)
                    .collect();
                format!("Content policy violation: {reason}").into()
            }
            Class::Transient { status: Some(status) } => {
                format!("Upstream temporarily unavailable (status {status})").into()
            }
            Class::Transient { status: None } => "Upstream could not be reached".into(),
            Class::Fatal { status } => format!("Upstream request failed (status {status})").into(),
        }
    }
}

// === classify ===

#[derive(Deserialize, Default)]
struct Envelope {
    #[serde(default)]
    error: Lenient<ErrorObject>,
    #[serde(default)]
    rate_limit_and_credit_balance: Lenient<Balance>,
    #[serde(default)]
    access_resets_in_seconds: Lenient<f64>,
}

#[derive(Deserialize, Default)]
struct ErrorObject {
    #[serde(default)]
    message: Lenient<String>,
    #[serde(default)]
    code: Lenient<String>,
    #[serde(default)]
    param: Lenient<String>,
    #[serde(default)]
    access_resets_in_seconds: Lenient<f64>,
}

#[derive(Deserialize, Default)]
struct Balance {
    #[serde(default)]
    rate_limit_reached: Lenient<bool>,
    #[serde(default)]
    access_resets_in_seconds: Lenient<f64>,
}

const HEAVY_LOAD: &str = "under heavy load";

/// Classifies a reply (see the module docs for the rules).
pub fn classify(reply: &UpstreamReply) -> Class {
    let status = reply.status;
    if matches!(status, 403 | 429 | 503) && is_cloudflare_challenge(reply) {
        return Class::Cloudflare;
    }
    // Any JSON (a `pending/v2` array too) is read only through its `error` object: a prompt
    // that mentions heavy load must not make a successful poll look overloaded.
    let (is_json, envelope) = envelope_of(&reply.body);
    let error = envelope.error.0.unwrap_or_default();
    let code = error.code.0.as_deref().unwrap_or("");

    let heavy = code == "heavy_load"
        || error.message.0.as_deref().is_some_and(|m| contains_ci(m.as_bytes(), HEAVY_LOAD))
        || (!is_json && contains_ci(&reply.body, HEAVY_LOAD));
    if heavy {
        return Class::HeavyLoad;
    }
    if (200..300).contains(&status) {
        return Class::Ok;
    }
    if code == "unsupported_country_code" {
        return Class::CountryUnsupported { country: error.param.0.filter(|c| is_country(c)) };
    }
    if status == 401 {
        return if code == "token_expired" { Class::TokenExpired } else { Class::TokenInvalid };
    }
    let body_resets_ms = envelope
        .rate_limit_and_credit_balance
        .0
        .as_ref()
        .and_then(|b| b.access_resets_in_seconds.0)
        .or(envelope.access_resets_in_seconds.0)
        .or(error.access_resets_in_seconds.0)
        .and_then(seconds_to_ms);
    let quota_reached = envelope
        .rate_limit_and_credit_balance
        .0
        .as_ref()
        .is_some_and(|b| b.rate_limit_reached.0 == Some(true));
    if matches!(code, "insufficient_quota" | "quota_exceeded") || quota_reached {
        return Class::QuotaExhausted {
            resets_in_ms: body_resets_ms.or_else(|| retry_after_ms(reply)),
        };
    }
    if status == 429 || code == "rate_limit_exceeded" {
        return Class::RateLimited { retry_after_ms: retry_after_ms(reply).or(body_resets_ms) };
    }
    if matches!(code, "content_policy_violation" | "moderation_blocked") {
        return Class::ContentPolicy { reason: None };
    }
    match status {
        400 if code == "invalid_request" => Class::InvalidRequest,
        408 | 425 => Class::Transient { status: Some(status) },
        400..=499 => Class::Fatal { status },
        _ => Class::Transient { status: Some(status) },
    }
}

/// Classifies a transport failure: always [`Class::Transient`] without a status.
pub fn classify_transport(_error: &TransportError) -> Class {
    Class::Transient { status: None }
}

/// Whether `body` is JSON, and the [`Envelope`] of a top-level object (default otherwise).
///
/// Every reply passes here, successful polls with a page of tasks too, and building the whole
/// body into a `serde_json::Value` was a tenth of the gateway's CPU per image task
/// (BENCHMARKS.md). So an object is read as its top-level keys over unparsed values, and
/// only the fields the envelope reads become values; the rest is checked as JSON and
/// skipped. Anything else (not an object, nested [`FAST_DEPTH`] deep, not JSON) takes
/// the plain path, so the answer is always the one a `Value` would give.
fn envelope_of(body: &[u8]) -> (bool, Envelope) {
    if starts_with(body, b'{') && depth_below(body, FAST_DEPTH) {
        if let Ok(fields) = serde_json::from_slice::<RawFields<'_>>(body) {
            let mut map = serde_json::Map::new();
            for key in ["error", "rate_limit_and_credit_balance", "access_resets_in_seconds"] {
                if let Some(raw) = fields.get(key) {
                    match serde_json::from_str::<serde_json::Value>(raw.get()) {
                        Ok(value) => {
                            map.insert(key.to_owned(), value);
                        }
                        Err(_) => return envelope_of_value(body),
                    }
                }
            }
            let envelope =
                serde_json::from_value(serde_json::Value::Object(map)).unwrap_or_default();
            return (true, envelope);
        }
    }
    envelope_of_value(body)
}

/// [`envelope_of`] through a whole `serde_json::Value`.
fn envelope_of_value(body: &[u8]) -> (bool, Envelope) {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let is_json = parsed.is_some();
    let envelope = parsed
        .filter(serde_json::Value::is_object)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    (is_json, envelope)
}

/// `cf-mitigated: challenge`, or an HTML body with a challenge marker.
fn is_cloudflare_challenge(reply: &UpstreamReply) -> bool {
    if reply.header("cf-mitigated").is_some_and(|v| v.trim().eq_ignore_ascii_case("challenge")) {
        return true;
    }
    let html =
        reply.header("content-type").is_some_and(|ct| contains_ci(ct.as_bytes(), "text/html"))
            || reply.body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
    html && (contains(&reply.body, b"Just a moment")
        || contains(&reply.body, b"challenge-platform"))
}

/// `Retry-After` as delta seconds, in ms (an HTTP date needs a clock: ignored).
fn retry_after_ms(reply: &UpstreamReply) -> Option<u64> {
    let secs: u64 = reply.header("retry-after")?.trim().parse().ok()?;
    Some(secs.saturating_mul(1000))
}

fn is_country(c: &str) -> bool {
    !c.is_empty() && c.len() <= 8 && c.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn contains_ci(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests;
