//! Drafts paging and posts.

use serde_json::json;

use super::*;

fn page(h: &mut H, path: &str) -> (Vec<String>, Option<String>) {
    let body = json_of(&ok(h.get(path)));
    let ids = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["task_id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body["cursor"].as_str().map(str::to_owned))
}

#[test]
fn drafts_newest_first_with_limit_and_cursor() {
    let mut h = H::fast();
    let mut tasks = Vec::new();
    for i in 0..5 {
        tasks.push(h.video(&format!("draft {i}")));
        h.advance(1_000);
    }
    tasks.reverse();
    let (first, cursor) = page(&mut h, "/backend/project_y/profile/drafts/v2?limit=2");
    assert_eq!(first, tasks[..2]);
    let cursor = cursor.unwrap();
    // A new draft arriving meanwhile does not shift the next page.
    h.video("newcomer");
    let (second, cursor) =
        page(&mut h, &format!("/backend/project_y/profile/drafts/v2?limit=2&cursor={cursor}"));
    assert_eq!(second, tasks[2..4]);
    let (third, cursor) = page(
        &mut h,
        &format!("/backend/project_y/profile/drafts/v2?limit=2&cursor={}", cursor.unwrap()),
    );
    assert_eq!(third, tasks[4..]);
    assert!(cursor.is_none());
    // Default limit 15, legacy path, same shape.
    let (all, cursor) = page(&mut h, "/backend/project_y/profile/drafts");
    assert_eq!(all.len(), 6);
    assert!(cursor.is_none());
    let (v2, _) = page(&mut h, "/backend/project_y/profile/drafts/v2");
    assert_eq!(all, v2);
}

#[test]
fn drafts_rejections() {
    let mut h = H::fast();
    assert_invalid_request(h.get("/backend/project_y/profile/drafts?limit=0"));
    assert_invalid_request(h.get("/backend/project_y/profile/drafts?limit=x"));
    assert_invalid_request(h.get("/backend/project_y/profile/drafts/v2?cursor=garbage"));
    // An empty cursor is the first page.
    ok(h.get("/backend/project_y/profile/drafts/v2?cursor="));
}

#[test]
fn drafts_v2_can_be_switched_off() {
    let mut h = H::with(SimConfig { drafts_v2_404: true, ..SimConfig::fast() });
    let task = h.video("legacy");
    status(h.get("/backend/project_y/profile/drafts/v2?limit=15"), 404);
    let (items, _) = page(&mut h, "/backend/project_y/profile/drafts?limit=15");
    assert_eq!(items, vec![task]);
}

#[test]
fn drafts_are_per_account() {
    let mut h = H::fast();
    h.video("mine");
    let other = h.sim.add_account(AccountSpec::pro("o@example.com"));
    let body = json_of(&ok(h.get_as(&other.access_token, "/backend/project_y/profile/drafts")));
    assert_eq!(body, json!({"items": [], "cursor": null}));
}

#[test]
fn no_watermark_urls_knob() {
    let mut h = H::with(SimConfig { expose_no_watermark: true, ..SimConfig::fast() });
    h.video("clean");
    let body = json_of(&ok(h.get("/backend/project_y/profile/drafts")));
    assert!(body["items"][0]["download_urls"]["no_watermark"]
        .as_str()
        .unwrap()
        .ends_with("/source.mp4"));
}

fn publish(h: &mut H, gen: &str) -> SimResponse {
    h.create(
        "/backend/project_y/post",
        &json!({"attachments_to_create":[{"generation_id":gen,"kind":"sora"}],"post_text":""}),
    )
}

#[test]
fn post_publish_detail_and_delete() {
    let mut h = H::fast();
    let (_, gen) = h.finished_video("publish me");
    let post = json_of(&ok(publish(&mut h, &gen)))["post"].clone();
    let id = post["id"].as_str().unwrap().to_owned();
    assert!(rng::is_post_id(&id));
    assert_eq!(post["permalink"], format!("https://sora.chatgpt.com/p/{id}"));
    let detail = json_of(&ok(h.get(&format!("/backend/project_y/post/{id}"))));
    let source = detail["post"]["attachments"][0]["encodings"]["source"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(source.ends_with("/source.mp4"));
    let req = H::request(
        Method::Get,
        source.trim_start_matches("http://127.0.0.1:8080"),
        vec![],
        bytes::Bytes::new(),
    );
    ok(h.send(&req));
    assert_eq!(status(h.delete(&format!("/backend/project_y/post/{id}")), 204).body.len(), 0);
    status(h.delete(&format!("/backend/project_y/post/{id}")), 404);
    status(h.get(&format!("/backend/project_y/post/{id}")), 404);
    // Seeded posts belong to nobody: they cannot be deleted.
    let seeded = h.sim.posts()[0].clone();
    ok(h.get(&format!("/backend/project_y/post/{seeded}")));
    status(h.delete(&format!("/backend/project_y/post/{seeded}")), 404);
}

#[test]
fn post_rejections() {
    let mut h = H::fast();
    let (_, gen) = h.finished_video("publish me");
    assert_eq!(code(&status(publish(&mut h, "gen_01k9btrqrnen792yvt703dp0tq"), 404)), "not_found");
    assert_invalid_request(
        h.create("/backend/project_y/post", &json!({"attachments_to_create":[],"post_text":""})),
    );
    assert_invalid_request(h.create(
        "/backend/project_y/post",
        &json!({"attachments_to_create":[{"generation_id":gen,"kind":"video"}]}),
    ));
    assert_invalid_request(h.create(
        "/backend/project_y/post",
        &json!({"attachments_to_create":[{"generation_id":gen,"kind":"sora"}],"post_text":7}),
    ));
    let (_, bad) = h.finished_video("violation #policy");
    status(publish(&mut h, &bad), 404);
}

#[test]
fn post_detail_for_the_app_profile_only() {
    let mut h = H::with(SimConfig { post_detail_requires_app: true, ..SimConfig::fast() });
    let (_, gen) = h.finished_video("app only");
    let id = json_of(&ok(publish(&mut h, &gen)))["post"]["id"].as_str().unwrap().to_owned();
    let path = format!("/backend/project_y/post/{id}");
    status(h.get(&path), 403);
    let mut headers = H::bearer(&h.at.clone());
    headers.push(("oai-package-name".into(), "com.openai.sora".into()));
    ok(h.send(&H::request(Method::Get, &path, headers, bytes::Bytes::new())));
}
