//! Reading the configuration: the key table, the file, the environment, the flags, and the
//! checks of single values and of their combination.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use sora2api_tower::core::pool::Strategy;
use sora2api_tower::core::secret::Secret;
use sora2api_tower::upstream::check_proxy_url;

use super::input::{nearest, Input, Key};
use super::tokens::parse_tokens;
use super::{Config, ConfigError, PowMode};
use crate::cli::GatewayArgs;

/// The API key placeholder of `sora2api.example.toml` (a warning when used).
pub(super) const EXAMPLE_API_KEY: &str = "replace-with-a-long-random-key";

// === the key table ===

/// Every key of a section: for unknown-key suggestions and environment names.
pub(super) const SECTIONS: &[(&str, &[&str])] = &[
    ("server", &["host", "port", "shutdown_grace", "max_connections"]),
    ("global", &["api_key", "api_keys", "admin_username", "admin_password"]),
    (
        "sora",
        &[
            "base_url",
            "auth_session_url",
            "oauth_token_url",
            "sentinel_url",
            "timeout",
            "poll_interval",
            "create_recovery_window",
        ],
    ),
    ("generation", &["image_timeout", "video_timeout"]),
    ("admin", &["error_ban_threshold", "task_retry_enabled", "task_max_retries"]),
    ("proxy", &["proxy_enabled", "proxy_url"]),
    ("call_logic", &["call_mode", "polling_mode_enabled", "poll_interval"]),
    ("pow_service", &["mode", "server_url", "api_key", "use_token_for_pow"]),
    ("storage", &["data_dir"]),
    ("limits", &["max_body_bytes", "blocking_wait", "max_tasks", "max_upstream_calls"]),
];

/// The keys of a `[[tokens]]` entry.
pub(super) const TOKEN_KEYS: &[&str] = &[
    "access_token",
    "session_token",
    "refresh_token",
    "client_id",
    "proxy_url",
    "image_enabled",
    "video_enabled",
    "image_concurrency",
    "video_concurrency",
    "remark",
];

/// Sections of the reference this gateway does not have: accepted, ignored, warned about.
const IGNORED_SECTIONS: &[(&str, &str)] = &[
    ("debug", "the reference's debug log file is not a setting here"),
    ("cache", "the reference's result file cache is not implemented"),
    ("watermark_free", "the watermark-free flow is out of scope"),
    ("token_refresh", "tokens are refreshed on demand and ahead of expiry"),
    ("timezone", "times are UTC"),
    ("pow_proxy", "a legacy table of the reference"),
];

/// Keys of the reference inside known sections that this gateway does not have.
const IGNORED_KEYS: &[(&str, &str, &str)] = &[
    ("sora", "max_retries", "unused by the reference too; see admin.task_max_retries"),
    ("sora", "max_poll_attempts", "polls are bounded by the generation timeouts"),
    ("admin", "auto_disable_on_401", "a rejected token is disabled unless a refresh helps"),
    ("proxy", "image_upload_proxy_enabled", "uploads use the token's or the global proxy"),
    ("proxy", "image_upload_proxy_url", "uploads use the token's or the global proxy"),
    ("pow_service", "proxy_enabled", "sentinel requests use the token's or the global proxy"),
    ("pow_service", "proxy_url", "sentinel requests use the token's or the global proxy"),
];

/// The order keys are applied in: the legacy `polling_mode_enabled` before `call_mode` (which
/// wins), `call_logic.poll_interval` after `sora.poll_interval` (it wins, as the reference's
/// stored setting does); the rest in any order.
fn order(section: &str, key: &str) -> u8 {
    match (section, key) {
        ("call_logic", "polling_mode_enabled") => 0,
        ("call_logic", "poll_interval") => 2,
        _ => 1,
    }
}

/// The environment variable of a key.
pub(super) fn env_name(section: &str, key: &str) -> String {
    format!("SORA2API_{}_{}", section.to_ascii_uppercase(), key.to_ascii_uppercase())
}

