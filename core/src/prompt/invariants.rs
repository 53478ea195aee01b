//! The invariants of the prompt directives, checked by the fuzz entry points
//! (`crate::fuzzing`) and by the deterministic pseudo-random tests below.
//!
//! Each check takes any text, must never panic except through a failed assertion, and asserts
//! what must hold for that text.

use super::ids::collapse_whitespace;
use super::{extract_style, GenerationId, RemixId, Storyboard};
use crate::catalog;

/// Whether `text` is already trimmed with single spaces between words.
fn is_collapsed(text: &str) -> bool {
    collapse_whitespace(text) == text
}

/// Checks `{style}` extraction, remix and generation ids, and storyboard parsing on `text`.
pub(crate) fn check_directives(text: &str) {
    check_style(text);
    check_remix(text);
    check_generation(text);
    check_storyboard(text);
}

fn check_style(text: &str) {
    let (clean, style) = extract_style(text);
    match style {
        None => assert_eq!(clean, text, "no style, but the prompt changed"),
        Some(style) => {
            assert!(clean.len() <= text.len(), "extraction made the prompt longer");
            assert!(is_collapsed(&clean), "extracted prompt not collapsed: {clean:?}");
            assert_eq!(style.id, style.id.to_ascii_lowercase());
            assert!(catalog::style(style.id).is_some());
            assert_eq!(extract_style(&clean).1, None, "a style group survived: {clean:?}");
        }
    }
}

