//! The token strings (spec 3.3), the `sentinel/req` exchange (spec 3.4) and the
//! `openai-sentinel-token` header value (spec 3.1), as pure functions.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{PowAnswer, PowChallenge, PowError, PowRejection};

/// Prefix of the requirements token sent to `sentinel/req`.
pub const REQUIREMENTS_PREFIX: &str = "gAAAAAC";
/// Prefix of the final proof sent in the header's `p`.
pub const PROOF_PREFIX: &str = "gAAAAAB";
/// Suffix every header `p` ends with.
pub const PROOF_SUFFIX: &str = "~S";
/// Start of the fallback answer used when no iteration solved the challenge.
pub const FALLBACK_PREFIX: &str = "wQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4D";
/// The `flow` of the `sentinel/req` body.
pub const FLOW_SORA_INIT: &str = "sora_init";
/// The header's `flow` in PY local mode since commit `9201588` (ours).
pub const FLOW_CREATE_TASK_AUTO: &str = "sora_2_create_task__auto";
/// The header's `flow` before that commit, and in GO, ZHU and PY's browser path.
pub const FLOW_CREATE_TASK: &str = "sora_2_create_task";
/// Path of the sentinel endpoint on the (configurable) chatgpt host.
pub const SENTINEL_REQ_PATH: &str = "/backend-api/sentinel/req";

/// The fallback answer: [`FALLBACK_PREFIX`] + base64(`"` + seed + `"`) (spec 3.3 step 4).
///
/// ```
/// assert_eq!(sora2api_core::pow::fallback_answer("0.5"), "wQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4DIjAuNSI=");
/// ```
pub fn fallback_answer(seed: &str) -> String {
    let quoted = format!("\"{seed}\"");
    let mut out = String::from(FALLBACK_PREFIX);
    base64::engine::general_purpose::STANDARD.encode_string(quoted, &mut out);
    out
}

/// `gAAAAAC` + answer: the requirements token, the `p` of the `sentinel/req` body.
pub fn requirements_token(answer: &str) -> String {
    [REQUIREMENTS_PREFIX, answer].concat()
}

/// `gAAAAAB` + answer + `~S`: the final proof, the header's `p`.
pub fn proof_token(answer: &str) -> String {
    [PROOF_PREFIX, answer, PROOF_SUFFIX].concat()
}

/// The token with `~S` appended unless it already ends with it (what PY does to `p`).
pub fn with_proof_suffix(token: &str) -> String {
    if token.ends_with(PROOF_SUFFIX) {
        token.to_owned()
    } else {
        [token, PROOF_SUFFIX].concat()
    }
}

/// The header's `p`: the final proof when `sentinel/req` demanded one (`proof` is its answer),
/// else the requirements token reused with `~S` appended (spec 3.3).
pub fn header_proof(requirements_token: &str, proof: Option<&PowAnswer>) -> String {
    match proof {
        Some(answer) => answer.proof_token(),
        None => with_proof_suffix(requirements_token),
    }
}

/// The requirements seed, PY's `str(random.random())`, from one random word: its top 53 bits
/// as a fraction in `[0, 1)`, formatted as Python's `repr` (`0.5`, `1.5e-05`, `0.0`).
///
/// ```
/// assert_eq!(sora2api_core::pow::requirements_seed(1 << 63), "0.5");
/// assert_eq!(sora2api_core::pow::requirements_seed(0), "0.0");
/// ```
pub fn requirements_seed(random: u64) -> String {
    let x = (random >> 11) as f64 / (1u64 << 53) as f64;
    if x == 0.0 {
        return "0.0".to_owned();
    }
    if x >= 1e-4 {
        return format!("{x}");
    }
    // Python switches to exponent form below 1e-4 and writes at least two exponent digits.
    let sci = format!("{x:e}");
    match sci.split_once("e-") {
        Some((mantissa, exp)) => format!("{mantissa}e-{exp:0>2}"),
        None => sci,
    }
}

// === sentinel/req ===

/// The `sentinel/req` body, `{"p":…,"id":…,"flow":"sora_init"}`, compact and with non-ASCII
/// escaped as PY's `json.dumps` does; sent as `text/plain;charset=UTF-8` (spec 3.4).
/// `request_id` is a fresh uuid4 that becomes the header's `id` and `oai-device-id`.
pub fn sentinel_req_body(requirements_token: &str, request_id: &str) -> String {
    let mut out = String::with_capacity(requirements_token.len() + request_id.len() + 40);
    out.push_str("{\"p\":");
    push_ascii_json(&mut out, requirements_token);
    out.push_str(",\"id\":");
    push_ascii_json(&mut out, request_id);
    out.push_str(",\"flow\":");
    push_ascii_json(&mut out, FLOW_SORA_INIT);
    out.push('}');
    out
}

