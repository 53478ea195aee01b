//! Account, quota and prompt-enhance calls (2.2, 2.9): `/me`, `billing/subscriptions`,
//! `project_y/invite/mine`, `m/bootstrap`, `nf/check` (P-ACCOUNT) and `editor/enhance_prompt`
//! (P-APP).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::config::UpstreamConfig;
use super::decode::{json, parse_rfc3339_ms, seconds_to_ms, DecodeError, Lenient};
use super::headers::{account, app, backend, json_body, request, AccountExtra, Auth};
use super::http::{Method, UpstreamReply, UpstreamRequest};
use crate::catalog::ExpansionLevel;

/// The only plan id that counts as Pro.
pub const PRO_PLAN_ID: &str = "chatgpt_pro";

fn account_get(
    cfg: &UpstreamConfig,
    auth: &Auth,
    path: &str,
    extra: AccountExtra,
) -> UpstreamRequest {
    request(
        Method::Get,
        backend(cfg, path),
        account(cfg, auth, extra),
        Bytes::new(),
        cfg.short_timeout_ms,
        auth.proxy.clone(),
    )
}

/// `GET /me` (P-ACCOUNT with `origin`/`referer`): the user; the token test. Decode with
/// [`decode_me`].
pub fn me(cfg: &UpstreamConfig, auth: &Auth) -> UpstreamRequest {
    account_get(cfg, auth, "/me", AccountExtra::OriginReferer)
}

/// `GET /billing/subscriptions` (P-ACCOUNT): the plan. Decode with [`decode_subscription`].
pub fn billing_subscriptions(cfg: &UpstreamConfig, auth: &Auth) -> UpstreamRequest {
    account_get(cfg, auth, "/billing/subscriptions", AccountExtra::None)
}

/// `GET /project_y/invite/mine` (P-ACCOUNT): Sora 2 support and the invite code. Decode with
/// [`decode_invite`]; a 401 here means "no Sora 2 yet" (try [`m_bootstrap`] once).
pub fn invite_mine(cfg: &UpstreamConfig, auth: &Auth) -> UpstreamRequest {
    account_get(cfg, auth, "/project_y/invite/mine", AccountExtra::None)
}

/// `GET /m/bootstrap` (P-ACCOUNT): activates Sora 2 after a 401 on [`invite_mine`]; only the
/// status matters.
pub fn m_bootstrap(cfg: &UpstreamConfig, auth: &Auth) -> UpstreamRequest {
    account_get(cfg, auth, "/m/bootstrap", AccountExtra::None)
}

/// `GET /nf/check` (P-ACCOUNT with the app user agent): the remaining video quota. Decode
/// with [`decode_nf_check`].
pub fn nf_check(cfg: &UpstreamConfig, auth: &Auth) -> UpstreamRequest {
    account_get(cfg, auth, "/nf/check", AccountExtra::AppUserAgent)
}

#[derive(Serialize)]
struct EnhanceBody<'a> {
    prompt: &'a str,
    expansion_level: &'static str,
    duration_s: u16,
}

/// `POST /editor/enhance_prompt` (P-APP): rewrites a prompt. Decode with [`decode_enhance`].
pub fn enhance_prompt(
    cfg: &UpstreamConfig,
    auth: &Auth,
    prompt: &str,
    level: ExpansionLevel,
    duration_s: u16,
) -> UpstreamRequest {
    let body = EnhanceBody { prompt, expansion_level: level.as_str(), duration_s };
    request(
        Method::Post,
        backend(cfg, "/editor/enhance_prompt"),
        app(cfg, auth, "application/json"),
        json_body(&body),
        cfg.request_timeout_ms,
        auth.proxy.clone(),
    )
}

// === Decoding ===

/// The user, from `/me`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Me {
    /// `email`.
    pub email: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `username`; `None` when the account never picked one.
    pub username: Option<String>,
}

#[derive(Deserialize)]
struct MeReply {
    #[serde(default)]
    email: Lenient<String>,
    #[serde(default)]
    name: Lenient<String>,
    #[serde(default)]
    username: Lenient<String>,
}

/// Decodes `/me`.
pub fn decode_me(reply: &UpstreamReply) -> Result<Me, DecodeError> {
    let r: MeReply = json(reply, "an object")?;
    Ok(Me {
        email: r.email.non_empty(),
        name: r.name.non_empty(),
        username: r.username.non_empty(),
    })
}

