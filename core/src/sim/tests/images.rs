//! Uploads, `video_gen` and `recent_tasks`.

use serde_json::json;

use super::*;

const GEN: &str = "/backend/video_gen";

fn task_in(h: &mut H, task: &str) -> Value {
    let tasks = json_of(&ok(h.get("/backend/v2/recent_tasks?limit=20")));
    tasks["task_responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == task)
        .cloned()
        .unwrap_or(Value::Null)
}

fn image(h: &mut H, body: &Value) -> String {
    json_of(&ok(h.create(GEN, body)))["id"].as_str().unwrap().to_owned()
}

#[test]
fn image_lifecycle_on_the_observed_schedule() {
    let mut h = H::observed();
    let task = image(&mut h, &image_body("a red fox"));
    assert!(rng::is_ulid(&task, "task_"));
    let t = task_in(&mut h, &task);
    assert_eq!(t["status"], "queued");
    assert_eq!(t["progress_pct"], Value::Null);
    assert_eq!(t["generations"], json!([]));
    h.advance(2_000);
    let t = task_in(&mut h, &task);
    assert_eq!(t["status"], "running");
    assert_eq!(t["progress_pct"], 0.0);
    h.advance(4_000);
    let t = task_in(&mut h, &task);
    assert_eq!(t["progress_pct"], 0.5);
    h.advance(4_000);
    let t = task_in(&mut h, &task);
    assert_eq!(t["status"], "succeeded");
    let gen = &t["generations"][0];
    assert!(rng::is_ulid(gen["id"].as_str().unwrap(), "gen_"));
    let url = gen["url"].as_str().unwrap();
    assert!(url.ends_with(".png"), "{url}");
    assert_eq!(t["error_message"], Value::Null);
    // The file is served.
    let path = url.trim_start_matches("http://127.0.0.1:8080");
    let file = ok(h.send(&H::request(Method::Get, path, vec![], bytes::Bytes::new())));
    assert!(file.body.starts_with(b"\x89PNG"));
    assert_eq!(h.sim.creates(), 1);
    // Images spend no video quota.
    assert_eq!(h.sim.account("pro@example.com").unwrap().quota_remaining, 30);
}

#[test]
fn recent_tasks_newest_first_and_limit() {
    let mut h = H::fast();
    let ids: Vec<String> =
        (0..4).map(|i| image(&mut h, &image_body(&format!("img {i}")))).collect();
    let tasks = json_of(&ok(h.get("/backend/v2/recent_tasks?limit=2")));
    let got: Vec<&str> = tasks["task_responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[3].as_str(), ids[2].as_str()]);
    let all = json_of(&ok(h.get("/backend/v2/recent_tasks")));
    assert_eq!(all["task_responses"].as_array().unwrap().len(), 4);
    assert_invalid_request(h.get("/backend/v2/recent_tasks?limit=0"));
    assert_invalid_request(h.get("/backend/v2/recent_tasks?limit=500"));
    // Another account sees none of them.
    let other = h.sim.add_account(AccountSpec::pro("o@example.com"));
    let theirs = json_of(&ok(h.get_as(&other.access_token, "/backend/v2/recent_tasks")));
    assert_eq!(theirs["task_responses"], json!([]));
}

#[test]
fn n_variants_gives_several_generations() {
    let mut h = H::fast();
    let mut body = image_body("twins");
    body["n_variants"] = json!(2);
    let task = image(&mut h, &body);
    assert_eq!(task_in(&mut h, &task)["generations"].as_array().unwrap().len(), 2);
}

#[test]
fn video_gen_validation() {
    let mut h = H::fast();
    let base = image_body("valid");
    let mut cases: Vec<Value> = Vec::new();
    for key in ["type", "operation", "prompt", "width", "height"] {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(key);
        cases.push(b);
    }
    for (key, value) in [
        ("type", json!("video")),
        ("operation", json!("outpaint")),
        ("prompt", json!("  ")),
        ("width", json!(361)),
        ("height", json!("360")),
        ("n_variants", json!(0)),
        ("n_variants", json!(5)),
        ("n_frames", json!(2)),
        ("inpaint_items", json!([{"type":"image","frame_index":0,"upload_media_id":"media_x"}])),
        ("inpaint_items", json!("nope")),
    ] {
        let mut b = base.clone();
        b[key] = value;
        cases.push(b);
    }
    for body in &cases {
        assert_invalid_request(h.create(GEN, body));
    }
    assert_eq!(h.sim.creates(), 0);
    // Unknown fields are ignored; other sizes of the model table work.
    let mut b = base.clone();
    b["something_new"] = json!({"x": 1});
    b["width"] = json!(540);
    ok(h.create(GEN, &b));
}

#[test]
fn image_remix_needs_this_accounts_uploads() {
    let mut h = H::fast();
    let media = h.upload_image();
    assert!(media.starts_with("media_"));
    let remix = |id: &str| json!({"type":"image_gen","operation":"remix","prompt":"make it blue","width":360,"height":540,"n_variants":1,"n_frames":1,"inpaint_items":[{"type":"image","frame_index":0,"upload_media_id":id}]});
    ok(h.create(GEN, &remix(&media)));
    assert_invalid_request(h.create(GEN, &remix("media_unknown")));
    let mut no_items = remix(&media);
    no_items["inpaint_items"] = json!([]);
    assert_invalid_request(h.create(GEN, &no_items));
    let mut bad_frame = remix(&media);
    bad_frame["inpaint_items"][0]["frame_index"] = json!(1);
    assert_invalid_request(h.create(GEN, &bad_frame));
    // Another account's upload.
    let other = h.sim.add_account(AccountSpec::pro("o@example.com"));
    let at = other.access_token.clone();
    assert_invalid_request(h.create_as(&at, GEN, &remix(&media)));
}

#[test]
fn upload_validation() {
    let mut h = H::fast();
    let png = media::PNG;
    ok(h.multipart(
        "/backend/uploads",
        &[("file", Some("photo.jpg"), png), ("file_name", None, b"photo.jpg")],
    ));
    // Missing parts, missing filename, not an image, not multipart.
    assert_invalid_request(h.multipart("/backend/uploads", &[("file", Some("image.png"), png)]));
    assert_invalid_request(h.multipart("/backend/uploads", &[("file_name", None, b"image.png")]));
    assert_invalid_request(
        h.multipart("/backend/uploads", &[("file", None, png), ("file_name", None, b"image.png")]),
    );
    assert_invalid_request(h.multipart(
        "/backend/uploads",
        &[("file", Some("image.png"), b"hello"), ("file_name", None, b"image.png")],
    ));
    assert_invalid_request(h.multipart(
        "/backend/uploads",
        &[("file", Some("image.png"), png), ("file_name", None, b"")],
    ));
    assert_invalid_request(h.post("/backend/uploads", &json!({"file": "x"})));
}

#[test]
fn image_policy_failure() {
    let mut h = H::fast();
    let task = image(&mut h, &image_body("forbidden #policy"));
    let t = task_in(&mut h, &task);
    assert_eq!(t["status"], "failed");
    assert_eq!(t["generations"], json!([]));
    assert!(t["error_message"].as_str().unwrap().contains("content policies"));
    assert_eq!(t["failure_reason"], t["error_message"]);
}

#[test]
fn image_without_url_for_a_few_polls() {
    let mut h = H::fast();
    let task = image(&mut h, &image_body("late #nourl=2"));
    for _ in 0..2 {
        let t = task_in(&mut h, &task);
        assert_eq!(t["status"], "succeeded");
        assert_eq!(t["generations"][0]["url"], "");
    }
    assert!(task_in(&mut h, &task)["generations"][0]["url"].as_str().unwrap().starts_with("http"));
}

#[test]
fn image_queue_hold_and_slow() {
    let mut h = H::fast();
    let task = image(&mut h, &image_body("busy #queue=3"));
    for _ in 0..3 {
        assert_eq!(task_in(&mut h, &task)["status"], "queued");
    }
    assert_eq!(task_in(&mut h, &task)["status"], "succeeded");

    let mut h = H::observed();
    let task = image(&mut h, &image_body("slow #slow=20000"));
    h.advance(2_000 + 10_000);
    let t = task_in(&mut h, &task);
    assert_eq!((t["status"].as_str(), t["progress_pct"].as_f64()), (Some("running"), Some(0.5)));
    h.advance(10_000);
    assert_eq!(task_in(&mut h, &task)["status"], "succeeded");
}
