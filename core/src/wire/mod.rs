//! Client-facing request shapes (placeholder: being written).