fn check_remix(text: &str) {
    let found = RemixId::find(text);
    if let Some(id) = &found {
        let s = id.as_str();
        assert_eq!(s.len(), 34);
        assert!(s.starts_with("s_"));
        assert!(s.bytes().skip(2).all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert!(text.contains(s));
        assert_eq!(RemixId::find(s).as_ref(), Some(id));
        assert_eq!(id.to_string(), s);
    }
    assert_eq!(RemixId::normalize(text), found);
    let stripped = RemixId::strip_from(text);
    assert_eq!(RemixId::find(&stripped), None, "an id survived: {stripped:?}");
    assert!(stripped.len() <= text.len());
    assert!(is_collapsed(&stripped));
    if found.is_none() {
        assert_eq!(stripped, collapse_whitespace(text), "nothing to strip, but text went");
    }
}

fn check_generation(text: &str) {
    let found = GenerationId::find(text);
    if let Some(id) = &found {
        let s = id.as_str();
        assert!(s.len() > 4);
        assert!(s.starts_with("gen_"));
        assert!(s.bytes().skip(4).all(|b| b.is_ascii_alphanumeric()));
        assert!(text.contains(s));
        assert_eq!(GenerationId::find(s).as_ref(), Some(id));
    }
    let stripped = GenerationId::strip_from(text);
    assert_eq!(GenerationId::find(&stripped), None, "an id survived: {stripped:?}");
    assert!(stripped.len() <= text.len());
    assert!(is_collapsed(&stripped));
    if found.is_none() {
        assert_eq!(stripped, collapse_whitespace(text), "nothing to strip, but text went");
    }
}

fn check_storyboard(text: &str) {
    match Storyboard::parse(text) {
        Ok(None) => {}
        Ok(Some(board)) => {
            assert!(text.contains('['));
            assert!((1..=100).contains(&board.shots.len()));
            if let Some(preamble) = &board.preamble {
                assert!(!preamble.is_empty() && preamble.trim() == preamble);
            }
            for shot in &board.shots {
                assert!(!shot.scene.is_empty() && shot.scene.trim() == shot.scene);
                assert!((1..=6_000).contains(&shot.duration.hundredths()));
                assert!(text.contains(&format!("[{}s]", shot.duration)));
            }
            let total = board.shots.iter().map(|s| s.duration.hundredths()).sum::<u64>();
            assert_eq!(board.total_hundredths(), total);
            let upstream = board.render_upstream();
            let head =
                if board.preamble.is_some() { "current timeline:\nShot 1:\n" } else { "Shot 1:\n" };
            assert!(upstream.starts_with(head));
        }
        Err(err) => {
            assert!(text.contains('['));
            assert!((1..=101).contains(&err.shot()));
            let message = err.to_string();
            assert!(message.starts_with(&format!("Shot {}: ", err.shot())));
            assert!(message.len() < 300, "message too long: {message}");
        }
    }
}

/// Checks that a parsed storyboard renders to a client text that parses back to itself.
pub(crate) fn check_storyboard_roundtrip(text: &str) {
    if let Ok(Some(board)) = Storyboard::parse(text) {
        let rendered = board.render_client();
        assert_eq!(Storyboard::parse(&rendered), Ok(Some(board.clone())), "via {rendered:?}");
        assert!(!board.render_upstream().is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift generator: deterministic inputs without an RNG dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Pieces that the directives care about, glued together at random.
    const FRAGMENTS: &[&str] = &[
        "[",
        "]",
        "[5s]",
        "[5.0s]",
        "[0s]",
        "[ 5 s]",
        "[12.5s]",
        "[5]",
        "5",
        ".",
        "s",
        "S",
        "-",
        " ",
        "  ",
        "\n",
        "\r\n",
        "\t",
        "`",
        "```",
        "```text\n",
        "\n```",
        "{",
        "}",
        "{anime}",
        "{ Retro }",
        "{word}",
        "anime",
        "s_",
        "0123456789abcdef",
        "0123456789ABCDEF",
        "https://sora.chatgpt.com/p/",
        "gen_",
        "gen",
        "_",
        "x",
        "Ab9",
        "cat jumps",
        "é",
        "猫",
        "🎬",
        "\u{3000}",
        "\u{a0}",
    ];

    const TRICKY: &[&str] = &[
        "",
        "[",
        "]",
        "[]",
        "[s]",
        "[5s]",
        "```",
        "```\n```",
        "```\n[5s]a\n```",
        "``` [5s]a\n```",
        "```\n```text\n[5s]a\n```\n```",
        "```text\n```\n[5s]a\n```\n```",
        "x\n```\n[5s]a\n```",
        "[5s]a[",
        "[5s]a [5",
        "[5s]a [5 ",
        "[5s]a\u{3000}[5",
        "[5s]é[5s]猫",
        "{anime}[5s]a",
        "{}{anime}",
        "{{anime}}",
        "s_s_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "gengen_x_y",
        "https://sora.chatgpt.com/p/s_0123456789abcdef0123456789abcdef",
    ];

    fn check_all(text: &str) {
        check_directives(text);
        check_storyboard_roundtrip(text);
    }

    #[test]
    fn tricky_inputs() {
        for text in TRICKY {
            check_all(text);
        }
    }

    #[test]
    fn pseudo_random_fragments() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut boards = 0;
        for _ in 0..3000 {
            let pieces = rng.below(24);
            let text: String = (0..pieces).map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())]).collect();
            check_all(&text);
            if let Ok(Some(_)) = Storyboard::parse(&text) {
                boards += 1;
            }
        }
        // The generator must actually reach the interesting paths.
        assert!(boards > 100, "only {boards} storyboards generated");
    }

    #[test]
    fn pseudo_random_bytes() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..500 {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    // Mostly the bytes the scanners look at, sometimes anything.
                    let interesting = b"[]{}s_5.0 \n`g";
                    if rng.below(4) == 0 {
                        rng.next() as u8
                    } else {
                        interesting[rng.below(interesting.len())]
                    }
                })
                .collect();
            check_all(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn large_inputs_stay_linear() {
        // Each of these would be quadratic for a naive scanner; they must finish quickly.
        let size = 1 << 18;
        let cases = [
            "[".repeat(size),
            "[5555555555555555".repeat(size / 16),
            "[5s]".repeat(size / 4),
            "[5s]x ".repeat(size / 6),
            format!("[5s]{}", "[x".repeat(size / 2)),
            "{".repeat(size),
            "{}".repeat(size / 2),
            "s_0123456789abcdef0123456789abcde".repeat(size / 33),
            "gen_".repeat(size / 4),
        ];
        for text in &cases {
            check_directives(text);
        }
        assert_eq!(Storyboard::parse(&cases[3]).map_err(|e| e.shot()), Err(101));
    }
}
