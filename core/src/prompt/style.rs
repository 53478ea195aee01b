//! `{style}` extraction (placeholder: the prompt module is being written).

use crate::catalog::Style;

/// Extracts the style directive.
pub fn extract_style(prompt: &str) -> (String, Option<&'static Style>) {
    (prompt.to_owned(), None)
}
