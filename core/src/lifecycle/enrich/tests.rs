use bytes::Bytes;

use super::super::test_support::*;
use super::*;
use crate::secret::Secret;
use crate::upstream::Method;

type Outcome = Result<UpstreamReply, TransportError>;
/// A scenario: its name, the scripted (path, outcome) pairs, the result.
type Case = (&'static str, Vec<(&'static str, Outcome)>, Result<TokenProfile, EnrichError>);

fn reply(status: u16, body: &str) -> Outcome {
    Ok(UpstreamReply::json(status, body.to_owned()))
}

// Replies shaped like sora-backend.md 2.2.
const ME: &str =
    r#"{"id":"user-1","email":"me@example.com","name":"Me Name","username":"me_user","plan":{}}"#;
const ME_NO_USERNAME: &str = r#"{"email":"me@example.com","name":"Me Name","username":null}"#;
const ME_NO_EMAIL: &str = r#"{"email":null,"name":null,"username":null}"#;
const SUB_PRO: &str = r#"{"data":[{"plan":{"id":"chatgpt_pro","title":"ChatGPT Pro"},"end_ts":"2025-11-13T16:58:21Z"}]}"#;
const SUB_TEAM: &str =
    r#"{"data":[{"plan":{"id":"chatgpt_team","title":"ChatGPT Business"},"end_ts":1763053101}]}"#;
const SUB_NONE: &str = r#"{"data":[]}"#;
const INVITE: &str = r#"{"invite_code":"INV123","redeemed_count":1,"total_count":4}"#;
const UNAUTHORIZED: &str = r#"{"error":{"message":"Unauthorized","type":"invalid_request_error","param":null,"code":null}}"#;
const COUNTRY: &str = r#"{"error":{"message":"Sora is not available in your country","type":"invalid_request_error","param":"CN","code":"unsupported_country_code"}}"#;
const INVALIDATED: &str = r#"{"error":{"message":"Your authentication token has been invalidated. Please try signing in again.","type":"invalid_request_error","param":null,"code":"token_invalidated"}}"#;
const EXPIRED: &str = r#"{"error":{"message":"Token expired","type":"invalid_request_error","param":null,"code":"token_expired"}}"#;
const CHECK: &str = r#"{"rate_limit_and_credit_balance":{"estimated_num_videos_remaining":27,"rate_limit_reached":false,"access_resets_in_seconds":46833}}"#;
const CHECK_EXHAUSTED: &str = r#"{"rate_limit_and_credit_balance":{"estimated_num_videos_remaining":0,"rate_limit_reached":true,"access_resets_in_seconds":3600}}"#;

const END_TS_MS: u64 = 1_763_053_101_000;

fn at() -> String {
    jwt(Some(NOW_MS / 1000 + 10 * DAY_S), Some("jwt@example.com"))
}

fn auth() -> Auth {
    Auth::new(Secret::new(at())).with_session_token(Secret::new(ST)).with_proxy(PROXY)
}

/// Drives an enrichment through `script` (expected path, outcome); checks every request.
fn drive(
    cfg: &UpstreamConfig,
    script: &[(&str, Outcome)],
    name: &str,
) -> Result<TokenProfile, EnrichError> {
    let mut enrich = Enrich::new(cfg, auth());
    let mut script = script.iter();
    loop {
        match enrich.next(NOW_MS) {
            EnrichStep::Send(req) => {
                let (path, outcome) =
                    script.next().unwrap_or_else(|| panic!("{name}: unscripted {req:?}"));
                assert_eq!(req.method, Method::Get, "{name}");
                assert_eq!(req.url, format!("{}{path}", cfg.base_url), "{name}");
                // Every account call carries the AT, in `authorization` only; never the ST.
                assert_eq!(
                    req.header("authorization"),
                    Some(format!("Bearer {}", at()).as_str()),
                    "{name}"
                );
                assert_eq!(req.header("cookie"), None, "{name}");
                assert!(req.body.is_empty(), "{name}");
                assert_eq!(req.proxy.as_deref(), Some(PROXY), "{name}");
                assert_request_hides(&req, &[&at(), ST]);
                enrich.handle(NOW_MS, outcome.clone()).unwrap();
            }
            EnrichStep::Done(result) => {
                assert!(script.next().is_none(), "{name}: script not used up");
                assert!(enrich.is_done());
                return result;
            }
        }
    }
}

