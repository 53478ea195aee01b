//! The sentinel: the `openai-sentinel-token` header value (3.1) and the `sentinel/req`
//! challenge call (3.4).
//!
//! ```
//! use sora2api_core::upstream::sentinel_header;
//!
//! assert_eq!(
//!     sentinel_header("gAAAAABabc", "dx", "tok", "0b7e-id", "sora_2_create_task__auto"),
//!     r#"{"p":"gAAAAABabc~S","t":"dx","c":"tok","id":"0b7e-id","flow":"sora_2_create_task__auto"}"#
//! );
//! ```

use serde::Deserialize;

use super::config::UpstreamConfig;
use super::decode::{json, DecodeError, Lenient};
use super::headers::{json_str, pair, request, SEC_CH_UA_CHROME_131};
use super::http::{Method, UpstreamReply, UpstreamRequest};

/// The `flow` of a create task, in the header and in the challenge request (PY HEAD local mode).
pub const SENTINEL_FLOW: &str = "sora_2_create_task__auto";

/// PY's timeout of `sentinel/req`, ms (capped by [`UpstreamConfig::short_timeout_ms`]).
const SENTINEL_TIMEOUT_MS: u64 = 10_000;

/// The `openai-sentinel-token` header value: compact JSON with the keys in the order `p`, `t`,
/// `c`, `id`, `flow`, non-ASCII left raw, and `p` ending in `~S` (appended if missing).
pub fn sentinel_header(p: &str, t: &str, c: &str, id: &str, flow: &str) -> String {
    let p = if p.ends_with("~S") { p.to_owned() } else { format!("{p}~S") };
    format!(
        "{{\"p\":{},\"t\":{},\"c\":{},\"id\":{},\"flow\":{}}}",
        json_str(&p),
        json_str(t),
        json_str(c),
        json_str(id),
        json_str(flow)
    )
}

/// `POST sentinel/req`: asks for a challenge.
///
/// - `requirements_token`: `gAAAAAC` + the answer for a random seed at difficulty `0fffff`.
/// - `id`: a fresh lowercase uuid4; the same value later goes into the header's `id` and
///   `oai-device-id`.
/// - `flow`: normally [`SENTINEL_FLOW`].
///
/// Body `{"p","id","flow"}` as `text/plain;charset=UTF-8`, the browser headers of 3.4 with the
/// PoW user agent, no credentials, a 10 s timeout, through `proxy` (the token's; the shell
/// applies the PoW or global proxy when `None`).
pub fn sentinel_req(
    cfg: &UpstreamConfig,
    requirements_token: &str,
    id: &str,
    flow: &str,
    proxy: Option<String>,
) -> UpstreamRequest {
    let body = format!(
        "{{\"p\":{},\"id\":{},\"flow\":{}}}",
        json_str(requirements_token),
        json_str(id),
        json_str(flow)
    );
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

/// A `sentinel/req` answer: what the solver needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelChallenge {
    /// `token`: goes into the header's `c` (`""` if absent).
    pub token: String,
    /// `turnstile.dx`: goes into the header's `t` verbatim (`""` if absent).
    pub turnstile_dx: String,
    /// `proofofwork`.
    pub proof_of_work: ProofOfWork,
}

/// The `proofofwork` part of a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProofOfWork {
    /// Whether a proof is required. When `false` (or absent), the requirements token is sent
    /// as `p` (with `~S`).
    pub required: bool,
    /// The seed (`""` when not required and absent).
    pub seed: String,
    /// The difficulty, hex (`""` when not required and absent).
    pub difficulty: String,
}

#[derive(Deserialize)]
struct ChallengeReply {
    #[serde(default)]
    token: Lenient<String>,
    #[serde(default)]
    turnstile: Lenient<Turnstile>,
    #[serde(default)]
    proofofwork: Lenient<PowReply>,
}

#[derive(Deserialize)]
struct Turnstile {
    #[serde(default)]
    dx: Lenient<String>,
}

#[derive(Deserialize)]
struct PowReply {
    #[serde(default)]
    required: Lenient<bool>,
    #[serde(default)]
    seed: Lenient<String>,
    #[serde(default)]
    difficulty: Lenient<String>,
}

