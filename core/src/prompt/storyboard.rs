//! The storyboard grammar (client-api.md "Storyboard grammar", sora-backend.md 6.5,
//! decisions 8).
//!
//! A storyboard is an optional preamble followed by shots, each a marker `[<seconds>s]` and the
//! shot's scene: `[5.0s]The cat jumps out of the plane [5.0s]The cat lands`. Shots may sit on
//! one line or on separate lines, and the whole text may be wrapped in one Markdown code fence.
//!
//! ```
//! use sora2api_core::prompt::Storyboard;
//!
//! let sb = Storyboard::parse("A cat adventure\n[5.0s]cat jumps\n[5s]cat lands").unwrap().unwrap();
//! assert_eq!(sb.preamble.as_deref(), Some("A cat adventure"));
//! assert_eq!(sb.shots[1].duration.as_str(), "5");
//! assert_eq!(sb.total_hundredths(), 1000);
//! assert_eq!(
//!     sb.render_upstream(),
//!     "current timeline:\nShot 1:\nduration: 5.0sec\nScene: cat jumps\n\n\
//!      Shot 2:\nduration: 5sec\nScene: cat lands\n\ninstructions:\nA cat adventure"
//! );
//!
//! // Not a storyboard at all, versus a broken one.
//! assert_eq!(Storyboard::parse("a [tag] and [5] things"), Ok(None));
//! let err = Storyboard::parse("[5s]cat jumps [0s]cat lands").unwrap_err();
//! assert_eq!(err.shot(), 2);
//! ```
//!
//! # Markers
//!
//! A valid marker is `[<digits>(.<digits>)?s]`: at most 6 digits before the point, at most 2
//! after it, a value above zero and a lower-case `s`, with no spaces.
//!
//! A *marker-like* token is what a person clearly meant as a duration marker: a `[`, at most
//! 16 chars, a `]`, where the inside, after trimming spaces, ends with `s` or `S` and otherwise
//! consists only of ASCII digits, `.`, `-`, `+` and spaces, with at least one digit. `[0s]`,
//! `[-5s]`, `[5.123s]`, `[ 5 s]`, `[5S]`, `[.5s]`, `[5.s]` and `[1234567s]` are marker-like.
//! `[5]`, `[5 sec]`, `[1e3s]`, `[s]`, `[tag]` and `[jumps]` are not: they are plain text.
//!
//! A text with no marker-like token is not a storyboard (`Ok(None)`). A text with one is a
//! storyboard attempt: every marker-like token must then be a valid marker, or parsing fails
//! with an error naming the shot.
//!
//! # Shots and preamble
//!
//! One wrapping code fence is stripped first (see [`Storyboard::parse`]). Each shot's scene runs
//! from its marker to the next marker (a `[` that starts no marker-like token is scene text) and
//! is trimmed; it must not be empty. The preamble is the trimmed text before the first marker.
//! There are at most 100 shots.

use std::fmt;

use crate::error::echo;

/// The most shots a storyboard may have.
const MAX_SHOTS: usize = 100;

/// The most chars between the brackets of a marker-like token.
const MAX_MARKER_INNER: usize = 16;

/// The most digits before the decimal point of a duration.
const MAX_INT_DIGITS: usize = 6;

/// The longest a shot may last, in seconds: more than twice the longest video (25 s), so
/// no real storyboard meets it, while `[999999s]` is a 400 rather than an upstream surprise.
/// (The sum of the shots is not capped: the model decides the video's length.)
const MAX_SHOT_SECONDS: u64 = 60;

/// The most digits after the decimal point of a duration.
const MAX_FRAC_DIGITS: usize = 2;

/// The Markdown code fence.
const FENCE: &str = "```";

/// A parsed storyboard: an optional preamble and one or more shots.
///
/// Made by [`Storyboard::parse`], which guarantees 1 to 100 shots with non-empty trimmed
/// scenes and a non-empty trimmed preamble when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storyboard {
    /// The trimmed text before the first shot marker, if not empty (sent upstream as the
    /// "instructions").
    pub preamble: Option<String>,
    /// The shots, in order.
    pub shots: Vec<Shot>,
}

/// One shot of a storyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shot {
    /// How long the shot lasts, as written.
    pub duration: ShotDuration,
    /// What happens in the shot, trimmed.
    pub scene: String,
}

