use bytes::Bytes;

use super::super::test_support::*;
use super::*;
use crate::upstream::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Session,
    OAuth,
}

type Outcome = Result<UpstreamReply, TransportError>;

fn ok(body: impl Into<Bytes>) -> Outcome {
    Ok(UpstreamReply::json(200, body))
}

fn status(status: u16, body: &str) -> Outcome {
    Ok(UpstreamReply::json(status, body.to_owned()))
}

/// The spec's session reply (2.1).
fn session_reply(at: &str) -> Outcome {
    ok(format!(
        r#"{{"user":{{"id":"user-1","email":"st@example.com","image":null}},"expires":"2026-02-01T00:00:00.000Z","accessToken":"{at}"}}"#
    ))
}

/// The spec's OAuth reply (2.1), with or without a rotated RT.
fn oauth_reply(at: &str, rotated: Option<&str>) -> Outcome {
    let rt = rotated.map_or("null".to_owned(), |r| format!("\"{r}\""));
    ok(format!(
        r#"{{"access_token":"{at}","refresh_token":{rt},"id_token":"x","expires_in":864000,"scope":"openid"}}"#
    ))
}

const INVALID_GRANT_401: &str = r#"{"error":{"message":"Invalid refresh token","type":"invalid_request_error","param":null,"code":"invalid_grant"}}"#;
const INVALID_GRANT_400: &str =
    r#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#;

struct Want {
    at: String,
    rotated: Option<&'static str>,
    expires_at_ms: Option<u64>,
    email: Option<&'static str>,
    via: Credential,
}

struct Case {
    name: &'static str,
    st: Option<&'static str>,
    rt: Option<&'static str>,
    script: Vec<(Expect, Outcome)>,
    want: Result<Want, RefreshError>,
}

/// Drives a refresh through `script`, checking every request; returns the result.
fn drive(
    cfg: &UpstreamConfig,
    material: RefreshMaterial,
    script: Vec<(Expect, Outcome)>,
    name: &str,
) -> Result<Refreshed, RefreshError> {
    let mut refresh = Refresh::new(cfg, material.clone());
    let mut script = script.into_iter();
    loop {
        match refresh.next(NOW_MS) {
            RefreshStep::Send(req) => {
                let (expect, outcome) =
                    script.next().unwrap_or_else(|| panic!("{name}: unscripted {req:?}"));
                check_request(cfg, &material, &req, expect, name);
                refresh.handle(NOW_MS, outcome).unwrap();
            }
            RefreshStep::Done(result) => {
                assert!(script.next().is_none(), "{name}: script not used up");
                assert!(refresh.is_done());
                return result;
            }
        }
    }
}

