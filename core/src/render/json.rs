//! The JSON bodies of non-streaming answers: `chat.completion`, the async acknowledgement,
//! task status (`GET /v1/tasks/{id}`) and `/v1/models`.
//!
//! All bodies are compact JSON (serde_json, raw UTF-8), keys in the order the specs show.

use serde::Serialize;

use super::time::rfc3339_utc;
use crate::catalog::{self, AVATAR_CREATE_MODEL};
use crate::request::TaskKind;
use crate::task::{CharacterCard, TaskId, TaskResult, TaskStatus, TaskView};

/// The message of the async acknowledgement; `{task_id}` is literal (sora-backend.md 6.11).
pub const ASYNC_ACK_MESSAGE: &str =
    "Task submitted successfully. Use GET /v1/tasks/{task_id} to check status.";

/// The `created` of every `/v1/models` item: a fixed date (2025-09-30T00:00:00Z, the Sora 2
/// launch), because strict OpenAI clients require the field and the core reads no clock.
pub const MODELS_CREATED_UNIX_S: u64 = 1_759_190_400;

/// Serialises one of our shapes. They hold only strings, integers, floats (non-finite ones
/// become `null`) and string-keyed objects, which serde_json always serialises, so the
/// fallback is never taken.
pub(super) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The chat completion id of a task: `chatcmpl-<task id>` (decisions 2: one id per task).
pub fn completion_id(id: &TaskId) -> String {
    format!("chatcmpl-{id}")
}

// === chat.completion ===

#[derive(Serialize)]
struct Completion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: Message<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

/// Generation counts no tokens; the zeros keep clients that read `usage` working.
#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

/// The `chat.completion` body of a blocking request (sora-backend.md 6.10): one assistant
/// message with `content` (normally [`final_content`](super::final_content)),
/// `finish_reason: "stop"`, and a `usage` of zeros.
///
/// ```
/// use sora2api_core::render::chat_completion;
/// use sora2api_core::task::TaskId;
///
/// let id = TaskId::new(1_730_000_000_000, 7);
/// let body = chat_completion(&id, 1_730_000_000, "gpt-image", "![Generated Image](https://x/1.png)");
/// assert!(body.starts_with(&format!(r#"{{"id":"chatcmpl-{id}","object":"chat.completion","#)));
/// ```
pub fn chat_completion(id: &TaskId, created_unix_s: u64, model: &str, content: &str) -> String {
    to_json(&Completion {
        id: completion_id(id),
        object: "chat.completion",
        created: created_unix_s,
        model,
        choices: [CompletionChoice {
            index: 0,
            message: Message { role: "assistant", content },
            finish_reason: "stop",
        }],
        usage: Usage { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    })
}

// === async acknowledgement ===

#[derive(Serialize)]
struct AsyncAck<'a> {
    task_id: &'a str,
    task_type: &'static str,
    status: &'static str,
    message: &'static str,
}

/// The immediate answer of `async_mode: true` (client-api.md), exactly:
/// `{"task_id":"<id>","task_type":"<kind>","status":"processing","message":"Task submitted
/// successfully. Use GET /v1/tasks/{task_id} to check status."}`.
pub fn async_ack(id: &TaskId, kind: TaskKind) -> String {
    to_json(&AsyncAck {
        task_id: id.as_str(),
        task_type: kind.as_str(),
        status: TaskStatus::Processing.as_str(),
        message: ASYNC_ACK_MESSAGE,
    })
}

// === task status ===

#[derive(Serialize)]
struct TaskJson<'a> {
    task_id: &'a str,
    task_type: &'static str,
    status: &'static str,
    progress: f32,
    model: &'a str,
    prompt: &'a str,
    result_urls: Option<ResultUrls<'a>>,
    /// Only on enhance tasks: the enhanced prompt, `null` until completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    result_text: Option<Option<&'a str>>,
    error_message: Option<&'a str>,
    created_at: String,
    completed_at: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResultUrls<'a> {
    List(&'a [String]),
    Character(CharacterUrls<'a>),
}

/// `result_urls` of a character task (decisions 6).
#[derive(Serialize)]
struct CharacterUrls<'a> {
    username: &'a str,
    display_name: &'a str,
    character_id: &'a str,
    cameo_id: &'a str,
    profile_asset_url: &'a str,
}

