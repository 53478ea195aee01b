//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`).
//!
//! Each function takes the raw fuzz input, must never panic, and asserts the invariants of
//! the code under test (a failed assertion is a crash the fuzzer reports).

use crate::prompt::invariants;

/// Prompt directives on any text (the input as lossy UTF-8): `{style}` extraction, remix and
/// generation id finding and stripping, and storyboard parsing never panic, and their results
/// hold their invariants (found ids are substrings of the input of the right form, stripped
/// text holds no id and is collapsed, a style-free prompt is unchanged, storyboard errors name
/// shot 1 to 101).
pub fn prompt_directives(data: &[u8]) {
    invariants::check_directives(&String::from_utf8_lossy(data));
}

/// Storyboard round trip: whatever [`crate::prompt::Storyboard::parse`] accepts renders with
/// `render_client` to a text that parses back to the same storyboard, and `render_upstream`
/// does not panic.
pub fn storyboard_roundtrip(data: &[u8]) {
    invariants::check_storyboard_roundtrip(&String::from_utf8_lossy(data));
}
