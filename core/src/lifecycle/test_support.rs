//! Fixtures shared by the lifecycle tests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::upstream::{UpstreamConfig, UpstreamRequest};

pub(crate) const ST: &str = "st-SECRET-session-value";
pub(crate) const RT: &str = "rt-SECRET-refresh-value";
pub(crate) const RT2: &str = "rt-SECRET-rotated-value";
pub(crate) const PROXY: &str = "socks5://user:pw@proxy:1080";

/// 2026-01-01T00:00:00Z.
pub(crate) const NOW_MS: u64 = 1_767_225_600_000;
pub(crate) const DAY_S: u64 = 86_400;

/// An unsigned-looking JWT with these claims (the signature part is junk: it is not checked).
pub(crate) fn jwt(exp_s: Option<u64>, email: Option<&str>) -> String {
    let mut payload =
        serde_json::json!({"iat": 1, "https://api.openai.com/auth": {"user_id": "u"}});
    if let Some(exp) = exp_s {
        payload["exp"] = exp.into();
    }
    if let Some(email) = email {
        payload["https://api.openai.com/profile"] = serde_json::json!({"email": email});
    }
    format!(
        "{}.{}.c2lnbmF0dXJlLWlnbm9yZWQ",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// The default (real) hosts and the simulator's single origin.
pub(crate) fn configs() -> [UpstreamConfig; 2] {
    [UpstreamConfig::default(), UpstreamConfig::at_origin("http://sim")]
}

/// `text` contains none of `secrets`.
#[track_caller]
pub(crate) fn assert_hidden(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "secret {s:?} shown in {text}");
    }
}

/// The request's `Debug` hides every secret and the proxy credentials.
#[track_caller]
pub(crate) fn assert_request_hides(req: &UpstreamRequest, secrets: &[&str]) {
    let shown = format!("{req:?}");
    assert_hidden(&shown, secrets);
    assert_hidden(&shown, &["pw@proxy"]);
}
