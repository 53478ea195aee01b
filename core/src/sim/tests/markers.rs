//! Every scenario marker.

use serde_json::json;

use super::*;

const CREATE: &str = "/backend/nf/create";

fn create(h: &mut H, prompt: &str) -> SimResponse {
    h.create(CREATE, &video_body(prompt))
}

#[test]
fn fail_429_then_success() {
    let mut h = H::fast();
    let reply = status(create(&mut h, "busy #fail=429"), 429);
    assert_eq!(code(&reply), "rate_limit_exceeded");
    assert_eq!(reply.header("retry-after"), Some("30"));
    assert_eq!(h.sim.creates(), 0);
    assert_eq!(h.sim.account("pro@example.com").unwrap().quota_remaining, 30);
    ok(create(&mut h, "busy #fail=429"));
    assert_eq!(h.sim.creates(), 1);
}

#[test]
fn fail_429_twice() {
    let mut h = H::fast();
    status(create(&mut h, "busy #fail=429x2"), 429);
    status(create(&mut h, "busy #fail=429x2"), 429);
    ok(create(&mut h, "busy #fail=429x2"));
    // Counted per prompt: another prompt with the same marker starts afresh.
    status(create(&mut h, "other #fail=429x2"), 429);
}

#[test]
fn fail_401_500_400_and_other_statuses() {
    let mut h = H::fast();
    assert_eq!(code(&status(create(&mut h, "a #fail=401"), 401)), "token_invalidated");
    ok(create(&mut h, "a #fail=401"));
    assert_eq!(code(&status(create(&mut h, "b #fail=500"), 500)), "internal_error");
    status(create(&mut h, "c #fail=502"), 502);
    assert_invalid_request(create(&mut h, "d #fail=400"));
    ok(create(&mut h, "d #fail=400"));
    status(create(&mut h, "e #fail=404"), 404);
    // The account was not touched by the 401.
    ok(h.get("/backend/me"));
}

#[test]
fn heavy_load() {
    let mut h = H::fast();
    let reply = status(create(&mut h, "x #heavy"), 503);
    let body = json_of(&reply);
    assert_eq!(body["error"]["message"], HEAVY_LOAD_MESSAGE);
    assert_eq!(body["error"]["code"], "heavy_load");
    let reply = status(create(&mut h, "y #heavy=200"), 200);
    assert_eq!(json_of(&reply)["error"]["message"], HEAVY_LOAD_MESSAGE);
    assert_eq!(h.sim.creates(), 0);
}

#[test]
fn cloudflare_challenge_fires_before_auth() {
    let mut h = H::fast();
    let reply = status(h.post_with("bogus-token", CREATE, &video_body("x #cf"), None, None), 403);
    assert_eq!(reply.header("cf-mitigated"), Some("challenge"));
    assert!(reply.header("content-type").unwrap().starts_with("text/html"));
    let page = String::from_utf8_lossy(&reply.body);
    assert!(page.contains("Just a moment...") && page.contains("challenge-platform"));
    ok(create(&mut h, "x #cf"));
}

#[test]
fn country_marker() {
    let mut h = H::fast();
    let body = json_of(&status(create(&mut h, "x #country"), 403));
    assert_eq!(body["error"]["code"], "unsupported_country_code");
    assert_eq!(body["error"]["param"], "CN");
}

#[test]
fn hang_and_reset_are_transport_faults() {
    let mut h = H::fast();
    assert_eq!(create(&mut h, "x #hang"), SimResponse::Transport(TransportError::Timeout));
    assert_eq!(create(&mut h, "y #reset"), SimResponse::Transport(TransportError::Reset));
    assert_eq!(h.sim.creates(), 0);
    let creates = h.logged(CREATE);
    assert_eq!(creates.len(), 2);
    assert!(creates.iter().all(|r| r.status.is_none()));
    ok(create(&mut h, "x #hang"));
}

#[test]
fn html_and_garbage_bodies() {
    let mut h = H::fast();
    let reply = status(create(&mut h, "x #html"), 200);
    assert!(reply.body.starts_with(b"<!DOCTYPE html>"));
    let reply = status(create(&mut h, "x #garbage"), 200);
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
    assert_eq!(h.sim.creates(), 0);
}

#[test]
fn policy_video_becomes_a_violation_draft() {
    let mut h = H::fast();
    let (task, _) = h.finished_video("forbidden #policy");
    let drafts = json_of(&ok(h.get("/backend/project_y/profile/drafts")));
    let item = drafts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["task_id"] == task.as_str())
        .unwrap()
        .clone();
    assert_eq!(item["kind"], "sora_content_violation");
    assert!(!item["reason_str"].as_str().unwrap().is_empty());
    assert_eq!(item["markdown_reason_str"], item["reason_str"]);
    assert_eq!(item["url"], Value::Null);
    assert_eq!(item["downloadable_url"], Value::Null);
}

