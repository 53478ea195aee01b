//! The HTTP profile of the `sentinel/req` challenge call (3.4).
//!
//! The formats of the sentinel itself (the `sentinel/req` body, its reply, the
//! `openai-sentinel-token` header) belong to [`crate::pow`]; this module only sends them.

use super::config::UpstreamConfig;
use super::headers::{pair, request, SEC_CH_UA_CHROME_131};
use super::http::{Method, UpstreamRequest};
use crate::pow;

/// The `flow` of a create task in the header (PY HEAD local mode).
pub const SENTINEL_FLOW: &str = pow::FLOW_CREATE_TASK_AUTO;

/// PY's timeout of `sentinel/req`, ms (capped by [`UpstreamConfig::short_timeout_ms`]).
const SENTINEL_TIMEOUT_MS: u64 = 10_000;

/// `POST sentinel/req`: asks for a challenge.
///
/// - `requirements_token`: `gAAAAAC` + the answer for a random seed at difficulty `0fffff`
///   ([`pow::PowAnswer::requirements_token`]).
/// - `id`: a fresh lowercase uuid4; the same value later goes into the header's `id` and
///   `oai-device-id`.
///
/// Body [`pow::sentinel_req_body`] as `text/plain;charset=UTF-8`, the browser headers of 3.4
/// with the PoW user agent, no credentials, a 10 s timeout, through `proxy` (the token's; the
/// shell applies the PoW or global proxy when `None`). Decode the reply with
/// [`pow::SentinelReply::parse`].
pub fn sentinel_req(
    cfg: &UpstreamConfig,
    requirements_token: &str,
    id: &str,
    proxy: Option<String>,
) -> UpstreamRequest {
    let body = pow::sentinel_req_body(requirements_token, id);
    let headers = vec![
        pair("accept", "*/*"),
        pair("content-type", "text/plain;charset=UTF-8"),
        pair("origin", "https://chatgpt.com"),
        pair("referer", "https://chatgpt.com/backend-api/sentinel/frame.html"),
        pair("user-agent", cfg.pow_user_agent.as_str()),
        pair("sec-ch-ua", SEC_CH_UA_CHROME_131),
        pair("sec-ch-ua-mobile", "?1"),
        pair("sec-ch-ua-platform", "\"Android\""),
    ];
    request(
        Method::Post,
        cfg.sentinel_url.clone(),
        headers,
        body.into(),
        SENTINEL_TIMEOUT_MS.min(cfg.short_timeout_ms),
        proxy,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_req_request() {
        for (cfg, url) in [
            (UpstreamConfig::default(), "https://chatgpt.com/backend-api/sentinel/req"),
            (UpstreamConfig::at_origin("http://sim"), "http://sim/backend-api/sentinel/req"),
        ] {
            let req = sentinel_req(&cfg, "gAAAAACabc", "1111-2222", Some("http://p".into()));
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.url, url);
            assert_eq!(&req.body[..], br#"{"p":"gAAAAACabc","id":"1111-2222","flow":"sora_init"}"#);
            assert_eq!(req.header("content-type"), Some("text/plain;charset=UTF-8"));
            assert_eq!(req.header("user-agent"), Some(cfg.pow_user_agent.as_str()));
            assert_eq!(req.header("origin"), Some("https://chatgpt.com"));
            assert_eq!(
                req.header("referer"),
                Some("https://chatgpt.com/backend-api/sentinel/frame.html")
            );
            assert_eq!(req.header("sec-ch-ua-mobile"), Some("?1"));
            assert_eq!(req.header("sec-ch-ua-platform"), Some("\"Android\""));
            assert_eq!(req.header("accept"), Some("*/*"));
            assert_eq!(req.header("authorization"), None);
            assert_eq!(req.header("cookie"), None);
            assert_eq!(req.headers.len(), 8);
            assert_eq!(req.timeout_ms, 10_000);
            assert_eq!(req.proxy.as_deref(), Some("http://p"));
        }
    }
}
