//! Task events -> SSE chunks, chat.completion, task JSON (placeholder: being written).
