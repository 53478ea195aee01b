//! Every dedicated endpoint in its three modes: stream (SSE, one chunk id, the media as the
//! final `content`, exactly one `[DONE]`), non-stream (`chat.completion` with the media
//! markdown) and async (the acknowledgement, then `GET /v1/tasks/{id}` reaches `completed`).
//! Every mode's task is queryable afterwards by its `X-Task-Id`.

use serde_json::{json, Value};
use sora2api_tower::sim_server::SimHandle;

use crate::common::*;

/// What a generation yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Image,
    Video,
    Character,
}

struct Case {
    path: &'static str,
    body: Value,
    model: &'static str,
    media: Media,
    task_type: &'static str,
    /// Backend paths each generation must have called successfully (once per mode).
    upstream: &'static [&'static str],
}

/// The body with `mode`'s flags added.
fn with_mode(body: &Value, mode: &str) -> Value {
    let mut body = body.clone();
    match mode {
        "stream" => body["stream"] = json!(true),
        "async" => body["async_mode"] = json!(true),
        _ => {}
    }
    body
}

/// Checks the final content for `media` and that its URL serves the file.
async fn assert_media(gw: &Gateway, sim: &SimHandle, content: &str, media: Media) {
    let media_root = format!("{}/media/", sim.origin());
    match media {
        Media::Image => {
            let url = content
                .strip_prefix("![Generated Image](")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("not an image markdown: {content:?}"));
            assert!(url.starts_with(&media_root), "{url}");
            let file = gw.client.fetch(url).await;
            assert_eq!(
                (file.status.as_u16(), file.headers["content-type"].to_str().unwrap()),
                (200, "image/png")
            );
        }
        Media::Video => {
            let url = content
                .strip_prefix("```html\n<video src='")
                .and_then(|rest| rest.strip_suffix("' controls></video>\n```"))
                .unwrap_or_else(|| panic!("not a video block: {content:?}"));
            assert!(url.starts_with(&media_root), "{url}");
            let file = gw.client.fetch(url).await;
            assert_eq!(
                (file.status.as_u16(), file.headers["content-type"].to_str().unwrap()),
                (200, "video/mp4")
            );
        }
        Media::Character => {
            assert!(content.starts_with("Character created, name @"), "{content:?}");
            assert!(content.contains("\nCharacter ID: "), "{content:?}");
        }
    }
}