/// The plan, from `billing/subscriptions` (`data[0]` only, as PY). All `None` for no plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// `plan.id`, such as `chatgpt_pro` or `chatgpt_team`.
    pub plan_id: Option<String>,
    /// `plan.title`, such as `ChatGPT Pro`.
    pub plan_title: Option<String>,
    /// `end_ts` as unix ms (an RFC 3339 string or unix seconds upstream).
    pub end_unix_ms: Option<u64>,
}

impl Subscription {
    /// Whether the plan is Pro: exactly `chatgpt_pro`.
    pub fn is_pro(&self) -> bool {
        self.plan_id.as_deref() == Some(PRO_PLAN_ID)
    }
}

#[derive(Deserialize)]
struct SubscriptionsReply {
    #[serde(default)]
    data: Lenient<Vec<Lenient<SubscriptionItem>>>,
}

#[derive(Deserialize)]
struct SubscriptionItem {
    #[serde(default)]
    plan: Lenient<Plan>,
    #[serde(default)]
    end_ts: Lenient<serde_json::Value>,
}

#[derive(Deserialize)]
struct Plan {
    #[serde(default)]
    id: Lenient<String>,
    #[serde(default)]
    title: Lenient<String>,
}

/// Decodes `billing/subscriptions`; an empty or absent `data` is no plan.
pub fn decode_subscription(reply: &UpstreamReply) -> Result<Subscription, DecodeError> {
    let r: SubscriptionsReply = json(reply, "an object")?;
    let first =
        r.data.into_inner().unwrap_or_default().into_iter().next().and_then(Lenient::into_inner);
    let Some(item) = first else {
        return Ok(Subscription::default());
    };
    let end_unix_ms = match item.end_ts.into_inner() {
        Some(serde_json::Value::String(s)) => parse_rfc3339_ms(&s),
        Some(serde_json::Value::Number(n)) => n.as_f64().and_then(seconds_to_ms),
        _ => None,
    };
    let plan = item.plan.into_inner();
    Ok(Subscription {
        plan_id: plan.as_ref().and_then(|p| p.id.0.clone()).filter(|s| !s.is_empty()),
        plan_title: plan.and_then(|p| p.title.non_empty()),
        end_unix_ms,
    })
}

/// Sora 2 invite information, from `project_y/invite/mine` (a 2xx reply means Sora 2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invite {
    /// `invite_code`.
    pub invite_code: Option<String>,
    /// `redeemed_count`.
    pub redeemed_count: Option<u64>,
    /// `total_count`.
    pub total_count: Option<u64>,
}

#[derive(Deserialize)]
struct InviteReply {
    #[serde(default)]
    invite_code: Lenient<String>,
    #[serde(default)]
    redeemed_count: Lenient<u64>,
    #[serde(default)]
    total_count: Lenient<u64>,
}

/// Decodes `project_y/invite/mine`.
pub fn decode_invite(reply: &UpstreamReply) -> Result<Invite, DecodeError> {
    let r: InviteReply = json(reply, "an object")?;
    Ok(Invite {
        invite_code: r.invite_code.non_empty(),
        redeemed_count: r.redeemed_count.0,
        total_count: r.total_count.0,
    })
}

/// The video quota, from `nf/check` (`rate_limit_and_credit_balance`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Quota {
    /// `estimated_num_videos_remaining` (negative values read as 0).
    pub remaining: Option<u64>,
    /// `rate_limit_reached` (`false` when absent).
    pub rate_limit_reached: bool,
    /// `access_resets_in_seconds`, as milliseconds.
    pub resets_in_ms: Option<u64>,
}

impl Quota {
    /// Whether no video can be made until the reset: the limit is reached or nothing remains.
    pub fn is_exhausted(&self) -> bool {
        self.rate_limit_reached || self.remaining == Some(0)
    }
}

#[derive(Deserialize)]
struct CheckReply {
    #[serde(default)]
    rate_limit_and_credit_balance: Lenient<Balance>,
}

#[derive(Deserialize)]
struct Balance {
    #[serde(default)]
    estimated_num_videos_remaining: Lenient<f64>,
    #[serde(default)]
    rate_limit_reached: Lenient<bool>,
    #[serde(default)]
    access_resets_in_seconds: Lenient<f64>,
}

