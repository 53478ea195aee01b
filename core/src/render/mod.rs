//! Task events -> SSE chunks, chat.completion, task JSON (being written).

mod json;
mod text;
mod time;

pub use json::{
    async_ack, character_card_line, chat_completion, completion_id, models_json, task_json,
    ASYNC_ACK_MESSAGE, MODELS_CREATED_UNIX_S,
};
pub use text::{
    character_creation_failed, content_violation_content, final_content, progress_text,
    progress_texts, EXTENSION_NEEDS_GENERATION_ID, EXTENSION_NEEDS_PROMPT,
};
pub use time::rfc3339_utc;
