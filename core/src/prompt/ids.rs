//! Remix ids (`s_` + 32 lowercase hex, alone or inside a share link) and generation ids
//! (`gen_` + ASCII letters and digits), sora-backend.md 6.5 and decisions 9.
//!
//! ```
//! use sora2api_core::prompt::{GenerationId, RemixId};
//!
//! let prompt = "make it rain https://sora.chatgpt.com/p/s_0123456789abcdef0123456789abcdef please";
//! let id = RemixId::find(prompt).unwrap();
//! assert_eq!(id.as_str(), "s_0123456789abcdef0123456789abcdef");
//! assert_eq!(RemixId::strip_from(prompt), "make it rain please");
//!
//! let gen = GenerationId::find("extend gen_01abcXYZ with fireworks").unwrap();
//! assert_eq!(gen.as_str(), "gen_01abcXYZ");
//! assert_eq!(GenerationId::strip_from("extend gen_01abcXYZ with fireworks"), "extend with fireworks");
//! ```

use std::fmt;

/// Length of a remix id: `s_` + 32 hex digits.
const REMIX_LEN: usize = 34;

/// The prefix of a generation id.
const GEN_PREFIX: &[u8] = b"gen_";

/// Joins the whitespace-separated words of `text` with single spaces (collapses every run of
/// whitespace, newlines included, and trims).
pub(super) fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

// === impl RemixId ===

/// A Sora share id: `s_` + exactly 32 lowercase hex digits.
///
/// A value of this type always has that form (it is only made by [`RemixId::find`] and
/// [`RemixId::normalize`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemixId(String);

/// Whether `bytes` starts with a remix id (`s_` + 32 lowercase hex; what follows is ignored).
fn is_remix_at(bytes: &[u8]) -> bool {
    match bytes.get(..REMIX_LEN) {
        Some([b's', b'_', hex @ ..]) => hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        _ => false,
    }
}

impl RemixId {
    /// The first remix id anywhere in `text`, as the regex `s_[a-f0-9]{32}` finds it: the first
    /// position where `s_` is followed by 32 lowercase hex digits (what follows them does not
    /// matter). A share link matches through its embedded id. Uppercase hex does not match.
    pub fn find(text: &str) -> Option<RemixId> {
        let bytes = text.as_bytes();
        (0..bytes.len())
            .find(|&i| bytes.get(i..).is_some_and(is_remix_at))
            // The id is ASCII, so both ends are char boundaries.
            .and_then(|i| text.get(i..i + REMIX_LEN))
            .map(|id| RemixId(id.to_owned()))
    }

    /// Normalises an explicit `remix_target_id` field: a bare id or any share link containing
    /// one (such as `https://sora.chatgpt.com/p/s_<32 hex>`) reduces to the id; surrounding
    /// whitespace is ignored. This is the same scan as [`RemixId::find`]; `None` (no id
    /// anywhere) is a 400 for the caller.
    pub fn normalize(field: &str) -> Option<RemixId> {
        RemixId::find(field.trim())
    }

    /// The prompt without its remix references: every share link (a whitespace-delimited token
    /// that starts with `http://` or `https://` and contains a remix id) is removed, then every
    /// bare id (including ids that a removal joins together, so the result never contains an
    /// id), then runs of whitespace collapse to one space and the ends are trimmed.
    pub fn strip_from(prompt: &str) -> String {
        // 1. Share links, token by token; a removed token leaves its whitespace behind.
        let mut without_links = String::with_capacity(prompt.len());
        let mut rest = prompt;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            let (space, tail) = rest.split_at(start);
            let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
            let (token, tail) = tail.split_at(end);
            without_links.push_str(space);
            if !is_share_link(token) {
                without_links.push_str(token);
            }
            rest = tail;
        }
        without_links.push_str(rest);

        // 2. Bare ids, with a stack: after each char, drop an id that ends there. The output
        //    never holds an id, so one pass is linear and leaves none behind.
        let mut out = String::with_capacity(without_links.len());
        for c in without_links.chars() {
            out.push(c);
            let tail_start = out.len().saturating_sub(REMIX_LEN);
            if out.len() >= REMIX_LEN && out.as_bytes().get(tail_start..).is_some_and(is_remix_at) {
                out.truncate(tail_start);
            }
        }
        collapse_whitespace(&out)
    }

    /// The id, `s_` + 32 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a whitespace-free token is a share link: an http(s) URL containing a remix id.
