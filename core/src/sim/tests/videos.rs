//! Video creates, the pending schedule, storyboard, remix, extension, quota and Pro gating.

use serde_json::json;

use super::*;

const CREATE: &str = "/backend/nf/create";

fn pending(h: &mut H) -> Vec<Value> {
    let body = json_of(&ok(h.get("/backend/nf/pending/v2")));
    body.as_array().expect("pending/v2 is a bare array").clone()
}

fn pending_status(h: &mut H, task: &str) -> Option<(String, Value)> {
    pending(h)
        .into_iter()
        .find(|t| t["id"] == task)
        .map(|t| (t["status"].as_str().unwrap().to_owned(), t["progress_pct"].clone()))
}

fn draft(h: &mut H, task: &str) -> Option<Value> {
    let drafts = json_of(&ok(h.get("/backend/project_y/profile/drafts/v2?limit=100")));
    drafts["items"].as_array().unwrap().iter().find(|i| i["task_id"] == task).cloned()
}

#[test]
fn video_lifecycle_on_the_observed_schedule() {
    let mut h = H::observed();
    let reply = json_of(&ok(h.create(CREATE, &video_body("a cat surfing"))));
    assert_eq!(reply["task_type"], "video_gen");
    let task = reply["id"].as_str().unwrap().to_owned();
    assert_eq!(pending_status(&mut h, &task), Some(("preprocessing".into(), Value::Null)));
    h.advance(1_000);
    assert_eq!(pending_status(&mut h, &task), Some(("queued".into(), Value::Null)));
    h.advance(50_000);
    assert_eq!(pending_status(&mut h, &task), Some(("running".into(), json!(0.1))));
    h.advance(50_000);
    let (status, pct) = pending_status(&mut h, &task).unwrap();
    assert_eq!(status, "running");
    assert!((0.1..1.0).contains(&pct.as_f64().unwrap()), "{pct}");
    h.advance(49_999);
    assert!(pending_status(&mut h, &task).unwrap().1.as_f64().unwrap() < 1.0);
    h.advance(1);
    assert_eq!(pending_status(&mut h, &task), Some(("processing".into(), json!(1.0))));
    h.advance(2_000);
    // Gone from pending; the draft lags behind.
    assert_eq!(pending_status(&mut h, &task), None);
    assert!(draft(&mut h, &task).is_none());
    h.advance(3_999);
    assert!(draft(&mut h, &task).is_none());
    h.advance(1);
    let item = draft(&mut h, &task).unwrap();
    assert_eq!(item["kind"], "sora_draft");
    assert!(rng::is_ulid(item["id"].as_str().unwrap(), "gen_"));
    assert_eq!(item["generation_id"], item["id"]);
    assert!(item["url"].as_str().unwrap().ends_with(".mp4"));
    assert!(item["downloadable_url"].as_str().unwrap().ends_with("/download.mp4"));
    assert_eq!(item["reason_str"], Value::Null);
    assert_eq!(item["markdown_reason_str"], Value::Null);
    assert_eq!(item["encodings"]["source"]["path"], item["downloadable_url"]);
    assert_eq!(item["download_urls"]["no_watermark"], Value::Null);
    assert_eq!((item["width"].as_u64(), item["height"].as_u64()), (Some(1280), Some(720)));
    assert_eq!(h.sim.creates(), 1);
    assert_eq!(h.sim.account("pro@example.com").unwrap().quota_remaining, 29);
}

#[test]
fn instant_mode_finishes_on_the_first_poll() {
    let mut h = H::fast();
    let task = h.video("quick");
    assert_eq!(pending_status(&mut h, &task), None);
    assert!(draft(&mut h, &task).is_some());
}

#[test]
fn scaled_timings() {
    let mut h = H::with(SimConfig {
        timings: Timings::observed().scaled(10),
        pow_difficulty: "ff".into(),
        ..SimConfig::default()
    });
    let task = h.video("scaled");
    h.advance(100);
    assert_eq!(pending_status(&mut h, &task).unwrap().0, "queued");
    h.advance(5_000 + 10_000 + 200 + 400);
    assert!(draft(&mut h, &task).is_some());
}

