//! Auth, credential exchanges and the account endpoints.

use bytes::Bytes;
use serde_json::json;

use super::*;

#[test]
fn backend_requires_a_known_bearer() {
    let mut h = H::fast();
    let req = H::request(Method::Get, "/backend/me", vec![], Bytes::new());
    assert_eq!(code(&status(h.send(&req), 401)), "token_invalidated");
    assert_eq!(code(&status(h.get_as("not-a-token", "/backend/me"), 401)), "token_invalidated");
    let req = H::request(
        Method::Get,
        "/backend/me",
        vec![("authorization".into(), format!("Basic {}", h.at))],
        Bytes::new(),
    );
    assert_eq!(code(&status(h.send(&req), 401)), "token_invalidated");
    // Any case of "bearer", no cookies or device ids needed.
    let req = H::request(
        Method::Get,
        "/backend/me",
        vec![("authorization".into(), format!("bearer {}", h.at))],
        Bytes::new(),
    );
    ok(h.send(&req));
}

#[test]
fn revoked_accounts_get_token_invalidated() {
    let mut h = H::fast();
    let revoked =
        h.sim.add_account(AccountSpec { revoked: true, ..AccountSpec::pro("gone@example.com") });
    assert_eq!(
        code(&status(h.get_as(&revoked.access_token, "/backend/me"), 401)),
        "token_invalidated"
    );
    // Revoking mid-test.
    ok(h.get("/backend/nf/check"));
    h.sim.account_mut("pro@example.com").unwrap().revoked = true;
    assert_eq!(code(&status(h.get("/backend/nf/check"), 401)), "token_invalidated");
}

#[test]
fn expired_tokens_get_token_expired() {
    let mut h = H::fast();
    let short = h.sim.add_account(AccountSpec {
        expires_in_ms: 60_000,
        ..AccountSpec::pro("short@example.com")
    });
    assert_eq!(short.expires_at_ms, T0 + 60_000);
    ok(h.get_as(&short.access_token, "/backend/billing/subscriptions"));
    h.advance(60_000);
    let reply = status(h.get_as(&short.access_token, "/backend/billing/subscriptions"), 401);
    assert_eq!(code(&reply), "token_expired");
    // A fresh token for the same account works.
    let fresh = h.sim.mint_access_token(h.now, "short@example.com").unwrap();
    ok(h.get_as(&fresh, "/backend/me"));
    assert!(h.sim.mint_access_token(h.now, "nobody@example.com").is_none());
}

#[test]
fn minted_tokens_are_jwts_with_exp_and_email() {
    let h = H::fast();
    let claims = jwt::claims(&h.minted.access_token).unwrap();
    assert_eq!(claims["exp"].as_u64().unwrap() * 1000, h.minted.expires_at_ms);
    assert_eq!(claims["https://api.openai.com/profile"]["email"], "pro@example.com");
    assert!(h.minted.session_token.is_some() && h.minted.refresh_token.is_some());
    assert_eq!(h.minted.client_id, "app_LlGpXReQgckcGGUo2JrYvtJK");
}

#[test]
fn blocked_country_gets_unsupported_country_code_everywhere() {
    let mut h = H::fast();
    let blocked = h.sim.add_account(AccountSpec {
        country_blocked: Some("RU".into()),
        ..AccountSpec::pro("ru@example.com")
    });
    for path in ["/backend/me", "/backend/project_y/invite/mine", "/backend/nf/pending/v2"] {
        let reply = status(h.get_as(&blocked.access_token, path), 403);
        let body = json_of(&reply);
        assert_eq!(body["error"]["code"], "unsupported_country_code");
        assert_eq!(body["error"]["param"], "RU");
    }
}

#[test]
fn me_and_subscriptions() {
    let mut h = H::fast();
    let me = json_of(&ok(h.get("/backend/me")));
    assert_eq!(me["email"], "pro@example.com");
    assert_eq!(me["username"], "pro");
    let subs = json_of(&ok(h.get("/backend/billing/subscriptions")));
    assert_eq!(subs["data"][0]["plan"]["id"], "chatgpt_pro");
    assert_eq!(subs["data"][0]["plan"]["title"], "ChatGPT Pro");
    assert!(subs["data"][0]["end_ts"].as_str().unwrap().ends_with('Z'));

    let free =
        h.sim.add_account(AccountSpec { username: None, ..AccountSpec::free("free@example.com") });
    let subs = json_of(&ok(h.get_as(&free.access_token, "/backend/billing/subscriptions")));
    assert_eq!(subs["data"][0]["plan"]["id"], "chatgpt_plus");
    assert_eq!(json_of(&ok(h.get_as(&free.access_token, "/backend/me")))["username"], Value::Null);
    let none = h
        .sim
        .add_account(AccountSpec { plan: String::new(), ..AccountSpec::free("none@example.com") });
    assert_eq!(
        json_of(&ok(h.get_as(&none.access_token, "/backend/billing/subscriptions")))["data"],
        json!([])
    );
    assert!(!h.sim.account("free@example.com").unwrap().is_pro());
}