/// The body of `GET /v1/tasks/{id}` (sora-backend.md 6.12, decisions 6).
///
/// Keys in order: `task_id`, `task_type`, `status`, `progress` (a float in 0-100; 100.0 once
/// completed, otherwise the view's value clamped), `model`, `prompt`, `result_urls` (a list of
/// URLs for images and videos, a `{username, display_name, character_id, cameo_id,
/// profile_asset_url}` object for a character, `null` for an enhanced prompt and before
/// completion), `result_text` (enhance tasks only: the enhanced prompt, `null` until
/// completed), `error_message`, `created_at` and `completed_at` (RFC 3339 UTC with
/// milliseconds, see [`rfc3339_utc`]; `completed_at` is `null` until finished).
///
/// ```
/// use sora2api_core::render::task_json;
/// use sora2api_core::request::TaskKind;
/// use sora2api_core::task::{TaskId, TaskStatus, TaskView};
///
/// let view = TaskView {
///     id: TaskId::new(1_704_067_200_000, 1),
///     kind: TaskKind::Video,
///     status: TaskStatus::Processing,
///     progress: 45.5,
///     model: "sora2-landscape-10s".into(),
///     prompt: "A kitten running on the grass".into(),
///     result: None,
///     error_message: None,
///     created_at_ms: 1_704_067_200_000,
///     completed_at_ms: None,
/// };
/// let body = task_json(&view);
/// assert!(body.contains(r#""status":"processing","progress":45.5,"#));
/// assert!(body.ends_with(r#""created_at":"2024-01-01T00:00:00.000Z","completed_at":null}"#));
/// ```
pub fn task_json(view: &TaskView) -> String {
    let progress = match view.status {
        TaskStatus::Completed => 100.0,
        TaskStatus::Processing | TaskStatus::Failed if view.progress.is_nan() => 0.0,
        TaskStatus::Processing | TaskStatus::Failed => view.progress.clamp(0.0, 100.0),
    };
    let result_urls = match &view.result {
        Some(TaskResult::Images(urls) | TaskResult::Videos(urls)) => Some(ResultUrls::List(urls)),
        Some(TaskResult::Character(card)) => Some(ResultUrls::Character(CharacterUrls {
            username: &card.username,
            display_name: &card.display_name,
            character_id: &card.character_id,
            cameo_id: &card.cameo_id,
            profile_asset_url: &card.profile_asset_url,
        })),
        Some(TaskResult::EnhancedPrompt(_)) | None => None,
    };
    let result_text = match (&view.result, view.kind) {
        (Some(TaskResult::EnhancedPrompt(text)), _) => Some(Some(text.as_str())),
        (_, TaskKind::Enhance) => Some(None),
        _ => None,
    };
    to_json(&TaskJson {
        task_id: view.id.as_str(),
        task_type: view.kind.as_str(),
        status: view.status.as_str(),
        progress,
        model: &view.model,
        prompt: &view.prompt,
        result_urls,
        result_text,
        error_message: view.error_message.as_deref(),
        created_at: rfc3339_utc(view.created_at_ms),
        completed_at: view.completed_at_ms.map(rfc3339_utc),
    })
}

// === character card line ===

#[derive(Serialize)]
struct CardLine<'a> {
    event: &'static str,
    card: CardJson<'a>,
}

#[derive(Serialize)]
struct CardJson<'a> {
    username: &'a str,
    display_name: &'a str,
    character_id: &'a str,
    cameo_id: &'a str,
    profile_asset_url: &'a str,
    source_model: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_generation_id: Option<&'a str>,
}

/// The machine-readable line a character stream sends as content before its final message
/// (sora-backend.md 6.9.5 item 6), with its `\n`:
/// `{"event":"character_card","card":{"username","display_name","character_id","cameo_id",
/// "profile_asset_url","source_model":"avatar-create"[,"source_generation_id"]}}`.
///
/// PY's `instruction_set`, `public` and `created_at` are left out: the card does not carry
/// them, and the line only states what the gateway knows.
pub fn character_card_line(card: &CharacterCard) -> String {
    let mut line = to_json(&CardLine {
        event: "character_card",
        card: CardJson {
            username: &card.username,
            display_name: &card.display_name,
            character_id: &card.character_id,
            cameo_id: &card.cameo_id,
            profile_asset_url: &card.profile_asset_url,
            source_model: AVATAR_CREATE_MODEL,
            source_generation_id: card.source_generation_id.as_deref(),
        },
    });
    line.push('\n');
    line
}

// === /v1/models ===

#[derive(Serialize)]
struct ModelList {
    object: &'static str,
    data: Vec<ModelJson>,
}

#[derive(Serialize)]
struct ModelJson {
    id: &'static str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
    description: String,
}