fn is_share_link(token: &str) -> bool {
    let lower = |n: usize| token.get(..n).map(str::to_ascii_lowercase);
    let is_url = lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://");
    is_url && RemixId::find(token).is_some()
}

impl fmt::Display for RemixId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl GenerationId ===

/// An upstream generation id: `gen_` + one or more ASCII letters and digits.
///
/// A value of this type always has that form (it is only made by [`GenerationId::find`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GenerationId(String);

impl GenerationId {
    /// The first generation id in `text`, as the regex `gen_[a-zA-Z0-9]+` finds it: the first
    /// `gen_` followed by at least one ASCII letter or digit, with the maximal run of them.
    pub fn find(text: &str) -> Option<GenerationId> {
        let bytes = text.as_bytes();
        let start = (0..bytes.len()).find(|&i| {
            bytes.get(i..i + GEN_PREFIX.len()) == Some(GEN_PREFIX)
                && bytes.get(i + GEN_PREFIX.len()).is_some_and(u8::is_ascii_alphanumeric)
        })?;
        let body = bytes.get(start + GEN_PREFIX.len()..)?;
        let run = body.iter().take_while(|b| b.is_ascii_alphanumeric()).count();
        // Everything matched is ASCII, so both ends are char boundaries.
        text.get(start..start + GEN_PREFIX.len() + run).map(|id| GenerationId(id.to_owned()))
    }

    /// The prompt without generation ids: every `gen_[a-zA-Z0-9]+` is removed (including ids
    /// that a removal joins together, so the result never contains one), then runs of
    /// whitespace collapse to one space and the ends are trimmed. An empty result is the
    /// caller's error to report.
    pub fn strip_from(prompt: &str) -> String {
        // A stack, as for remix ids: the output never holds `gen_` followed by an alphanumeric.
        // When an alphanumeric would follow a trailing `gen_`, the `gen_` goes and the rest of
        // the alphanumeric run is skipped.
        let mut out = String::with_capacity(prompt.len());
        let mut skipping = false;
        for c in prompt.chars() {
            if !c.is_ascii_alphanumeric() {
                skipping = false;
                out.push(c);
            } else if skipping {
                // Still inside the removed id.
            } else if out.as_bytes().ends_with(GEN_PREFIX) {
                out.truncate(out.len() - GEN_PREFIX.len());
                skipping = true;
            } else {
                out.push(c);
            }
        }
        collapse_whitespace(&out)
    }

    /// The id, `gen_` + ASCII letters and digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GenerationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef";

    fn id() -> String {
        format!("s_{HEX}")
    }

    #[test]
    fn remix_find() {
        let id = id();
        let cases: Vec<(String, Option<String>)> = vec![
            (id.clone(), Some(id.clone())),
            (format!("remix {id} with rain"), Some(id.clone())),
            (format!("https://sora.chatgpt.com/p/{id}"), Some(id.clone())),
            (format!("see https://sora.chatgpt.com/p/{id}?x=1 now"), Some(id.clone())),
            // Glued to other text on both sides: regex semantics, no word boundaries.
            (format!("xx{id}ff"), Some(id.clone())),
            // A 33rd hex digit does not matter.
            (format!("{id}a"), Some(id.clone())),
            // The first of two.
            (format!("{id} s_{}", "f".repeat(32)), Some(id.clone())),
            // A broken candidate before a good one.
            (format!("s_{} {id}", &HEX[..31]), Some(id.clone())),
            // `s_s_<hex>`: the match starts at the second `s_`.
            (format!("s_{id}"), Some(id.clone())),
            (format!("s_{}", HEX.to_uppercase()), None),
            (format!("s_{}", &HEX[..31]), None),
            (format!("S_{HEX}"), None),
            (format!("s-{HEX}"), None),
            (format!("s_{}g", &HEX[..31]), None),
            (String::new(), None),
            ("s_".to_owned(), None),
            ("ünïcödé s_ 🎬".to_owned(), None),
            (format!("🎬{id}🎬"), Some(id.clone())),
        ];
        for (text, want) in cases {
            assert_eq!(RemixId::find(&text).map(|r| r.to_string()), want, "{text:?}");
        }
    }