#[test]
fn invite_mine_and_bootstrap() {
    let mut h = H::fast();
    let invite = json_of(&ok(h.get("/backend/project_y/invite/mine")));
    assert_eq!(invite["invite_code"].as_str().unwrap().len(), 6);
    assert_eq!(invite["total_count"], 4);

    let later = h.sim.add_account(AccountSpec {
        sora2: Sora2Access::AfterBootstrap,
        ..AccountSpec::pro("later@example.com")
    });
    let reply = status(h.get_as(&later.access_token, "/backend/project_y/invite/mine"), 401);
    assert!(json_of(&reply)["error"]["message"].as_str().unwrap().contains("Unauthorized"));
    // Creates are refused too until bootstrap.
    status(h.create_as(&later.access_token, "/backend/nf/create", &video_body("x")), 401);
    ok(h.get_as(&later.access_token, "/backend/m/bootstrap"));
    ok(h.get_as(&later.access_token, "/backend/project_y/invite/mine"));
    ok(h.create_as(&later.access_token, "/backend/nf/create", &video_body("x")));

    let never = h.sim.add_account(AccountSpec {
        sora2: Sora2Access::Unavailable,
        ..AccountSpec::pro("never@example.com")
    });
    ok(h.get_as(&never.access_token, "/backend/m/bootstrap"));
    status(h.get_as(&never.access_token, "/backend/project_y/invite/mine"), 401);
    let accepted = json_of(&ok(h.post_as(
        &never.access_token,
        "/backend/project_y/invite/accept",
        &json!({"invite_code": "ABC"}),
    )));
    assert_eq!(accepted["success"], false);
}

#[test]
fn invite_accept_enables_sora2() {
    let mut h = H::fast();
    let later = h.sim.add_account(AccountSpec {
        sora2: Sora2Access::AfterBootstrap,
        ..AccountSpec::pro("l@example.com")
    });
    assert_invalid_request(h.post_as(
        &later.access_token,
        "/backend/project_y/invite/accept",
        &json!({}),
    ));
    let reply = json_of(&ok(h.post_as(
        &later.access_token,
        "/backend/project_y/invite/accept",
        &json!({"invite_code": "ABC"}),
    )));
    assert_eq!(reply, json!({"success": true, "already_accepted": false}));
    ok(h.get_as(&later.access_token, "/backend/project_y/invite/mine"));
}

#[test]
fn nf_check_reports_quota() {
    let mut h = H::fast();
    let check = json_of(&ok(h.get("/backend/nf/check")));
    let balance = &check["rate_limit_and_credit_balance"];
    assert_eq!(balance["estimated_num_videos_remaining"], 30);
    assert_eq!(balance["rate_limit_reached"], false);
    assert_eq!(balance["access_resets_in_seconds"], 86_400);
}

#[test]
fn usernames() {
    let mut h = H::fast();
    let free = h
        .sim
        .add_account(AccountSpec { username: None, ..AccountSpec::free("nameless@example.com") });
    let check = |h: &mut H, name: &str| {
        json_of(&ok(h.post_as(
            &free.access_token,
            "/backend/project_y/profile/username/check",
            &json!({"username": name}),
        )))["available"]
            .clone()
    };
    assert_eq!(check(&mut h, "fresh_name"), true);
    assert_eq!(check(&mut h, "taken"), false, "configured as taken");
    assert_eq!(check(&mut h, "pro"), false, "another account's");
    assert_eq!(check(&mut h, "Bad Name!"), false, "malformed");
    assert_invalid_request(h.post_as(
        &free.access_token,
        "/backend/project_y/profile/username/check",
        &json!({}),
    ));
    assert_invalid_request(h.post_as(
        &free.access_token,
        "/backend/project_y/profile/username/set",
        &json!({"username": "x"}),
    ));
    let reply = status(
        h.post_as(
            &free.access_token,
            "/backend/project_y/profile/username/set",
            &json!({"username": "taken"}),
        ),
        409,
    );
    assert_eq!(code(&reply), "username_taken");
    let set = json_of(&ok(h.post_as(
        &free.access_token,
        "/backend/project_y/profile/username/set",
        &json!({"username": "fresh_name"}),
    )));
    assert_eq!(set["username"], "fresh_name");
    assert_eq!(
        h.sim.account("nameless@example.com").unwrap().username.as_deref(),
        Some("fresh_name")
    );
    assert_eq!(check(&mut h, "fresh_name"), true, "your own name is available to you");
}

