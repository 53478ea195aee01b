//! Task events -> SSE chunks, chat.completion, task JSON (being written).

mod time;

pub use time::rfc3339_utc;
