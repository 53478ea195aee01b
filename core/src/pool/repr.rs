//! The stored form of a [`TokenRecord`]: a private serde mirror, so the public types keep their
//! shapes and carry no serde derives (the same approach as the task record's
//! `record::repr`).
//!
//! Version 1, one JSON object (secrets in clear: the token store is the one place they are
//! written, so protect the store's file like a password file):
//!
//! ```text
//! {"v":1,"id":3,"access_token":"eyJ…","session_token":null,"refresh_token":"rt_…",
//!  "client_id":"app_…","proxy_url":null,"email":"a@example.com","plan_type":"chatgpt_pro",
//!  "pro":true,"image_enabled":true,"video_enabled":true,"image_concurrency":null,
//!  "video_concurrency":3,"state":"active","expires_at_ms":1700000000000,"remark":null,
//!  "stats":{"use_count":5,"last_used_ms":…,"image_count":1,"video_count":4,"error_count":0,
//!   "today_day":19675,"today_image_count":0,"today_video_count":2,"today_error_count":0,
//!   "consecutive_errors":0,"last_error_ms":null}}
//! ```
//!
//! `state` is `"active"`, `{"disabled":"<reason>"}` (the [`DisableReason::as_str`] names),
//! `{"cooling_down":{"until_ms":…}}` or `{"quota_wait":{"until_ms":…}}`. Loading checks the
//! version first, then the shape (every field present with its type; integers in range, so a
//! concurrency limit fits a `u32`), then the values: the disable reason must be one this build
//! knows. Nothing else is refused: every record [`encode`] writes, [`decode`] reads back
//! equal, whatever its text fields hold (an empty plan type is a real value: the free plan).
//!
//! Error messages never quote a stored value that could be a secret: serde's messages (which
//! may quote the offending value) are reduced to their category and position.

use serde::{Deserialize, Serialize};

use super::record::{DisableReason, TokenRecord, TokenRecordError, TokenState, TokenStats};
use super::types::TokenId;
use crate::secret::Secret;

/// The version this build writes and the only one it reads.
pub(super) const VERSION: u64 = 1;

#[derive(Serialize, Deserialize)]
struct TokenRepr {
    v: u64,
    id: u64,
    access_token: String,
    session_token: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    proxy_url: Option<String>,
    email: Option<String>,
    plan_type: Option<String>,
    pro: bool,
    image_enabled: bool,
    video_enabled: bool,
    image_concurrency: Option<u32>,
    video_concurrency: Option<u32>,
    state: StateRepr,
    expires_at_ms: Option<u64>,
    remark: Option<String>,
    stats: StatsRepr,
}

/// Just the version, to tell an old or new record from a broken one.
#[derive(Deserialize)]
struct VersionOnly {
    v: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StateRepr {
    Active,
    /// The reason's stored name, validated on load.
    Disabled(String),
    CoolingDown {
        until_ms: u64,
    },
    QuotaWait {
        until_ms: u64,
    },
}

#[derive(Serialize, Deserialize)]
struct StatsRepr {
    use_count: u64,
    last_used_ms: Option<u64>,
    image_count: u64,
    video_count: u64,
    error_count: u64,
    today_day: u64,
    today_image_count: u64,
    today_video_count: u64,
    today_error_count: u64,
    consecutive_errors: u32,
    last_error_ms: Option<u64>,
}

const REASONS: [DisableReason; 5] = [
    DisableReason::Manual,
    DisableReason::ErrorLimit,
    DisableReason::Invalid,
    DisableReason::Expired,
    DisableReason::Country,
];

/// Serialises a record (total: every record has a stored form).
pub(super) fn encode(rec: &TokenRecord) -> Vec<u8> {
    let secret = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_owned());
    let repr = TokenRepr {
        v: VERSION,
        id: rec.id.0,
        access_token: rec.access_token.expose().to_owned(),
        session_token: secret(&rec.session_token),
        refresh_token: secret(&rec.refresh_token),
        client_id: rec.client_id.clone(),
        proxy_url: rec.proxy_url.clone(),
        email: rec.email.clone(),
        plan_type: rec.plan_type.clone(),
        pro: rec.pro,
        image_enabled: rec.image_enabled,
        video_enabled: rec.video_enabled,
        image_concurrency: rec.image_concurrency,
        video_concurrency: rec.video_concurrency,
        state: match rec.state {
            TokenState::Active => StateRepr::Active,
            TokenState::Disabled(reason) => StateRepr::Disabled(reason.as_str().to_owned()),
            TokenState::CoolingDown { until_ms } => StateRepr::CoolingDown { until_ms },
            TokenState::QuotaWait { until_ms } => StateRepr::QuotaWait { until_ms },
        },
        expires_at_ms: rec.expires_at_ms,
        remark: rec.remark.clone(),
        stats: StatsRepr::of(&rec.stats),
    };
    // The mirror holds strings, integers, booleans and options of those, which serde_json
    // always serialises; the fallback is never taken.
    serde_json::to_vec(&repr).unwrap_or_default()
}