fn pro_profile() -> TokenProfile {
    TokenProfile {
        email: Some("me@example.com".into()),
        name: Some("Me Name".into()),
        username: Some("me_user".into()),
        plan_type: Some("chatgpt_pro".into()),
        plan_title: Some("ChatGPT Pro".into()),
        subscription_end_ms: Some(END_TS_MS),
        pro: true,
        sora2_supported: true,
        invite_code: Some("INV123".into()),
        invite_redeemed_count: Some(1),
        invite_total_count: Some(4),
        quota_remaining: Some(27),
        quota_resets_at_ms: Some(NOW_MS + 46_833_000),
        rate_limited: false,
    }
}

fn no_sora2(base: TokenProfile) -> TokenProfile {
    TokenProfile {
        sora2_supported: false,
        invite_code: None,
        invite_redeemed_count: None,
        invite_total_count: None,
        quota_remaining: None,
        quota_resets_at_ms: None,
        ..base
    }
}

#[test]
fn enrich_table() {
    const ME_P: &str = "/me";
    const SUB_P: &str = "/billing/subscriptions";
    const INV_P: &str = "/project_y/invite/mine";
    const BOOT_P: &str = "/m/bootstrap";
    const CHECK_P: &str = "/nf/check";
    let happy = |sub: &str| {
        vec![
            (ME_P, reply(200, ME)),
            (SUB_P, reply(200, sub)),
            (INV_P, reply(200, INVITE)),
            (CHECK_P, reply(200, CHECK)),
        ]
    };
    let quota_unknown =
        TokenProfile { quota_remaining: None, quota_resets_at_ms: None, ..pro_profile() };
    let rate_limited_429 = UpstreamReply {
        status: 429,
        headers: vec![("retry-after".into(), "30".into())],
        body: Bytes::from_static(br#"{"error":{"code":"rate_limit_exceeded"}}"#),
    };
    let cases: Vec<Case> = vec![
        ("Pro happy path", happy(SUB_PRO), Ok(pro_profile())),
        (
            "non-Pro (Business) plan, no username",
            vec![
                (ME_P, reply(200, ME_NO_USERNAME)),
                (SUB_P, reply(200, SUB_TEAM)),
                (INV_P, reply(200, INVITE)),
                (CHECK_P, reply(200, CHECK)),
            ],
            Ok(TokenProfile {
                username: None,
                plan_type: Some("chatgpt_team".into()),
                plan_title: Some("ChatGPT Business".into()),
                pro: false,
                ..pro_profile()
            }),
        ),
        (
            "no plan at all",
            happy(SUB_NONE),
            Ok(TokenProfile {
                plan_type: None,
                plan_title: None,
                subscription_end_ms: None,
                pro: false,
                ..pro_profile()
            }),
        ),
        (
            "a refused subscription call (404) is no plan",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(404, r#"{"detail":"Not Found"}"#)),
                (INV_P, reply(200, INVITE)),
                (CHECK_P, reply(200, CHECK)),
            ],
            Ok(TokenProfile {
                plan_type: None,
                plan_title: None,
                subscription_end_ms: None,
                pro: false,
                ..pro_profile()
            }),
        ),
        (
            "e-mail falls back to the JWT claim",
            vec![
                (ME_P, reply(200, ME_NO_EMAIL)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(200, INVITE)),
                (CHECK_P, reply(200, CHECK)),
            ],
            Ok(TokenProfile {
                email: Some("jwt@example.com".into()),
                name: None,
                username: None,
                ..pro_profile()
            }),
        ),
        (
            "invite 401 -> bootstrap -> invite OK",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(401, UNAUTHORIZED)),
                (BOOT_P, reply(200, "{}")),
                (INV_P, reply(200, INVITE)),
                (CHECK_P, reply(200, CHECK)),
            ],
            Ok(pro_profile()),
        ),
        (
            "invite still 401 after bootstrap -> no Sora 2, no nf/check",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(401, UNAUTHORIZED)),
                (BOOT_P, reply(200, "{}")),
                (INV_P, reply(401, UNAUTHORIZED)),
            ],
            Ok(no_sora2(pro_profile())),
        ),
        (
            "bootstrap refused -> no Sora 2",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_TEAM)),
                (INV_P, reply(401, UNAUTHORIZED)),
                (BOOT_P, reply(403, r#"{"error":{"code":"forbidden"}}"#)),
            ],
            Ok(no_sora2(TokenProfile {
                plan_type: Some("chatgpt_team".into()),
                plan_title: Some("ChatGPT Business".into()),
                pro: false,
                ..pro_profile()
            })),
        ),
        (
            "invite 404 -> no Sora 2",
            vec![(ME_P, reply(200, ME)), (SUB_P, reply(200, SUB_PRO)), (INV_P, reply(404, "{}"))],
            Ok(no_sora2(pro_profile())),
        ),
        (
            "country blocked",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(403, COUNTRY)),
            ],
            Err(EnrichError::CountryUnsupported { country: Some("CN".into()) }),
        ),
        (
            "country blocked on the second invite",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(401, UNAUTHORIZED)),
                (BOOT_P, reply(200, "{}")),
                (INV_P, reply(403, COUNTRY)),
            ],
            Err(EnrichError::CountryUnsupported { country: Some("CN".into()) }),
        ),
        (
            "me 401 token_invalidated -> Invalid (B22)",
            vec![(ME_P, reply(401, INVALIDATED))],
            Err(EnrichError::Invalid),
        ),
        (
            "me 401 without a code -> Invalid",
            vec![(ME_P, reply(401, ""))],
            Err(EnrichError::Invalid),
        ),
        (
            "me 401 token_expired -> Expired",
            vec![(ME_P, reply(401, EXPIRED))],
            Err(EnrichError::Expired),
        ),
        (
            "subscriptions token_expired aborts",
            vec![(ME_P, reply(200, ME)), (SUB_P, reply(401, EXPIRED))],
            Err(EnrichError::Expired),
        ),
        (
            "me transport error -> Transient",
            vec![(ME_P, Err(TransportError::Timeout))],
            Err(EnrichError::Transient { call: EnrichCall::Me, status: None }),
        ),
        (
            "me 200 HTML -> Transient",
            vec![(ME_P, reply(200, "<html>oops</html>"))],
            Err(EnrichError::Transient { call: EnrichCall::Me, status: Some(200) }),
        ),
        (
            "me 403 -> Transient (says nothing about the token)",
            vec![(ME_P, reply(403, r#"{"error":{"code":"forbidden"}}"#))],
            Err(EnrichError::Transient { call: EnrichCall::Me, status: Some(403) }),
        ),
        (
            "subscriptions 503 -> Transient (a Pro is not stored as non-Pro)",
            vec![(ME_P, reply(200, ME)), (SUB_P, reply(503, ""))],
            Err(EnrichError::Transient { call: EnrichCall::Subscription, status: Some(503) }),
        ),
        (
            "invite 502 -> Transient",
            vec![(ME_P, reply(200, ME)), (SUB_P, reply(200, SUB_PRO)), (INV_P, reply(502, ""))],
            Err(EnrichError::Transient { call: EnrichCall::Invite, status: Some(502) }),
        ),
        (
            "bootstrap transport error -> Transient",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(401, UNAUTHORIZED)),
                (BOOT_P, Err(TransportError::Reset)),
            ],
            Err(EnrichError::Transient { call: EnrichCall::Bootstrap, status: None }),
        ),
        (
            "quota exhausted",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(200, INVITE)),
                (CHECK_P, reply(200, CHECK_EXHAUSTED)),
            ],
            Ok(TokenProfile {
                quota_remaining: Some(0),
                quota_resets_at_ms: Some(NOW_MS + 3_600_000),
                rate_limited: true,
                ..pro_profile()
            }),
        ),
        (
            "nf/check 429 -> rate-limited until Retry-After",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(200, INVITE)),
                (CHECK_P, Ok(rate_limited_429.clone())),
            ],
            Ok(TokenProfile {
                quota_remaining: None,
                quota_resets_at_ms: Some(NOW_MS + 30_000),
                rate_limited: true,
                ..pro_profile()
            }),
        ),
        (
            "nf/check 500 -> quota unknown",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(200, INVITE)),
                (CHECK_P, reply(500, "")),
            ],
            Ok(quota_unknown.clone()),
        ),
        (
            "nf/check unreachable -> quota unknown",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(200, INVITE)),
                (CHECK_P, Err(TransportError::Timeout)),
            ],
            Ok(quota_unknown),
        ),
        (
            "nf/check 401 -> Invalid",
            vec![
                (ME_P, reply(200, ME)),
                (SUB_P, reply(200, SUB_PRO)),
                (INV_P, reply(200, INVITE)),
                (CHECK_P, reply(401, INVALIDATED)),
            ],
            Err(EnrichError::Invalid),
        ),
    ];
    for cfg in configs() {
        for (name, script, want) in &cases {
            let got = drive(&cfg, script, name);
            assert_eq!(&got, want, "{name}");
            let shown = match &got {
                Ok(p) => format!("{p:?}"),
                Err(e) => format!("{e:?} {e}"),
            };
            assert_hidden(&shown, &[&at(), ST]);
        }
    }
}