fn known_keys(section: &str) -> Option<&'static [&'static str]> {
    SECTIONS.iter().find(|(s, _)| *s == section).map(|(_, keys)| *keys)
}

/// The nearest known `section.key` for an unknown key of `section`: a near key of the same
/// section, else the same key in another section (a key under the wrong header).
fn suggest_key(section: &str, key: &str) -> Option<String> {
    if let Some(near) = known_keys(section).and_then(|keys| nearest(key, keys.iter().copied())) {
        return Some(format!("{section}.{near}"));
    }
    SECTIONS.iter().find(|(_, keys)| keys.contains(&key)).map(|(other, _)| format!("{other}.{key}"))
}

fn is_secret(section: &str, key: &str) -> bool {
    matches!(
        (section, key),
        ("global", "api_key" | "api_keys" | "admin_password") | ("pow_service", "api_key")
    )
}

// === reading ===

impl Config {
    /// Parses a configuration file's text: every key known (see the module docs), every value
    /// of the right type and in range, every token a JWT. Keys not given keep their defaults.
    /// Does not check what needs several keys together (that is [`Config::check`], after the
    /// environment and flags had their say).
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|err| syntax_error(text, &err))?;
        let mut config = Config::default();
        let mut values: Vec<(&str, &str, &toml::Value)> = Vec::new();
        for (name, value) in &table {
            if name == "tokens" {
                continue;
            }
            let toml::Value::Table(entries) = value else {
                return Err(unknown_top_level(name, value));
            };
            if let Some((_, why)) = IGNORED_SECTIONS.iter().find(|(s, _)| s == name) {
                config.warnings.push(format!("[{name}] is ignored: {why}"));
                continue;
            }
            if known_keys(name).is_none() {
                let suggestion =
                    nearest(name, SECTIONS.iter().map(|(s, _)| *s)).map(|s| format!("[{s}]"));
                return Err(ConfigError::UnknownKey { key: format!("[{name}]"), suggestion });
            }
            values.extend(entries.iter().map(|(key, value)| (name.as_str(), key.as_str(), value)));
        }
        // Aliases in a fixed order, whatever the order in the file.
        values.sort_by_key(|(section, key, _)| order(section, key));
        for (section, key, value) in values {
            config.set(section, key, None, Input::Toml(value))?;
        }
        if let Some(tokens) = table.get("tokens") {
            config.tokens = parse_tokens(tokens)?;
        }
        Ok(config)
    }

    /// Applies `SORA2API_<SECTION>_<KEY>` variables (`SORA2API_SERVER_PORT=9000`) on top of
    /// the file: each names one key of the table in the module docs and is read as that key's
    /// type (booleans also as `1`/`0`, lists comma-separated). Other variables are ignored;
    /// an unknown `SORA2API_*` one adds a warning. Tokens cannot be set this way.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let mut vars: Vec<(String, String)> =
            vars.into_iter().filter(|(name, _)| name.starts_with("SORA2API_")).collect();
        // The same result whatever order the environment lists them in.
        vars.sort();
        let known: Vec<(String, &str, &str)> = SECTIONS
            .iter()
            .flat_map(|(section, keys)| keys.iter().map(move |key| (section, key)))
            .map(|(section, key)| (env_name(section, key), *section, *key))
            .collect();
        let mut settings = Vec::new();
        for (name, value) in &vars {
            match known.iter().find(|(env, _, _)| env == name) {
                Some((_, section, key)) => settings.push((*section, *key, name, value)),
                None => {
                    let hint = nearest(name, known.iter().map(|(env, _, _)| env.as_str()))
                        .map(|near| format!("; did you mean {near}?"))
                        .unwrap_or_default();
                    self.warnings
                        .push(format!("environment variable {name} is not a setting{hint}"));
                }
            }
        }
        settings.sort_by_key(|(section, key, _, _)| order(section, key));
        for (section, key, name, value) in settings {
            self.set(section, key, Some(name), Input::Env(value))?;
        }
        Ok(())
    }

    /// Applies the command line's `--listen` and `--data-dir` on top of file and environment.
    pub fn apply_flags(&mut self, args: &GatewayArgs) {
        if let Some(listen) = args.listen {
            self.server.host = listen.ip();
            self.server.port = listen.port();
        }
        if let Some(dir) = &args.data_dir {
            self.storage.data_dir.clone_from(dir);
        }
    }

    /// Checks what needs several keys together, once file, environment and flags are applied:
    /// at least one API key; a URL for an enabled proxy and for an external PoW service.
    /// Also adds warnings for the reference's well-known default credentials.
    pub fn check(&mut self) -> Result<(), ConfigError> {
        if self.api_keys().is_empty() {
            return Err(ConfigError::Invalid {
                key: "global.api_key".into(),
                problem: "no API key is set: set global.api_key (or global.api_keys) in the \
                          file, or SORA2API_GLOBAL_API_KEY; there is no default key"
                    .into(),
            });
        }
        if self.proxy.proxy_enabled && self.proxy.proxy_url.is_none() {
            return Err(ConfigError::Invalid {
                key: "proxy.proxy_url".into(),
                problem: "proxy.proxy_enabled is true but no proxy URL is set".into(),
            });
        }
        if self.pow_service.mode == PowMode::External && self.pow_service.server_url.is_none() {
            return Err(ConfigError::Invalid {
                key: "pow_service.server_url".into(),
                problem: "pow_service.mode is \"external\" but no server URL is set".into(),
            });
        }
        for (public, whose) in [
            ("han1234", "the reference implementation's published default"),
            (EXAMPLE_API_KEY, "the placeholder of sora2api.example.toml"),
        ] {
            if self.api_keys().contains(&Secret::new(public)) {
                self.warnings
                    .push(format!("global.api_key: {whose} is in use; anyone can guess it"));
            }
        }
        if self.global.admin_password.as_ref().is_some_and(|p| p.expose() == "admin") {
            self.warnings.push(
                "global.admin_password: \"admin\" is the reference implementation's published \
                 default; anyone can guess it"
                    .into(),
            );
        }
        Ok(())
    }

    /// Reads the configuration the command line asks for: the `--config` file (if any; no
    /// file means every default), then `vars` (pass [`env_vars`](super::env_vars)()), then
    /// the flags, then [`Config::check`]. The only IO is reading the file.
    pub fn load(
        args: &GatewayArgs,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
                    path: path.clone(),
                    reason: err.to_string(),
                })?;
                Config::from_toml_str(&text)?
            }
            None => Config::default(),
        };
        config.apply_env(vars)?;
        config.apply_flags(args);
        config.check()?;
        Ok(config)
    }

    /// Sets one key from the file (`env: None`) or from the variable `env`.
    fn set(
        &mut self,
        section: &str,
        key: &str,
        env: Option<&str>,
        value: Input<'_>,
    ) -> Result<(), ConfigError> {
        let name = match env {
            Some(var) => format!("{section}.{key} ({var})"),
            None => format!("{section}.{key}"),
        };
        let k = Key { name: &name, secret: is_secret(section, key) };
        match (section, key) {
            ("server", "host") => self.server.host = parse_host(k, value)?,
            ("server", "port") => {
                let port = value.integer(k, 0, 65_535, "a port, an integer 0-65535")?;
                self.server.port = u16::try_from(port).unwrap_or(u16::MAX);
            }
            ("server", "shutdown_grace") => self.server.shutdown_grace = value.seconds(k, true)?,
            ("server", "max_connections") => {
                let n = value.integer(k, 1, i64::MAX, "a number of connections > 0")?;
                self.server.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
            }
            ("global", "api_key") => self.global.api_key = Some(api_key(k, value.string(k)?)?),
            ("global", "api_keys") => {
                self.global.api_keys = value
                    .strings(k)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, key)| {
                        let item = format!("{name}[{i}]");
                        api_key(Key { name: &item, secret: true }, key)
                    })
                    .collect::<Result<_, _>>()?;
            }
            ("global", "admin_username") => {
                self.global.admin_username = non_empty(k, value.string(k)?)?;
            }
            ("global", "admin_password") => {
                self.global.admin_password = Some(Secret::new(non_empty(k, value.string(k)?)?));
            }
            ("sora", "base_url") => {
                let url = http_url(k, &value.string(k)?)?;
                self.sora.base_url = url.trim_end_matches('/').to_owned();
            }
            ("sora", "auth_session_url") => {
                self.sora.auth_session_url = http_url(k, &value.string(k)?)?;
            }
            ("sora", "oauth_token_url") => {
                self.sora.oauth_token_url = http_url(k, &value.string(k)?)?;
            }
            ("sora", "sentinel_url") => self.sora.sentinel_url = http_url(k, &value.string(k)?)?,
            ("sora", "timeout") => self.sora.timeout = value.seconds(k, false)?,
            ("sora", "poll_interval") => self.sora.poll_interval = value.seconds(k, false)?,
            ("sora", "create_recovery_window") => {
                self.sora.create_recovery_window = value.seconds(k, false)?;
            }
            ("generation", "image_timeout") => {
                self.generation.image_timeout = value.seconds(k, false)?;
            }
            ("generation", "video_timeout") => {
                self.generation.video_timeout = value.seconds(k, false)?;
            }
            ("admin", "error_ban_threshold") => {
                let n = value.integer(k, 0, 1_000, "an integer 0-1000 (0 = never disable)")?;
                self.admin.error_ban_threshold = u32::try_from(n).unwrap_or(0);
            }
            ("admin", "task_retry_enabled") => self.admin.task_retry_enabled = value.boolean(k)?,
            ("admin", "task_max_retries") => {
                let n = value.integer(k, 0, 100, "an integer 0-100")?;
                self.admin.task_max_retries = u32::try_from(n).unwrap_or(0);
            }
            ("proxy", "proxy_enabled") => self.proxy.proxy_enabled = value.boolean(k)?,
            ("proxy", "proxy_url") => self.proxy.proxy_url = proxy_url(k, value.string(k)?)?,
            ("call_logic", "polling_mode_enabled") => {
                if value.boolean(k)? {
                    self.call_logic.call_mode = Strategy::RoundRobin;
                }
            }
            ("call_logic", "poll_interval") => self.sora.poll_interval = value.seconds(k, false)?,
            ("call_logic", "call_mode") => {
                self.call_logic.call_mode = match value.string(k)?.as_str() {
                    "default" => Strategy::Random,
                    "polling" => Strategy::RoundRobin,
                    _ => {
                        let expected = "\"default\" (random) or \"polling\" (round robin)";
                        return Err(
                            k.invalid(format!("expected {expected}, found {}", value.found(k)))
                        );
                    }
                };
            }
            ("pow_service", "mode") => {
                self.pow_service.mode = match value.string(k)?.as_str() {
                    "local" => PowMode::Local,
                    "external" => PowMode::External,
                    _ => {
                        return Err(k.invalid(format!(
                            "expected \"local\" or \"external\", found {}",
                            value.found(k)
                        )));
                    }
                };
            }
            ("pow_service", "server_url") => {
                let url = value.string(k)?;
                self.pow_service.server_url =
                    if url.is_empty() { None } else { Some(http_url(k, &url)?) };
            }
            ("pow_service", "api_key") => {
                self.pow_service.api_key = Some(Secret::new(non_empty(k, value.string(k)?)?));
            }
            ("pow_service", "use_token_for_pow") => {
                self.pow_service.use_token_for_pow = value.boolean(k)?;
            }
            ("storage", "data_dir") => {
                self.storage.data_dir = PathBuf::from(non_empty(k, value.string(k)?)?);
            }
            ("limits", "max_body_bytes") => {
                let n = value.integer(k, 1, i64::MAX, "a number of bytes > 0")?;
                self.limits.max_body_bytes = usize::try_from(n).unwrap_or(usize::MAX);
            }
            ("limits", "blocking_wait") => self.limits.blocking_wait = value.seconds(k, false)?,
            ("limits", "max_tasks") => {
                let n = value.integer(k, 1, i64::MAX, "a number of tasks > 0")?;
                self.limits.max_tasks = usize::try_from(n).unwrap_or(usize::MAX);
            }
            ("limits", "max_upstream_calls") => {
                let n = value.integer(k, 1, i64::MAX, "a number of calls > 0")?;
                self.limits.max_upstream_calls = usize::try_from(n).unwrap_or(usize::MAX);
            }
            _ => {
                if let Some((_, _, why)) =
                    IGNORED_KEYS.iter().find(|(s, ky, _)| *s == section && *ky == key)
                {
                    self.warnings.push(format!("{section}.{key} is ignored: {why}"));
                    return Ok(());
                }
                return Err(ConfigError::UnknownKey {
                    key: format!("{section}.{key}"),
                    suggestion: suggest_key(section, key),
                });
            }
        }
        Ok(())
    }
}