#[test]
fn full_web_body_and_unknown_fields_are_accepted() {
    let mut h = H::fast();
    let media = h.upload_image();
    let (_, gen) = h.finished_video("source");
    let body = json!({
        "kind":"video","prompt":"web","title":null,"orientation":"portrait","size":"small","n_frames":450,
        "inpaint_items":[{"kind":"upload","upload_id":media},{"kind":"generation","generation_id":gen},
            {"kind":"reference","reference_id":"ref_69c11b8a20bc81919e63f1087b43a6c0"}],
        "remix_target_id":null,"reroll_target_id":null,"project_config":null,"trim_config":null,"metadata":null,
        "use_image_as_first_frame":false,"cameo_ids":[],"cameo_replacements":{},"model":"sy_8_20251208","style_id":"anime",
        "audio_caption":null,"audio_transcript":null,"video_caption":null,"i2v_reference_instruction":null,
        "remix_prompt_template":null,"storyboard_id":null,"brand_new_field":[1,2,3]
    });
    ok(h.create(CREATE, &body));
    let square =
        json!({"kind":"video","prompt":"sq","orientation":"square","n_frames":150,"model":"sy_8"});
    ok(h.create(CREATE, &square));
}

#[test]
fn create_validation() {
    let mut h = H::fast();
    let base = video_body("valid");
    let mut cases = Vec::new();
    for key in ["kind", "prompt", "orientation", "n_frames", "model"] {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(key);
        cases.push(b);
    }
    for (key, value) in [
        ("kind", json!("image")),
        ("prompt", json!("")),
        ("prompt", json!(42)),
        ("orientation", json!("diagonal")),
        ("size", json!("medium")),
        ("n_frames", json!(299)),
        ("n_frames", json!(900)),
        ("n_frames", json!("300")),
        ("model", json!("sy_9")),
        ("style_id", json!("vaporwave")),
        ("style_id", json!(3)),
        ("inpaint_items", json!([{"kind":"upload","upload_id":"media_unknown"}])),
        ("inpaint_items", json!([{"kind":"generation","generation_id":"gen_unknown"}])),
        ("inpaint_items", json!([{"kind":"file","file_id":"file_unknown"}])),
        ("inpaint_items", json!([{"kind":"reference","reference_id":"ref_short"}])),
        ("inpaint_items", json!([{"kind":"mystery"}])),
        ("cameo_ids", json!([1])),
        ("title", json!(5)),
        ("remix_target_id", json!("s_nothex")),
    ] {
        let mut b = base.clone();
        b[key] = value;
        cases.push(b);
    }
    let dup = json!({"kind":"reference","reference_id":"ref_69c11b8a20bc81919e63f1087b43a6c0"});
    let mut b = base.clone();
    b["inpaint_items"] = json!([dup, dup]);
    cases.push(b);
    let mut b = base.clone();
    b["inpaint_items"] = json!((0..6)
        .map(|i| json!({"kind":"reference","reference_id":format!("ref_{i:032x}")}))
        .collect::<Vec<_>>());
    cases.push(b);
    cases.push(json!([]));
    for body in &cases {
        assert_invalid_request(h.create(CREATE, body));
    }
    assert_eq!(h.sim.creates(), 0);
    assert_eq!(h.sim.account("pro@example.com").unwrap().quota_remaining, 30);
}

