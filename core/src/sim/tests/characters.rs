//! Characters (cameos) and prompt enhancement.

use serde_json::json;

use super::*;

fn upload_video(h: &mut H, filename: &str) -> SimResponse {
    h.multipart(
        "/backend/characters/upload",
        &[("file", Some(filename), media::MP4), ("timestamps", None, b"0,3")],
    )
}

fn progress(h: &mut H, cameo: &str) -> Value {
    json_of(&ok(h.get(&format!("/backend/project_y/cameos/in_progress/{cameo}"))))
}

fn avatar(h: &mut H) -> String {
    let reply = ok(h.multipart(
        "/backend/project_y/file/upload",
        &[("file", Some("profile.webp"), media::WEBP), ("use_case", None, b"profile")],
    ));
    json_of(&reply)["asset_pointer"].as_str().unwrap().to_owned()
}

fn finalize(h: &mut H, cameo: &str, username: &str, pointer: &str) -> SimResponse {
    h.post("/backend/characters/finalize", &json!({"cameo_id":cameo,"username":username,"display_name":"Meow","profile_asset_pointer":pointer,"instruction_set":null,"safety_instruction_set":null}))
}

#[test]
fn character_lifecycle_from_a_video() {
    let mut h = H::observed();
    let cameo = json_of(&ok(upload_video(&mut h, "video.mp4")))["id"].as_str().unwrap().to_owned();
    assert!(cameo.starts_with("ch_"));
    for _ in 0..2 {
        let p = progress(&mut h, &cameo);
        assert_eq!(p["status"], "in_progress");
        assert_eq!(p["profile_asset_url"], Value::Null);
    }
    let done = progress(&mut h, &cameo);
    assert_eq!(done["status_message"], "Completed");
    assert_eq!(done["status"], "finalized");
    let hint = done["username_hint"].as_str().unwrap();
    assert!(hint.starts_with("pro."), "{hint}");
    assert!(!done["display_name_hint"].as_str().unwrap().is_empty());
    let asset = done["profile_asset_url"].as_str().unwrap();
    let file = ok(h.send(&H::request(
        Method::Get,
        asset.trim_start_matches("http://127.0.0.1:8080"),
        vec![],
        bytes::Bytes::new(),
    )));
    assert_eq!(file.header("content-type"), Some("image/webp"));

    let pointer = avatar(&mut h);
    assert!(pointer.starts_with("sediment://file_"));
    let username = format!("{}123", hint.rsplit('.').next().unwrap());
    let character = json_of(&ok(finalize(&mut h, &cameo, &username, &pointer)));
    let id = character["character"]["character_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("char_"));
    // Finalizing twice is refused; the username is now taken.
    assert_invalid_request(finalize(&mut h, &cameo, "another_name", &pointer));
    let check = json_of(&ok(
        h.post("/backend/project_y/profile/username/check", &json!({"username": username}))
    ));
    assert_eq!(check["available"], false);

    ok(h.post(
        &format!("/backend/project_y/cameos/by_id/{cameo}/update_v2"),
        &json!({"visibility":"public"}),
    ));
    ok(h.post(&format!("/backend/project_y/cameos/by_id/{cameo}/update_v2"), &json!({"instruction_set":{"value":[{"type":"text","value":"be nice"}]},"safety_instruction_set":null})));
    assert_invalid_request(h.post(
        &format!("/backend/project_y/cameos/by_id/{cameo}/update_v2"),
        &json!({"visibility":"friends"}),
    ));
    assert_invalid_request(
        h.post(&format!("/backend/project_y/cameos/by_id/{cameo}/update_v2"), &json!({})),
    );
    status(
        h.post(
            "/backend/project_y/cameos/by_id/ch_unknown/update_v2",
            &json!({"visibility":"public"}),
        ),
        404,
    );

    status(h.delete(&format!("/backend/project_y/characters/{id}")), 204);
    status(h.delete(&format!("/backend/project_y/characters/{id}")), 404);
    // Characters spend no quota and are not creates.
    assert_eq!(h.sim.creates(), 0);
}

#[test]
fn character_from_a_generation() {
    let mut h = H::fast();
    let (_, gen) = h.finished_video("a dancer");
    let cameo = json_of(&ok(h.post(
        "/backend/characters/from-generation",
        &json!({"generation_id":gen,"character_id":null,"timestamps":[0,3]}),
    )))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(progress(&mut h, &cameo)["status_message"], "Completed");
    assert_invalid_request(h.post(
        "/backend/characters/from-generation",
        &json!({"generation_id":gen,"timestamps":[3,0]}),
    ));
    assert_invalid_request(h.post(
        "/backend/characters/from-generation",
        &json!({"generation_id":gen,"timestamps":"0,3"}),
    ));
    assert_invalid_request(
        h.post("/backend/characters/from-generation", &json!({"timestamps":[0,3]})),
    );
    status(
        h.post(
            "/backend/characters/from-generation",
            &json!({"generation_id":"gen_01k9btrqrnen792yvt703dp0tq","timestamps":[0,3]}),
        ),
        404,
    );
}

#[test]
fn cameo_failure_marker() {
    let mut h = H::fast();
    let cameo = json_of(&ok(upload_video(&mut h, "video #cameofail.mp4")))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = progress(&mut h, &cameo);
    assert_eq!(p["status"], "failed");
    assert!(!p["status_message"].as_str().unwrap().is_empty());
    let pointer = avatar(&mut h);
    assert_invalid_request(finalize(&mut h, &cameo, "some_name", &pointer));
    // From a generation whose prompt carries the marker.
    let (_, gen) = h.finished_video("a mime #cameofail");
    let cameo = json_of(&ok(h.post(
        "/backend/characters/from-generation",
        &json!({"generation_id":gen,"character_id":null,"timestamps":[0,3]}),
    )))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(progress(&mut h, &cameo)["status"], "failed");
}

#[test]
fn character_rejections() {
    let mut h = H::observed();
    // Upload: not a video, missing timestamps, bad range, no filename.
    assert_invalid_request(h.multipart(
        "/backend/characters/upload",
        &[("file", Some("video.mp4"), media::PNG), ("timestamps", None, b"0,3")],
    ));
    assert_invalid_request(
        h.multipart("/backend/characters/upload", &[("file", Some("video.mp4"), media::MP4)]),
    );
    assert_invalid_request(h.multipart(
        "/backend/characters/upload",
        &[("file", Some("video.mp4"), media::MP4), ("timestamps", None, b"3,1")],
    ));
    assert_invalid_request(h.multipart(
        "/backend/characters/upload",
        &[("file", None, media::MP4), ("timestamps", None, b"0,3")],
    ));
    status(h.get("/backend/project_y/cameos/in_progress/ch_unknown"), 404);
    // File upload: bad use case, not an image.
    assert_invalid_request(h.multipart(
        "/backend/project_y/file/upload",
        &[("file", Some("p.webp"), media::WEBP), ("use_case", None, b"banner")],
    ));
    assert_invalid_request(h.multipart(
        "/backend/project_y/file/upload",
        &[("file", Some("p.webp"), media::MP4), ("use_case", None, b"profile")],
    ));
    // Finalize: unknown cameo, not complete yet, unknown pointer, taken or bad username.
    let pointer = avatar(&mut h);
    status(finalize(&mut h, "ch_unknown", "name_ok", &pointer), 404);
    let cameo = json_of(&ok(upload_video(&mut h, "video.mp4")))["id"].as_str().unwrap().to_owned();
    assert_invalid_request(finalize(&mut h, &cameo, "name_ok", &pointer));
    for _ in 0..3 {
        progress(&mut h, &cameo);
    }
    assert_invalid_request(finalize(&mut h, &cameo, "name_ok", "sediment://file_unknown"));
    assert_invalid_request(finalize(&mut h, &cameo, "No Spaces", &pointer));
    assert_eq!(code(&status(finalize(&mut h, &cameo, "taken", &pointer), 409)), "username_taken");
    assert_eq!(code(&status(finalize(&mut h, &cameo, "pro", &pointer), 409)), "username_taken");
    ok(finalize(&mut h, &cameo, "name_ok", &pointer));
    // Another account cannot see or delete it.
    let other = h.sim.add_account(AccountSpec::pro("o@example.com"));
    status(
        h.get_as(&other.access_token, &format!("/backend/project_y/cameos/in_progress/{cameo}")),
        404,
    );
}

#[test]
fn enhance_prompt_is_deterministic() {
    let mut h = H::fast();
    let body = json!({"prompt":"a cat","expansion_level":"medium","duration_s":10});
    let a = json_of(&ok(h.post("/backend/editor/enhance_prompt", &body)));
    let b = json_of(&ok(h.post("/backend/editor/enhance_prompt", &body)));
    assert_eq!(a, b);
    let text = a["enhanced_prompt"].as_str().unwrap();
    assert!(text.starts_with("a cat.") && text.contains("10 seconds"), "{text}");
    let short = json_of(&ok(h.post(
        "/backend/editor/enhance_prompt",
        &json!({"prompt":"a cat","expansion_level":"short"}),
    )));
    assert_eq!(short["enhanced_prompt"], "a cat. Cinematic lighting.");
    for bad in [
        json!({"prompt":"a cat","expansion_level":"huge"}),
        json!({"prompt":"","expansion_level":"short"}),
        json!({"expansion_level":"short"}),
        json!({"prompt":"a cat"}),
        json!({"prompt":"a cat","expansion_level":"short","duration_s":7}),
    ] {
        assert_invalid_request(h.post("/backend/editor/enhance_prompt", &bad));
    }
}
