//! Task events -> SSE chunks, chat.completion, task JSON (being written).

mod text;
mod time;

pub use text::{
    character_creation_failed, content_violation_content, final_content, progress_text,
    progress_texts, EXTENSION_NEEDS_GENERATION_ID, EXTENSION_NEEDS_PROMPT,
};
pub use time::rfc3339_utc;