#[test]
fn quota_exhausted_helper() {
    let cases = [
        (Some(27), false, false),
        (Some(1), false, false),
        (Some(0), false, true),
        (Some(5), true, true),
        (None, false, false),
        (None, true, true),
    ];
    for (remaining, rate_limited, want) in cases {
        let p =
            TokenProfile { quota_remaining: remaining, rate_limited, ..TokenProfile::default() };
        assert_eq!(p.quota_exhausted(), want, "{remaining:?} {rate_limited}");
    }
}

#[test]
fn call_order() {
    let cfg = UpstreamConfig::default();
    let mut enrich = Enrich::new(&cfg, auth());
    // A reply before any request is refused and changes nothing.
    assert_eq!(enrich.handle(NOW_MS, reply(200, ME)), Err(UnexpectedReply));
    let EnrichStep::Send(first) = enrich.next(NOW_MS) else { panic!("no request") };
    // `next` again before `handle`: the same request.
    assert_eq!(enrich.next(NOW_MS), EnrichStep::Send(first.clone()));
    enrich.handle(NOW_MS, reply(401, INVALIDATED)).unwrap();
    // A second reply for the same request is refused.
    assert_eq!(enrich.handle(NOW_MS, reply(200, ME)), Err(UnexpectedReply));
    for _ in 0..2 {
        assert_eq!(enrich.next(NOW_MS), EnrichStep::Done(Err(EnrichError::Invalid)));
    }
    assert_eq!(enrich.handle(NOW_MS, reply(200, ME)), Err(UnexpectedReply));
}

