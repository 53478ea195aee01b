//! Shared reply decoding: the typed [`DecodeError`], lenient fields, progress and time
//! conversion, and the decoders of replies that carry only an id.
//!
//! Decoders read only the fields they need and ignore everything else. A field of the wrong
//! JSON type is treated like a missing one where the spec allows it to be absent, so one odd
//! field (or one odd list element) never fails a whole poll. Errors never carry the body.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::http::UpstreamReply;

/// Why a reply could not be decoded. Messages are ours; the body is never included.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The status is not 2xx: [`super::classify()`] the reply instead of decoding it.
    Status {
        /// The status code.
        status: u16,
    },
    /// The body is empty or not JSON.
    NotJson,
    /// The JSON does not have the expected shape.
    Shape {
        /// What was expected, in our words (`an object`, `a list of drafts`).
        expected: &'static str,
    },
    /// A field the caller needs is missing, `null` or empty.
    Missing {
        /// The field's path, such as `id` or `character.character_id`.
        field: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Status { status } => write!(f, "upstream answered with status {status}"),
            DecodeError::NotJson => f.write_str("upstream reply is not JSON"),
            DecodeError::Shape { expected } => write!(f, "upstream reply is not {expected}"),
            DecodeError::Missing { field } => write!(f, "upstream reply lacks `{field}`"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The JSON body of a 2xx reply.
pub(crate) fn json_value(reply: &UpstreamReply) -> Result<serde_json::Value, DecodeError> {
    if !(200..300).contains(&reply.status) {
        return Err(DecodeError::Status { status: reply.status });
    }
    serde_json::from_slice(&reply.body).map_err(|_| DecodeError::NotJson)
}

/// The body of a 2xx reply as `T`, which must come from a JSON object (a derived struct
/// would otherwise also accept an array of its fields).
pub(crate) fn json<T: DeserializeOwned>(
    reply: &UpstreamReply,
    expected: &'static str,
) -> Result<T, DecodeError> {
    let value = json_value(reply)?;
    if !value.is_object() {
        return Err(DecodeError::Shape { expected });
    }
    serde_json::from_value(value).map_err(|_| DecodeError::Shape { expected })
}

/// How deep a body may nest for the decoders that read it as raw values (skipping what they
/// do not need) instead of a whole `serde_json::Value`: well below serde_json's recursion
/// limit (128), which skipped raw values do not count. A deeper body takes the `Value` path,
/// so both paths give the same answer.
pub(crate) const FAST_DEPTH: usize = 64;

/// Whether every `[`/`{` outside strings nests less than `limit` deep.
pub(crate) fn depth_below(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth >= limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Whether `text` starts with `byte` after whitespace.
pub(crate) fn starts_with(text: &[u8], byte: u8) -> bool {
    text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&byte)
}

/// A JSON object's top-level keys over their unparsed values (the last of repeated keys, as
/// in a `Value`).
pub(crate) type RawFields<'a> = std::collections::BTreeMap<String, &'a serde_json::value::RawValue>;

/// A field that decodes as `T`, or as `None` when it is missing, `null` or of another type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lenient<T>(pub(crate) Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(Lenient(serde_json::from_value(value).ok()))
    }
}

impl<T> Lenient<T> {
    pub(crate) fn into_inner(self) -> Option<T> {
        self.0
    }
}

impl Lenient<String> {
    /// The string if it is present and not empty.
    pub(crate) fn non_empty(self) -> Option<String> {
        self.0.filter(|s| !s.is_empty())
    }
}

/// An upstream `progress_pct` as a percentage in `0.0..=100.0`.
///
/// Upstream sends a fraction in 0–1; values above 1 are taken as a percentage already (GO's
/// tolerance), then clamped to 100. Negative values are 0; `null`, non-numbers and non-finite
/// values are `None`.
pub fn progress_percent(raw: Option<f64>) -> Option<f64> {
    let x = raw.filter(|x| x.is_finite())?;
    Some(if x <= 0.0 {
        0.0
    } else if x <= 1.0 {
        x * 100.0
    } else {
        x.min(100.0)
    })
}

/// Seconds (as upstream sends them, possibly fractional or negative) to whole milliseconds,
/// saturating; negative and non-finite values are `None`.
pub(crate) fn seconds_to_ms(seconds: f64) -> Option<u64> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    let ms = (seconds * 1000.0).round();
    // `as` saturates for floats out of range.
    Some(ms as u64)
}