#[test]
fn pro_gating() {
    let mut h = H::fast();
    let free = h.sim.add_account(AccountSpec::free("free@example.com"));
    let at = free.access_token.clone();
    for (key, value, param) in [
        ("model", json!("sy_ore"), "model"),
        ("size", json!("large"), "size"),
        ("n_frames", json!(750), "n_frames"),
    ] {
        let mut body = video_body("gated");
        body[key] = value;
        let reply = status(h.create_as(&at, CREATE, &body), 403);
        let err = json_of(&reply);
        assert_eq!(err["error"]["code"], "pro_required");
        assert_eq!(err["error"]["param"], param);
        // The Pro account may.
        ok(h.create(CREATE, &body));
    }
    ok(h.create_as(&at, CREATE, &video_body("standard is fine")));
    assert_eq!(h.sim.account("free@example.com").unwrap().quota_remaining, 29);

    let mut h = H::with(SimConfig { pro_gating_status: 400, ..SimConfig::fast() });
    let free = h.sim.add_account(AccountSpec::free("free@example.com"));
    let mut body = video_body("gated");
    body["model"] = json!("sy_ore");
    assert_eq!(code(&status(h.create_as(&free.access_token, CREATE, &body), 400)), "pro_required");
}

#[test]
fn remix_needs_an_existing_post() {
    let mut h = H::fast();
    let post = h.sim.posts()[0].clone();
    let remix = |target: &str| json!({"kind":"video","prompt":"remix it","inpaint_items":[],"remix_target_id":target,"cameo_ids":[],"cameo_replacements":{},"model":"sy_8","orientation":"portrait","n_frames":300,"style_id":null});
    let task = json_of(&ok(h.create(CREATE, &remix(&post))))["id"].as_str().unwrap().to_owned();
    let unknown = format!("s_{}", "0".repeat(32));
    assert_invalid_request(h.create(CREATE, &remix(&unknown)));
    assert_invalid_request(h.create(CREATE, &remix("s_123")));
    let item = draft(&mut h, &task).unwrap();
    assert_eq!(item["generation_type"], "remix");
    assert_eq!((item["width"].as_u64(), item["height"].as_u64()), (Some(720), Some(1280)));
    // Published drafts are remix targets too.
    let (_, gen) = h.finished_video("to publish");
    let published = json_of(&ok(h.create(
        "/backend/project_y/post",
        &json!({"attachments_to_create":[{"generation_id":gen,"kind":"sora"}],"post_text":""}),
    )));
    ok(h.create(CREATE, &remix(published["post"]["id"].as_str().unwrap())));

    let mut h = H::with(SimConfig { accept_any_remix_target: true, ..SimConfig::fast() });
    ok(h.create(CREATE, &remix(&unknown)));
    assert_invalid_request(h.create(CREATE, &remix("s_123")));
}

#[test]
fn storyboard_lifecycle_and_validation() {
    let mut h = H::fast();
    let prompt = "current timeline:\nShot 1:\nduration: 5.0sec\nScene: cat jumps\n\nShot 2:\nduration: 5sec\nScene: cat lands\n\ninstructions:\nA cat adventure";
    let body = json!({"kind":"video","prompt":prompt,"title":"Draft your video","orientation":"landscape","size":"small","n_frames":300,"storyboard_id":null,"inpaint_items":[],"remix_target_id":null,"model":"sy_8","metadata":null,"style_id":null,"cameo_ids":null,"cameo_replacements":null,"audio_caption":null,"audio_transcript":null,"video_caption":null});
    let task = json_of(&ok(h.create("/backend/nf/create/storyboard", &body)))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let item = draft(&mut h, &task).unwrap();
    assert_eq!(item["generation_type"], "storyboard");
    assert_eq!(item["title"], "Draft your video");
    for bad in ["a cat jumps then lands", "Shot 2:\nduration: 5sec\nScene: x", "[5s] cat jumps"] {
        let mut b = body.clone();
        b["prompt"] = json!(bad);
        assert_invalid_request(h.create("/backend/nf/create/storyboard", &b));
    }
    let mut b = body.clone();
    b.as_object_mut().unwrap().remove("n_frames");
    assert_invalid_request(h.create("/backend/nf/create/storyboard", &b));
    assert_eq!(h.sim.creates(), 1);
}