// === credential exchanges ===

fn session(h: &mut H, cookie: Option<&str>) -> Value {
    let headers = cookie.map(|c| vec![("cookie".to_owned(), c.to_owned())]).unwrap_or_default();
    let req = H::request(Method::Get, "/api/auth/session", headers, Bytes::new());
    json_of(&ok(h.send(&req)))
}

#[test]
fn session_token_exchange() {
    let mut h = H::fast();
    let st = h.minted.session_token.clone().unwrap();
    let body = session(
        &mut h,
        Some(&format!("oai-did=x; __Secure-next-auth.session-token={st}; other=1")),
    );
    assert_eq!(body["user"]["email"], "pro@example.com");
    assert!(body["expires"].as_str().unwrap().starts_with("2026-01-31T"));
    let at = body["accessToken"].as_str().unwrap().to_owned();
    assert_ne!(at, h.at);
    ok(h.get_as(&at, "/backend/me"));
    // Unknown, missing or revoked sessions: next-auth's empty session.
    assert_eq!(session(&mut h, Some("__Secure-next-auth.session-token=nope")), json!({}));
    assert_eq!(session(&mut h, None), json!({}));
    h.sim.account_mut("pro@example.com").unwrap().revoked = true;
    assert_eq!(session(&mut h, Some(&format!("__Secure-next-auth.session-token={st}"))), json!({}));
}

fn oauth(h: &mut H, body: &Value) -> SimResponse {
    let req = H::request(
        Method::Post,
        "/oauth/token",
        vec![("content-type".into(), "application/json".into())],
        body.to_string(),
    );
    h.send(&req)
}

fn rt_body(client_id: &str, rt: &str) -> Value {
    json!({"client_id": client_id, "grant_type": "refresh_token", "redirect_uri": "com.openai.chat://auth0.openai.com/ios/com.openai.chat/callback", "refresh_token": rt})
}

