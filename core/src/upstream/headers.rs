//! Who calls, and the header profiles of sora-backend.md 1.2: P-APP, P-APP with a sentinel,
//! P-CREATE (`nf/create`) and P-ACCOUNT. Also the URL helpers every builder shares.
//!
//! Secrets go into exactly two places: the `authorization` header (the access token) and the
//! `cookie` header (the session token, P-CREATE only). Both are redacted by
//! [`UpstreamRequest`]'s `Debug`.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;

use super::config::UpstreamConfig;
use super::http::{Method, UpstreamRequest};
use crate::secret::Secret;

/// The web origin the real client runs on: sent as `Origin`/`Referer` whatever host the
/// backend is configured at (it is the client's identity, not a host we call).
pub const SORA_WEB_ORIGIN: &str = "https://sora.chatgpt.com";

/// The cookie that carries a session token (ST).
pub const SESSION_COOKIE: &str = "__Secure-next-auth.session-token";

/// `sec-ch-ua` of Chrome 131, as PY sends it on `nf/create` and `sentinel/req`.
pub(crate) const SEC_CH_UA_CHROME_131: &str =
    "\"Not(A:Brand\";v=\"8\", \"Chromium\";v=\"131\", \"Google Chrome\";v=\"131\"";

const JSON: &str = "application/json";

// === Auth ===

/// The account a call runs as: its access token, its session token (sent as a cookie on
/// `nf/create` only) and its egress proxy.
///
/// `proxy` is the token's own proxy; `None` lets the shell apply the global proxy (1.3).
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// The access token (AT), sent as `Authorization: Bearer <AT>`.
    pub access_token: Secret,
    /// The session token (ST), if the token row has one.
    pub session_token: Option<Secret>,
    /// The token's own proxy URL, if any.
    pub proxy: Option<String>,
}

impl Auth {
    /// An account with only an access token (no session token, no own proxy).
    pub fn new(access_token: Secret) -> Self {
        Auth { access_token, session_token: None, proxy: None }
    }

    /// Sets the session token.
    pub fn with_session_token(mut self, session_token: Secret) -> Self {
        self.session_token = Some(session_token);
        self
    }

    /// Sets the token's own proxy.
    pub fn with_proxy(mut self, proxy: impl Into<String>) -> Self {
        self.proxy = Some(proxy.into());
        self
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.access_token.expose())
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A proxy URL may carry credentials (`socks5://user:pw@host`).
        f.debug_struct("Auth")
            .field("access_token", &self.access_token)
            .field("session_token", &self.session_token)
            .field("proxy", &self.proxy.as_ref().map(|_| "<set>"))
            .finish()
    }
}

// === SentinelToken ===

/// A solved sentinel: the `openai-sentinel-token` header value and the device id that goes
/// with it (`oai-device-id`, equal to the `id` inside the header JSON).
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelToken {
    header: String,
    device_id: String,
}

impl SentinelToken {
    /// From its parts, rendered by [`crate::pow::SentinelHeader`] (`~S` ensured on `p`).
    pub fn build(p: &str, t: &str, c: &str, id: &str, flow: &str) -> Self {
        let header = crate::pow::SentinelHeader {
            p: crate::pow::with_proof_suffix(p),
            t: t.into(),
            c: c.into(),
            id: id.into(),
            flow: flow.into(),
        }
        .render();
        SentinelToken { header, device_id: id.into() }
    }

    /// From a finished header value (for example an external PoW service's) and its device id.
    pub fn new(header: impl Into<String>, device_id: impl Into<String>) -> Self {
        SentinelToken { header: header.into(), device_id: device_id.into() }
    }

    /// From a finished header value alone, taking the device id from its `id` field; `None`
    /// if the value is not a JSON object with a string `id`.
    pub fn from_header(header: impl Into<String>) -> Option<Self> {
        #[derive(serde::Deserialize)]
        struct Id {
            id: String,
        }
        let header = header.into();
        let id: Id = serde_json::from_str(&header).ok()?;
        Some(SentinelToken { header, device_id: id.id })
    }

    /// The `openai-sentinel-token` header value.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// The `oai-device-id` header value.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }
}

impl fmt::Debug for SentinelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentinelToken").field("device_id", &self.device_id).finish()
    }
}

// === Profiles ===

pub(crate) type Headers = Vec<(String, String)>;