/// A shot duration in seconds, kept verbatim (`5` and `5.0` stay distinct, because the
/// upstream text repeats it): ASCII digits (at most 6), optionally `.` and 1 or 2 digits, with
/// a value above zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShotDuration(String);

/// A broken storyboard: which shot is wrong and how. Its `Display` is the client-facing
/// message, which names the shot and says what to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryboardError {
    /// The 1-based shot number.
    shot: usize,
    /// What is wrong.
    kind: ErrorKind,
}

/// What is wrong with a shot. Echoed text is client input, shortened.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorKind {
    /// The marker is written wrongly (spaces, an upper-case `S`); holds the marker.
    Marker(String),
    /// The duration is zero, negative or malformed; holds the duration text.
    Duration(String),
    /// The duration has more than [`MAX_INT_DIGITS`] digits before the point.
    TooLong(String),
    /// The duration is above [`MAX_SHOT_SECONDS`]; holds the duration text.
    AboveMax(String),
    /// Nothing follows the marker; holds the marker.
    EmptyScene(String),
    /// The shot is one too many.
    TooManyShots,
}

// === impl ShotDuration ===

/// Why a duration text is not a [`ShotDuration`].
enum DurationProblem {
    /// Not digits with an optional 1- or 2-digit fraction, or zero.
    Malformed,
    /// Well-formed, but too many digits before the point.
    TooLong,
    /// Well-formed, but longer than [`MAX_SHOT_SECONDS`].
    AboveMax,
}

impl ShotDuration {
    /// Parses a duration as written inside a marker (without the `s`): ASCII digits (at most 6),
    /// optionally `.` and 1 or 2 digits, with a value above zero and at most 60 s. `5`, `5.0`,
    /// `12.5`, `0.25` and `60.00` parse; `0`, `0.00`, `-5`, `5.`, `.5`, `5.123`, `60.01`,
    /// `1234567` and ` 5` do not.
    pub fn parse(text: &str) -> Option<ShotDuration> {
        ShotDuration::check(text).ok()
    }

    fn check(text: &str) -> Result<ShotDuration, DurationProblem> {
        let (int, frac) = match text.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let frac_ok = frac.is_none_or(|f| digits(f) && f.len() <= MAX_FRAC_DIGITS);
        if !digits(int) || !frac_ok {
            return Err(DurationProblem::Malformed);
        }
        if int.len() > MAX_INT_DIGITS {
            return Err(DurationProblem::TooLong);
        }
        if !text.bytes().any(|b| matches!(b, b'1'..=b'9')) {
            return Err(DurationProblem::Malformed);
        }
        let duration = ShotDuration(text.to_owned());
        if duration.hundredths() > MAX_SHOT_SECONDS * 100 {
            return Err(DurationProblem::AboveMax);
        }
        Ok(duration)
    }

    /// The duration as written, for example `5.0`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The duration in hundredths of a second (`7.5` is 750). Saturates rather than overflows.
    pub fn hundredths(&self) -> u64 {
        let (int, frac) = self.0.split_once('.').unwrap_or((&self.0, ""));
        let number = |s: &str| {
            s.bytes().fold(0u64, |n, b| {
                n.saturating_mul(10).saturating_add(u64::from(b.wrapping_sub(b'0') % 10))
            })
        };
        let frac_hundredths = match frac.len() {
            0 => 0,
            1 => number(frac).saturating_mul(10),
            _ => number(frac.get(..MAX_FRAC_DIGITS).unwrap_or(frac)),
        };
        number(int).saturating_mul(100).saturating_add(frac_hundredths)
    }
}

impl fmt::Display for ShotDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === markers ===

/// A marker-like token found in the text.
#[derive(Clone, Copy)]
struct Token<'a> {
    /// Byte offset of its `[`.
    start: usize,
    /// Byte offset just after its `]`.
    end: usize,
    /// The text between the brackets.
    inner: &'a str,
}

/// Chars a marker-like token may hold between its brackets.
fn is_marker_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'.' | b'-' | b'+' | b' ' | b's' | b'S')
}