fn check_request(
    cfg: &UpstreamConfig,
    material: &RefreshMaterial,
    req: &UpstreamRequest,
    expect: Expect,
    name: &str,
) {
    let st = material.session_token.as_ref().map(Secret::expose).filter(|s| !s.is_empty());
    let rt = material.refresh_token.as_ref().map(Secret::expose).filter(|s| !s.is_empty());
    // No access token exists yet: never an authorization header.
    assert_eq!(req.header("authorization"), None, "{name}");
    assert_eq!(req.proxy.as_deref(), Some(PROXY), "{name}");
    let body = String::from_utf8_lossy(&req.body).into_owned();
    match expect {
        Expect::Session => {
            assert_eq!((req.method, req.url.as_str()), (Method::Get, &*cfg.auth_session_url));
            let cookie = req.header("cookie").unwrap_or_default();
            assert_eq!(Some(cookie), st.map(|st| format!("{SESSION}={st}")).as_deref());
            assert!(req.body.is_empty(), "{name}");
        }
        Expect::OAuth => {
            assert_eq!((req.method, req.url.as_str()), (Method::Post, &*cfg.oauth_token_url));
            assert_eq!(req.header("cookie"), None, "{name}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["refresh_token"].as_str(), rt, "{name}");
            assert_eq!(json["grant_type"], "refresh_token");
            let client = material.client_id.as_deref().unwrap_or(&cfg.default_client_id);
            assert_eq!(json["client_id"].as_str(), Some(client), "{name}");
        }
    }
    // The ST only in the cookie, the RT only in the body; neither in the URL or `Debug`.
    for s in [st, rt].into_iter().flatten() {
        assert!(!req.url.contains(s), "{name}");
    }
    if let Some(st) = st {
        assert!(!body.contains(st), "{name}");
    }
    if let Some(rt) = rt {
        assert!(req.headers.iter().all(|(_, v)| !v.contains(rt)), "{name}");
    }
    assert_request_hides(req, &[ST, RT]);
}

const SESSION: &str = crate::upstream::SESSION_COOKIE;

fn material(st: Option<&str>, rt: Option<&str>) -> RefreshMaterial {
    RefreshMaterial {
        session_token: st.map(Secret::new),
        refresh_token: rt.map(Secret::new),
        client_id: None,
        proxy: Some(PROXY.into()),
    }
}

#[test]
fn refresh_table() {
    let exp_s = NOW_MS / 1000 + 10 * DAY_S;
    let exp_ms = exp_s * 1000;
    let at = jwt(Some(exp_s), Some("jwt@example.com"));
    let at_no_claims = jwt(None, None);
    let at_past = jwt(Some(NOW_MS / 1000 - 60), Some("jwt@example.com"));
    let at_now = jwt(Some(NOW_MS / 1000), None);
    let session_expires_ms = 1_769_904_000_000; // 2026-02-01
    let in_ten_days = NOW_MS + 864_000_000;
    let want = |at: &str, rotated, expires_at_ms, email, via| {
        Ok(Want { at: at.to_owned(), rotated, expires_at_ms, email, via })
    };
    let cases = vec![
        Case {
            name: "ST success: expiry and e-mail from the JWT",
            st: Some(ST),
            rt: Some(RT),
            script: vec![(Expect::Session, session_reply(&at))],
            want: want(&at, None, Some(exp_ms), Some("jwt@example.com"), Credential::SessionToken),
        },
        Case {
            name: "ST success: no claims, so the session's expires and user.email",
            st: Some(ST),
            rt: None,
            script: vec![(Expect::Session, session_reply(&at_no_claims))],
            want: want(
                &at_no_claims,
                None,
                Some(session_expires_ms),
                Some("st@example.com"),
                Credential::SessionToken,
            ),
        },
        Case {
            name: "ST success: not a JWT at all is taken as is",
            st: Some(ST),
            rt: None,
            script: vec![(Expect::Session, session_reply("opaque-at"))],
            want: want(
                "opaque-at",
                None,
                Some(session_expires_ms),
                Some("st@example.com"),
                Credential::SessionToken,
            ),
        },
        Case {
            name: "dead session ({}) -> RT success, rotated RT kept",
            st: Some(ST),
            rt: Some(RT),
            script: vec![(Expect::Session, ok("{}")), (Expect::OAuth, oauth_reply(&at, Some(RT2)))],
            want: want(
                &at,
                Some(RT2),
                Some(exp_ms),
                Some("jwt@example.com"),
                Credential::RefreshToken,
            ),
        },
        Case {
            name: "ST transport error -> RT success without rotation, expiry from expires_in",
            st: Some(ST),
            rt: Some(RT),
            script: vec![
                (Expect::Session, Err(TransportError::Timeout)),
                (Expect::OAuth, oauth_reply(&at_no_claims, None)),
            ],
            want: want(&at_no_claims, None, Some(in_ten_days), None, Credential::RefreshToken),
        },
        Case {
            name: "RT only: success",
            st: None,
            rt: Some(RT),
            script: vec![(Expect::OAuth, oauth_reply(&at, Some(RT2)))],
            want: want(
                &at,
                Some(RT2),
                Some(exp_ms),
                Some("jwt@example.com"),
                Credential::RefreshToken,
            ),
        },
        Case {
            name: "RT 401 invalid_grant -> Rejected",
            st: None,
            rt: Some(RT),
            script: vec![(Expect::OAuth, status(401, INVALID_GRANT_401))],
            want: Err(RefreshError::Rejected),
        },
        Case {
            name: "RT 400 invalid_grant (OAuth string error) -> Rejected",
            st: None,
            rt: Some(RT),
            script: vec![(Expect::OAuth, status(400, INVALID_GRANT_400))],
            want: Err(RefreshError::Rejected),
        },
        Case {
            name: "ST 401 and RT 401 -> Rejected",
            st: Some(ST),
            rt: Some(RT),
            script: vec![
                (Expect::Session, status(401, r#"{"error":{"code":"token_invalidated"}}"#)),
                (Expect::OAuth, status(401, INVALID_GRANT_401)),
            ],
            want: Err(RefreshError::Rejected),
        },
        Case {
            name: "ST 503 and RT 401 -> Transient (the ST may still work)",
            st: Some(ST),
            rt: Some(RT),
            script: vec![
                (Expect::Session, status(503, "")),
                (Expect::OAuth, status(401, INVALID_GRANT_401)),
            ],
            want: Err(RefreshError::Transient),
        },
        Case {
            name: "ST dead, no RT -> Rejected",
            st: Some(ST),
            rt: None,
            script: vec![(Expect::Session, ok(r#"{"user":null}"#))],
            want: Err(RefreshError::Rejected),
        },
        Case {
            name: "ST answers an HTML page with 200 -> Transient",
            st: Some(ST),
            rt: None,
            script: vec![(Expect::Session, ok("<!DOCTYPE html><html></html>"))],
            want: Err(RefreshError::Transient),
        },
        Case {
            name: "RT transport error -> Transient",
            st: None,
            rt: Some(RT),
            script: vec![(Expect::OAuth, Err(TransportError::Reset))],
            want: Err(RefreshError::Transient),
        },
        Case {
            name: "RT 500 -> Transient",
            st: None,
            rt: Some(RT),
            script: vec![(Expect::OAuth, status(500, r#"{"error":{"code":"internal_error"}}"#))],
            want: Err(RefreshError::Transient),
        },
        Case {
            name: "RT 429 -> Transient",
            st: None,
            rt: Some(RT),
            script: vec![(
                Expect::OAuth,
                status(429, r#"{"error":{"code":"rate_limit_exceeded"}}"#),
            )],
            want: Err(RefreshError::Transient),
        },
        Case {
            name: "Cloudflare challenge -> Transient, not the material's fault",
            st: None,
            rt: Some(RT),
            script: vec![(
                Expect::OAuth,
                Ok(UpstreamReply {
                    status: 403,
                    headers: vec![("cf-mitigated".into(), "challenge".into())],
                    body: Bytes::from_static(b"<html>Just a moment...</html>"),
                }),
            )],
            want: Err(RefreshError::Transient),
        },
        Case {
            name: "a 404 (misconfigured host) -> Transient",
            st: None,
            rt: Some(RT),
            script: vec![(Expect::OAuth, status(404, "not found"))],
            want: Err(RefreshError::Transient),
        },
        Case {
            name: "a plain 403 -> Rejected",
            st: None,
            rt: Some(RT),
            script: vec![(
                Expect::OAuth,
                status(403, r#"{"error":{"code":"account_deactivated"}}"#),
            )],
            want: Err(RefreshError::Rejected),
        },
        Case {
            name: "OAuth 200 without access_token -> Transient",
            st: None,
            rt: Some(RT),
            script: vec![(Expect::OAuth, ok(r#"{"refresh_token":"x"}"#))],
            want: Err(RefreshError::Transient),
        },
        Case {
            name: "the new AT's exp is past -> AlreadyExpired",
            st: None,
            rt: Some(RT),
            script: vec![(Expect::OAuth, oauth_reply(&at_past, Some(RT2)))],
            want: Err(RefreshError::AlreadyExpired),
        },
        Case {
            name: "exp == now is expired",
            st: Some(ST),
            rt: None,
            script: vec![(Expect::Session, session_reply(&at_now))],
            want: Err(RefreshError::AlreadyExpired),
        },
        Case {
            name: "ST gives an expired AT -> the RT does better",
            st: Some(ST),
            rt: Some(RT),
            script: vec![
                (Expect::Session, session_reply(&at_past)),
                (Expect::OAuth, oauth_reply(&at, None)),
            ],
            want: want(&at, None, Some(exp_ms), Some("jwt@example.com"), Credential::RefreshToken),
        },
        Case {
            name: "ST gives an expired AT, RT rejected -> AlreadyExpired",
            st: Some(ST),
            rt: Some(RT),
            script: vec![
                (Expect::Session, session_reply(&at_past)),
                (Expect::OAuth, status(401, INVALID_GRANT_401)),
            ],
            want: Err(RefreshError::AlreadyExpired),
        },
        Case {
            name: "no material",
            st: None,
            rt: None,
            script: vec![],
            want: Err(RefreshError::NoMaterial),
        },
        Case {
            name: "empty secrets are no material",
            st: Some(""),
            rt: Some(""),
            script: vec![],
            want: Err(RefreshError::NoMaterial),
        },
        Case {
            name: "an empty ST is skipped",
            st: Some(""),
            rt: Some(RT),
            script: vec![(Expect::OAuth, oauth_reply(&at, None))],
            want: want(&at, None, Some(exp_ms), Some("jwt@example.com"), Credential::RefreshToken),
        },
    ];
    for cfg in configs() {
        for case in &cases {
            let m = material(case.st, case.rt);
            let has = |s: Option<&str>| s.is_some_and(|s| !s.is_empty());
            assert_eq!(m.can_refresh(), has(case.st) || has(case.rt), "{}", case.name);
            let got = drive(&cfg, m, case.script.clone(), case.name);
            match (&got, &case.want) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got.access_token.expose(), want.at, "{}", case.name);
                    assert_eq!(
                        got.refresh_token.as_ref().map(Secret::expose),
                        want.rotated,
                        "{}",
                        case.name
                    );
                    assert_eq!(got.expires_at_ms, want.expires_at_ms, "{}", case.name);
                    assert_eq!(got.email.as_deref(), want.email, "{}", case.name);
                    assert_eq!(got.via, want.via, "{}", case.name);
                }
                (Err(got), Err(want)) => assert_eq!(got, want, "{}", case.name),
                _ => panic!("{}: got {got:?}", case.name),
            }
            // Secrets never show in the result or the error.
            let shown = match &got {
                Ok(r) => format!("{r:?}"),
                Err(e) => format!("{e:?} {e}"),
            };
            assert_hidden(&shown, &[ST, RT, RT2, &at, &at_no_claims, &at_past, "opaque-at"]);
        }
    }
}

#[test]
fn client_id_is_the_tokens() {
    let cfg = UpstreamConfig::at_origin("http://sim");
    for client in [None, Some("app_1LOVEceTvrP2tHFDNnrPLQkJ")] {
        let m =
            RefreshMaterial { client_id: client.map(str::to_owned), ..material(None, Some(RT)) };
        let got = drive(&cfg, m, vec![(Expect::OAuth, status(401, INVALID_GRANT_401))], "client");
        assert_eq!(got, Err(RefreshError::Rejected));
    }
}

#[test]
fn call_order() {
    let cfg = UpstreamConfig::default();
    let mut refresh = Refresh::new(&cfg, material(Some(ST), Some(RT)));
    // A reply before any request is refused and changes nothing.
    assert_eq!(refresh.handle(NOW_MS, ok("{}")), Err(UnexpectedReply));
    let RefreshStep::Send(first) = refresh.next(NOW_MS) else { panic!("no request") };
    assert_eq!(first.url, cfg.auth_session_url);
    // `next` again before `handle`: the same request.
    assert_eq!(refresh.next(NOW_MS), RefreshStep::Send(first));
    refresh.handle(NOW_MS, status(503, "")).unwrap();
    assert_eq!(refresh.handle(NOW_MS, status(503, "")), Err(UnexpectedReply));
    let RefreshStep::Send(second) = refresh.next(NOW_MS) else { panic!("no RT request") };
    assert_eq!(second.url, cfg.oauth_token_url);
    assert!(!refresh.is_done());
    refresh.handle(NOW_MS, Err(TransportError::Proxy)).unwrap();
    for _ in 0..2 {
        assert_eq!(refresh.next(NOW_MS), RefreshStep::Done(Err(RefreshError::Transient)));
    }
    assert!(refresh.is_done());
    assert_eq!(refresh.handle(NOW_MS, ok("{}")), Err(UnexpectedReply));
}

#[test]
fn expiry_is_checked_at_reply_time() {
    // The AT expires in a minute: fine at NOW_MS, already past if the reply arrives later.
    let at = jwt(Some(NOW_MS / 1000 + 60), None);
    for (arrival, want_ok) in [(NOW_MS, true), (NOW_MS + 60_000, false)] {
        let mut refresh = Refresh::new(&UpstreamConfig::default(), material(None, Some(RT)));
        let RefreshStep::Send(_) = refresh.next(NOW_MS) else { panic!("no request") };
        refresh.handle(arrival, oauth_reply(&at, None)).unwrap();
        let RefreshStep::Done(result) = refresh.next(arrival) else { panic!("not done") };
        assert_eq!(result.is_ok(), want_ok, "{arrival}");
        if !want_ok {
            assert_eq!(result, Err(RefreshError::AlreadyExpired));
        }
    }
}

#[test]
fn nothing_secret_is_shown() {
    let m = RefreshMaterial { client_id: Some("app_x".into()), ..material(Some(ST), Some(RT)) };
    let shown = format!("{m:?} {:?}", Refresh::new(&UpstreamConfig::default(), m.clone()));
    assert_hidden(&shown, &[ST, RT, "pw@proxy"]);
    assert!(shown.contains("app_x"));
    let messages = [
        (RefreshError::NoMaterial, "the token has no session or refresh token to refresh with"),
        (RefreshError::Rejected, "the upstream refused the token's session/refresh token"),
        (RefreshError::Transient, "the token could not be refreshed now; try again later"),
        (RefreshError::AlreadyExpired, "the refreshed access token has already expired"),
    ];
    for (error, want) in messages {
        assert_eq!(error.to_string(), want);
    }
}

/// Every pair of replies ends in `Done` after at most two requests, and `Done` stays.
#[test]
fn every_reply_sequence_terminates() {
    let at = jwt(Some(NOW_MS / 1000 + DAY_S), None);
    let replies = vec![
        session_reply(&at),
        oauth_reply(&at, Some(RT2)),
        ok("{}"),
        ok("<html>"),
        status(400, INVALID_GRANT_400),
        status(401, INVALID_GRANT_401),
        status(503, ""),
        Err(TransportError::Connect),
    ];
    for m in [material(Some(ST), Some(RT)), material(Some(ST), None), material(None, Some(RT))] {
        for a in &replies {
            for b in &replies {
                let mut refresh = Refresh::new(&UpstreamConfig::default(), m.clone());
                let mut script = [a, b].into_iter();
                let result = loop {
                    match refresh.next(NOW_MS) {
                        RefreshStep::Send(_) => {
                            let r = script.next().expect("at most two requests");
                            refresh.handle(NOW_MS, r.clone()).unwrap();
                        }
                        RefreshStep::Done(result) => break result,
                    }
                };
                assert_eq!(refresh.next(NOW_MS), RefreshStep::Done(result));
            }
        }
    }
}