/// Decodes `nf/check`.
pub fn decode_nf_check(reply: &UpstreamReply) -> Result<Quota, DecodeError> {
    let r: CheckReply = json(reply, "an object")?;
    let b = r
        .rate_limit_and_credit_balance
        .into_inner()
        .ok_or(DecodeError::Missing { field: "rate_limit_and_credit_balance" })?;
    Ok(Quota {
        // Whole videos; `as` saturates and maps NaN to 0 (JSON has no NaN anyway).
        remaining: b.estimated_num_videos_remaining.0.map(|n| n.max(0.0) as u64),
        rate_limit_reached: b.rate_limit_reached.0.unwrap_or(false),
        resets_in_ms: b.access_resets_in_seconds.0.and_then(seconds_to_ms),
    })
}

#[derive(Deserialize)]
struct EnhanceReply {
    #[serde(default)]
    enhanced_prompt: Lenient<String>,
}

/// The `enhanced_prompt` of an `editor/enhance_prompt` reply; `None` when it is missing or
/// empty (PY answers `""`, GO the original prompt: the caller chooses).
pub fn decode_enhance(reply: &UpstreamReply) -> Result<Option<String>, DecodeError> {
    let r: EnhanceReply = json(reply, "an object")?;
    Ok(r.enhanced_prompt.non_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::*;

    #[test]
    fn account_requests() {
        for (cfg, base) in configs() {
            let bearer = ("authorization".to_owned(), format!("Bearer {AT}"));
            let accept = ("accept".to_owned(), "application/json".to_owned());
            let cases = [
                (
                    me(&cfg, &auth()),
                    "/me",
                    vec![
                        bearer.clone(),
                        accept.clone(),
                        ("origin".into(), "https://sora.chatgpt.com".into()),
                        ("referer".into(), "https://sora.chatgpt.com/".into()),
                    ],
                ),
                (
                    billing_subscriptions(&cfg, &auth()),
                    "/billing/subscriptions",
                    vec![bearer.clone(), accept.clone()],
                ),
                (
                    invite_mine(&cfg, &auth()),
                    "/project_y/invite/mine",
                    vec![bearer.clone(), accept.clone()],
                ),
                (m_bootstrap(&cfg, &auth()), "/m/bootstrap", vec![bearer.clone(), accept.clone()]),
                (
                    nf_check(&cfg, &auth()),
                    "/nf/check",
                    vec![
                        bearer.clone(),
                        accept.clone(),
                        ("user-agent".into(), cfg.app_user_agent.clone()),
                    ],
                ),
            ];
            for (req, path, headers) in cases {
                assert_eq!(req.method, Method::Get);
                assert_eq!(req.url, format!("{base}{path}"));
                assert_eq!(req.headers, headers, "{path}");
                assert!(req.body.is_empty());
                assert_eq!(req.timeout_ms, cfg.short_timeout_ms);
                assert_secrets_contained(&req);
            }
        }
    }

    #[test]
    fn enhance_request() {
        for (cfg, base) in configs() {
            let req = enhance_prompt(&cfg, &auth(), "a cat", ExpansionLevel::Long, 15);
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.url, format!("{base}/editor/enhance_prompt"));
            assert_eq!(req.headers, app_headers(&cfg));
            assert_eq!(
                body_json(&req),
                json!({"prompt":"a cat","expansion_level":"long","duration_s":15})
            );
            assert_eq!(req.timeout_ms, cfg.request_timeout_ms);
            assert_secrets_contained(&req);
        }
    }

    #[test]
    fn me_and_invite() {
        let r = UpstreamReply::json(
            200,
            r#"{"email":"a@b.c","name":"A","username":null,"id":"user-1","plan":{}}"#,
        );
        assert_eq!(
            decode_me(&r).unwrap(),
            Me { email: Some("a@b.c".into()), name: Some("A".into()), username: None }
        );
        assert_eq!(
            decode_me(&UpstreamReply::json(401, "{}")),
            Err(DecodeError::Status { status: 401 })
        );
        let r = UpstreamReply::json(
            200,
            r#"{"invite_code":"ABC","redeemed_count":2,"total_count":4,"x":null}"#,
        );
        assert_eq!(
            decode_invite(&r).unwrap(),
            Invite {
                invite_code: Some("ABC".into()),
                redeemed_count: Some(2),
                total_count: Some(4)
            }
        );
        let r = UpstreamReply::json(200, r#"{"invite_code":null,"redeemed_count":-1}"#);
        assert_eq!(decode_invite(&r).unwrap(), Invite::default());
    }

    #[test]
    fn subscription_table() {
        let cases = [
            (
                r#"{"data":[{"plan":{"id":"chatgpt_pro","title":"ChatGPT Pro"},"end_ts":"2025-11-13T16:58:21Z","x":1},
                            {"plan":{"id":"chatgpt_team"}}]}"#,
                Subscription {
                    plan_id: Some("chatgpt_pro".into()),
                    plan_title: Some("ChatGPT Pro".into()),
                    end_unix_ms: Some(1_763_053_101_000),
                },
                true,
            ),
            (
                r#"{"data":[{"plan":{"id":"chatgpt_team","title":"ChatGPT Business"},"end_ts":1763053101}]}"#,
                Subscription {
                    plan_id: Some("chatgpt_team".into()),
                    plan_title: Some("ChatGPT Business".into()),
                    end_unix_ms: Some(1_763_053_101_000),
                },
                false,
            ),
            (
                r#"{"data":[{"plan":{"id":"chatgptplusplan","title":null},"end_ts":"soon"}]}"#,
                Subscription {
                    plan_id: Some("chatgptplusplan".into()),
                    plan_title: None,
                    end_unix_ms: None,
                },
                false,
            ),
            (r#"{"data":[]}"#, Subscription::default(), false),
            (r#"{"data":null}"#, Subscription::default(), false),
            (r#"{}"#, Subscription::default(), false),
            (r#"{"data":["x"]}"#, Subscription::default(), false),
            (
                r#"{"data":[{"plan":{"id":"CHATGPT_PRO"}}]}"#,
                Subscription { plan_id: Some("CHATGPT_PRO".into()), ..Subscription::default() },
                false,
            ),
        ];
        for (body, want, pro) in cases {
            let got = decode_subscription(&UpstreamReply::json(200, body)).unwrap();
            assert_eq!(got, want, "{body}");
            assert_eq!(got.is_pro(), pro, "{body}");
        }
    }

    #[test]
    fn nf_check_table() {
        let cases = [
            (
                r#"{"rate_limit_and_credit_balance":{"estimated_num_videos_remaining":27,"rate_limit_reached":false,"access_resets_in_seconds":46833},"x":1}"#,
                Quota {
                    remaining: Some(27),
                    rate_limit_reached: false,
                    resets_in_ms: Some(46_833_000),
                },
                false,
            ),
            (
                r#"{"rate_limit_and_credit_balance":{"estimated_num_videos_remaining":0,"rate_limit_reached":true,"access_resets_in_seconds":12.5}}"#,
                Quota { remaining: Some(0), rate_limit_reached: true, resets_in_ms: Some(12_500) },
                true,
            ),
            (
                r#"{"rate_limit_and_credit_balance":{"estimated_num_videos_remaining":-2,"rate_limit_reached":null,"access_resets_in_seconds":-1}}"#,
                Quota { remaining: Some(0), rate_limit_reached: false, resets_in_ms: None },
                true,
            ),
            (r#"{"rate_limit_and_credit_balance":{}}"#, Quota::default(), false),
        ];
        for (body, want, exhausted) in cases {
            let got = decode_nf_check(&UpstreamReply::json(200, body)).unwrap();
            assert_eq!(got, want, "{body}");
            assert_eq!(got.is_exhausted(), exhausted, "{body}");
        }
        assert_eq!(
            decode_nf_check(&UpstreamReply::json(200, "{}")),
            Err(DecodeError::Missing { field: "rate_limit_and_credit_balance" })
        );
    }

    #[test]
    fn enhance_decoding() {
        let cases = [
            (r#"{"enhanced_prompt":"A long prompt","extra":1}"#, Some("A long prompt".to_owned())),
            (r#"{"enhanced_prompt":""}"#, None),
            (r#"{"enhanced_prompt":null}"#, None),
            (r#"{}"#, None),
        ];
        for (body, want) in cases {
            assert_eq!(decode_enhance(&UpstreamReply::json(200, body)).unwrap(), want, "{body}");
        }
    }
}
