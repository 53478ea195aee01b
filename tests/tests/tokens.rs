//! The token pool over HTTP: Pro models run only on Pro accounts, and a create refused with
//! 429 or 401 moves to another token while the first one cools down or is disabled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeSet;

use serde_json::json;
use sora2api_core::pool::{DisableReason, TokenState};
use sora2api_core::sim::{AccountSpec, MintedAccount};
use sora2api_tower::clock;
use sora2api_tower::sim_server::SimHandle;

use common::*;

/// The pool state of the token of `email`.
fn state_of(gw: &Gateway, email: &str) -> TokenState {
    gw.layer.engine().with_pool(|pool| {
        let record = pool.records().find(|r| r.email.as_deref() == Some(email));
        record.unwrap_or_else(|| panic!("no token for {email}")).state
    })
}

/// The account whose minted access token is `bearer`.
fn owner<'a>(accounts: &'a [&MintedAccount], bearer: &str) -> Option<&'a MintedAccount> {
    accounts.iter().copied().find(|a| a.access_token == bearer)
}

/// Two Pro accounts, both in the pool.
async fn two_accounts() -> (SimHandle, MintedAccount, MintedAccount, Gateway) {
    let sim = fast_sim();
    let a = sim.add_account(AccountSpec::pro("ada@example.com"));
    let b = sim.add_account(AccountSpec::pro("bob@example.com"));
    let layer = builder(&sim, pool_of(&[(&a, true), (&b, true)], 2_000)).build().unwrap();
    (sim, a, b, Gateway::start(layer).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pro_and_25s_models_run_only_on_the_pro_account() {
    let sim = fast_sim();
    let plus = sim.add_account(AccountSpec::free("plus@example.com"));
    let pro = sim.add_account(AccountSpec::pro("pro@example.com"));
    let layer = builder(&sim, pool_of(&[(&plus, false), (&pro, true)], 2_000)).build().unwrap();
    let gw = Gateway::start(layer).await;

    // Standard models take either token (round robin): the non-Pro one works.
    for _ in 0..2 {
        let reply = gw.client.post("/v1/videos/generate", &json!({"prompt": "A cat"})).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let standard: BTreeSet<String> =
        sim_creates(&sim).iter().map(|r| bearer(r).to_owned()).collect();
    let both: BTreeSet<String> = [&plus, &pro].iter().map(|a| a.access_token.clone()).collect();
    assert_eq!(standard, both, "both tokens took standard work");

    // 25 s and Pro models: only the Pro account, however often they are asked for.
    let before = sim_creates(&sim).len();
    for model in [
        "sora2-landscape-25s",
        "sora2pro-landscape-10s",
        "sora2pro-hd-portrait-15s",
        "sora2-portrait-25s",
    ] {
        let reply = gw
            .client
            .post("/v1/videos/generate", &json!({"prompt": "A cat", "model": model}))
            .await;
        assert_eq!(reply.status, 200, "{model}: {reply:?}");
        assert!(reply.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("<video"));
    }
    let pro_creates = &sim_creates(&sim)[before..];
    assert_eq!(pro_creates.len(), 4, "one create each, none refused: {pro_creates:?}");
    for create in pro_creates {
        assert_eq!(bearer(create), pro.access_token, "{}", create.path());
        assert_eq!(create.status, Some(200));
    }
    // What the Pro models asked the backend for.
    let bodies: Vec<_> = pro_creates.iter().map(body_json).collect();
    assert_eq!(bodies[0]["n_frames"], 750, "25 s: {}", bodies[0]);
    assert_eq!(bodies[2]["size"], "large", "Pro HD: {}", bodies[2]);

    // Without a Pro token, a Pro model is refused with the Pro text and never goes upstream.
    let sim = fast_sim();
    let plus = sim.add_account(AccountSpec::free("plus@example.com"));
    let gw = Gateway::start(builder(&sim, pool_of(&[(&plus, false)], 300)).build().unwrap()).await;
    let reply = gw
        .client
        .post("/v1/videos/generate", &json!({"prompt": "A cat", "model": "sora2pro-landscape-10s"}))
        .await;
    let error = assert_envelope(&reply, 503, "server_error");
    assert_eq!(
        error["message"],
        "No available Pro tokens. Pro models require a ChatGPT Pro subscription."
    );
    assert!(sim_creates(&sim).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_moves_the_task_to_the_other_token_and_cools_the_first_down() {
    let (sim, a, b, gw) = two_accounts().await;
    let reply = gw
        .client
        .post("/v1/videos/generate", &json!({"prompt": "A cat #fail=429", "stream": true}))
        .await;
    assert_eq!(reply.status, 200);
    let chunks = reply.chunks();
    let texts: Vec<String> = chunks
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["reasoning_content"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(texts.iter().any(|t| t.contains("retrying")), "the retry is announced: {texts:?}");
    let last = &chunks.last().unwrap()["choices"][0];
    assert!(last["delta"]["content"].as_str().unwrap().contains("<video"), "{last}");
    let task = gw.finished_task(&reply.task_id()).await;
    assert_eq!(task["status"], "completed", "{task}");

    let creates = sim_creates(&sim);
    let statuses: Vec<_> = creates.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(429), Some(200)]);
    let accounts = [&a, &b];
    let first = owner(&accounts, bearer(&creates[0])).expect("a pool token");
    let second = owner(&accounts, bearer(&creates[1])).expect("a pool token");
    assert_ne!(first.email, second.email, "the retry went to the other token");

    match state_of(&gw, &first.email) {
        TokenState::CoolingDown { until_ms } => {
            // The sim's Retry-After is 30 s.
            let left = until_ms.saturating_sub(clock::now_ms());
            assert!((20_000..=31_000).contains(&left), "{left} ms left");
        }
        other => panic!("{}: {other:?}", first.email),
    }
    assert_eq!(state_of(&gw, &second.email), TokenState::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_after_a_refresh_disables_the_token_and_the_other_one_finishes() {
    let (sim, a, b, gw) = two_accounts().await;
    let reply = gw
        .client
        .post("/v1/videos/generate", &json!({"prompt": "A dog #fail=401x2", "async_mode": true}))
        .await;
    assert_eq!(reply.status, 200);
    let task = gw.finished_task(&reply.task_id()).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert!(task["result_urls"][0].as_str().unwrap().contains("/media/"), "{task}");

    let creates = sim_creates(&sim);
    let statuses: Vec<_> = creates.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(401), Some(401), Some(200)]);
    let accounts = [&a, &b];
    let first = owner(&accounts, bearer(&creates[0])).expect("a pool token");
    // One refresh in between (the account has a session token): a new access token.
    let refreshes =
        sim_requests(&sim, "/api/auth/session").len() + sim_requests(&sim, "/oauth/token").len();
    assert_eq!(refreshes, 1);
    let refreshed = bearer(&creates[1]);
    assert!(owner(&accounts, refreshed).is_none(), "the second try used the refreshed token");
    let last = owner(&accounts, bearer(&creates[2])).expect("a pool token");
    assert_ne!(first.email, last.email, "the task finished on the other token");

    assert_eq!(state_of(&gw, &first.email), TokenState::Disabled(DisableReason::Invalid));
    assert_eq!(state_of(&gw, &last.email), TokenState::Active);
}
