//! The external proof-of-work service (sora-backend.md 3.5 item 1): in
//! [`PowMode::External`], after every lease that finds no cached sentinel, the driver asks
//! `POST {server_url}/api/v1/sora/sentinel-token` for a ready sentinel token and feeds it to
//! the machine as [`Input::CachedSentinel`](sora2api_core::machine::Input::CachedSentinel)
//! (and to the shared cache, under the lease's token and proxy). Any failure (transport,
//! non-2xx, a reply without a usable `sentinel_token`) is silent: the machine solves locally,
//! as it would in [`PowMode::Local`].
//!
//! What PY does and this does not: the service's `user_agent` and `cookie_header` are not
//! used (the machine sends its own profile), and there is no separate PoW proxy (the request
//! goes through the upstream's global proxy, if any).

use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use sora2api_core::pool::Credentials;
use sora2api_core::secret::Secret;
use sora2api_core::upstream::{Method, SentinelToken, UpstreamReply, UpstreamRequest};

/// The path of the service's sentinel endpoint, after `server_url`.
pub const SENTINEL_TOKEN_PATH: &str = "/api/v1/sora/sentinel-token";

/// How long the service may take (PY: 30 s).
const TIMEOUT_MS: u64 = 30_000;

/// Where sentinel tokens come from (`pow_service.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PowMode {
    /// `sentinel/req` and the proof of work solved here (the default).
    #[default]
    Local,
    /// Asked from the external service first; local on any failure.
    External,
}

impl PowMode {
    /// `local` or `external`, as the admin API and the settings store name them.
    pub fn as_str(self) -> &'static str {
        match self {
            PowMode::Local => "local",
            PowMode::External => "external",
        }
    }
}

/// The PoW service settings (`pow_service.*`, sora-backend.md 7.3). `Debug` masks the key.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PowService {
    /// Local or external.
    pub mode: PowMode,
    /// The service's base URL, such as `http://localhost:8002` (no trailing slash needed).
    pub server_url: String,
    /// Sent as `Authorization: Bearer <api_key>`.
    pub api_key: Secret,
    /// Also send the leased token's access and session tokens (`use_token_for_pow`).
    pub use_token_for_pow: bool,
}

impl fmt::Debug for PowService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowService")
            .field("mode", &self.mode)
            .field("server_url", &self.server_url)
            .field("api_key", &self.api_key)
            .field("use_token_for_pow", &self.use_token_for_pow)
            .finish()
    }
}

impl PowService {
    /// The request for a sentinel token for a lease with `credentials`; `None` in local mode
    /// (or with no server URL). Body `{"device_type":"ios"}`, plus `access_token` and
    /// `session_token` only with [`PowService::use_token_for_pow`].
    pub fn request(&self, credentials: &Credentials) -> Option<UpstreamRequest> {
        if self.mode != PowMode::External || self.server_url.is_empty() {
            return None;
        }
        let mut body = serde_json::Map::new();
        body.insert("device_type".into(), "ios".into());
        if self.use_token_for_pow {
            body.insert("access_token".into(), credentials.access_token.expose().into());
            if let Some(st) = &credentials.session_token {
                body.insert("session_token".into(), st.expose().into());
            }
        }
        let body = serde_json::Value::Object(body).to_string();
        Some(UpstreamRequest {
            method: Method::Post,
            url: format!("{}{SENTINEL_TOKEN_PATH}", self.server_url.trim_end_matches('/')),
            headers: vec![
                ("authorization".into(), format!("Bearer {}", self.api_key.expose())),
                ("accept".into(), "application/json".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: Bytes::from(body),
            timeout_ms: TIMEOUT_MS,
            proxy: None,
        })
    }
}

/// The sentinel token in the service's reply
/// `{"sentinel_token":"…","device_id":"…",…}`: a 2xx with a non-empty `sentinel_token`. The
/// device id is `device_id`, else the `id` inside the token; `None` if neither is there.
pub fn parse_reply(reply: &UpstreamReply) -> Option<SentinelToken> {
    #[derive(Deserialize)]
    struct Reply {
        sentinel_token: String,
        #[serde(default)]
        device_id: Option<String>,
    }
    if !(200..300).contains(&reply.status) {
        return None;
    }
    let parsed: Reply = serde_json::from_slice(&reply.body).ok()?;
    if parsed.sentinel_token.is_empty() {
        return None;
    }
    match parsed.device_id.filter(|d| !d.is_empty()) {
        Some(device_id) => Some(SentinelToken::new(parsed.sentinel_token, device_id)),
        None => SentinelToken::from_header(parsed.sentinel_token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials {
            access_token: Secret::new("at-secret"),
            session_token: Some(Secret::new("st-secret")),
            proxy: None,
        }
    }

    #[test]
    fn local_mode_sends_nothing() {
        assert_eq!(PowService::default().request(&credentials()), None);
        let no_url = PowService { mode: PowMode::External, ..PowService::default() };
        assert_eq!(no_url.request(&credentials()), None);
    }

    #[test]
    fn external_request_carries_tokens_only_when_asked() {
        let mut service = PowService {
            mode: PowMode::External,
            server_url: "http://pow.test:8002/".into(),
            api_key: Secret::new("pow-key"),
            use_token_for_pow: false,
        };
        let req = service.request(&credentials()).unwrap();
        assert_eq!(req.url, "http://pow.test:8002/api/v1/sora/sentinel-token");
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.header("authorization"), Some("Bearer pow-key"));
        assert_eq!(&req.body[..], br#"{"device_type":"ios"}"#);
        service.use_token_for_pow = true;
        let req = service.request(&credentials()).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["access_token"], "at-secret");
        assert_eq!(body["session_token"], "st-secret");
        assert!(!format!("{service:?}").contains("pow-key"));
    }

    #[test]
    fn replies() {
        let ok =
            UpstreamReply::json(200, r#"{"sentinel_token":"{\"id\":\"dev-1\"}","device_id":""}"#);
        assert_eq!(parse_reply(&ok).map(|s| s.device_id().to_owned()), Some("dev-1".into()));
        let with_id = UpstreamReply::json(200, r#"{"sentinel_token":"opaque","device_id":"d2"}"#);
        let token = parse_reply(&with_id).unwrap();
        assert_eq!((token.header(), token.device_id()), ("opaque", "d2"));
        for bad in [
            UpstreamReply::json(500, r#"{"sentinel_token":"x","device_id":"d"}"#),
            UpstreamReply::json(200, r#"{"sentinel_token":"","device_id":"d"}"#),
            UpstreamReply::json(200, r#"{"sentinel_token":"no-id-inside"}"#),
            UpstreamReply::json(200, "not json"),
        ] {
            assert!(parse_reply(&bad).is_none(), "{:?}", bad.body);
        }
    }
}
