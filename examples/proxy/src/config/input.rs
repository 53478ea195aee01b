//! One configuration value, from the TOML file or from an environment variable, read as the
//! type its key expects; and the nearest known key for a mistyped one.
//!
//! Every error names the key (with the variable, for the environment), what was expected and
//! what was found; a secret's value is never shown, only its type.

use std::time::Duration;

use super::ConfigError;

/// Where a value came from, and the value.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    /// A TOML value.
    Toml(&'a toml::Value),
    /// The text of an environment variable.
    Env(&'a str),
}

/// The key's name in messages (`server.port`, or `server.port (SORA2API_SERVER_PORT)`), and
/// whether its value is a secret (never shown).
#[derive(Clone, Copy)]
pub(super) struct Key<'a> {
    pub(super) name: &'a str,
    pub(super) secret: bool,
}

impl Key<'_> {
    /// An error for this key.
    pub(super) fn invalid(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { key: self.name.to_owned(), problem: problem.into() }
    }
}

/// At most 80 characters of a shown value.
fn shorten(text: &str) -> String {
    let mut shown: String = text.chars().take(80).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

impl Input<'_> {
    /// What the value is, for "found ..." (its type, and its value unless secret).
    pub(super) fn found(&self, key: Key<'_>) -> String {
        let (kind, shown) = match self {
            Input::Env(_) if key.secret => return "a value (not shown: it is a secret)".into(),
            Input::Env(text) => return format!("{:?}", shorten(text)),
            Input::Toml(value) => match value {
                toml::Value::String(s) => ("a string", format!("{:?}", shorten(s))),
                toml::Value::Integer(i) => ("an integer", i.to_string()),
                toml::Value::Float(f) => ("a float", f.to_string()),
                toml::Value::Boolean(b) => ("a boolean", b.to_string()),
                toml::Value::Datetime(d) => ("a date-time", d.to_string()),
                toml::Value::Array(_) => return "an array".into(),
                toml::Value::Table(_) => return "a table".into(),
            },
        };
        if key.secret {
            format!("{kind} (not shown: it is a secret)")
        } else {
            format!("{kind} {shown}")
        }
    }

    fn expected(&self, key: Key<'_>, expected: &str) -> ConfigError {
        key.invalid(format!("expected {expected}, found {}", self.found(key)))
    }

    /// A string.
    pub(super) fn string(&self, key: Key<'_>) -> Result<String, ConfigError> {
        match self {
            Input::Env(text) => Ok((*text).to_owned()),
            Input::Toml(toml::Value::String(s)) => Ok(s.clone()),
            Input::Toml(_) => Err(self.expected(key, "a string")),
        }
    }

    /// A boolean (`true`/`false`; the environment also takes `1`/`0`).
    pub(super) fn boolean(&self, key: Key<'_>) -> Result<bool, ConfigError> {
        match self {
            Input::Toml(toml::Value::Boolean(b)) => Ok(*b),
            Input::Env(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(self.expected(key, "true or false")),
            },
            Input::Toml(_) => Err(self.expected(key, "true or false")),
        }
    }

    /// An integer in `lo..=hi`; `expected` describes the range ("an integer 0-65535").
    pub(super) fn integer(
        &self,
        key: Key<'_>,
        lo: i64,
        hi: i64,
        expected: &str,
    ) -> Result<i64, ConfigError> {
        let value = match self {
            Input::Toml(toml::Value::Integer(i)) => Some(*i),
            Input::Env(text) => text.trim().parse::<i64>().ok(),
            Input::Toml(_) => None,
        };
        match value {
            Some(i) if (lo..=hi).contains(&i) => Ok(i),
            _ => Err(self.expected(key, expected)),
        }
    }

    /// A duration in seconds (an integer or a float); `zero_ok` allows 0. A positive duration
    /// is at least a millisecond (the unit the core counts in).
    pub(super) fn seconds(&self, key: Key<'_>, zero_ok: bool) -> Result<Duration, ConfigError> {
        let expected = if zero_ok {
            "a number of seconds >= 0 (like 10 or 2.5)"
        } else {
            "a number of seconds > 0 (like 120 or 2.5)"
        };
        #[expect(clippy::cast_precision_loss, reason = "seconds beyond 2^53 fail the range check")]
        let secs = match self {
            Input::Toml(toml::Value::Integer(i)) => Some(*i as f64),
            Input::Toml(toml::Value::Float(f)) => Some(*f),
            Input::Env(text) => text.trim().parse::<f64>().ok(),
            Input::Toml(_) => None,
        };
        // At most ten years: anything longer is a typo, and stays far from overflows.
        const MAX_SECS: f64 = 10.0 * 365.0 * 86_400.0;
        let secs = secs
            .filter(|s| s.is_finite() && (if zero_ok { *s >= 0.0 } else { *s > 0.0 }))
            .ok_or_else(|| self.expected(key, expected))?;
        if secs > MAX_SECS {
            return Err(self.expected(key, "a number of seconds up to 315360000 (ten years)"));
        }
        let duration = Duration::from_secs_f64(secs);
        if !zero_ok && duration < Duration::from_millis(1) {
            return Err(self.expected(key, "a number of seconds of at least 0.001"));
        }
        Ok(duration)
    }

    /// A list of strings (TOML array; the environment takes a comma-separated list, and an
    /// empty variable is an empty list).
    pub(super) fn strings(&self, key: Key<'_>) -> Result<Vec<String>, ConfigError> {
        match self {
            Input::Env(text) if text.trim().is_empty() => Ok(Vec::new()),
            Input::Env(text) => Ok(text.split(',').map(|s| s.trim().to_owned()).collect()),
            Input::Toml(toml::Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => {
                        let name = format!("{}[{i}]", key.name);
                        let item_key = Key { name: &name, secret: key.secret };
                        Err(Input::Toml(other).expected(item_key, "a string"))
                    }
                })
                .collect(),
            Input::Toml(_) => Err(self.expected(key, "an array of strings")),
        }
    }
}

