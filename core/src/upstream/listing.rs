//! The account's task lists read as plain listings: which upstream tasks exist, with the
//! prompt and creation time each shows.
//!
//! A create whose reply was lost (the gateway crashed between sending it and storing the
//! answer) may or may not have reached the upstream. The only way to tell is to look: an
//! accepted create shows up in `nf/pending/v2` (videos, while they run), in the drafts (videos,
//! once done) or in `v2/recent_tasks` (images), each listing its `prompt` and `created_at`.
//! These decoders turn those replies into [`Listed`] entries; the machine decides which entry,
//! if any, is its own.
//!
//! The fields are read leniently: `created_at` may be unix seconds (fractional), unix
//! milliseconds, or an RFC 3339 string; a missing or odd field is `None`, never an error.

use serde::Deserialize;

use super::decode::{json, json_value, parse_rfc3339_ms, seconds_to_ms, DecodeError, Lenient};
use super::http::UpstreamReply;

/// One upstream task as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The upstream task id (`task_…`).
    pub id: String,
    /// The prompt the task was created with, as the upstream lists it.
    pub prompt: Option<String>,
    /// When the upstream created it (unix milliseconds).
    pub created_ms: Option<u64>,
}

/// A `created_at` in any of the shapes upstream lists use, as unix milliseconds: seconds
/// (fractional), milliseconds (a number above 10^11, i.e. after 1973 in ms) or RFC 3339 text.
pub(crate) fn timestamp_ms(value: Option<serde_json::Value>) -> Option<u64> {
    /// Numbers above this are milliseconds already (10^11 s is the year 5138).
    const MS_THRESHOLD: f64 = 1e11;
    match value? {
        serde_json::Value::Number(n) => {
            let x = n.as_f64()?;
            if x > MS_THRESHOLD {
                seconds_to_ms(x / 1000.0)
            } else {
                seconds_to_ms(x)
            }
        }
        serde_json::Value::String(s) => parse_rfc3339_ms(&s),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    id: Lenient<String>,
    #[serde(default)]
    prompt: Lenient<String>,
    #[serde(default)]
    created_at: Lenient<serde_json::Value>,
}

impl Item {
    fn into_listed(self) -> Option<Listed> {
        Some(Listed {
            id: self.id.non_empty()?,
            prompt: self.prompt.non_empty(),
            created_ms: timestamp_ms(self.created_at.into_inner()),
        })
    }
}

/// The tasks of a `nf/pending/v2` reply (a bare JSON array; anything else lists nothing, as
/// PY reads it). Elements without an id are skipped.
pub fn decode_pending_listing(reply: &UpstreamReply) -> Result<Vec<Listed>, DecodeError> {
    let serde_json::Value::Array(items) = json_value(reply)? else {
        return Ok(Vec::new());
    };
    Ok(items
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Item>(v).ok())
        .filter_map(Item::into_listed)
        .collect())
}

#[derive(Deserialize)]
struct RecentReply {
    #[serde(default)]
    task_responses: Lenient<Vec<Lenient<Item>>>,
}

/// The tasks of a `v2/recent_tasks` reply (`{"task_responses": [...]}`).
pub fn decode_recent_listing(reply: &UpstreamReply) -> Result<Vec<Listed>, DecodeError> {
    let r: RecentReply = json(reply, "an object")?;
    let tasks = r.task_responses.0.ok_or(DecodeError::Missing { field: "task_responses" })?;
    Ok(tasks.into_iter().filter_map(Lenient::into_inner).filter_map(Item::into_listed).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_listing_reads_id_prompt_and_time_leniently() {
        let reply = UpstreamReply::json(
            200,
            r#"[{"id":"task_a","prompt":"a cat","created_at":1764950400.25},
                {"id":"task_b","prompt":null,"created_at":"2025-12-05T16:00:00Z"},
                {"id":"task_c","created_at":1764950400250},
                {"prompt":"no id"}, 7, {"id":""}]"#,
        );
        let listed = decode_pending_listing(&reply).unwrap_or_default();
        assert_eq!(
            listed,
            vec![
                Listed {
                    id: "task_a".into(),
                    prompt: Some("a cat".into()),
                    created_ms: Some(1_764_950_400_250)
                },
                Listed { id: "task_b".into(), prompt: None, created_ms: Some(1_764_950_400_000) },
                Listed { id: "task_c".into(), prompt: None, created_ms: Some(1_764_950_400_250) },
            ]
        );
        let not_a_list = UpstreamReply::json(200, r#"{"items":[]}"#);
        assert_eq!(decode_pending_listing(&not_a_list), Ok(vec![]));
        assert_eq!(
            decode_pending_listing(&UpstreamReply::json(500, "[]")),
            Err(DecodeError::Status { status: 500 })
        );
    }

    #[test]
    fn recent_listing_needs_task_responses() {
        let reply = UpstreamReply::json(
            200,
            r#"{"task_responses":[{"id":"task_i","prompt":"a dog","created_at":-5},"x"]}"#,
        );
        assert_eq!(
            decode_recent_listing(&reply),
            Ok(vec![Listed {
                id: "task_i".into(),
                prompt: Some("a dog".into()),
                created_ms: None
            }])
        );
        let missing = UpstreamReply::json(200, r#"{"tasks":[]}"#);
        assert_eq!(
            decode_recent_listing(&missing),
            Err(DecodeError::Missing { field: "task_responses" })
        );
    }
}