/// Decodes a `sentinel/req` answer. A required proof without seed or difficulty is an error;
/// everything else absent defaults as PY does.
pub fn decode_sentinel(reply: &UpstreamReply) -> Result<SentinelChallenge, DecodeError> {
    let r: ChallengeReply = json(reply, "an object")?;
    let pow = r.proofofwork.into_inner();
    let required = pow.as_ref().and_then(|p| p.required.0).unwrap_or(false);
    let (seed, difficulty) = match pow {
        Some(p) => {
            (p.seed.into_inner().unwrap_or_default(), p.difficulty.into_inner().unwrap_or_default())
        }
        None => (String::new(), String::new()),
    };
    if required && seed.is_empty() {
        return Err(DecodeError::Missing { field: "proofofwork.seed" });
    }
    if required && difficulty.is_empty() {
        return Err(DecodeError::Missing { field: "proofofwork.difficulty" });
    }
    Ok(SentinelChallenge {
        token: r.token.into_inner().unwrap_or_default(),
        turnstile_dx: r.turnstile.into_inner().and_then(|t| t.dx.into_inner()).unwrap_or_default(),
        proof_of_work: ProofOfWork { required, seed, difficulty },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_key_order_suffix_and_escaping() {
        let cases = [
            (
                ("gAAAAABx~S", "", "", "id", "f"),
                r#"{"p":"gAAAAABx~S","t":"","c":"","id":"id","flow":"f"}"#,
            ),
            (
                ("gAAAAACx", "d\"x", "c\\", "id", "f"),
                r#"{"p":"gAAAAACx~S","t":"d\"x","c":"c\\","id":"id","flow":"f"}"#,
            ),
            (
                ("", "é−", "\n", "i", "f"),
                "{\"p\":\"~S\",\"t\":\"é−\",\"c\":\"\\n\",\"id\":\"i\",\"flow\":\"f\"}",
            ),
        ];
        for ((p, t, c, id, flow), want) in cases {
            let got = sentinel_header(p, t, c, id, flow);
            assert_eq!(got, want);
            let v: serde_json::Value = serde_json::from_str(&got).unwrap();
            assert_eq!(v["t"], t);
        }
    }

    #[test]
    fn sentinel_req_request() {
        for (cfg, url) in [
            (UpstreamConfig::default(), "https://chatgpt.com/backend-api/sentinel/req"),
            (UpstreamConfig::at_origin("http://sim"), "http://sim/backend-api/sentinel/req"),
        ] {
            let req = sentinel_req(
                &cfg,
                "gAAAAACabc",
                "1111-2222",
                SENTINEL_FLOW,
                Some("http://p".into()),
            );
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.url, url);
            assert_eq!(
                &req.body[..],
                br#"{"p":"gAAAAACabc","id":"1111-2222","flow":"sora_2_create_task__auto"}"#
            );
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

    #[test]
    fn decode_challenge_table() {
        let full = r#"{"token":"gAAAAABtok","turnstile":{"required":true,"dx":"DX"},
            "proofofwork":{"required":true,"seed":"0.4215","difficulty":"06a7c5"},
            "persona":"x","expire_after":540}"#;
        let got = decode_sentinel(&UpstreamReply::json(200, full)).unwrap();
        assert_eq!(
            got,
            SentinelChallenge {
                token: "gAAAAABtok".into(),
                turnstile_dx: "DX".into(),
                proof_of_work: ProofOfWork {
                    required: true,
                    seed: "0.4215".into(),
                    difficulty: "06a7c5".into()
                },
            }
        );
        let bare = decode_sentinel(&UpstreamReply::json(200, r#"{"turnstile":null}"#)).unwrap();
        assert_eq!(
            bare,
            SentinelChallenge {
                token: String::new(),
                turnstile_dx: String::new(),
                proof_of_work: ProofOfWork::default()
            }
        );
        let not_required = decode_sentinel(&UpstreamReply::json(
            200,
            r#"{"token":"t","proofofwork":{"required":false}}"#,
        ))
        .unwrap();
        assert!(!not_required.proof_of_work.required);
        assert_eq!(
            decode_sentinel(&UpstreamReply::json(
                200,
                r#"{"proofofwork":{"required":true,"difficulty":"0f"}}"#
            )),
            Err(DecodeError::Missing { field: "proofofwork.seed" })
        );
        assert_eq!(
            decode_sentinel(&UpstreamReply::json(
                200,
                r#"{"proofofwork":{"required":true,"seed":"0.1"}}"#
            )),
            Err(DecodeError::Missing { field: "proofofwork.difficulty" })
        );
        assert_eq!(
            decode_sentinel(&UpstreamReply::json(403, full)),
            Err(DecodeError::Status { status: 403 })
        );
    }
}