/// Edit distance with transpositions (optimal string alignment): `prot` is one edit from
/// `port`. The inputs are short key names.
#[expect(clippy::indexing_slicing, reason = "every index is within the (n+1)x(m+1) table")]
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate nearest to `word`, if it is near enough to be a typo of it (at most a third
/// of the word's length in edits, at least 1, at most 3; case is ignored).
pub(super) fn nearest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("port", "prot"), 1);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("api_key", "api_keys"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        let keys = ["host", "port", "shutdown_grace"];
        assert_eq!(nearest("prot", keys), Some("port"));
        assert_eq!(nearest("PORT", keys), Some("port"));
        assert_eq!(nearest("shutdown_grase", keys), Some("shutdown_grace"));
        assert_eq!(nearest("listen", keys), None);
        assert_eq!(nearest("", keys), None);
    }

    #[test]
    fn found_never_shows_a_secret() {
        let key = Key { name: "global.api_key", secret: true };
        let value = toml::Value::String("sk-very-secret".into());
        assert_eq!(Input::Toml(&value).found(key), "a string (not shown: it is a secret)");
        assert!(!Input::Env("sk-very-secret").found(key).contains("very"));
        let open = Key { name: "server.host", secret: false };
        assert_eq!(Input::Toml(&value).found(open), "a string \"sk-very-secret\"");
        let long = "x".repeat(200);
        assert_eq!(Input::Env(&long).found(open).chars().count(), 2 + 81);
    }

    #[test]
    fn seconds_accept_integers_and_floats() {
        let key = Key { name: "sora.timeout", secret: false };
        let int = toml::Value::Integer(120);
        assert_eq!(Input::Toml(&int).seconds(key, false), Ok(Duration::from_secs(120)));
        assert_eq!(Input::Env(" 2.5 ").seconds(key, false), Ok(Duration::from_millis(2_500)));
        assert_eq!(Input::Env("0").seconds(key, true), Ok(Duration::ZERO));
        for bad in ["0", "-1", "NaN", "inf", "1e30", "0.0000001", "soon", ""] {
            let err = Input::Env(bad).seconds(key, false).unwrap_err().to_string();
            assert!(err.starts_with("sora.timeout: expected a number of seconds"), "{bad}: {err}");
        }
    }
}