/// Whether the text between two brackets makes a marker-like token (see the module docs).
fn is_marker_like(inner: &str) -> bool {
    let Some(body) = inner.trim_matches(' ').strip_suffix(['s', 'S']) else {
        return false;
    };
    body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().all(|b| matches!(b, b'0'..=b'9' | b'.' | b'-' | b'+' | b' '))
}

/// The marker-like tokens of a text, left to right. Each `[` looks at most
/// `MAX_MARKER_INNER + 1` bytes ahead, so a whole scan is linear.
struct Tokens<'a> {
    text: &'a str,
    from: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.text.as_bytes();
        loop {
            let open = self.from + bytes.get(self.from..)?.iter().position(|&b| b == b'[')?;
            self.from = open + 1;
            let after = bytes.get(open + 1..).unwrap_or_default();
            let Some(len) =
                after.iter().take(MAX_MARKER_INNER + 1).position(|&b| !is_marker_byte(b))
            else {
                continue;
            };
            if after.get(len) != Some(&b']') {
                continue;
            }
            // Everything from `[` to `]` is ASCII, so these are char boundaries.
            let Some(inner) = self.text.get(open + 1..open + 1 + len) else {
                continue;
            };
            if is_marker_like(inner) {
                let end = open + len + 2;
                self.from = end;
                return Some(Token { start: open, end, inner });
            }
        }
    }
}

/// The duration of a marker-like token, or the error for shot `shot`.
fn duration_of(token: Token<'_>, shot: usize) -> Result<ShotDuration, StoryboardError> {
    let err = |kind| StoryboardError { shot, kind };
    let Some(text) = token.inner.strip_suffix('s').filter(|t| !t.contains(' ')) else {
        return Err(err(ErrorKind::Marker(echo(&format!("[{}]", token.inner)))));
    };
    ShotDuration::check(text).map_err(|problem| match problem {
        DurationProblem::Malformed => err(ErrorKind::Duration(echo(text))),
        DurationProblem::TooLong => err(ErrorKind::TooLong(echo(text))),
        DurationProblem::AboveMax => err(ErrorKind::AboveMax(echo(text))),
    })
}

/// The inside of one wrapping Markdown code fence, if `text` is fenced: after trimming, it
/// starts with three backticks whose line holds at most a language tag (no whitespace, no
/// backticks; trailing whitespace such as `\r` is ignored), and it ends with a line that is just
/// three backticks.
fn strip_fence(text: &str) -> Option<&str> {
    let after_open = text.trim().strip_prefix(FENCE)?;
    let (tag, rest) = after_open.split_once('\n')?;
    let tag = tag.trim_end();
    if tag.contains(|c: char| c.is_whitespace() || c == '`') {
        return None;
    }
    let inside = rest.strip_suffix(FENCE)?;
    if inside.is_empty() {
        return Some(inside);
    }
    inside.strip_suffix('\n')
}

// === impl Storyboard ===

impl Storyboard {
    /// Parses a prompt as a storyboard.
    ///
    /// - `Ok(None)`: not a storyboard; the text has no marker-like token at all (see the
    ///   module docs), so it is an ordinary prompt.
    /// - `Ok(Some(_))`: 1 to 100 shots, each with a valid duration and a non-empty scene.
    /// - `Err(_)`: a storyboard attempt that is broken; the error names the first bad shot.
    ///
    /// One wrapping code fence is stripped first (decisions 8): if the trimmed text starts
    /// with three backticks plus an optional language tag on the first line and ends with a
    /// line of just three backticks, only the inside is parsed. Linear in the text's length.
    pub fn parse(text: &str) -> Result<Option<Storyboard>, StoryboardError> {
        let body = strip_fence(text).unwrap_or(text);
        let mut tokens = Tokens { text: body, from: 0 };
        let Some(mut token) = tokens.next() else {
            return Ok(None);
        };
        let preamble = body.get(..token.start).unwrap_or_default().trim();
        let preamble = (!preamble.is_empty()).then(|| preamble.to_owned());
        let mut shots = Vec::new();
        let mut duration = duration_of(token, 1)?;
        loop {
            let shot = shots.len() + 1;
            let next = tokens.next();
            let scene_end = next.map_or(body.len(), |t| t.start);
            let scene = body.get(token.end..scene_end).unwrap_or_default().trim();
            if scene.is_empty() {
                let marker = echo(&format!("[{}]", token.inner));
                return Err(StoryboardError { shot, kind: ErrorKind::EmptyScene(marker) });
            }
            shots.push(Shot { duration, scene: scene.to_owned() });
            let Some(next) = next else {
                return Ok(Some(Storyboard { preamble, shots }));
            };
            if shot + 1 > MAX_SHOTS {
                return Err(StoryboardError { shot: shot + 1, kind: ErrorKind::TooManyShots });
            }
            duration = duration_of(next, shot + 1)?;
            token = next;
        }
    }