#[test]
fn queue_hold_counts_pending_polls() {
    let mut h = H::observed();
    let task = h.video("busy #queue=3");
    h.advance(1_000);
    let status_of = |h: &mut H| {
        json_of(&ok(h.get("/backend/nf/pending/v2")))
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == task.as_str())
            .map(|t| t["status"].as_str().unwrap().to_owned())
    };
    // Long past the normal queue time, it stays queued for 3 polls.
    h.advance(200_000);
    for _ in 0..3 {
        assert_eq!(status_of(&mut h).as_deref(), Some("queued"));
        h.advance(2_000);
    }
    // Then the schedule resumes: running from the release on.
    assert_eq!(status_of(&mut h).as_deref(), Some("running"));
    h.advance(99_000);
    assert_eq!(status_of(&mut h).as_deref(), Some("processing"));
    h.advance(1_000);
    assert_eq!(status_of(&mut h), None);
}

#[test]
fn nourl_draft_gets_its_url_late() {
    let mut h = H::fast();
    let task = h.video("late #nourl");
    for _ in 0..2 {
        let drafts = json_of(&ok(h.get("/backend/project_y/profile/drafts")));
        let item = &drafts["items"][0];
        assert_eq!(item["task_id"], task.as_str());
        assert_eq!(item["kind"], "sora_draft");
        assert_eq!(
            (item["url"].clone(), item["downloadable_url"].clone()),
            (Value::Null, Value::Null)
        );
    }
    let drafts = json_of(&ok(h.get("/backend/project_y/profile/drafts")));
    assert!(drafts["items"][0]["url"].as_str().is_some());
}

#[test]
fn slow_running_phase() {
    let mut h = H::observed();
    let task = h.video("epic #slow=400000");
    h.advance(51_000 + 200_000);
    let pending = json_of(&ok(h.get("/backend/nf/pending/v2")));
    let t = pending.as_array().unwrap().iter().find(|t| t["id"] == task.as_str()).unwrap().clone();
    assert_eq!(t["status"], "running");
    assert_eq!(t["progress_pct"], 0.545);
}

#[test]
fn poll_faults() {
    let mut h = H::fast();
    let task = h.video("flaky #fail=500@poll #hangx2@poll");
    status(h.get("/backend/nf/pending/v2"), 500);
    assert_eq!(
        h.get("/backend/project_y/profile/drafts"),
        SimResponse::Transport(TransportError::Timeout)
    );
    assert_eq!(h.get("/backend/nf/pending/v2"), SimResponse::Transport(TransportError::Timeout));
    ok(h.get("/backend/nf/pending/v2"));
    let drafts = json_of(&ok(h.get("/backend/project_y/profile/drafts")));
    assert_eq!(drafts["items"][0]["task_id"], task.as_str());
    // Image polls are not affected by a video's faults, and vice versa.
    let img = h.create("/backend/video_gen", &image_body("flaky image #fail=401@poll"));
    ok(img);
    ok(h.get("/backend/nf/pending/v2"));
    assert_eq!(code(&status(h.get("/backend/v2/recent_tasks"), 401)), "token_invalidated");
    ok(h.get("/backend/v2/recent_tasks"));
}

#[test]
fn markers_in_extension_enhance_and_image_prompts() {
    let mut h = H::fast();
    let (_, gen) = h.finished_video("base");
    let path = format!("/backend/project_y/profile/drafts/{gen}/long_video_extension");
    status(
        h.create(&path, &json!({"user_prompt":"more #fail=429","extension_duration_s":10})),
        429,
    );
    ok(h.create(&path, &json!({"user_prompt":"more #fail=429","extension_duration_s":10})));
    status(
        h.post(
            "/backend/editor/enhance_prompt",
            &json!({"prompt":"x #heavy","expansion_level":"short"}),
        ),
        503,
    );
    status(h.create("/backend/video_gen", &image_body("x #fail=500")), 500);
    // Unknown hashtags are just text.
    ok(create(&mut h, "a #sunset over #paris"));
}

#[test]
fn markers_do_not_bypass_auth_or_sentinel() {
    let mut h = H::fast();
    // #fail=429 fires after auth and sentinel: a bad token is still a 401, no sentinel a 400.
    status(h.post_with("bogus", CREATE, &video_body("x #fail=429"), None, None), 401);
    assert_invalid_request(h.post(CREATE, &video_body("x #fail=429")));
    status(create(&mut h, "x #fail=429"), 429);
}

#[test]
fn absurd_marker_values_are_clamped() {
    let mut h = H::observed();
    let task = h.video("forever #slow=18446744073709551615 #queue=4294967295");
    h.advance(u64::MAX / 4);
    h.at = h.sim.mint_access_token(h.now, "pro@example.com").unwrap();
    let pending = json_of(&ok(h.get("/backend/nf/pending/v2")));
    assert_eq!(pending[0]["id"], task.as_str());
    assert_eq!(pending[0]["status"], "queued");
    ok(h.get("/backend/project_y/profile/drafts"));
    let img =
        json_of(&ok(h.create("/backend/video_gen", &image_body("x #slow=18446744073709551615"))));
    assert!(img["id"].is_string());
    h.advance(86_400_000 + 2_000);
    ok(h.get("/backend/v2/recent_tasks"));
}