#[test]
fn error_messages() {
    let cases = [
        (EnrichError::Invalid, "upstream rejected the access token"),
        (EnrichError::Expired, "the access token has expired"),
        (
            EnrichError::CountryUnsupported { country: Some("CN".into()) },
            "Sora is unavailable in the account's country (CN)",
        ),
        (
            EnrichError::CountryUnsupported { country: None },
            "Sora is unavailable in the account's country",
        ),
        (
            EnrichError::Transient { call: EnrichCall::Subscription, status: Some(503) },
            "billing/subscriptions failed with status 503; try again later",
        ),
        (
            EnrichError::Transient { call: EnrichCall::Me, status: None },
            "/me could not be reached; try again later",
        ),
    ];
    for (error, want) in cases {
        assert_eq!(error.to_string(), want);
    }
}

/// Every sequence of replies (from a set covering each class) ends in `Done` after at most
/// six requests, and `Done` stays.
#[test]
fn every_reply_sequence_terminates() {
    let replies: Vec<Outcome> = vec![
        reply(200, ME),
        reply(200, INVITE),
        reply(200, "not json"),
        reply(401, UNAUTHORIZED),
        reply(401, EXPIRED),
        reply(403, COUNTRY),
        reply(404, ""),
        reply(503, ""),
        Err(TransportError::Timeout),
    ];
    fn explore(enrich: &Enrich, replies: &[Outcome], depth: usize, leaves: &mut usize) {
        let mut e = enrich.clone();
        match e.next(NOW_MS) {
            EnrichStep::Done(result) => {
                assert_eq!(e.next(NOW_MS), EnrichStep::Done(result));
                *leaves += 1;
            }
            EnrichStep::Send(_) => {
                assert!(depth < 6, "more than six requests");
                for r in replies {
                    let mut branch = e.clone();
                    branch.handle(NOW_MS, r.clone()).unwrap();
                    explore(&branch, replies, depth + 1, leaves);
                }
            }
        }
    }
    let mut leaves = 0;
    explore(&Enrich::new(&UpstreamConfig::default(), auth()), &replies, 0, &mut leaves);
    assert!(leaves > 500, "{leaves}");
    // Nothing secret in the machine's own `Debug` either.
    assert_hidden(&format!("{:?}", Enrich::new(&UpstreamConfig::default(), auth())), &[&at(), ST]);
}