fn h(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// P-APP: `authorization`, the app `user-agent`, `content-type` (JSON, or a multipart type).
pub(crate) fn app(cfg: &UpstreamConfig, auth: &Auth, content_type: &str) -> Headers {
    vec![
        h("authorization", auth.bearer()),
        h("user-agent", cfg.app_user_agent.as_str()),
        h("content-type", content_type),
    ]
}

/// P-APP with a sentinel: the UA becomes the PoW UA; `openai-sentinel-token` and
/// `oai-device-id` are added.
pub(crate) fn app_sentinel(cfg: &UpstreamConfig, auth: &Auth, s: &SentinelToken) -> Headers {
    vec![
        h("authorization", auth.bearer()),
        h("user-agent", cfg.pow_user_agent.as_str()),
        h("content-type", JSON),
        h("openai-sentinel-token", s.header()),
        h("oai-device-id", s.device_id()),
    ]
}

/// P-CREATE (`nf/create`): the browser-like header set of 1.2, with the session cookie when
/// the token has a session token.
pub(crate) fn create(cfg: &UpstreamConfig, auth: &Auth, s: &SentinelToken) -> Headers {
    let mut headers = vec![
        h("authorization", auth.bearer()),
        h("openai-sentinel-token", s.header()),
        h("content-type", JSON),
        h("user-agent", cfg.pow_user_agent.as_str()),
        h("oai-language", "en-US"),
        h("oai-device-id", s.device_id()),
        h("accept", "*/*"),
        h("accept-language", "zh-CN,zh;q=0.9,en;q=0.8"),
        h("cache-control", "no-cache"),
        h("pragma", "no-cache"),
        h("origin", SORA_WEB_ORIGIN),
        h("referer", format!("{SORA_WEB_ORIGIN}/explore")),
        h("sec-ch-ua", SEC_CH_UA_CHROME_131),
        h("sec-ch-ua-mobile", "?0"),
        h("sec-ch-ua-platform", "\"Windows\""),
        h("sec-fetch-dest", "empty"),
        h("sec-fetch-mode", "cors"),
        h("sec-fetch-site", "same-origin"),
        h("priority", "u=1, i"),
    ];
    if let Some(st) = auth.session_token.as_ref().filter(|st| !st.is_empty()) {
        headers.push(h("cookie", format!("{SESSION_COOKIE}={}", st.expose())));
    }
    headers
}

/// Extras of a P-ACCOUNT call.
#[derive(Clone, Copy)]
pub(crate) enum AccountExtra {
    /// Nothing beyond `authorization` and `accept`.
    None,
    /// `origin` and `referer` (`/me`).
    OriginReferer,
    /// The app user agent (`nf/check`).
    AppUserAgent,
}

/// P-ACCOUNT: `authorization`, `accept: application/json`, plus the call's extras.
pub(crate) fn account(cfg: &UpstreamConfig, auth: &Auth, extra: AccountExtra) -> Headers {
    let mut headers = vec![h("authorization", auth.bearer()), h("accept", JSON)];
    match extra {
        AccountExtra::None => {}
        AccountExtra::OriginReferer => {
            headers.push(h("origin", SORA_WEB_ORIGIN));
            headers.push(h("referer", format!("{SORA_WEB_ORIGIN}/")));
        }
        AccountExtra::AppUserAgent => headers.push(h("user-agent", cfg.app_user_agent.as_str())),
    }
    headers
}

/// A header pair, for builders outside this module.
pub(crate) fn pair(name: &str, value: impl Into<String>) -> (String, String) {
    h(name, value)
}

// === Requests and URLs ===

/// Compact JSON of a body. Serialising the plain structs and `serde_json` values our
/// builders use cannot fail; an impossible failure yields an empty body, which the backend
/// rejects, rather than a panic.
pub(crate) fn json_body<T: Serialize>(value: &T) -> Bytes {
    serde_json::to_vec(value).map(Bytes::from).unwrap_or_default()
}

/// Assembles a request.
pub(crate) fn request(
    method: Method,
    url: String,
    headers: Headers,
    body: Bytes,
    timeout_ms: u64,
    proxy: Option<String>,
) -> UpstreamRequest {
    UpstreamRequest { method, url, headers, body, timeout_ms, proxy }
}

/// `BACKEND` + `path` (`path` starts with `/`).
pub(crate) fn backend(cfg: &UpstreamConfig, path: &str) -> String {
    format!("{}{path}", cfg.base_url.trim_end_matches('/'))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for a path segment or a
/// query value built from an opaque upstream id or cursor.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_unreserved_only() {
        assert_eq!(encode("gen_AZaz09-._~"), "gen_AZaz09-._~");
        assert_eq!(encode("a/b?c=d&e f"), "a%2Fb%3Fc%3Dd%26e%20f");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode("../x"), "..%2Fx");
    }

    #[test]
    fn sentinel_token_from_header() {
        let s = SentinelToken::from_header(r#"{"p":"x~S","t":"","c":"","id":"dev-1","flow":"f"}"#)
            .unwrap();
        assert_eq!(s.device_id(), "dev-1");
        assert!(SentinelToken::from_header("not json").is_none());
        assert!(SentinelToken::from_header(r#"{"id":5}"#).is_none());
        assert!(!format!("{s:?}").contains("x~S"));
    }

    #[test]
    fn auth_debug_hides_secrets_and_proxy_credentials() {
        let auth = Auth::new(Secret::new("at-very-secret"))
            .with_session_token(Secret::new("st-very-secret"))
            .with_proxy("socks5://user:pw@host:1080");
        let shown = format!("{auth:?}");
        for s in ["at-very-secret", "st-very-secret", "pw@host"] {
            assert!(!shown.contains(s), "{shown}");
        }
    }
}
