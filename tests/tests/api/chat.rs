//! `/v1/chat/completions`: the same operations as the dedicated endpoints, selected by the
//! model, the media parts and the prompt's directives; checked on what the backend saw.

use serde_json::{json, Value};
use sora2api_core::sim::LoggedRequest;
use sora2api_tower::sim_server::SimHandle;

use crate::common::*;

/// A chat body: one user message with `content`, plus the fields of `extra`.
fn chat_body(model: &str, content: Value, extra: Value) -> Value {
    let mut body = json!({"model": model, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": content},
    ]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// Posts a blocking chat request and returns the task id and the final content after
/// checking the completion's shape.
async fn chat(gw: &Gateway, body: &Value) -> (String, String) {
    chat_as(gw, body, body["model"].as_str().unwrap()).await
}

/// [`chat`], checking the answer shows `model` (always the model the client named, decisions
/// 3, even where a video alone on a video model runs as `avatar-create`).
async fn chat_as(gw: &Gateway, body: &Value, model: &str) -> (String, String) {
    let reply = gw.client.post("/v1/chat/completions", body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let id = reply.task_id();
    let completion = reply.json();
    assert_eq!(completion["object"], "chat.completion", "{completion}");
    assert_eq!(completion["id"], format!("chatcmpl-{id}"));
    assert_eq!(completion["model"], model, "{completion}");
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    (id, completion["choices"][0]["message"]["content"].as_str().unwrap().to_owned())
}

/// The one successful request the sim got on `path`.
fn the_one(sim: &SimHandle, path: &str) -> LoggedRequest {
    let ok: Vec<_> =
        sim_requests(sim, path).into_iter().filter(|r| r.status == Some(200)).collect();
    assert_eq!(ok.len(), 1, "{path}: {ok:?}");
    ok.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_content_makes_an_image() {
    let (sim, _, gw) = one_account_world().await;
    let (_, content) =
        chat(&gw, &chat_body("gpt-image-portrait", json!("A red fox"), json!({}))).await;
    assert!(content.starts_with("![Generated Image](http://"), "{content}");
    let create = body_json(&the_one(&sim, "/backend/video_gen"));
    assert_eq!(create["prompt"], "A red fox");
    assert_eq!((create["width"].as_u64(), create["height"].as_u64()), (Some(360), Some(540)));
    assert_eq!(create["inpaint_items"], json!([]));
    assert!(sim_requests(&sim, "/backend/uploads").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multimodal_image_part_transforms_an_image_and_animates_it() {
    let parts = json!([
        {"type": "text", "text": "Make it blue"},
        {"type": "image_url", "image_url": {"url": png_data_uri()}},
    ]);
    // Image model: image to image.
    let (sim, _, gw) = one_account_world().await;
    let (_, content) = chat(&gw, &chat_body("gpt-image", parts.clone(), json!({}))).await;
    assert!(content.starts_with("![Generated Image]("), "{content}");
    let upload = the_one(&sim, "/backend/uploads");
    assert!(upload.header("content-type").unwrap().starts_with("multipart/form-data"));
    let png = base64_decode(PNG_B64);
    assert!(upload.body.windows(png.len()).any(|w| w == png), "the PNG went up as sent");
    let create = body_json(&the_one(&sim, "/backend/video_gen"));
    assert_eq!(create["prompt"], "Make it blue");
    assert!(create["inpaint_items"][0]["upload_media_id"].as_str().unwrap().starts_with("media_"));

    // Video model: image to video.
    let (sim, _, gw) = one_account_world().await;
    let (_, content) = chat(&gw, &chat_body("sora2-landscape-10s", parts, json!({}))).await;
    assert!(content.contains("<video src='"), "{content}");
    the_one(&sim, "/backend/uploads");
    let create = body_json(&the_one(&sim, "/backend/nf/create"));
    assert_eq!(create["prompt"], "Make it blue");
    assert!(create["inpaint_items"][0]["upload_id"].as_str().unwrap().starts_with("media_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_url_part_makes_a_character_video_or_a_character() {
    // Text and a video: a character video (`@username prompt`), the character deleted after.
    let (sim, _, gw) = one_account_world().await;
    let parts = json!([
        {"type": "text", "text": "dances in the rain"},
        {"type": "video_url", "video_url": {"url": mp4_data_uri()}},
    ]);
    let (id, content) = chat(&gw, &chat_body("sora2-landscape-10s", parts, json!({}))).await;
    assert!(content.contains("<video src='"), "{content}");
    the_one(&sim, "/backend/characters/upload");
    let finalize = body_json(&the_one(&sim, "/backend/characters/finalize"));
    let username = finalize["username"].as_str().unwrap();
    let create = body_json(&the_one(&sim, "/backend/nf/create"));
    assert_eq!(create["prompt"], format!("@{username} dances in the rain"));
    let deleted = sim.with_sim(|s| {
        s.requests()
            .iter()
            .filter(|r| r.path().starts_with("/backend/project_y/characters/"))
            .count()
    });
    assert_eq!(deleted, 1, "the temporary character is deleted");
    assert_eq!(gw.finished_task(&id).await["task_type"], "video");

    // A video alone: a character.
    let (sim, _, gw) = one_account_world().await;
    let parts = json!([{"type": "video_url", "video_url": {"url": mp4_data_uri()}}]);
    let body = chat_body("sora2-landscape-10s", parts, json!({}));
    let (id, content) = chat_as(&gw, &body, "sora2-landscape-10s").await;
    assert!(content.starts_with("Character created, name @"), "{content}");
    let task = gw.finished_task(&id).await;
    assert_eq!(task["task_type"], "character");
    assert!(task["result_urls"]["username"].is_string(), "{task}");
    assert!(sim_creates(&sim).is_empty(), "no video for a character alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_url_part_with_an_http_url_is_fetched() {
    let (sim, _, gw) = one_account_world().await;
    // A video the sim made is at an http URL on the sim's origin (loopback is allowed here).
    let (_, content) =
        chat(&gw, &chat_body("sora2-landscape-10s", json!("A wave"), json!({}))).await;
    let url = content
        .split('\'')
        .nth(1)
        .filter(|u| u.starts_with("http://"))
        .unwrap_or_else(|| panic!("{content}"))
        .to_owned();
    let path = url.split_once("//").unwrap().1.split_once('/').unwrap().1;
    let path = format!("/{path}");
    let before = sim_requests(&sim, &path).len();
    let parts = json!([{"type": "video_url", "video_url": {"url": url}}]);
    let (_, content) = chat(&gw, &chat_body("avatar-create", parts, json!({}))).await;
    assert!(content.starts_with("Character created, name @"), "{content}");
    assert_eq!(sim_requests(&sim, &path).len(), before + 1, "the gateway fetched {path}");
    the_one(&sim, "/backend/characters/upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn style_prefix_selects_the_style_in_stream_mode() {
    let (sim, _, gw) = one_account_world().await;
    let body =
        chat_body("sora2-landscape-10s", json!("{anime}A cat running"), json!({"stream": true}));
    let reply = gw.client.post("/v1/chat/completions", &body).await;
    assert_eq!(reply.status, 200);
    let chunks = reply.chunks();
    let last = &chunks.last().unwrap()["choices"][0];
    assert_eq!(last["finish_reason"], "stop");
    assert!(last["delta"]["content"].as_str().unwrap().contains("<video src='"), "{last}");
    let create = body_json(&the_one(&sim, "/backend/nf/create"));
    assert_eq!(create["style_id"], "anime", "{create}");
    assert_eq!(create["prompt"], "A cat running", "the directive left the prompt: {create}");
    // The task keeps the prompt as the client wrote it.
    let task = gw.finished_task(&reply.task_id()).await;
    assert_eq!(task["prompt"], "{anime}A cat running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_link_in_the_prompt_remixes() {
    let (sim, _, gw) = one_account_world().await;
    let post = sim.with_sim(|s| s.posts())[1].clone();
    let prompt = format!("https://sora.chatgpt.com/p/{post} make it snow");
    let (_, content) = chat(&gw, &chat_body("sora2-portrait-10s", json!(prompt), json!({}))).await;
    assert!(content.contains("<video src='"), "{content}");
    let create = body_json(&the_one(&sim, "/backend/nf/create"));
    assert_eq!(create["remix_target_id"], post.as_str(), "{create}");
    assert_eq!(create["prompt"], "make it snow", "{create}");
    assert_eq!(create["orientation"], "portrait", "the model's orientation: {create}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storyboard_markers_make_a_storyboard() {
    let (sim, _, gw) = one_account_world().await;
    let prompt = "```\n[5.0s]The cat jumps out of the plane\n[7.5s]The cat lands\n```";
    let (_, content) = chat(&gw, &chat_body("sora2-landscape-15s", json!(prompt), json!({}))).await;
    assert!(content.contains("<video src='"), "{content}");
    assert!(sim_requests(&sim, "/backend/nf/create").is_empty(), "not a plain video");
    let create = body_json(&the_one(&sim, "/backend/nf/create/storyboard"));
    assert_eq!(
        create["prompt"],
        "Shot 1:\nduration: 5.0sec\nScene: The cat jumps out of the plane\n\n\
         Shot 2:\nduration: 7.5sec\nScene: The cat lands",
        "{create}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_level_image_video_and_remix_target_id() {
    // `image` with an image model: image to image.
    let (sim, _, gw) = one_account_world().await;
    let body = chat_body("gpt-image", json!("Sharper"), json!({"image": PNG_B64}));
    let (_, content) = chat(&gw, &body).await;
    assert!(content.starts_with("![Generated Image]("), "{content}");
    the_one(&sim, "/backend/uploads");
    assert_eq!(body_json(&the_one(&sim, "/backend/video_gen"))["prompt"], "Sharper");

    // `video` with a video model and a prompt: a character video.
    let (sim, _, gw) = one_account_world().await;
    let body = chat_body("sora2-landscape-10s", json!("waves"), json!({"video": mp4_data_uri()}));
    let (_, content) = chat(&gw, &body).await;
    assert!(content.contains("<video src='"), "{content}");
    the_one(&sim, "/backend/characters/upload");
    let create = body_json(&the_one(&sim, "/backend/nf/create"));
    assert!(create["prompt"].as_str().unwrap().ends_with(" waves"), "{create}");

    // `remix_target_id`: a remix of that post.
    let (sim, _, gw) = one_account_world().await;
    let post = sim.with_sim(|s| s.posts())[0].clone();
    let body =
        chat_body("sora2-landscape-10s", json!("in winter"), json!({"remix_target_id": post}));
    let (_, content) = chat(&gw, &body).await;
    assert!(content.contains("<video src='"), "{content}");
    let create = body_json(&the_one(&sim, "/backend/nf/create"));
    assert_eq!(create["remix_target_id"], post.as_str(), "{create}");
    assert_eq!(create["prompt"], "in winter");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}