    /// The prompt text sent upstream, in PY's exact format (sora-backend.md 6.5): each shot is
    /// `Shot {k}:\nduration: {d}sec\nScene: {scene}`, joined by `\n\n`. With a preamble the
    /// text is `current timeline:\n{shots}\n\ninstructions:\n{preamble}`; without one it is
    /// just `{shots}`.
    pub fn render_upstream(&self) -> String {
        let mut shots = String::new();
        for (i, shot) in self.shots.iter().enumerate() {
            if i > 0 {
                shots.push_str("\n\n");
            }
            shots.push_str(&format!(
                "Shot {}:\nduration: {}sec\nScene: {}",
                i + 1,
                shot.duration,
                shot.scene
            ));
        }
        match &self.preamble {
            Some(preamble) => format!("current timeline:\n{shots}\n\ninstructions:\n{preamble}"),
            None => shots,
        }
    }

    /// The canonical client form: the preamble (if any) on the first line, then one
    /// `[{d}s]{scene}` per shot, each on its own line. If that text would itself be taken for
    /// a fenced block (a preamble starting with three backticks and a last scene ending with a
    /// line of three backticks), it is wrapped in one more plain fence, so that
    /// `Storyboard::parse(&x.render_client()) == Ok(Some(x))` for every `x` that
    /// [`Storyboard::parse`] returned.
    pub fn render_client(&self) -> String {
        let mut out = String::new();
        if let Some(preamble) = &self.preamble {
            out.push_str(preamble);
        }
        for shot in &self.shots {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("[{}s]{}", shot.duration, shot.scene));
        }
        if strip_fence(&out).is_some() {
            out = format!("{FENCE}\n{out}\n{FENCE}");
        }
        out
    }

    /// The sum of the shot durations in hundredths of a second (saturating). It is not checked
    /// against the model's length (decisions 8).
    pub fn total_hundredths(&self) -> u64 {
        self.shots.iter().fold(0, |sum, shot| sum.saturating_add(shot.duration.hundredths()))
    }
}

// === impl StoryboardError ===

impl StoryboardError {
    /// The 1-based number of the offending shot.
    pub fn shot(&self) -> usize {
        self.shot
    }
}

impl fmt::Display for StoryboardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shot {}: ", self.shot)?;
        match &self.kind {
            ErrorKind::Marker(marker) => write!(
                f,
                "\"{marker}\" is not a valid shot marker; write a positive number of seconds \
                 with at most 2 decimals and a lower-case s, without spaces, like [5s] or [7.5s]"
            ),
            ErrorKind::Duration(text) => write!(
                f,
                "duration \"{text}\" must be a positive number of seconds with at most 2 \
                 decimals, like [5s] or [7.5s]"
            ),
            ErrorKind::TooLong(text) => write!(
                f,
                "duration \"{text}\" is too long; use at most {MAX_INT_DIGITS} digits before \
                 the decimal point, like [5s] or [7.5s]"
            ),
            ErrorKind::AboveMax(text) => write!(
                f,
                "duration \"{text}\" is too long; a shot lasts at most {MAX_SHOT_SECONDS} seconds, \
                 like [5s] or [7.5s]"
            ),
            ErrorKind::EmptyScene(marker) => write!(
                f,
                "the scene is empty; write the shot's description after its {marker} marker"
            ),
            ErrorKind::TooManyShots => {
                write!(f, "too many shots; a storyboard has at most {MAX_SHOTS} shots")
            }
        }
    }
}