#[test]
fn extension_lifecycle_and_validation() {
    let mut h = H::fast();
    let (_, gen) = h.finished_video("the original");
    let path = format!("/backend/project_y/profile/drafts/{gen}/long_video_extension");
    let reply = json_of(&ok(h.create(
        &path,
        &json!({"user_prompt":"and then it rains","extension_duration_s":15,"enable_rewrite":true}),
    )));
    let task = reply["id"].as_str().unwrap().to_owned();
    let item = draft(&mut h, &task).unwrap();
    assert_eq!(item["generation_type"], "extension");
    assert_eq!(item["n_frames"], 450);
    assert_ne!(item["id"].as_str().unwrap(), gen);
    for bad in [
        json!({"user_prompt":"x","extension_duration_s":20}),
        json!({"user_prompt":"","extension_duration_s":10}),
        json!({"extension_duration_s":10}),
        json!({"user_prompt":"x"}),
        json!({"user_prompt":"x","extension_duration_s":10,"enable_rewrite":"yes"}),
    ] {
        assert_invalid_request(h.create(&path, &bad));
    }
    let unknown =
        "/backend/project_y/profile/drafts/gen_01k9btrqrnen792yvt703dp0tq/long_video_extension";
    assert_eq!(
        code(&status(
            h.create(unknown, &json!({"user_prompt":"x","extension_duration_s":10})),
            404
        )),
        "not_found"
    );
    // Another account's generation is not found either; nor is a violating draft.
    let other = h.sim.add_account(AccountSpec::pro("o@example.com"));
    let at = other.access_token.clone();
    status(h.create_as(&at, &path, &json!({"user_prompt":"x","extension_duration_s":10})), 404);
    let (_, bad_gen) = h.finished_video("nope #policy");
    let bad_path = format!("/backend/project_y/profile/drafts/{bad_gen}/long_video_extension");
    status(h.create(&bad_path, &json!({"user_prompt":"x","extension_duration_s":10})), 404);
    assert_eq!(h.sim.account("pro@example.com").unwrap().videos_created, 3);
}

#[test]
fn extension_of_an_unfinished_video_is_not_found() {
    let mut h = H::observed();
    let task = h.video("still running");
    // The gen exists internally but has no draft yet.
    let gen = h.sim.video_tasks.iter().find(|t| t.id == task).unwrap().gen_id.clone();
    let path = format!("/backend/project_y/profile/drafts/{gen}/long_video_extension");
    status(h.create(&path, &json!({"user_prompt":"x","extension_duration_s":10})), 404);
}

#[test]
fn quota_exhaustion() {
    let mut h = H::fast();
    let low = h.sim.add_account(AccountSpec {
        quota: 2,
        quota_reset_s: 3_600,
        ..AccountSpec::pro("low@example.com")
    });
    let at = low.access_token.clone();
    let first = json_of(&ok(h.create_as(&at, CREATE, &video_body("1"))));
    assert_eq!(first["rate_limit_and_credit_balance"]["estimated_num_videos_remaining"], 1);
    ok(h.create_as(
        &at,
        "/backend/nf/create/storyboard",
        &video_body("Shot 1:\nduration: 5sec\nScene: s"),
    ));
    h.advance(600_000);
    let reply = status(h.create_as(&at, CREATE, &video_body("3")), 429);
    assert_eq!(code(&reply), "rate_limit_exceeded");
    assert_eq!(reply.header("retry-after"), Some("3000"));
    let check =
        json_of(&ok(h.get_as(&at, "/backend/nf/check")))["rate_limit_and_credit_balance"].clone();
    assert_eq!(
        check,
        json!({"estimated_num_videos_remaining":0,"rate_limit_reached":true,"access_resets_in_seconds":3000})
    );
    // Images still work.
    ok(h.create_as(&at, "/backend/video_gen", &image_body("img")));
    assert_eq!(h.sim.creates(), 3);
}

#[test]
fn exactly_one_create_per_task_in_the_log() {
    let mut h = H::fast();
    for i in 0..3 {
        h.video(&format!("v{i}"));
    }
    assert_eq!(h.logged("/backend/nf/create").len(), 3);
    assert_eq!(h.sim.creates(), 3);
}