// === value checks ===

/// The parser's error with its position, without the source line it would quote.
fn syntax_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let (line, column) = match err.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count().saturating_add(1);
            let column =
                before.rsplit('\n').next().map_or(0, |l| l.chars().count()).saturating_add(1);
            (line, column)
        }
        None => (0, 0),
    };
    ConfigError::Syntax { message: err.message().to_owned(), line, column }
}

/// A top-level key that is not a section (`port = 8000` above every header).
fn unknown_top_level(name: &str, value: &toml::Value) -> ConfigError {
    if known_keys(name).is_some() || IGNORED_SECTIONS.iter().any(|(s, _)| *s == name) {
        let key = Key { name, secret: false };
        return key.invalid(format!(
            "expected a [{name}] table, found {}",
            Input::Toml(value).found(key)
        ));
    }
    ConfigError::UnknownKey { key: name.to_owned(), suggestion: suggest_key("", name) }
}

pub(super) fn non_empty(key: Key<'_>, text: String) -> Result<String, ConfigError> {
    if text.trim().is_empty() {
        return Err(key.invalid("must not be empty"));
    }
    Ok(text)
}

/// A client API key: sent as `Authorization: Bearer <key>`, so not empty and without
/// whitespace or control characters. The value is never shown.
fn api_key(key: Key<'_>, text: String) -> Result<Secret, ConfigError> {
    if text.is_empty() {
        return Err(key.invalid("must not be empty"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(key.invalid("must not contain spaces or control characters (value not shown)"));
    }
    Ok(Secret::new(text))
}

fn parse_host(key: Key<'_>, value: Input<'_>) -> Result<IpAddr, ConfigError> {
    let text = value.string(key)?;
    let text = text.trim();
    if text.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    // `[::1]` as written in URLs, too.
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    bare.parse().map_err(|_| {
        key.invalid(format!(
            "expected an IP address like 0.0.0.0, 127.0.0.1 or ::, found {}",
            value.found(key)
        ))
    })
}

/// An absolute `http`/`https` URL with a host.
fn http_url(key: Key<'_>, text: &str) -> Result<String, ConfigError> {
    let shown = format!("{:?}", text.chars().take(80).collect::<String>());
    let url = url::Url::parse(text.trim()).map_err(|err| {
        key.invalid(format!("{shown} is not a URL ({err}); expected an http(s) URL"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(key.invalid(format!(
            "{shown} has the scheme {:?}; expected an http or https URL",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(key.invalid(format!("{shown} has no host; expected an http(s) URL")));
    }
    Ok(text.trim().to_owned())
}

/// A proxy URL (empty = none), checked like the HTTP client will use it. The value is not
/// shown: it may carry credentials.
pub(super) fn proxy_url(key: Key<'_>, text: String) -> Result<Option<String>, ConfigError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    check_proxy_url(text).map_err(|err| key.invalid(format!("{err} (value not shown)")))?;
    Ok(Some(text.to_owned()))
}