/// The body of `GET /v1/models`: every model of [`catalog::models`], in order, as
/// `{"id","object":"model","created","owned_by":"sora2api","description"}` (decisions 11;
/// `created` is [`MODELS_CREATED_UNIX_S`]).
pub fn models_json() -> String {
    let data = catalog::models()
        .iter()
        .map(|m| ModelJson {
            id: m.id,
            object: "model",
            created: MODELS_CREATED_UNIX_S,
            owned_by: "sora2api",
            description: m.description(),
        })
        .collect();
    to_json(&ModelList { object: "list", data })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    const MS: u64 = 1_704_067_200_123; // 2024-01-01T00:00:00.123Z

    fn id() -> TaskId {
        TaskId::new(MS, 0x1234)
    }

    fn parse(body: &str) -> Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    fn view(kind: TaskKind, status: TaskStatus, result: Option<TaskResult>) -> TaskView {
        TaskView {
            id: id(),
            kind,
            status,
            progress: 45.5,
            model: "sora2-landscape-10s".into(),
            prompt: "A kitten running on the grass".into(),
            result,
            error_message: None,
            created_at_ms: MS,
            completed_at_ms: (status != TaskStatus::Processing).then_some(MS + 61_000),
        }
    }

    #[test]
    fn chat_completion_shape() {
        let body = chat_completion(&id(), 1_234_567_890, "sora2-landscape-10s", "a \"b\"\nc ✨");
        assert_eq!(
            parse(&body),
            json!({
                "id": format!("chatcmpl-{}", id()),
                "object": "chat.completion",
                "created": 1_234_567_890,
                "model": "sora2-landscape-10s",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "a \"b\"\nc ✨"},
                    "finish_reason": "stop"
                }],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            })
        );
        assert!(body.starts_with(r#"{"id":"chatcmpl-task_"#), "compact, id first: {body}");
        assert!(body.contains("✨"), "raw UTF-8: {body}");
    }

    #[test]
    fn async_ack_is_exact() {
        for kind in [TaskKind::Image, TaskKind::Video, TaskKind::Character, TaskKind::Enhance] {
            let body = async_ack(&id(), kind);
            assert_eq!(
                body,
                format!(
                    r#"{{"task_id":"{}","task_type":"{}","status":"processing","message":"Task submitted successfully. Use GET /v1/tasks/{{task_id}} to check status."}}"#,
                    id(),
                    kind.as_str()
                )
            );
        }
    }

    #[test]
    fn task_json_processing() {
        let body = task_json(&view(TaskKind::Video, TaskStatus::Processing, None));
        assert_eq!(
            body,
            format!(
                r#"{{"task_id":"{}","task_type":"video","status":"processing","progress":45.5,"model":"sora2-landscape-10s","prompt":"A kitten running on the grass","result_urls":null,"error_message":null,"created_at":"2024-01-01T00:00:00.123Z","completed_at":null}}"#,
                id()
            )
        );
    }

    #[test]
    fn task_json_completed_videos_and_images() {
        let v = view(
            TaskKind::Video,
            TaskStatus::Completed,
            Some(TaskResult::Videos(vec!["http://example.com/video.mp4".into()])),
        );
        assert_eq!(
            parse(&task_json(&v)),
            json!({
                "task_id": id().as_str(), "task_type": "video", "status": "completed",
                "progress": 100.0, "model": "sora2-landscape-10s",
                "prompt": "A kitten running on the grass",
                "result_urls": ["http://example.com/video.mp4"], "error_message": null,
                "created_at": "2024-01-01T00:00:00.123Z", "completed_at": "2024-01-01T00:01:01.123Z"
            })
        );
        let mut i = view(
            TaskKind::Image,
            TaskStatus::Completed,
            Some(TaskResult::Images(vec!["https://x/1.png".into(), "https://x/2.png".into()])),
        );
        i.model = "gpt-image".into();
        let got = parse(&task_json(&i));
        assert_eq!(got["task_type"], "image");
        assert_eq!(got["result_urls"], json!(["https://x/1.png", "https://x/2.png"]));
        assert_eq!(got["progress"], json!(100.0));
        assert!(got.get("result_text").is_none());
    }

    #[test]
    fn task_json_failed_keeps_progress_and_message() {
        let mut f = view(TaskKind::Video, TaskStatus::Failed, None);
        f.progress = 37.0;
        f.error_message = Some("Content policy violation: nudity".into());
        assert_eq!(
            parse(&task_json(&f)),
            json!({
                "task_id": id().as_str(), "task_type": "video", "status": "failed",
                "progress": 37.0, "model": "sora2-landscape-10s",
                "prompt": "A kitten running on the grass", "result_urls": null,
                "error_message": "Content policy violation: nudity",
                "created_at": "2024-01-01T00:00:00.123Z", "completed_at": "2024-01-01T00:01:01.123Z"
            })
        );
    }

    #[test]
    fn task_json_character() {
        let card = CharacterCard {
            username: "cat.tom".into(),
            display_name: "Tom".into(),
            character_id: "ch_1".into(),
            cameo_id: "cameo_1".into(),
            profile_asset_url: "https://cdn/a.webp".into(),
            source_generation_id: Some("gen_1".into()),
        };
        let mut c =
            view(TaskKind::Character, TaskStatus::Completed, Some(TaskResult::Character(card)));
        c.model = "avatar-create".into();
        c.prompt = String::new();
        let got = parse(&task_json(&c));
        assert_eq!(
            got["result_urls"],
            json!({
                "username": "cat.tom", "display_name": "Tom", "character_id": "ch_1",
                "cameo_id": "cameo_1", "profile_asset_url": "https://cdn/a.webp"
            })
        );
        assert_eq!(got["task_type"], "character");
        assert_eq!(got["model"], "avatar-create");
    }

    #[test]
    fn task_json_enhance() {
        let mut running = view(TaskKind::Enhance, TaskStatus::Processing, None);
        running.progress = 0.0;
        let got = parse(&task_json(&running));
        assert_eq!(got["result_urls"], Value::Null);
        assert_eq!(got.get("result_text"), Some(&Value::Null));
        let done = view(
            TaskKind::Enhance,
            TaskStatus::Completed,
            Some(TaskResult::EnhancedPrompt("A cat, golden hour".into())),
        );
        let body = task_json(&done);
        assert!(
            body.contains(
                r#""result_urls":null,"result_text":"A cat, golden hour","error_message":null"#
            ),
            "{body}"
        );
    }

    #[test]
    fn task_json_clamps_progress() {
        for (p, want) in [(f32::NAN, 0.0), (-3.0, 0.0), (250.0, 100.0), (33.3, 33.3)] {
            let mut v = view(TaskKind::Video, TaskStatus::Processing, None);
            v.progress = p;
            let got = parse(&task_json(&v));
            let shown = got["progress"].as_f64().unwrap();
            assert!((shown - want).abs() < 1e-6, "{p} -> {shown}");
        }
        let mut v = view(TaskKind::Video, TaskStatus::Processing, None);
        v.progress = 33.3;
        assert!(task_json(&v).contains(r#""progress":33.3,"#), "no f32 noise in the text");
    }

    #[test]
    fn models_json_lists_the_catalog_in_order() {
        let got = parse(&models_json());
        assert_eq!(got["object"], "list");
        let data = got["data"].as_array().unwrap();
        assert_eq!(data.len(), 31);
        for (item, model) in data.iter().zip(catalog::models()) {
            assert_eq!(
                item,
                &json!({
                    "id": model.id, "object": "model", "created": MODELS_CREATED_UNIX_S,
                    "owned_by": "sora2api", "description": model.description()
                })
            );
        }
        assert_eq!(data[0]["id"], "gpt-image");
        assert_eq!(data[0]["description"], "Image generation - 360x360");
        assert_eq!(data[30]["id"], "avatar-create");
        assert_eq!(
            super::super::rfc3339_utc(MODELS_CREATED_UNIX_S * 1000),
            "2025-09-30T00:00:00.000Z"
        );
    }

    #[test]
    fn character_card_line_shape() {
        let mut card = CharacterCard {
            username: "u".into(),
            display_name: "Tom 猫".into(),
            character_id: "ch".into(),
            cameo_id: "ca".into(),
            profile_asset_url: "https://cdn/a.webp".into(),
            source_generation_id: None,
        };
        assert_eq!(
            character_card_line(&card),
            "{\"event\":\"character_card\",\"card\":{\"username\":\"u\",\"display_name\":\"Tom 猫\",\"character_id\":\"ch\",\"cameo_id\":\"ca\",\"profile_asset_url\":\"https://cdn/a.webp\",\"source_model\":\"avatar-create\"}}\n"
        );
        card.source_generation_id = Some("gen_1".into());
        let line = character_card_line(&card);
        assert!(
            line.ends_with(
                "\"source_model\":\"avatar-create\",\"source_generation_id\":\"gen_1\"}}\n"
            ),
            "{line}"
        );
    }
}
