//! Task events -> what clients see: SSE chunks, `chat.completion`, task JSON, `/v1/models`.
//!
//! Everything here is a pure function of its arguments (times come in as unix seconds or
//! milliseconds). The shell picks the face by the request's response mode:
//!
//! - **stream**: one [`StreamRenderer`] per client stream turns each task [`Event`] into SSE
//!   frames; progress goes out as `reasoning_content`, the result as `content` with
//!   `finish_reason: "stop"`, and every stream ends with exactly one `data: [DONE]`.
//! - **blocking**: [`chat_completion`] with the [`final_content`] of the result.
//! - **async**: [`async_ack`] at once; later [`task_json`] for `GET /v1/tasks/{id}`.
//!
//! The texts (sora-backend.md 6.9 in English) are all in [`progress_texts`] and
//! [`final_content`].
//!
//! ```
//! use sora2api_core::render::{chat_completion, final_content, StreamRenderer};
//! use sora2api_core::task::{Event, Flow, TaskId, TaskResult};
//!
//! let id = TaskId::new(1_730_000_000_000, 42);
//! let result = TaskResult::Videos(vec!["https://cdn.example/v.mp4".into()]);
//!
//! // Streaming: feed events, send what comes back.
//! let mut sse = StreamRenderer::new(&id, 1_730_000_000, "sora2-landscape-10s");
//! let mut body = String::new();
//! for event in [
//!     Event::Started(Flow::Generation { with_image: false }),
//!     Event::VideoProgress { percent: 45.0, status: "running".into() },
//!     Event::Completed(result.clone()),
//! ] {
//!     body.push_str(&sse.event(&event));
//! }
//! assert!(body.contains(r#""reasoning_content":"\n**Video Generation Progress**: 45% (running)\n""#));
//! assert!(body.ends_with("\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"));
//! assert_eq!(body.matches("data: [DONE]").count(), 1);
//!
//! // Blocking: one chat.completion with the same final content.
//! let json = chat_completion(&id, 1_730_000_000, "sora2-landscape-10s", &final_content(&result));
//! assert!(json.contains(r#""content":"```html\n<video src='https://cdn.example/v.mp4' controls></video>\n```""#));
//! ```
//!
//! [`Event`]: crate::task::Event

mod json;
mod sse;
mod text;
mod time;

pub use json::{
    async_ack, character_card_line, chat_completion, completion_id, models_json, task_json,
    ASYNC_ACK_MESSAGE, MODELS_CREATED_UNIX_S,
};
pub use sse::{StreamRenderer, DONE, KEEP_ALIVE};
pub use text::{
    character_creation_failed, content_violation_content, final_content, progress_text,
    progress_texts, EXTENSION_NEEDS_GENERATION_ID, EXTENSION_NEEDS_PROMPT,
};
pub use time::rfc3339_utc;
