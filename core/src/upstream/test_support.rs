//! Fixtures shared by the builder tests.

use super::config::UpstreamConfig;
use super::headers::{Auth, SentinelToken};
use super::http::UpstreamRequest;
use crate::secret::Secret;

pub(crate) const AT: &str = "at-SECRET-eyJhbGciOi";
pub(crate) const ST: &str = "st-SECRET-session";
pub(crate) const PROXY: &str = "socks5://user:pw@proxy:1080";
pub(crate) const DEVICE: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";

/// The default (real) hosts and the simulator's single origin, with the expected backend base.
pub(crate) fn configs() -> [(UpstreamConfig, &'static str); 2] {
    [
        (UpstreamConfig::default(), "https://sora.chatgpt.com/backend"),
        (UpstreamConfig::at_origin("http://sim"), "http://sim/backend"),
    ]
}

pub(crate) fn auth() -> Auth {
    Auth::new(Secret::new(AT)).with_session_token(Secret::new(ST)).with_proxy(PROXY)
}

pub(crate) fn sentinel() -> SentinelToken {
    SentinelToken::build("gAAAAABanswer", "dx", "ctok", DEVICE, super::SENTINEL_FLOW)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The P-APP headers for JSON.
pub(crate) fn app_headers(cfg: &UpstreamConfig) -> Vec<(String, String)> {
    pairs(&[
        ("authorization", &format!("Bearer {AT}")),
        ("user-agent", &cfg.app_user_agent),
        ("content-type", "application/json"),
    ])
}

/// The P-APP headers with a sentinel.
pub(crate) fn app_sentinel_headers(cfg: &UpstreamConfig) -> Vec<(String, String)> {
    pairs(&[
        ("authorization", &format!("Bearer {AT}")),
        ("user-agent", &cfg.pow_user_agent),
        ("content-type", "application/json"),
        ("openai-sentinel-token", sentinel().header()),
        ("oai-device-id", DEVICE),
    ])
}

/// The parsed JSON body.
pub(crate) fn body_json(req: &UpstreamRequest) -> serde_json::Value {
    serde_json::from_slice(&req.body).expect("body is JSON")
}

/// The access token appears only in `authorization`, the session token only in `cookie`;
/// neither in the URL, another header, the body, or the request's `Debug`. The proxy is the
/// token's.
pub(crate) fn assert_secrets_contained(req: &UpstreamRequest) {
    for (name, value) in &req.headers {
        if name != "authorization" {
            assert!(!value.contains(AT), "AT in {name}");
        }
        if name != "cookie" {
            assert!(!value.contains(ST), "ST in {name}");
        }
    }
    for secret in [AT, ST] {
        assert!(!req.url.contains(secret), "secret in URL");
        assert!(!String::from_utf8_lossy(&req.body).contains(secret), "secret in body");
    }
    let shown = format!("{req:?}");
    for secret in [AT, ST, "pw@proxy"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert_eq!(req.proxy.as_deref(), Some(PROXY));
}