/// Parses an RFC 3339 / ISO 8601 date-time (`2025-11-13T16:58:21Z`, optional fraction,
/// `Z` or `±HH:MM`; a space instead of `T` is accepted) to unix milliseconds. Times before
/// 1970 and malformed text are `None`.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits.iter().try_fold(0i64, |acc, d| acc.checked_mul(10)?.checked_add(i64::from(d - b'0')))
    };
    let sep = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if sep(i, b".,") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = b.get(start..i)?;
        for (k, d) in frac.iter().take(3).enumerate() {
            millis += i64::from(d - b'0') * [100, 10, 1].get(k).copied().unwrap_or(0);
        }
    }
    let offset_min = match b.get(i..) {
        Some(b"Z" | b"z") => 0,
        Some([s @ (b'+' | b'-'), _, _, b':', _, _]) => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let sign = if *s == b'-' { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    let ms = secs.checked_mul(1000)?.checked_add(millis)?;
    u64::try_from(ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[derive(Deserialize)]
struct IdReply {
    #[serde(default)]
    id: Lenient<String>,
}

/// The `id` of a reply that carries only an id that matters: `{"id": "..."}`.
///
/// Used for `/uploads` (the media id), every create call (`video_gen`, `nf/create`,
/// `nf/create/storyboard`, `long_video_extension`: the task id), `/characters/upload` and
/// `/characters/from-generation` (the cameo id).
pub fn decode_id(reply: &UpstreamReply) -> Result<String, DecodeError> {
    let r: IdReply = json(reply, "an object")?;
    r.id.non_empty().ok_or(DecodeError::Missing { field: "id" })
}

/// The task id of a create reply (`{"id":"task_…","task_type":"video_gen", …}`); the same as
/// [`decode_id`], named for the state machine's readability.
pub fn decode_task_id(reply: &UpstreamReply) -> Result<String, DecodeError> {
    decode_id(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_conversion_table() {
        let cases: [(Option<f64>, Option<f64>); 10] = [
            (None, None),
            (Some(f64::NAN), None),
            (Some(f64::INFINITY), None),
            (Some(-0.5), Some(0.0)),
            (Some(0.0), Some(0.0)),
            (Some(0.42), Some(42.0)),
            (Some(1.0), Some(100.0)),
            (Some(37.5), Some(37.5)),
            (Some(100.0), Some(100.0)),
            (Some(1e300), Some(100.0)),
        ];
        for (raw, want) in cases {
            let got = progress_percent(raw);
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{raw:?}: {g} != {w}"),
                _ => assert_eq!(got, want, "{raw:?}"),
            }
        }
    }

    #[test]
    fn rfc3339_table() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2025-11-13T16:58:21Z", Some(1_763_053_101_000)),
            ("2025-11-13T16:58:21.5Z", Some(1_763_053_101_500)),
            ("2025-11-13T16:58:21.123456Z", Some(1_763_053_101_123)),
            ("2025-11-13T18:58:21+02:00", Some(1_763_053_101_000)),
            ("2025-11-13 16:58:21z", Some(1_763_053_101_000)),
            ("2000-02-29T00:00:00Z", Some(951_782_400_000)),
            ("1969-12-31T23:59:59Z", None),
            ("2025-13-01T00:00:00Z", None),
            ("2025-11-13T16:58:21", None),
            ("2025-11-13", None),
            ("", None),
            ("2025-11-13T16:58:21.Z", None),
            ("é025-11-13T16:58:21Z", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339_ms(text), want, "{text}");
        }
    }

    #[test]
    fn seconds_to_ms_saturates() {
        assert_eq!(seconds_to_ms(1.5), Some(1500));
        assert_eq!(seconds_to_ms(-1.0), None);
        assert_eq!(seconds_to_ms(1e300), Some(u64::MAX));
    }

    #[test]
    fn id_replies() {
        let ok =
            UpstreamReply::json(200, r#"{"id":"task_01k","task_type":"video_gen","priority":1}"#);
        assert_eq!(decode_task_id(&ok).unwrap(), "task_01k");
        let cases = [
            (UpstreamReply::json(200, "{}"), DecodeError::Missing { field: "id" }),
            (UpstreamReply::json(200, r#"{"id":null}"#), DecodeError::Missing { field: "id" }),
            (UpstreamReply::json(200, r#"{"id":""}"#), DecodeError::Missing { field: "id" }),
            (UpstreamReply::json(200, r#"{"id":12}"#), DecodeError::Missing { field: "id" }),
            (UpstreamReply::json(200, "[1]"), DecodeError::Shape { expected: "an object" }),
            (UpstreamReply::json(200, "<html>"), DecodeError::NotJson),
            (UpstreamReply::json(200, ""), DecodeError::NotJson),
            (UpstreamReply::json(500, r#"{"id":"x"}"#), DecodeError::Status { status: 500 }),
        ];
        for (reply, want) in cases {
            assert_eq!(decode_id(&reply), Err(want.clone()));
            assert!(!want.to_string().is_empty());
        }
    }
}