/// The headers of the `sentinel/req` call in PY's order (spec 3.4): the user agent carries
/// the body after a space (PY's quirk); the cookie is sent only with a session token
/// (`use_token_for_pow`).
pub fn sentinel_req_headers(
    user_agent: &str,
    body: &str,
    session_token: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("Accept", "*/*".to_owned()),
        ("Content-Type", "text/plain;charset=UTF-8".to_owned()),
        ("Origin", "https://chatgpt.com".to_owned()),
        ("Referer", "https://chatgpt.com/backend-api/sentinel/frame.html".to_owned()),
        ("User-Agent", format!("{user_agent} {body}")),
        (
            "sec-ch-ua",
            "\"Not(A:Brand\";v=\"8\", \"Chromium\";v=\"131\", \"Google Chrome\";v=\"131\""
                .to_owned(),
        ),
        ("sec-ch-ua-mobile", "?1".to_owned()),
        ("sec-ch-ua-platform", "\"Android\"".to_owned()),
    ];
    if let Some(st) = session_token {
        headers.push(("Cookie", format!("__Secure-next-auth.session-token={st}")));
    }
    headers
}

/// The fields of a `sentinel/req` reply the client reads (spec 3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelReply {
    /// `token`, the header's `c`; `""` if absent or not a string.
    pub token: String,
    /// `turnstile.dx`, the header's `t` (sent raw, no Turnstile VM); `""` if absent.
    pub turnstile_dx: String,
    /// The challenge when `proofofwork.required` is `true` and `seed` and `difficulty` are
    /// non-empty strings; `None` means the requirements token is reused as `p`.
    pub proof_of_work: Option<PowChallenge>,
}

// === impl SentinelReply ===

impl SentinelReply {
    /// Reads a reply body. Fails if it is not a JSON object, or if a demanded proof of work
    /// has a difficulty that is not even-length hex (PY fails there too). Other fields are
    /// ignored.
    ///
    /// ```
    /// use sora2api_core::pow::SentinelReply;
    ///
    /// let reply = SentinelReply::parse(br#"{"token":"gAAAAABc","turnstile":{"required":true,"dx":"dx"},
    ///     "proofofwork":{"required":true,"seed":"0.42","difficulty":"06a7c5"},"persona":"x"}"#)?;
    /// assert_eq!(reply.token, "gAAAAABc");
    /// assert_eq!(reply.proof_of_work.map(|c| c.seed().to_owned()), Some("0.42".to_owned()));
    /// # Ok::<(), sora2api_core::pow::PowError>(())
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, PowError> {
        let reply: Map<String, Value> =
            serde_json::from_slice(body).map_err(|_| PowError::MalformedReply)?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let pow = reply.get("proofofwork");
        let required = pow.and_then(|p| p.get("required")).and_then(Value::as_bool) == Some(true);
        let seed = text(pow.and_then(|p| p.get("seed")));
        let difficulty = text(pow.and_then(|p| p.get("difficulty")));
        let proof_of_work = if required && !seed.is_empty() && !difficulty.is_empty() {
            Some(PowChallenge::new(seed, difficulty)?)
        } else {
            None
        };
        Ok(SentinelReply {
            token: text(reply.get("token")),
            turnstile_dx: text(reply.get("turnstile").and_then(|t| t.get("dx"))),
            proof_of_work,
        })
    }
}

// === openai-sentinel-token ===

/// The `openai-sentinel-token` header value (spec 3.1): a compact JSON object with the keys
/// in this order, non-ASCII left raw.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SentinelHeader {
    /// The proof, `gAAAAAB…~S` (or the reused `gAAAAAC…~S`).
    pub p: String,
    /// `turnstile.dx` from `sentinel/req`, raw.
    pub t: String,
    /// `token` from `sentinel/req`.
    pub c: String,
    /// The uuid4 of the `sentinel/req` body; PY also sends it as `oai-device-id`.
    pub id: String,
    /// [`FLOW_CREATE_TASK_AUTO`] for us.
    pub flow: String,
}

// === impl SentinelHeader ===

impl SentinelHeader {
    /// The header for a reply: `p` gets `~S` appended if missing, `t` and `c` come from the
    /// reply.
    pub fn new(p: &str, reply: &SentinelReply, id: &str, flow: &str) -> Self {
        SentinelHeader {
            p: with_proof_suffix(p),
            t: reply.turnstile_dx.clone(),
            c: reply.token.clone(),
            id: id.to_owned(),
            flow: flow.to_owned(),
        }
    }

    /// The header value, `{"p":…,"t":…,"c":…,"id":…,"flow":…}`.
    pub fn render(&self) -> String {
        let field = |v: &str| Value::from(v).to_string();
        format!(
            "{{\"p\":{},\"t\":{},\"c\":{},\"id\":{},\"flow\":{}}}",
            field(&self.p),
            field(&self.t),
            field(&self.c),
            field(&self.id),
            field(&self.flow),
        )
    }

