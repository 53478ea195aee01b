//! Token lifecycle procedures, sans-IO (issue 3 item 4; sora-backend.md 2.1-2.2, 5.5-5.6;
//! decisions 15-17; B15, B17, B22).
//!
//! - [`Refresh`]: a new access token from the token's session token (ST -> AT) or refresh
//!   token (RT -> AT), on demand after a 401 and ahead of expiry (B15). A rotated RT comes back
//!   in [`Refreshed::refresh_token`]: store it.
//! - [`Enrich`]: what an access token is worth (`/me`, plan, Sora 2 support, quota), for a
//!   token added online and for the admin "test" action.
//! - [`refresh_due`]: the ahead-of-expiry check (UTC unix ms, B17); [`token_identity`]: the
//!   expiry and e-mail inside an access token (no signature check).
//!
//! Both procedures are small machines with the same shape: [`Refresh::next`] /
//! [`Enrich::next`] say what to do (send a request, or done with a result); the shell sends
//! the request and hands back the reply (or the transport error) with `handle`; repeat until
//! `Done`. They read no clock: `now_ms` (unix ms, UTC) comes in with every call. Single-flight
//! (one refresh per token at a time) is the shell's job; a procedure holds no lock and
//! touches no store, so dropping it half-way is always safe.
//!
//! ```
//! use sora2api_core::lifecycle::{refresh_due, Refresh, RefreshMaterial, RefreshStep};
//! use sora2api_core::secret::Secret;
//! use sora2api_core::upstream::{TransportError, UpstreamConfig, UpstreamReply, UpstreamRequest};
//!
//! // A JWT with exp 1768000000 and e-mail a@b.c (the signature is not checked).
//! const NEW_AT: &str = "eyJhbGciOiJub25lIn0.\
//!     eyJleHAiOjE3NjgwMDAwMDAsImh0dHBzOi8vYXBpLm9wZW5haS5jb20vcHJvZmlsZSI6eyJlbWFpbCI6ImFAYi5jIn19.sig";
//!
//! // The shell's transport (here: the OAuth server's answer, canned).
//! fn send(req: UpstreamRequest) -> Result<UpstreamReply, TransportError> {
//!     assert_eq!(req.path_and_query(), "/oauth/token");
//!     Ok(UpstreamReply::json(
//!         200,
//!         format!(r#"{{"access_token":"{NEW_AT}","refresh_token":"rt-2","expires_in":864000}}"#),
//!     ))
//! }
//!
//! let now_ms = 1_767_225_600_000; // the shell's clock, read before each step
//! let current_expiry = Some(1_767_240_000_000); // four hours left
//! assert!(refresh_due(now_ms, current_expiry, 24 * 3_600_000));
//!
//! let cfg = UpstreamConfig::at_origin("http://127.0.0.1:8080");
//! let material = RefreshMaterial {
//!     refresh_token: Some(Secret::new("rt-1")),
//!     ..RefreshMaterial::default()
//! };
//! let mut refresh = Refresh::new(&cfg, material);
//! let result = loop {
//!     match refresh.next(now_ms) {
//!         RefreshStep::Send(req) => refresh.handle(now_ms, send(req)).unwrap(),
//!         RefreshStep::Done(result) => break result,
//!     }
//! };
//! let fresh = result.unwrap();
//! assert_eq!(fresh.access_token.expose(), NEW_AT);
//! assert_eq!(fresh.refresh_token.as_ref().map(Secret::expose), Some("rt-2")); // rotated: keep it
//! assert_eq!(fresh.expires_at_ms, Some(1_768_000_000_000)); // from the JWT's exp
//! assert_eq!(fresh.email.as_deref(), Some("a@b.c"));
//! assert!(!format!("{fresh:?}").contains("rt-2"));
//! ```

mod enrich;
mod refresh;
#[cfg(test)]
#[cfg(feature = "sim")]
mod sim_tests;
#[cfg(test)]
mod test_support;

use std::fmt;

pub use enrich::{Enrich, EnrichCall, EnrichError, EnrichStep, TokenProfile};
pub use refresh::{
    Credential, Refresh, RefreshError, RefreshMaterial, RefreshStep, Refreshed,
    DEFAULT_REFRESH_MARGIN_MS,
};

use crate::upstream::{jwt_claims, JwtError};

/// Whether a token should be refreshed ahead of expiry: its expiry (UTC unix ms) is within
/// `margin_ms` of `now_ms`, or already past.
///
/// A token without a known expiry is never due here: it is refreshed on demand, when the
/// upstream answers 401. The shell should not retry a token that keeps coming back due
/// (an ST exchange may hand back an AT that expires just as soon) more often than it wants
/// to call the upstream: remember the last attempt per token.
pub fn refresh_due(now_ms: u64, expires_at_ms: Option<u64>, margin_ms: u64) -> bool {
    expires_at_ms.is_some_and(|exp| now_ms.saturating_add(margin_ms) >= exp)
}

/// The expiry (`exp` as unix ms) and profile e-mail of an access token, read without
/// checking its signature (a token that is not a JWT is an error: reject it at add time).
pub fn token_identity(access_token: &str) -> Result<(Option<u64>, Option<String>), JwtError> {
    jwt_claims(access_token).map(|c| (c.exp_unix_ms, c.email))
}

/// A reply was handed to a procedure that was not waiting for one (no request outstanding,
/// or already done). The reply is dropped; the procedure is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnexpectedReply;

impl fmt::Display for UnexpectedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reply arrived while no request was outstanding")
    }
}

impl std::error::Error for UnexpectedReply {}

#[cfg(test)]
mod tests {
    use super::test_support::jwt;
    use super::*;

    #[test]
    fn refresh_due_table() {
        const H: u64 = 3_600_000;
        let cases = [
            // (now, expiry, margin, due)
            (0, None, 24 * H, false),
            (u64::MAX, None, 0, false),
            (100 * H, Some(200 * H), 24 * H, false),
            (100 * H, Some(124 * H), 24 * H, true),
            (100 * H, Some(124 * H + 1), 24 * H, false),
            (100 * H, Some(100 * H), 0, true),
            (100 * H, Some(100 * H + 1), 0, false),
            (100 * H, Some(50 * H), 0, true),
            (u64::MAX - 1, Some(u64::MAX), u64::MAX, true),
            (0, Some(u64::MAX), u64::MAX, true),
        ];
        for (now, exp, margin, want) in cases {
            assert_eq!(refresh_due(now, exp, margin), want, "{now} {exp:?} {margin}");
        }
    }

    #[test]
    fn identity() {
        let at = jwt(Some(1_767_225_600), Some("a@b.c"));
        assert_eq!(token_identity(&at), Ok((Some(1_767_225_600_000), Some("a@b.c".into()))));
        assert_eq!(token_identity(&jwt(None, None)), Ok((None, None)));
        assert_eq!(token_identity("not-a-jwt"), Err(JwtError::NotJwt));
    }
}