/// Parses and validates a record.
pub(super) fn decode(bytes: &[u8]) -> Result<TokenRecord, TokenRecordError> {
    let repr: TokenRepr = match serde_json::from_slice(bytes) {
        Ok(repr) => repr,
        Err(err) => {
            // A record of another version may have another shape: say so rather than
            // reporting the first field that differs.
            return Err(match serde_json::from_slice::<VersionOnly>(bytes) {
                Ok(VersionOnly { v }) if v != VERSION => TokenRecordError::UnsupportedVersion(v),
                _ => TokenRecordError::Malformed(malformed_detail(&err)),
            });
        }
    };
    if repr.v != VERSION {
        return Err(TokenRecordError::UnsupportedVersion(repr.v));
    }
    Ok(TokenRecord {
        id: TokenId(repr.id),
        access_token: Secret::new(repr.access_token),
        session_token: repr.session_token.map(Secret::new),
        refresh_token: repr.refresh_token.map(Secret::new),
        client_id: repr.client_id,
        proxy_url: repr.proxy_url,
        email: repr.email,
        plan_type: repr.plan_type,
        pro: repr.pro,
        image_enabled: repr.image_enabled,
        video_enabled: repr.video_enabled,
        image_concurrency: repr.image_concurrency,
        video_concurrency: repr.video_concurrency,
        state: match repr.state {
            StateRepr::Active => TokenState::Active,
            StateRepr::Disabled(name) => TokenState::Disabled(
                REASONS
                    .into_iter()
                    .find(|r| r.as_str() == name)
                    .ok_or_else(|| invalid("state.disabled", &name))?,
            ),
            StateRepr::CoolingDown { until_ms } => TokenState::CoolingDown { until_ms },
            StateRepr::QuotaWait { until_ms } => TokenState::QuotaWait { until_ms },
        },
        expires_at_ms: repr.expires_at_ms,
        remark: repr.remark,
        stats: repr.stats.into_stats(),
    })
}

/// serde_json's message without the value it quotes: a secret field of the wrong shape must
/// not end up in a log line. Keeps the category and the position.
fn malformed_detail(err: &serde_json::Error) -> String {
    let what = match err.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "a field has the wrong type or is missing",
        serde_json::error::Category::Eof => "truncated",
    };
    // A missing-field message names only one of our field names.
    let text = err.to_string();
    if text.starts_with("missing field") {
        text
    } else {
        format!("{what} at line {} column {}", err.line(), err.column())
    }
}

fn invalid(field: &'static str, value: &str) -> TokenRecordError {
    // Echo a bounded prefix. Only called with the disable reason's stored name.
    let value: String = value.chars().take(80).collect();
    TokenRecordError::InvalidField { field, value }
}

impl StatsRepr {
    fn of(s: &TokenStats) -> Self {
        StatsRepr {
            use_count: s.use_count,
            last_used_ms: s.last_used_ms,
            image_count: s.image_count,
            video_count: s.video_count,
            error_count: s.error_count,
            today_day: s.today_day,
            today_image_count: s.today_image_count,
            today_video_count: s.today_video_count,
            today_error_count: s.today_error_count,
            consecutive_errors: s.consecutive_errors,
            last_error_ms: s.last_error_ms,
        }
    }