#[test]
fn refresh_token_exchange_rotates() {
    let mut h = H::fast();
    let rt = h.minted.refresh_token.clone().unwrap();
    let client = h.minted.client_id.clone();
    let reply = json_of(&ok(oauth(&mut h, &rt_body(&client, &rt))));
    assert_eq!(reply["expires_in"], 864_000);
    let new_rt = reply["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_rt, rt);
    ok(h.get_as(reply["access_token"].as_str().unwrap(), "/backend/me"));
    // The old RT was rotated away.
    assert_eq!(code(&status(oauth(&mut h, &rt_body(&client, &rt)), 401)), "refresh_token_reused");
    ok(oauth(&mut h, &rt_body(&client, &new_rt)));
}

#[test]
fn refresh_token_without_rotation_and_form_encoding() {
    let mut h = H::with(SimConfig { rotate_refresh_tokens: false, ..SimConfig::fast() });
    let rt = h.minted.refresh_token.clone().unwrap();
    let client = h.minted.client_id.clone();
    let reply = json_of(&ok(oauth(&mut h, &rt_body(&client, &rt))));
    assert_eq!(reply["refresh_token"], rt.as_str());
    let form = format!("grant_type=refresh_token&client_id={client}&refresh_token={rt}");
    let req = H::request(
        Method::Post,
        "/oauth/token",
        vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
        form,
    );
    ok(h.send(&req));
}

#[test]
fn refresh_token_rejections() {
    let mut h = H::fast();
    let rt = h.minted.refresh_token.clone().unwrap();
    let client = h.minted.client_id.clone();
    assert_eq!(code(&status(oauth(&mut h, &rt_body(&client, "rt_unknown")), 401)), "invalid_grant");
    assert_eq!(
        code(&status(oauth(&mut h, &rt_body("app_1LOVEceTvrP2tHFDNnrPLQkJ", &rt)), 401)),
        "invalid_grant"
    );
    let mut wrong_grant = rt_body(&client, &rt);
    wrong_grant["grant_type"] = json!("password");
    assert_eq!(code(&status(oauth(&mut h, &wrong_grant), 400)), "unsupported_grant_type");
    assert_invalid_request(oauth(
        &mut h,
        &json!({"grant_type": "refresh_token", "refresh_token": rt}),
    ));
    let req = H::request(Method::Post, "/oauth/token", vec![], "not json");
    assert_invalid_request(h.send(&req));
    // A per-account client id.
    let sora = h.sim.add_account(AccountSpec {
        client_id: Some("app_1LOVEceTvrP2tHFDNnrPLQkJ".into()),
        ..AccountSpec::pro("app@example.com")
    });
    ok(oauth(
        &mut h,
        &rt_body("app_1LOVEceTvrP2tHFDNnrPLQkJ", sora.refresh_token.as_deref().unwrap()),
    ));
    h.sim.account_mut("app@example.com").unwrap().revoked = true;
    let rt2 = h.sim.add_account(AccountSpec::pro("x@example.com")).refresh_token.unwrap();
    h.sim.account_mut("x@example.com").unwrap().revoked = true;
    assert_eq!(
        code(&status(oauth(&mut h, &rt_body(&client, &rt2)), 401)),
        "refresh_token_invalidated"
    );
    // No ST / RT when not asked for.
    let bare = h.sim.add_account(AccountSpec {
        with_session_token: false,
        with_refresh_token: false,
        ..AccountSpec::pro("bare@example.com")
    });
    assert!(bare.session_token.is_none() && bare.refresh_token.is_none());
}

#[test]
fn chatgpt_root_sets_the_device_cookie() {
    let mut h = H::fast();
    let req = H::request(Method::Get, "/", vec![], Bytes::new());
    let reply = ok(h.send(&req));
    let cookie = reply.header("set-cookie").unwrap();
    assert!(cookie.starts_with("oai-did=") && cookie.len() > 44, "{cookie}");
}

#[test]
fn quota_refills_after_the_window() {
    let mut h = H::with(SimConfig { ..SimConfig::fast() });
    let small = h.sim.add_account(AccountSpec {
        quota: 1,
        quota_reset_s: 100,
        ..AccountSpec::pro("q@example.com")
    });
    ok(h.create_as(&small.access_token, "/backend/nf/create", &video_body("one")));
    let reply =
        status(h.create_as(&small.access_token, "/backend/nf/create", &video_body("two")), 429);
    assert_eq!(code(&reply), "rate_limit_exceeded");
    assert_eq!(reply.header("retry-after"), Some("100"));
    let check = json_of(&ok(h.get_as(&small.access_token, "/backend/nf/check")));
    assert_eq!(check["rate_limit_and_credit_balance"]["rate_limit_reached"], true);
    assert_eq!(check["rate_limit_and_credit_balance"]["estimated_num_videos_remaining"], 0);
    h.advance(100_000);
    ok(h.create_as(&small.access_token, "/backend/nf/create", &video_body("three")));
    let state = h.sim.account("q@example.com").unwrap();
    assert_eq!(state.quota_remaining, 0);
    assert_eq!(state.quota_resets_at_ms, T0 + 100_000 + 86_400_000);
    assert_eq!(state.videos_created, 2);
}

#[test]
fn offline_tokens_are_admitted_only_when_enabled() {
    let seed = SimConfig::default().seed;
    let ada = mint_offline_token(seed, "ada@example.com", "chatgpt_plus", T0, T0 + 60_000);

    // Off by default: an unknown token like any other.
    let mut h = H::fast();
    assert_eq!(code(&status(h.get_as(&ada, "/backend/me"), 401)), "token_invalidated");
    assert!(h.sim.account("ada@example.com").is_none());

    let mut h = H::with(SimConfig { accept_offline_tokens: true, ..SimConfig::fast() });
    let me = json_of(&ok(h.get_as(&ada, "/backend/me")));
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["plan_type"], "chatgpt_plus");
    assert!(!h.sim.account("ada@example.com").unwrap().is_pro());
    ok(h.get_as(&ada, "/backend/nf/check"));
    // A second token for the same email reaches the same account; so does one for an
    // account the simulator minted itself.
    let again = mint_offline_token(seed, "ada@example.com", "chatgpt_pro", T0 + 1_000, T0 + 60_000);
    ok(h.get_as(&again, "/backend/me"));
    let pro = mint_offline_token(seed, "pro@example.com", "chatgpt_plus", T0, T0 + 60_000);
    assert_eq!(json_of(&ok(h.get_as(&pro, "/backend/me")))["plan_type"], "chatgpt_pro");
    assert_eq!(h.sim.requests().len(), 4);
    // Another seed's signature, and expiry, are enforced.
    let foreign = mint_offline_token(seed ^ 1, "eve@example.com", "chatgpt_pro", T0, T0 + 60_000);
    assert_eq!(code(&status(h.get_as(&foreign, "/backend/me"), 401)), "token_invalidated");
    assert!(h.sim.account("eve@example.com").is_none());
    h.advance(60_000);
    assert_eq!(code(&status(h.get_as(&ada, "/backend/me"), 401)), "token_expired");
    // Revoking the account revokes its offline tokens.
    let late = mint_offline_token(seed, "ada@example.com", "chatgpt_plus", h.now, h.now + 60_000);
    ok(h.get_as(&late, "/backend/me"));
    h.sim.account_mut("ada@example.com").unwrap().revoked = true;
    assert_eq!(code(&status(h.get_as(&late, "/backend/me"), 401)), "token_invalidated");
}