impl std::error::Error for StoryboardError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shorthand for an expected storyboard.
    fn sb(preamble: Option<&str>, shots: &[(&str, &str)]) -> Storyboard {
        Storyboard {
            preamble: preamble.map(str::to_owned),
            shots: shots
                .iter()
                .map(|&(d, scene)| Shot {
                    duration: ShotDuration::parse(d).unwrap(),
                    scene: scene.to_owned(),
                })
                .collect(),
        }
    }

    fn parse_ok(text: &str) -> Storyboard {
        match Storyboard::parse(text) {
            Ok(Some(sb)) => sb,
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    const CAT_INLINE: &str = "[5.0s]The cat jumps out of the plane [5.0s]The cat lands [10.0s]The cat runs across the field";
    const CAT_LINES: &str = "[5.0s]The cat jumps out of the plane\n[5.0s]The cat lands\n[10.0s]The cat runs across the field";
    const CAT_SHOTS: [(&str, &str); 3] = [
        ("5.0", "The cat jumps out of the plane"),
        ("5.0", "The cat lands"),
        ("10.0", "The cat runs across the field"),
    ];

    #[test]
    fn storyboard_forms() {
        let cat = sb(None, &CAT_SHOTS);
        let cases: Vec<(String, Storyboard)> = vec![
            // client-api.md: inline and multi-line, bare and fenced.
            (CAT_INLINE.to_owned(), cat.clone()),
            (CAT_LINES.to_owned(), cat.clone()),
            (format!("```\n{CAT_INLINE}\n```"), cat.clone()),
            (format!("```\n{CAT_LINES}\n```"), cat.clone()),
            (format!("```text\n{CAT_LINES}\n```"), cat.clone()),
            (format!("  \n```text\r\n{CAT_LINES}\r\n```\n\n"), cat.clone()),
            (format!("\n\n{CAT_LINES}\n\n"), cat.clone()),
            // sora-backend.md 6.5.
            (
                "[5.0s]cat jumps from plane [5.0s]cat lands".to_owned(),
                sb(None, &[("5.0", "cat jumps from plane"), ("5.0", "cat lands")]),
            ),
            (
                "A cat adventure\n[5.0s]cat jumps\n[5s]cat lands".to_owned(),
                sb(Some("A cat adventure"), &[("5.0", "cat jumps"), ("5", "cat lands")]),
            ),
            (
                "```\n[5.0s]cat jumps\n[5.0s]cat lands\n```".to_owned(),
                sb(None, &[("5.0", "cat jumps"), ("5.0", "cat lands")]),
            ),
            // decisions 8: `[` inside a scene (and the preamble) is scene text.
            (
                "[5.0s]cat [jumps] [5.0s]cat lands".to_owned(),
                sb(None, &[("5.0", "cat [jumps]"), ("5.0", "cat lands")]),
            ),
            (
                "A [draft] story [5s]a [5] b [5 sec] c [1e3s] d [s] [[5s]e".to_owned(),
                sb(
                    Some("A [draft] story"),
                    &[("5", "a [5] b [5 sec] c [1e3s] d [s] ["), ("5", "e")],
                ),
            ),
            // Verbatim durations.
            (
                "[5s]a [5.0s]b [12.5s]c [0.25s]d [007s]e [60.00s]f".to_owned(),
                sb(
                    None,
                    &[
                        ("5", "a"),
                        ("5.0", "b"),
                        ("12.5", "c"),
                        ("0.25", "d"),
                        ("007", "e"),
                        ("60.00", "f"),
                    ],
                ),
            ),
            // Glued markers and scenes with newlines.
            ("[1s]a[2s]b\nc".to_owned(), sb(None, &[("1", "a"), ("2", "b\nc")])),
            (
                "猫の冒険 🎬\n[5s]猫が跳ぶ\n[5s]猫が着地".to_owned(),
                sb(Some("猫の冒険 🎬"), &[("5", "猫が跳ぶ"), ("5", "猫が着地")]),
            ),
            // A fence that is not a wrapping fence is text.
            ("``` x\n[5s]a\n```".to_owned(), sb(Some("``` x"), &[("5", "a\n```")])),
            ("```\n[5s]a```".to_owned(), sb(Some("```"), &[("5", "a```")])),
            // Only one fence is stripped.
            ("```\n```\n[5s]a\n```\n```".to_owned(), sb(Some("```"), &[("5", "a\n```")])),
        ];
        for (text, want) in cases {
            assert_eq!(parse_ok(&text), want, "{text:?}");
        }
    }

    #[test]
    fn not_a_storyboard() {
        let cases = [
            "",
            "A cat running",
            "a [tag] here",
            "[5] seconds",
            "[5 sec] of cat",
            "[5sec] of cat",
            "[1e3s] science",
            "[s] [S] [-s] [.s]",
            "[5s",
            "5s] cat",
            "[00000000000000005s] too long to be a marker",
            "{anime} a cat",
            "```\nno markers\n```",
            "【5s】 full-width brackets",
        ];
        for text in cases {
            assert_eq!(Storyboard::parse(text), Ok(None), "{text:?}");
        }
    }

    #[test]
    fn broken_storyboards() {
        let cases: Vec<(String, usize, &str)> = vec![
            (
                "[5s]a [0s]b".to_owned(),
                2,
                "Shot 2: duration \"0\" must be a positive number of seconds with at most 2 decimals, like [5s] or [7.5s]",
            ),
            ("[0.00s]a".to_owned(), 1, "Shot 1: duration \"0.00\" must be"),
            ("[-5s]a".to_owned(), 1, "Shot 1: duration \"-5\" must be"),
            ("[+5s]a".to_owned(), 1, "Shot 1: duration \"+5\" must be"),
            ("[5.123s]a".to_owned(), 1, "Shot 1: duration \"5.123\" must be"),
            ("[5.s]a".to_owned(), 1, "Shot 1: duration \"5.\" must be"),
            ("[.5s]a".to_owned(), 1, "Shot 1: duration \".5\" must be"),
            ("[5..5s]a".to_owned(), 1, "Shot 1: duration \"5..5\" must be"),
            ("[10-15s]a".to_owned(), 1, "Shot 1: duration \"10-15\" must be"),
            (
                "[5s]a [5 s]b".to_owned(),
                2,
                "Shot 2: \"[5 s]\" is not a valid shot marker; write a positive number of seconds with at most 2 decimals and a lower-case s, without spaces, like [5s] or [7.5s]",
            ),
            ("[ 5s]a".to_owned(), 1, "Shot 1: \"[ 5s]\" is not a valid shot marker"),
            ("[5S]a".to_owned(), 1, "Shot 1: \"[5S]\" is not a valid shot marker"),
            (
                "[1234567s]a".to_owned(),
                1,
                "Shot 1: duration \"1234567\" is too long; use at most 6 digits before the decimal point, like [5s] or [7.5s]",
            ),
            ("[9999999999999.5s]a".to_owned(), 1, "Shot 1: duration \"9999999999999.5\" is too long"),
            (
                "[5s]a [999999s]b".to_owned(),
                2,
                "Shot 2: duration \"999999\" is too long; a shot lasts at most 60 seconds, like [5s] or [7.5s]",
            ),
            ("[60.01s]a".to_owned(), 1, "Shot 1: duration \"60.01\" is too long; a shot lasts at most 60 seconds"),
            ("[061s]a".to_owned(), 1, "Shot 1: duration \"061\" is too long; a shot lasts at most 60 seconds"),
            (
                "[5s]a [5s]b [5s]   \n".to_owned(),
                3,
                "Shot 3: the scene is empty; write the shot's description after its [5s] marker",
            ),
            ("[5s][7.5s]b".to_owned(), 1, "Shot 1: the scene is empty; write the shot's description after its [5s] marker"),
            ("intro [2.50s]".to_owned(), 1, "Shot 1: the scene is empty; write the shot's description after its [2.50s] marker"),
            ("```\n[5s]\n```".to_owned(), 1, "Shot 1: the scene is empty"),
            // The first problem in text order wins.
            ("[5s] [0s]b".to_owned(), 1, "Shot 1: the scene is empty"),
            ("[5s]a [0s] [1s]c".to_owned(), 2, "Shot 2: duration \"0\""),
            (
                "[1s]x ".repeat(101),
                101,
                "Shot 101: too many shots; a storyboard has at most 100 shots",
            ),
            (format!("{}[0s]", "[1s]x ".repeat(200)), 101, "Shot 101: too many shots"),
        ];
        for (text, shot, message) in cases {
            let err = match Storyboard::parse(&text) {
                Err(err) => err,
                other => panic!("{text:?} gave {other:?}"),
            };
            assert_eq!(err.shot(), shot, "{text:?}");
            let shown = err.to_string();
            assert!(shown.starts_with(message), "{text:?}: {shown}");
        }
    }

    #[test]
    fn shot_limit() {
        let hundred = "[1s]x\n".repeat(100);
        let board = parse_ok(&hundred);
        assert_eq!(board.shots.len(), 100);
        assert_eq!(board.total_hundredths(), 10_000);
    }

    #[test]
    fn durations() {
        let cases: [(&str, Option<u64>); 19] = [
            ("5", Some(500)),
            ("5.0", Some(500)),
            ("7.5", Some(750)),
            ("12.5", Some(1250)),
            ("0.25", Some(25)),
            ("0.01", Some(1)),
            ("60", Some(6_000)),
            ("60.00", Some(6_000)),
            ("60.01", None),
            ("999999.99", None),
            ("000001", Some(100)),
            ("0", None),
            ("0.0", None),
            ("-1", None),
            ("1.234", None),
            ("1234567", None),
            ("", None),
            (" 5", None),
            ("5s", None),
        ];
        for (text, want) in cases {
            let got = ShotDuration::parse(text);
            assert_eq!(got.as_ref().map(ShotDuration::hundredths), want, "{text:?}");
            if let Some(d) = got {
                assert_eq!(d.as_str(), text);
                assert_eq!(d.to_string(), text);
            }
        }
    }

    #[test]
    fn render_upstream_examples() {
        let cases = [
            (
                "[5.0s]cat jumps from plane [5.0s]cat lands",
                "Shot 1:\nduration: 5.0sec\nScene: cat jumps from plane\n\nShot 2:\nduration: 5.0sec\nScene: cat lands",
            ),
            (
                "A cat adventure\n[5.0s]cat jumps\n[5s]cat lands",
                "current timeline:\nShot 1:\nduration: 5.0sec\nScene: cat jumps\n\nShot 2:\nduration: 5sec\nScene: cat lands\n\ninstructions:\nA cat adventure",
            ),
            // The fenced example of 6.5, with the fence stripped: no backticks leak.
            (
                "```\n[5.0s]cat jumps\n[5.0s]cat lands\n```",
                "Shot 1:\nduration: 5.0sec\nScene: cat jumps\n\nShot 2:\nduration: 5.0sec\nScene: cat lands",
            ),
            (
                CAT_INLINE,
                "Shot 1:\nduration: 5.0sec\nScene: The cat jumps out of the plane\n\nShot 2:\nduration: 5.0sec\nScene: The cat lands\n\nShot 3:\nduration: 10.0sec\nScene: The cat runs across the field",
            ),
            (
                "[12.5s]one",
                "Shot 1:\nduration: 12.5sec\nScene: one",
            ),
        ];
        for (text, want) in cases {
            let got = parse_ok(text).render_upstream();
            assert_eq!(got, want, "{text:?}");
            assert!(!got.contains('`'));
        }
        assert_eq!(parse_ok(CAT_LINES).total_hundredths(), 2000);
    }

    #[test]
    fn render_client_round_trips() {
        let cases: [(&str, &str); 8] = [
            (CAT_INLINE, CAT_LINES),
            (
                "A cat adventure\n[5.0s]cat jumps\n[5s]cat lands",
                "A cat adventure\n[5.0s]cat jumps\n[5s]cat lands",
            ),
            ("```text\n intro \n [5s] a \n```", "intro\n[5s]a"),
            ("[5.0s]cat [jumps] [5.0s]cat lands", "[5.0s]cat [jumps]\n[5.0s]cat lands"),
            // Looks fenced once rendered: wrapped in one more fence.
            ("``` [5s]a\n```", "```\n```\n[5s]a\n```\n```"),
            ("```\n```text\n[5s]a\n```\n```", "```\n```text\n[5s]a\n```\n```"),
            // Only the closing side or only the opening side: no wrapping needed.
            ("```text [5s]a", "```text\n[5s]a"),
            ("[5s]a\n```", "[5s]a\n```"),
        ];
        for (text, want) in cases {
            let board = parse_ok(text);
            let rendered = board.render_client();
            assert_eq!(rendered, want, "{text:?}");
            assert_eq!(Storyboard::parse(&rendered), Ok(Some(board)), "{text:?}");
        }
    }
}