    /// Reads a header value as the verifier does (spec 3.6 step 1): a JSON object with string
    /// fields `p`, `t`, `c`, `id` and `flow` (other keys are ignored).
    pub fn parse(value: &[u8]) -> Result<Self, PowRejection> {
        let object: Map<String, Value> =
            serde_json::from_slice(value).map_err(|_| PowRejection::MalformedHeader)?;
        let field = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(PowRejection::MalformedHeader)
        };
        Ok(SentinelHeader {
            p: field("p")?,
            t: field("t")?,
            c: field("c")?,
            id: field("id")?,
            flow: field("flow")?,
        })
    }
}

/// Appends `text` as a JSON string with Python's `ensure_ascii=True` escaping.
fn push_ascii_json(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes() {
        assert_eq!(requirements_token("QQ=="), "gAAAAACQQ==");
        assert_eq!(proof_token("QQ=="), "gAAAAABQQ==~S");
        assert_eq!(with_proof_suffix("gAAAAACx"), "gAAAAACx~S");
        assert_eq!(with_proof_suffix("gAAAAACx~S"), "gAAAAACx~S");
        assert_eq!(
            proof_token(&fallback_answer("0.5")),
            "gAAAAABwQ8Lk5FbGpA2NcR9dShT6gYjU7VxZ4DIjAuNSI=~S"
        );
    }

    #[test]
    fn seeds_look_like_python_repr() {
        assert_eq!(requirements_seed(u64::MAX), "0.9999999999999999");
        assert_eq!(requirements_seed(1 << 62), "0.25");
        // 2^-20 = 9.5367431640625e-07
        assert_eq!(requirements_seed(1 << 44), "9.5367431640625e-07");
        assert_eq!(requirements_seed(1 << 11), "1.1102230246251565e-16");
        for w in (0..1000u64).map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            let s = requirements_seed(w);
            assert!(s.parse::<f64>().is_ok_and(|x| (0.0..1.0).contains(&x)), "{s}");
        }
    }

    #[test]
    fn req_body_and_headers() {
        let body = sentinel_req_body("gAAAAACxyz", "00000000-0000-4000-8000-000000000000");
        assert_eq!(
            body,
            r#"{"p":"gAAAAACxyz","id":"00000000-0000-4000-8000-000000000000","flow":"sora_init"}"#
        );
        assert_eq!(
            sentinel_req_body("é\"😀", "\n"),
            r#"{"p":"\u00e9\"\ud83d\ude00","id":"\n","flow":"sora_init"}"#
        );
        let headers = sentinel_req_headers("UA/1", &body, Some("st"));
        assert!(headers.contains(&("User-Agent", format!("UA/1 {body}"))));
        assert_eq!(
            headers.last(),
            Some(&("Cookie", "__Secure-next-auth.session-token=st".to_owned()))
        );
        assert_eq!(sentinel_req_headers("UA/1", &body, None).len(), 8);
    }

    #[test]
    fn reply_parsing() {
        let r = SentinelReply::parse(
            br#"{"token":"c","proofofwork":{"required":false,"seed":"s","difficulty":"0f"}}"#,
        )
        .unwrap();
        assert_eq!((r.token.as_str(), r.turnstile_dx.as_str(), r.proof_of_work), ("c", "", None));
        let r = SentinelReply::parse(
            br#"{"proofofwork":{"required":true,"seed":"","difficulty":"0f"}}"#,
        )
        .unwrap();
        assert_eq!(r.proof_of_work, None);
        let r = SentinelReply::parse(br#"{"turnstile":null,"proofofwork":null}"#).unwrap();
        assert_eq!(r.turnstile_dx, "");
        assert_eq!(
            SentinelReply::parse(
                br#"{"proofofwork":{"required":true,"seed":"s","difficulty":"xyz"}}"#
            ),
            Err(PowError::InvalidDifficulty)
        );
        assert_eq!(SentinelReply::parse(b"[1]"), Err(PowError::MalformedReply));
    }

    #[test]
    fn header_round_trip_and_shape() {
        let reply = SentinelReply {
            token: "tok".into(),
            turnstile_dx: "dx−\"".into(),
            proof_of_work: None,
        };
        let h = SentinelHeader::new("gAAAAACabc", &reply, "id-1", FLOW_CREATE_TASK_AUTO);
        assert_eq!(
            h.render(),
            "{\"p\":\"gAAAAACabc~S\",\"t\":\"dx−\\\"\",\"c\":\"tok\",\"id\":\"id-1\",\"flow\":\"sora_2_create_task__auto\"}"
        );
        assert_eq!(SentinelHeader::parse(h.render().as_bytes()), Ok(h));
        for bad in [
            &b"[]"[..],
            b"{}",
            b"{\"p\":1,\"t\":\"\",\"c\":\"\",\"id\":\"\",\"flow\":\"\"}",
            b"\xff",
        ] {
            assert_eq!(SentinelHeader::parse(bad), Err(PowRejection::MalformedHeader));
        }
    }
}
