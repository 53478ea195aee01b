//! The `[[tokens]]` entries of the file, as pool records.

use sora2api_tower::core::lifecycle::token_identity;
use sora2api_tower::core::pool::TokenRecord;
use sora2api_tower::core::secret::Secret;

use super::input::{nearest, Input, Key};
use super::read::{non_empty, proxy_url, TOKEN_KEYS};
use super::ConfigError;

// === [[tokens]] ===

pub(super) fn parse_tokens(value: &toml::Value) -> Result<Vec<TokenRecord>, ConfigError> {
    let toml::Value::Array(entries) = value else {
        let key = Key { name: "tokens", secret: false };
        return Err(key.invalid(format!(
            "expected [[tokens]] entries, found {}",
            Input::Toml(value).found(key)
        )));
    };
    let mut records: Vec<TokenRecord> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let record = parse_token(i, entry)?;
        if let Some(first) = records.iter().position(|r| r.access_token == record.access_token) {
            return Err(ConfigError::Invalid {
                key: format!("tokens[{i}].access_token"),
                problem: format!("the same access token as tokens[{first}]"),
            });
        }
        records.push(record);
    }
    Ok(records)
}

fn parse_token(index: usize, entry: &toml::Value) -> Result<TokenRecord, ConfigError> {
    let prefix = format!("tokens[{index}]");
    let toml::Value::Table(fields) = entry else {
        let key = Key { name: &prefix, secret: false };
        return Err(key.invalid(format!(
            "expected a [[tokens]] table, found {}",
            Input::Toml(entry).found(key)
        )));
    };
    if let Some(unknown) = fields.keys().find(|k| !TOKEN_KEYS.contains(&k.as_str())) {
        return Err(ConfigError::UnknownKey {
            key: format!("{prefix}.{unknown}"),
            suggestion: nearest(unknown, TOKEN_KEYS.iter().copied())
                .map(|k| format!("{prefix}.{k}")),
        });
    }
    let names: Vec<(String, bool)> = TOKEN_KEYS
        .iter()
        .map(|k| {
            (
                format!("{prefix}.{k}"),
                matches!(*k, "access_token" | "session_token" | "refresh_token"),
            )
        })
        .collect();
    let key_of = |field: &str| {
        let i = TOKEN_KEYS.iter().position(|k| *k == field).unwrap_or(0);
        let (name, secret) = names.get(i).map_or(("", false), |(n, s)| (n.as_str(), *s));
        Key { name, secret }
    };
    let text = |field: &str| -> Result<Option<String>, ConfigError> {
        fields.get(field).map(|v| Input::Toml(v).string(key_of(field))).transpose()
    };
    let Some(access_token) = text("access_token")? else {
        return Err(key_of("access_token").invalid("missing: every [[tokens]] entry needs one"));
    };
    // As pasted from a header, too.
    let access_token = access_token.trim();
    let access_token = access_token.strip_prefix("Bearer ").unwrap_or(access_token).trim();
    let (expires_at_ms, email) = token_identity(access_token)
        .map_err(|err| key_of("access_token").invalid(format!("{err} (value not shown)")))?;
    let secret = |field: &str| -> Result<Option<Secret>, ConfigError> {
        text(field)?
            .map(|t| {
                let t = t.trim().to_owned();
                if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    Err(key_of(field).invalid(
                        "must not be empty or contain spaces or control characters (value not shown)",
                    ))
                } else {
                    Ok(Secret::new(t))
                }
            })
            .transpose()
    };
    let flag = |field: &str| -> Result<Option<bool>, ConfigError> {
        fields.get(field).map(|v| Input::Toml(v).boolean(key_of(field))).transpose()
    };
    let limit = |field: &str| -> Result<Option<u32>, ConfigError> {
        let Some(v) = fields.get(field) else { return Ok(None) };
        let expected = "-1 (unlimited), 0 (none) or a positive integer";
        let n = Input::Toml(v).integer(key_of(field), -1, i64::from(u32::MAX), expected)?;
        Ok(u32::try_from(n).ok())
    };
    let mut record = TokenRecord::new(Secret::new(access_token.to_owned()));
    record.expires_at_ms = expires_at_ms;
    record.email = email;
    record.session_token = secret("session_token")?;
    record.refresh_token = secret("refresh_token")?;
    record.client_id = text("client_id")?.map(|t| non_empty(key_of("client_id"), t)).transpose()?;
    record.proxy_url = match text("proxy_url")? {
        Some(url) => proxy_url(key_of("proxy_url"), url)?,
        None => None,
    };
    record.image_enabled = flag("image_enabled")?.unwrap_or(true);
    record.video_enabled = flag("video_enabled")?.unwrap_or(true);
    record.image_concurrency = limit("image_concurrency")?;
    record.video_concurrency = limit("video_concurrency")?;
    record.remark = text("remark")?.filter(|r| !r.is_empty());
    Ok(record)
}