    #[test]
    fn remix_normalize() {
        let id = id();
        let cases: Vec<(String, Option<String>)> = vec![
            (id.clone(), Some(id.clone())),
            (format!("  {id}\n"), Some(id.clone())),
            (format!("https://sora.chatgpt.com/p/{id}"), Some(id.clone())),
            (format!("http://example.com/p/{id}/"), Some(id.clone())),
            ("https://sora.chatgpt.com/p/".to_owned(), None),
            ("gen_abc".to_owned(), None),
            (String::new(), None),
            (HEX.to_owned(), None),
        ];
        for (field, want) in cases {
            let got = RemixId::normalize(&field);
            assert_eq!(got.as_ref().map(RemixId::as_str), want.as_deref(), "{field:?}");
        }
    }

    #[test]
    fn remix_strip() {
        let id = id();
        let cases: Vec<(String, &str)> = vec![
            (format!("{id} a cat"), "a cat"),
            (format!("a cat {id}"), "a cat"),
            (format!("a  {id}\n\ncat"), "a cat"),
            (format!("https://sora.chatgpt.com/p/{id} make it snow"), "make it snow"),
            (format!("make it snow\nhttps://sora.chatgpt.com/p/{id}?utm=1"), "make it snow"),
            (format!("HTTPS://sora.chatgpt.com/p/{id} snow"), "snow"),
            // A link without an id is not a share link and stays.
            ("see https://example.com/x please".to_owned(), "see https://example.com/x please"),
            // A token that does not start with the scheme loses only the bare id.
            (
                format!("(https://sora.chatgpt.com/p/{id}) snow"),
                "(https://sora.chatgpt.com/p/) snow",
            ),
            (format!("x{id}y"), "xy"),
            // A removal that joins a new id removes that too.
            (format!("s_s_{HEX}{HEX} go"), "go"),
            (format!("{id}{id}"), ""),
            // Uppercase and short ids are not ids.
            (format!("s_{} keep", HEX.to_uppercase()), "s_0123456789ABCDEF0123456789ABCDEF keep"),
            ("no ids here ".to_owned(), "no ids here"),
            (format!("猫 {id} が跳ぶ"), "猫 が跳ぶ"),
        ];
        for (prompt, want) in cases {
            let got = RemixId::strip_from(&prompt);
            assert_eq!(got, want, "{prompt:?}");
            assert!(RemixId::find(&got).is_none());
        }
    }

    #[test]
    fn generation_find() {
        let cases: [(&str, Option<&str>); 9] = [
            ("gen_01abcXYZ", Some("gen_01abcXYZ")),
            ("extend gen_01abc-more", Some("gen_01abc")),
            ("xgen_abc_def", Some("gen_abc")),
            ("gen_ gen_x", Some("gen_x")),
            ("gen_", None),
            ("gen_-abc", None),
            ("GEN_abc", None),
            ("gen_é", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = GenerationId::find(text);
            assert_eq!(got.as_ref().map(GenerationId::as_str), want, "{text:?}");
            assert_eq!(got.map(|g| g.to_string()).as_deref(), want);
        }
    }

    #[test]
    fn generation_strip() {
        let cases: [(&str, &str); 9] = [
            ("gen_01abc then fireworks", "then fireworks"),
            ("then  gen_01abc\nfireworks", "then fireworks"),
            ("gen_a gen_b", ""),
            ("keep gen_ and gen_-x", "keep gen_ and gen_-x"),
            ("a gen_abc_def", "a _def"),
            // A removal that joins a new id removes that too.
            ("gengen_x_abc end", "end"),
            ("gegen_xn_abc end", "ge_abc end"),
            ("猫 gen_X 🎬", "猫 🎬"),
            ("", ""),
        ];
        for (prompt, want) in cases {
            let got = GenerationId::strip_from(prompt);
            assert_eq!(got, want, "{prompt:?}");
            assert!(GenerationId::find(&got).is_none());
        }
    }
}
