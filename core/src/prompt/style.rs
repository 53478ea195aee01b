//! `{style}` extraction (sora-backend.md 6.4, decisions 7).

use super::ids::collapse_whitespace;
use crate::catalog::{self, Style};

/// The `{...}` groups of `text` as the regex `\{([^}]+)\}` finds them, left to right and
/// non-overlapping: a `{`, one or more chars that are not `}`, then `}`. Each item is the
/// group's byte range (braces included) and its content.
fn groups(text: &str) -> impl Iterator<Item = (std::ops::Range<usize>, &str)> {
    let mut from = 0;
    std::iter::from_fn(move || loop {
        let open = from + text.get(from..)?.find('{')?;
        // `{` is one byte, so `open + 1` is a char boundary.
        let close = open + 1 + text.get(open + 1..)?.find('}')?;
        if close == open + 1 {
            // `{}`: no match here; the regex goes on at the next position.
            from = open + 1;
            continue;
        }
        from = close + 1;
        return Some((open..close + 1, text.get(open + 1..close)?));
    })
}

/// The known style a group's content names, if any: trimmed, without whitespace, and a style
/// id in any ASCII case.
fn style_of(content: &str) -> Option<&'static Style> {
    let id = content.trim();
    if id.contains(char::is_whitespace) {
        return None;
    }
    catalog::style(id)
}

/// Extracts the style directive from a prompt.
///
/// The rule (sora-backend.md 6.4 as amended by decisions 7):
/// 1. Scan the `{...}` groups like the regex `\{([^}]+)\}` (a `{`, one or more chars that are
///    not `}`, a `}`), left to right and non-overlapping.
/// 2. The style is the **first** group whose trimmed content contains no whitespace and names a
///    known style ([`catalog::style`], case-insensitive).
/// 3. If there is one, every group that names a known style is removed (unknown groups such as
///    `{word}` stay as literal prompt text), runs of whitespace (newlines included) collapse to
///    one space, and the ends are trimmed. The style's id is lower case.
/// 4. If there is none, the prompt comes back unchanged (not even trimmed) with `None`.
///
/// ```
/// use sora2api_core::prompt::extract_style;
///
/// let (prompt, style) = extract_style("{Anime} A cat  {wearing} a hat");
/// assert_eq!(prompt, "A cat {wearing} a hat");
/// assert_eq!(style.map(|s| s.id), Some("anime"));
///
/// assert_eq!(extract_style(" {word} stays "), (" {word} stays ".to_owned(), None));
/// ```
pub fn extract_style(prompt: &str) -> (String, Option<&'static Style>) {
    let Some(style) = groups(prompt).find_map(|(_, content)| style_of(content)) else {
        return (prompt.to_owned(), None);
    };
    let mut kept = String::with_capacity(prompt.len());
    let mut from = 0;
    for (range, content) in groups(prompt) {
        if style_of(content).is_some() {
            kept.push_str(prompt.get(from..range.start).unwrap_or_default());
            from = range.end;
        }
    }
    kept.push_str(prompt.get(from..).unwrap_or_default());
    (collapse_whitespace(&kept), Some(style))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_style_in_every_case() {
        for style in catalog::styles() {
            let upper = style.id.to_ascii_uppercase();
            let mut title = style.id.to_owned();
            title[..1].make_ascii_uppercase();
            for written in [style.id.to_owned(), upper, title] {
                for (prompt, want) in [
                    (format!("{{{written}}}A cat running"), "A cat running"),
                    (format!("A cat {{{written}}} running"), "A cat running"),
                    (format!("A cat running\n{{ {written} }}"), "A cat running"),
                ] {
                    let (clean, got) = extract_style(&prompt);
                    assert_eq!(got.map(|s| s.id), Some(style.id), "{prompt:?}");
                    assert_eq!(clean, want, "{prompt:?}");
                }
            }
        }
    }

    #[test]
    fn table() {
        // (prompt, clean prompt, style)
        let cases: [(&str, &str, Option<&str>); 19] = [
            ("{anime}A cat running", "A cat running", Some("anime")),
            ("{ANIME}  A cat\n\nrunning  ", "A cat running", Some("anime")),
            // The first known group wins; every known group goes.
            ("{retro} a {comic} cat", "a cat", Some("retro")),
            ("{comic} a {retro} cat", "a cat", Some("comic")),
            // An unknown group before a known one does not stop the scan, and stays.
            ("{word} a {golden} cat", "{word} a cat", Some("golden")),
            ("{a b} {news} c", "{a b} c", Some("news")),
            // Braces with spaces around the id.
            ("{  selfie\t} a cat", "a cat", Some("selfie")),
            // A space inside the id is not a style.
            ("{sel fie} a cat", "{sel fie} a cat", None),
            // No style: unchanged, not even trimmed.
            ("  a cat  running \n", "  a cat  running \n", None),
            (" {word} stays ", " {word} stays ", None),
            ("{} {anime", "{} {anime", None),
            ("{}", "{}", None),
            // `{{anime}` is one group with content `{anime`.
            ("{{anime} cat", "{{anime} cat", None),
            // `{}` is skipped and the next `{` starts a group.
            ("{}{anime} cat", "{} cat", Some("anime")),
            ("{anime}}", "}", Some("anime")),
            ("a{anime}b", "ab", Some("anime")),
            ("猫が{Festive}走る🎬", "猫が走る🎬", Some("festive")),
            ("{nostalgic}", "", Some("nostalgic")),
            ("", "", None),
        ];
        for (prompt, want_clean, want_style) in cases {
            let (clean, style) = extract_style(prompt);
            assert_eq!(
                (clean.as_str(), style.map(|s| s.id)),
                (want_clean, want_style),
                "{prompt:?}"
            );
        }
    }

    #[test]
    fn groups_follow_the_regex() {
        let got: Vec<&str> = groups("{a}{}{b{c}d}{e").map(|(_, c)| c).collect();
        assert_eq!(got, ["a", "b{c"]);
        let got: Vec<_> = groups("x{é}y").map(|(r, _)| (r.start, r.end)).collect();
        assert_eq!(got, [(1, 5)]);
    }
}
