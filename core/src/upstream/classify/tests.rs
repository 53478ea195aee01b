use bytes::Bytes;

use super::*;

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> UpstreamReply {
    UpstreamReply {
        status,
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: Bytes::from(body.to_owned()),
    }
}

fn err(code: &str, message: &str) -> String {
    format!(
        r#"{{"error":{{"message":"{message}","type":"invalid_request_error","param":null,"code":"{code}"}}}}"#
    )
}

const JSON: (&str, &str) = ("content-type", "application/json");
const HTML: (&str, &str) = ("content-type", "text/html; charset=UTF-8");
const OBSERVED_400: &str = r#"{"error":{"message":"Hmmm something didn't look right with your request. Please try again later or visit https://help.openai.com if this issue persists.","type":"invalid_request_error","param":null,"code":"invalid_request"}}"#;
const CF_PAGE: &str = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><script src=\"/cdn-cgi/challenge-platform/h/b/orchestrate\"></script></body></html>";

#[test]
fn classification_table() {
    let heavy = r#"{"error":{"message":"We're under heavy load, please try again later.","type":"server_error","code":null}}"#;
    let cases: Vec<(UpstreamReply, Class)> = vec![
        // 2xx
        (reply(200, &[JSON], r#"{"id":"task_401","x":"401 unauthorized"}"#), Class::Ok),
        (reply(204, &[], ""), Class::Ok),
        (reply(200, &[JSON], r#"[{"id":"task_1","prompt":"a city under heavy load"}]"#), Class::Ok),
        (
            reply(200, &[JSON], r#"{"items":[{"prompt":"under heavy load"}],"error":null}"#),
            Class::Ok,
        ),
        (reply(200, &[HTML], "<html>Just a moment</html>"), Class::Ok),
        (
            reply(
                200,
                &[JSON],
                r#"{"error":{"message":"We're under heavy load, please try again later."}}"#,
            ),
            Class::HeavyLoad,
        ),
        // 401 (4.1, B22, decisions 15)
        (reply(401, &[JSON], &err("token_invalidated", "Token revoked")), Class::TokenInvalid),
        (reply(401, &[JSON], &err("token_expired", "Your token has expired")), Class::TokenExpired),
        (reply(401, &[], ""), Class::TokenInvalid),
        (reply(401, &[JSON], r#"{"error":{"message":"Unauthorized"}}"#), Class::TokenInvalid),
        (reply(401, &[HTML], "<html>401</html>"), Class::TokenInvalid),
        // B13: "401"/"unauthorized"/"token_invalidated"/"invalid"/"429" in text elsewhere.
        (
            reply(
                500,
                &[JSON],
                r#"{"error":{"message":"401 unauthorized token_invalidated at /v1/401"}}"#,
            ),
            Class::Transient { status: Some(500) },
        ),
        (reply(400, &[JSON], &err("invalid_request", "request 401 failed")), Class::InvalidRequest),
        (
            reply(
                404,
                &[JSON],
                r#"{"error":{"message":"rate limit 429 invalid","code":"not_found"}}"#,
            ),
            Class::Fatal { status: 404 },
        ),
        (
            reply(403, &[JSON], r#"{"error":{"message":"cloudflare cf_shield Just a moment"}}"#),
            Class::Fatal { status: 403 },
        ),
        // Country
        (
            reply(
                403,
                &[JSON],
                r#"{"error":{"message":"Sora is not available","param":"CN","code":"unsupported_country_code"}}"#,
            ),
            Class::CountryUnsupported { country: Some("CN".into()) },
        ),
        (
            reply(
                400,
                &[JSON],
                r#"{"error":{"param":"<script>x","code":"unsupported_country_code"}}"#,
            ),
            Class::CountryUnsupported { country: None },
        ),
        (
            reply(401, &[JSON], r#"{"error":{"param":null,"code":"unsupported_country_code"}}"#),
            Class::CountryUnsupported { country: None },
        ),
        // Sentinel stale / malformed
        (reply(400, &[JSON], OBSERVED_400), Class::InvalidRequest),
        (
            reply(
                400,
                &[JSON],
                r#"{"error":{"message":"invalid sentinel","type":"invalid_request_error","code":null}}"#,
            ),
            Class::Fatal { status: 400 },
        ),
        (reply(400, &[JSON], &err("invalid_value", "bad")), Class::Fatal { status: 400 }),
        (reply(400, &[JSON], r#"{"error":"invalid_request"}"#), Class::Fatal { status: 400 }),
        (reply(400, &[], ""), Class::Fatal { status: 400 }),
        // Heavy load, any status, not counted
        (reply(503, &[JSON], heavy), Class::HeavyLoad),
        (reply(429, &[JSON], heavy), Class::HeavyLoad),
        (reply(500, &[JSON], r#"{"error":{"code":"heavy_load"}}"#), Class::HeavyLoad),
        (
            reply(
                502,
                &[("content-type", "text/plain")],
                "We're Under Heavy Load, please try again later.",
            ),
            Class::HeavyLoad,
        ),
        // Rate limits
        (
            reply(429, &[JSON, ("retry-after", "30")], "{}"),
            Class::RateLimited { retry_after_ms: Some(30_000) },
        ),
        (
            reply(429, &[("retry-after", " 7 ")], ""),
            Class::RateLimited { retry_after_ms: Some(7_000) },
        ),
        (
            reply(429, &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")], ""),
            Class::RateLimited { retry_after_ms: None },
        ),
        (
            reply(429, &[("retry-after", "99999999999999999999")], ""),
            Class::RateLimited { retry_after_ms: None },
        ),
        (
            reply(429, &[("retry-after", "18446744073709551615")], ""),
            Class::RateLimited { retry_after_ms: Some(u64::MAX) },
        ),
        (
            reply(
                429,
                &[JSON],
                r#"{"error":{"message":"Too many","code":"rate_limit_exceeded","access_resets_in_seconds":12}}"#,
            ),
            Class::RateLimited { retry_after_ms: Some(12_000) },
        ),
        (
            reply(429, &[JSON], r#"{"access_resets_in_seconds":5.5}"#),
            Class::RateLimited { retry_after_ms: Some(5_500) },
        ),
        (reply(429, &[], ""), Class::RateLimited { retry_after_ms: None }),
        (
            reply(403, &[JSON], &err("rate_limit_exceeded", "slow down")),
            Class::RateLimited { retry_after_ms: None },
        ),
        // Quota
        (
            reply(
                429,
                &[JSON],
                r#"{"rate_limit_and_credit_balance":{"estimated_num_videos_remaining":0,"rate_limit_reached":true,"access_resets_in_seconds":46833}}"#,
            ),
            Class::QuotaExhausted { resets_in_ms: Some(46_833_000) },
        ),
        (
            reply(403, &[JSON, ("retry-after", "60")], &err("insufficient_quota", "no credits")),
            Class::QuotaExhausted { resets_in_ms: Some(60_000) },
        ),
        (
            reply(
                429,
                &[JSON],
                r#"{"rate_limit_and_credit_balance":{"rate_limit_reached":false}}"#,
            ),
            Class::RateLimited { retry_after_ms: None },
        ),
        // Cloudflare
        (reply(403, &[("cf-mitigated", "challenge"), JSON], "{}"), Class::Cloudflare),
        (reply(429, &[("cf-mitigated", "Challenge")], ""), Class::Cloudflare),
        (reply(403, &[HTML], CF_PAGE), Class::Cloudflare),
        (reply(503, &[], "  <html><body>challenge-platform</body></html>"), Class::Cloudflare),
        (reply(429, &[HTML], "<html><title>Just a moment...</title></html>"), Class::Cloudflare),
        (reply(500, &[HTML], CF_PAGE), Class::Transient { status: Some(500) }),
        (reply(403, &[JSON], r#"{"message":"Just a moment"}"#), Class::Fatal { status: 403 }),
        (reply(403, &[HTML], "<html>Forbidden</html>"), Class::Fatal { status: 403 }),
        // Content policy said by the reply itself
        (
            reply(400, &[JSON], &err("content_policy_violation", "no")),
            Class::ContentPolicy { reason: None },
        ),
        (
            reply(422, &[JSON], &err("moderation_blocked", "no")),
            Class::ContentPolicy { reason: None },
        ),
        // Transient
        (reply(500, &[], ""), Class::Transient { status: Some(500) }),
        (
            reply(502, &[HTML], "<html><h1>502 Bad Gateway</h1></html>"),
            Class::Transient { status: Some(502) },
        ),
        (reply(503, &[JSON], "{}"), Class::Transient { status: Some(503) }),
        (reply(504, &[], "gateway timeout"), Class::Transient { status: Some(504) }),
        (reply(408, &[], ""), Class::Transient { status: Some(408) }),
        (reply(425, &[], ""), Class::Transient { status: Some(425) }),
        (reply(302, &[("location", "/login")], ""), Class::Transient { status: Some(302) }),
        // Fatal
        (reply(404, &[JSON], r#"{"detail":"Not Found"}"#), Class::Fatal { status: 404 }),
        (reply(410, &[], ""), Class::Fatal { status: 410 }),
        (
            reply(403, &[JSON], r#"{"error":{"message":"Forbidden","code":null}}"#),
            Class::Fatal { status: 403 },
        ),
        (reply(422, &[JSON], "[1,2]"), Class::Fatal { status: 422 }),
    ];
    for (reply, want) in cases {
        assert_eq!(
            classify(&reply),
            want,
            "status {} body {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
}

#[test]
fn transport_errors_are_transient() {
    for e in [
        TransportError::Timeout,
        TransportError::Connect,
        TransportError::Reset,
        TransportError::Proxy,
        TransportError::TooLarge,
    ] {
        let class = classify_transport(&e);
        assert_eq!(class, Class::Transient { status: None });
        assert!(class.is_retryable() && class.counts_against_token());
    }
}

#[test]
fn class_properties() {
    // (class, retryable, counts against token, auth)
    let cases = [
        (Class::Ok, false, false, false),
        (Class::RateLimited { retry_after_ms: None }, true, false, false),
        (Class::QuotaExhausted { resets_in_ms: Some(1) }, true, false, false),
        (Class::TokenInvalid, true, true, true),
        (Class::TokenExpired, true, true, true),
        (Class::HeavyLoad, true, false, false),
        (Class::Cloudflare, true, false, false),
        (Class::CountryUnsupported { country: None }, true, true, false),
        (Class::InvalidRequest, true, false, false),
        (Class::ContentPolicy { reason: None }, false, false, false),
        (Class::Transient { status: Some(502) }, true, true, false),
        (Class::Fatal { status: 404 }, false, true, false),
    ];
    for (class, retryable, counts, auth) in cases {
        assert_eq!(class.is_retryable(), retryable, "{class:?}");
        assert_eq!(class.counts_against_token(), counts, "{class:?}");
        assert_eq!(class.is_auth(), auth, "{class:?}");
        assert!(!class.message().is_empty());
    }
}

#[test]
fn messages_are_ours() {
    let secret_body = r#"{"error":{"message":"SECRET-BODY-TEXT under 401","code":"token_invalidated","param":"SECRET-PARAM"}}"#;
    for status in [400, 401, 403, 404, 429, 500, 503] {
        let class = classify(&reply(status, &[JSON], secret_body));
        let msg = class.message();
        assert!(!msg.contains("SECRET"), "{msg}");
    }
    assert_eq!(
        Class::CountryUnsupported { country: Some("CN".into()) }.message(),
        "Sora is unavailable in the account's country (CN)"
    );
    assert_eq!(
        Class::ContentPolicy { reason: None }.message(),
        "Content policy violation: Content violates guardrails"
    );
    assert_eq!(
        Class::ContentPolicy { reason: Some("Contains violence".into()) }.message(),
        "Content policy violation: Contains violence"
    );
    let long = Class::ContentPolicy { reason: Some("x".repeat(10_000)) }.message();
    assert!(long.len() < 600);
    assert_eq!(Class::Fatal { status: 404 }.message(), "Upstream request failed (status 404)");
}

#[test]
fn never_panics_on_odd_replies() {
    let bodies: [&[u8]; 10] = [
        b"",
        b"\xff\xfe\x00",
        b"{",
        b"null",
        b"[]",
        b"{\"error\":[]}",
        b"{\"error\":{\"code\":5}}",
        b"<",
        b"  ",
        &[b'<'; 4096],
    ];
    for status in
        [0, 1, 100, 199, 200, 299, 300, 400, 401, 403, 429, 499, 500, 503, 599, 600, u16::MAX]
    {
        for body in bodies {
            let r = UpstreamReply {
                status,
                headers: vec![("retry-after".into(), "x".into())],
                body: Bytes::copy_from_slice(body),
            };
            let _ = classify(&r).message();
        }
    }
}

/// The error object's fields.
type ErrorSeen = (Option<String>, Option<String>, Option<String>, Option<f64>);
/// What an envelope says, comparable: JSON or not, error, balance, top-level reset.
type Seen = (bool, Option<ErrorSeen>, Option<(Option<bool>, Option<f64>)>, Option<f64>);

fn seen((is_json, e): (bool, Envelope)) -> Seen {
    let error = e.error.0.map(|x| (x.message.0, x.code.0, x.param.0, x.access_resets_in_seconds.0));
    let balance = e
        .rate_limit_and_credit_balance
        .0
        .map(|b| (b.rate_limit_reached.0, b.access_resets_in_seconds.0));
    (is_json, error, balance, e.access_resets_in_seconds.0)
}

#[test]
fn the_envelope_without_a_value_tree_reads_the_same() {
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    let bodies = [
        r#"{"task_responses":[{"id":"t","status":"running","generations":[]}]}"#.to_owned(),
        err("heavy_load", "x"),
        err("rate_limit_exceeded", "slow down"),
        r#"{"error":{"message":"The service is under heavy load"},"error":{"code":"quota_exceeded"}}"#.to_owned(),
        r#"{"error":"a string","access_resets_in_seconds":12.5}"#.to_owned(),
        r#"{"rate_limit_and_credit_balance":{"rate_limit_reached":true,"access_resets_in_seconds":30}}"#.to_owned(),
        r#"{"prompt":"under heavy load \" } ] {","error":null}"#.to_owned(),
        r#"  {"error":{"code":"x","param":"US"}}  "#.to_owned(),
        r#"{"error":{"code":"x"}} trailing"#.to_owned(),
        r#"{"error":{"code":"x"},}"#.to_owned(),
        r#"[{"error":{"code":"heavy_load"}}]"#.to_owned(),
        "under heavy load".to_owned(),
        String::new(),
        "{".to_owned(),
        deep.clone(),
        format!("{{\"error\":{{\"code\":\"c\"}},\"x\":{deep}}}"),
        r#"{"a\"b":1,"error":{"code":"\u0063"}}"#.to_owned(),
    ];
    for body in bodies {
        assert_eq!(
            seen(envelope_of(body.as_bytes())),
            seen(envelope_of_value(body.as_bytes())),
            "{body}"
        );
    }
    assert!(depth_below(br#"{"a":"[[[[[[[[[[[["}"#, 3));
    assert!(!depth_below(br#"{"a":[[[1]]]}"#, 3));
}