/// The task of a stream or blocking request, read back by its id: completed.
async fn assert_task_completed(gw: &Gateway, sim: &SimHandle, id: &str, case: &Case) -> Value {
    let task = gw.finished_task(id).await;
    assert_eq!(task["task_id"], id);
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["task_type"], case.task_type, "{task}");
    assert_eq!(task["progress"], 100.0, "{task}");
    assert_eq!(task["model"], case.model, "{task}");
    assert_eq!(task["error_message"], Value::Null, "{task}");
    assert!(task["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{task}");
    assert!(task["completed_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{task}");
    let result = &task["result_urls"];
    if case.media == Media::Character {
        for key in ["username", "display_name", "character_id", "cameo_id", "profile_asset_url"] {
            assert!(result[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {task}");
        }
    } else {
        let urls = result.as_array().unwrap_or_else(|| panic!("result_urls: {task}"));
        assert!(!urls.is_empty(), "{task}");
        let media_root = format!("{}/media/", sim.origin());
        for url in urls {
            assert!(url.as_str().unwrap().starts_with(&media_root), "{task}");
        }
        let file = gw.client.fetch(urls[0].as_str().unwrap()).await;
        assert_eq!(file.status, 200);
    }
    task
}

async fn stream_mode(gw: &Gateway, sim: &SimHandle, case: &Case) {
    let reply = gw.client.post(case.path, &with_mode(&case.body, "stream")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let id = reply.task_id();
    let chunks = reply.chunks();
    assert!(chunks.len() >= 2, "progress and the result: {chunks:?}");
    for chunk in &chunks {
        assert_eq!(chunk["id"], format!("chatcmpl-{id}"), "one id per stream: {chunk}");
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        assert_eq!(chunk["model"], case.model, "{chunk}");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant", "{}", chunks[0]);
    let (last, progress) = chunks.split_last().unwrap();
    let mut cards = Vec::new();
    for chunk in progress {
        assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null, "{chunk}");
        let delta = &chunk["choices"][0]["delta"];
        match delta["content"].as_str() {
            // Character creation shows the card as one JSON line of content (6.9).
            Some(line) if case.media == Media::Character => {
                cards.push(serde_json::from_str::<Value>(line).unwrap());
            }
            Some(_) => panic!("progress is not content: {chunk}"),
            None => assert!(delta["reasoning_content"].is_string(), "{chunk}"),
        }
    }
    assert_eq!(last["choices"][0]["finish_reason"], "stop", "{last}");
    let content = last["choices"][0]["delta"]["content"].as_str().unwrap();
    assert_media(gw, sim, content, case.media).await;
    let task = assert_task_completed(gw, sim, &id, case).await;
    if case.media == Media::Character {
        assert_eq!(cards.len(), 1, "{chunks:?}");
        assert_eq!(cards[0]["event"], "character_card");
        assert_eq!(cards[0]["card"]["username"], task["result_urls"]["username"]);
        let username = task["result_urls"]["username"].as_str().unwrap();
        assert!(content.starts_with(&format!("Character created, name @{username}\n")));
    }
}

async fn blocking_mode(gw: &Gateway, sim: &SimHandle, case: &Case) {
    let reply = gw.client.post(case.path, &case.body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/json");
    let id = reply.task_id();
    let body = reply.json();
    assert_eq!(body["id"], format!("chatcmpl-{id}"), "{body}");
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert_eq!(body["model"], case.model, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant", "{body}");
    assert_eq!(choice["finish_reason"], "stop", "{body}");
    assert_media(gw, sim, choice["message"]["content"].as_str().unwrap(), case.media).await;
    assert_task_completed(gw, sim, &id, case).await;
}

async fn async_mode(gw: &Gateway, sim: &SimHandle, case: &Case) {
    // `stream` is ignored in async mode.
    let mut body = with_mode(&case.body, "async");
    body["stream"] = json!(true);
    let reply = gw.client.post(case.path, &body).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/json");
    let ack = reply.json();
    let id = reply.task_id();
    assert_eq!(
        ack,
        json!({
            "task_id": id,
            "task_type": case.task_type,
            "status": "processing",
            "message": "Task submitted successfully. Use GET /v1/tasks/{task_id} to check status."
        })
    );
    assert!(id.starts_with("task_") && id.len() == 31, "{id}");
    let task = assert_task_completed(gw, sim, &id, case).await;
    if let Some(prompt) = case.body["prompt"].as_str() {
        assert_eq!(task["prompt"], prompt, "{task}");
    }
}

/// Runs the three modes of the case at once on a fresh sim and gateway; the sim sees one
/// generation per mode.
async fn three_modes(case: impl FnOnce(&SimHandle) -> Case) {
    let (sim, _, gw) = one_account_world().await;
    let case = case(&sim);
    tokio::join!(
        stream_mode(&gw, &sim, &case),
        blocking_mode(&gw, &sim, &case),
        async_mode(&gw, &sim, &case)
    );
    for path in case.upstream {
        let ok = sim_requests(&sim, path).iter().filter(|r| r.status == Some(200)).count();
        assert_eq!(ok, 3, "{path}: one per mode");
    }
    let creates = sim.with_sim(|s| s.creates());
    assert_eq!(creates, if case.media == Media::Character { 0 } else { 3 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_generate() {
    three_modes(|_| Case {
        path: "/v1/images/generate",
        body: json!({"prompt": "A red fox in the snow"}),
        model: "gpt-image",
        media: Media::Image,
        task_type: "image",
        upstream: &["/backend/video_gen"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_transform() {
    three_modes(|_| Case {
        path: "/v1/images/transform",
        body: json!({
            "prompt": "Make it blue",
            "image": png_data_uri(),
            "model": "gpt-image-landscape",
        }),
        model: "gpt-image-landscape",
        media: Media::Image,
        task_type: "image",
        upstream: &["/backend/uploads", "/backend/video_gen"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_generate() {
    three_modes(|_| Case {
        path: "/v1/videos/generate",
        body: json!({"prompt": "A kitten running on the grass", "style": "anime"}),
        model: "sora2-landscape-10s",
        media: Media::Video,
        task_type: "video",
        upstream: &["/backend/nf/create"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_transform() {
    // A bare base64 image (no data URI).
    three_modes(|_| Case {
        path: "/v1/videos/transform",
        body: json!({
            "prompt": "The picture comes alive",
            "image": PNG_B64,
            "model": "sora2-portrait-15s",
        }),
        model: "sora2-portrait-15s",
        media: Media::Video,
        task_type: "video",
        upstream: &["/backend/uploads", "/backend/nf/create"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_remix() {
    three_modes(|sim| Case {
        path: "/v1/videos/remix",
        body: json!({
            "prompt": "Make it rain",
            // A full share link is reduced to its id.
            "remix_target_id":
                format!("https://sora.chatgpt.com/p/{}", sim.with_sim(|s| s.posts())[0]),
        }),
        model: "sora2-landscape-10s",
        media: Media::Video,
        task_type: "video",
        upstream: &["/backend/nf/create"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn videos_storyboard() {
    three_modes(|_| Case {
        path: "/v1/videos/storyboard",
        body: json!({
            "prompt": "[5.0s]The cat jumps out of the plane [5.0s]The cat lands \
                       [10.0s]The cat runs across the field",
        }),
        model: "sora2-landscape-10s",
        media: Media::Video,
        task_type: "video",
        upstream: &["/backend/nf/create/storyboard"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn characters_create() {
    three_modes(|_| Case {
        path: "/v1/characters/create",
        body: json!({"video": mp4_data_uri()}),
        model: "avatar-create",
        media: Media::Character,
        task_type: "character",
        upstream: &["/backend/characters/upload", "/backend/characters/finalize"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn characters_generate() {
    three_modes(|_| Case {
        path: "/v1/characters/generate",
        body: json!({"prompt": "dances in the rain", "video": mp4_b64()}),
        model: "sora2-landscape-10s",
        media: Media::Video,
        task_type: "video",
        upstream: &[
            "/backend/characters/upload",
            "/backend/characters/finalize",
            "/backend/nf/create",
        ],
    })
    .await;
}