    fn into_stats(self) -> TokenStats {
        TokenStats {
            use_count: self.use_count,
            last_used_ms: self.last_used_ms,
            image_count: self.image_count,
            video_count: self.video_count,
            error_count: self.error_count,
            today_day: self.today_day,
            today_image_count: self.today_image_count,
            today_video_count: self.today_video_count,
            today_error_count: self.today_error_count,
            consecutive_errors: self.consecutive_errors,
            last_error_ms: self.last_error_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// A record with every field set to a non-default value.
    fn full() -> TokenRecord {
        TokenRecord {
            id: TokenId(42),
            access_token: Secret::new("eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9."),
            session_token: Some(Secret::new("st-session-secret")),
            refresh_token: Some(Secret::new("rt-refresh-secret")),
            client_id: Some("app_LlGpXReQgckcGGUo2JrYvtJK".into()),
            proxy_url: Some("socks5://user:pass@127.0.0.1:1080".into()),
            email: Some("a@example.com".into()),
            plan_type: Some("chatgpt_pro".into()),
            pro: true,
            image_enabled: false,
            video_enabled: true,
            image_concurrency: Some(0),
            video_concurrency: Some(u32::MAX),
            state: TokenState::CoolingDown { until_ms: 1_700_000_030_000 },
            expires_at_ms: Some(1_700_000_000_000),
            remark: Some("ünïcødé \"quoted\" \n remark".into()),
            stats: TokenStats {
                use_count: 9,
                last_used_ms: Some(1_699_999_999_000),
                image_count: 2,
                video_count: u64::MAX,
                error_count: 3,
                today_day: 19_675,
                today_image_count: 1,
                today_video_count: 4,
                today_error_count: 2,
                consecutive_errors: u32::MAX,
                last_error_ms: Some(1_699_999_998_000),
            },
        }
    }

    fn states() -> Vec<TokenState> {
        let mut states = vec![
            TokenState::Active,
            TokenState::CoolingDown { until_ms: 0 },
            TokenState::CoolingDown { until_ms: u64::MAX },
            TokenState::QuotaWait { until_ms: 1_700_000_000_000 },
        ];
        states.extend(REASONS.into_iter().map(TokenState::Disabled));
        states
    }

    fn json_of(rec: &TokenRecord) -> Value {
        serde_json::from_slice(&rec.to_bytes()).unwrap()
    }

    fn from_json(value: &Value) -> Result<TokenRecord, TokenRecordError> {
        TokenRecord::from_bytes(value.to_string().as_bytes())
    }

    fn round_trip(rec: &TokenRecord) {
        let bytes = rec.to_bytes();
        let back = TokenRecord::from_bytes(&bytes).unwrap_or_else(|e| panic!("{rec:?}: {e}"));
        assert_eq!(&back, rec);
        assert_eq!(back.to_bytes(), bytes, "the stored form is stable");
    }

    #[test]
    fn every_state_and_field_round_trips() {
        round_trip(&TokenRecord::new(Secret::new("at")));
        for state in states() {
            round_trip(&TokenRecord { state, ..full() });
        }
        // Empty texts are values too (the free plan's id is empty), and nothing is refused.
        let mut odd = full();
        odd.access_token = Secret::new("");
        odd.plan_type = Some(String::new());
        odd.email = Some(String::new());
        odd.session_token = Some(Secret::new(""));
        round_trip(&odd);
        // Every reason's stored name is its `as_str`.
        for reason in REASONS {
            let value = json_of(&TokenRecord { state: TokenState::Disabled(reason), ..full() });
            assert_eq!(value["state"], json!({"disabled": reason.as_str()}));
        }
    }

    #[test]
    fn the_stored_form_is_versioned_json_with_the_secrets() {
        let value = json_of(&full());
        assert_eq!(value["v"], 1);
        assert_eq!(value["id"], 42);
        assert_eq!(value["access_token"], full().access_token.expose());
        assert_eq!(value["refresh_token"], "rt-refresh-secret");
        assert_eq!(value["state"], json!({"cooling_down": {"until_ms": 1_700_000_030_000u64}}));
        assert_eq!(value["stats"]["consecutive_errors"], u32::MAX);
        let active = json_of(&TokenRecord::new(Secret::new("at")));
        assert_eq!(active["state"], "active");
        assert_eq!(active["session_token"], Value::Null);
        assert_eq!(active["image_concurrency"], Value::Null);
    }

    /// The committed fuzz seeds are version-1 records as written by this build: they must keep
    /// loading (a change of the stored form needs a new version, not a silent reinterpretation).
    #[test]
    fn committed_version_1_records_still_load() {
        let seeds: [&[u8]; 3] = [
            include_bytes!("../../../fuzz/seeds/token_record/seed00.json"),
            include_bytes!("../../../fuzz/seeds/token_record/seed01.json"),
            include_bytes!("../../../fuzz/seeds/token_record/seed02.json"),
        ];
        for seed in seeds {
            let rec = TokenRecord::from_bytes(seed).unwrap();
            assert_eq!(rec.to_bytes(), seed, "{rec:?}");
        }
        let rec = TokenRecord::from_bytes(seeds[1]).unwrap();
        assert_eq!(rec.state, TokenState::Disabled(DisableReason::ErrorLimit));
        assert_eq!(rec.refresh_token, Some(Secret::new("rt-secret")));
        assert_eq!(rec.remark.as_deref(), Some("rémark"));
    }

    #[test]
    fn versions_are_checked() {
        let mut value = json_of(&full());
        value["v"] = json!(2);
        assert_eq!(from_json(&value), Err(TokenRecordError::UnsupportedVersion(2)));
        // Another version with another shape is still reported as a version.
        let old = json!({"v": 0, "token": "x"});
        assert_eq!(from_json(&old), Err(TokenRecordError::UnsupportedVersion(0)));
        if let Some(obj) = value.as_object_mut() {
            obj.remove("v");
        }
        assert!(matches!(from_json(&value), Err(TokenRecordError::Malformed(_))));
        let err = TokenRecordError::UnsupportedVersion(7).to_string();
        assert!(err.contains("version 7") && err.contains("reads 1"), "{err}");
    }

    #[test]
    fn bad_values_are_named_and_secrets_are_never_quoted() {
        let mut value = json_of(&full());
        value["state"] = json!({"disabled": "bored"});
        assert_eq!(
            from_json(&value),
            Err(TokenRecordError::InvalidField { field: "state.disabled", value: "bored".into() })
        );
        let shown = from_json(&value).unwrap_err().to_string();
        assert_eq!(shown, "token record field state.disabled is invalid: \"bored\"");

        type Edit = fn(&mut Value);
        let shape_errors: [(&str, Edit); 7] = [
            ("missing field", |v| drop(v.as_object_mut().map(|o| o.remove("stats")))),
            ("wrong type", |v| v["pro"] = json!("yes")),
            ("wrong type", |v| v["image_concurrency"] = json!(-1)),
            ("wrong type", |v| v["image_concurrency"] = json!(u64::from(u32::MAX) + 1)),
            ("wrong type", |v| v["state"] = json!("sleeping")),
            ("missing field", |v| v["state"] = json!({"cooling_down": {}})),
            // A secret in a place of the wrong type is not echoed.
            ("wrong type", |v| v["id"] = v["access_token"].clone()),
        ];
        for (what, edit) in shape_errors {
            let mut value = json_of(&full());
            edit(&mut value);
            match from_json(&value) {
                Err(TokenRecordError::Malformed(detail)) => {
                    assert!(detail.contains(what), "{detail}");
                    assert!(!detail.contains("eyJ"), "{detail}");
                }
                other => panic!("{value}: {other:?}"),
            }
        }
    }

    /// xorshift64*, for the garbage loops.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn garbage_and_truncations_never_panic() {
        let mut rng = 0x9e37_79b9_7f4a_7c15;
        for state in states() {
            let bytes = TokenRecord { state, ..full() }.to_bytes();
            for len in 0..bytes.len() {
                assert!(TokenRecord::from_bytes(&bytes[..len]).is_err(), "prefix {len}");
            }
            for _ in 0..300 {
                let mut edited = bytes.clone();
                for _ in 0..=(next(&mut rng) % 3) {
                    let at = (next(&mut rng) % edited.len() as u64) as usize;
                    edited[at] = match next(&mut rng) % 4 {
                        0 => next(&mut rng) as u8,
                        1 => b"{}[]\",:0\\"[(next(&mut rng) % 9) as usize],
                        2 => edited[at].wrapping_add(1),
                        _ => b'a',
                    };
                }
                // An error, or a record that is stable when written again.
                if let Ok(rec) = TokenRecord::from_bytes(&edited) {
                    round_trip(&rec);
                }
            }
        }
        for _ in 0..3000 {
            let len = (next(&mut rng) % 64) as usize;
            let garbage: Vec<u8> = (0..len).map(|_| next(&mut rng) as u8).collect();
            assert!(TokenRecord::from_bytes(&garbage).is_err());
        }
        for text in ["", "null", "[]", "{}", "1", r#"{"v":1}"#, r#"{"v":"1"}"#, r#"{"v":-1}"#] {
            assert!(TokenRecord::from_bytes(text.as_bytes()).is_err(), "{text}");
        }
        // Deep nesting stops at serde_json's recursion limit, not the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(TokenRecord::from_bytes(deep.as_bytes()).is_err());
    }
}
