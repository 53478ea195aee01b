//! The admin settings: what is stored (one JSON object under [`SETTINGS`]), how it is seeded
//! from the running engine on the first start, how each settings route reads and changes it,
//! and how it is applied to the engine, the pool and the upstream.
//!
//! Units on the wire are the original's (seconds; `poll_interval` a decimal); the stored form
//! keeps milliseconds so seeding from the engine loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sora2api_core::machine::MachineConfig;
use sora2api_core::pool::{mask_proxy, PoolConfig, Strategy};
use sora2api_core::secret::Secret;

use super::reply::{Body, Failure};
use crate::engine::{Engine, PowMode, PowService};
use crate::upstream::check_proxy_url;

/// The token-store setting names.
pub(super) const SETTINGS: &str = "admin.settings";
/// The admin username and password hash.
pub(super) const CREDENTIALS: &str = "admin.credentials";
/// The client API keys.
pub(super) const API_KEYS: &str = "admin.api_keys";

/// Image timeout bounds, seconds (sora-backend.md 7.2 generation/timeout).
const IMAGE_TIMEOUT_S: (i64, i64) = (60, 3_600);
/// Video timeout bounds, seconds.
const VIDEO_TIMEOUT_S: (i64, i64) = (60, 7_200);
/// `poll_interval` bounds, seconds (the original only asks for > 0).
const POLL_INTERVAL_S: (f64, f64) = (0.1, 60.0);
/// `task_max_retries` bounds.
const MAX_RETRIES: (i64, i64) = (0, 10);
/// `error_ban_threshold` bounds (0: never auto-disable).
const BAN_THRESHOLD: (i64, i64) = (0, 1_000);

/// `call_mode`: how a token is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(super) enum CallMode {
    /// Uniformly at random ([`Strategy::Random`]).
    #[default]
    Default,
    /// Round robin ([`Strategy::RoundRobin`]).
    Polling,
}

impl CallMode {
    fn as_str(self) -> &'static str {
        match self {
            CallMode::Default => "default",
            CallMode::Polling => "polling",
        }
    }
}

/// Every admin setting, as stored. Missing fields (an older store) take the defaults.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Settings {
    pub error_ban_threshold: u32,
    pub task_retry_enabled: bool,
    pub task_max_retries: u32,
    pub poll_interval_ms: u64,
    pub image_timeout_ms: u64,
    pub video_timeout_ms: u64,
    pub call_mode: CallMode,
    pub proxy_enabled: bool,
    pub proxy_url: String,
    /// `local` or `external`.
    pub pow_mode: String,
    pub pow_server_url: String,
    pub pow_api_key: String,
    pub pow_use_token: bool,
}

impl std::fmt::Debug for Settings {
    /// The proxy URL and the PoW service URL masked, the PoW API key as a fingerprint.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("error_ban_threshold", &self.error_ban_threshold)
            .field("task_retry_enabled", &self.task_retry_enabled)
            .field("task_max_retries", &self.task_max_retries)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("image_timeout_ms", &self.image_timeout_ms)
            .field("video_timeout_ms", &self.video_timeout_ms)
            .field("call_mode", &self.call_mode)
            .field("proxy_enabled", &self.proxy_enabled)
            .field("proxy_url", &mask_proxy(&self.proxy_url))
            .field("pow_mode", &self.pow_mode)
            .field("pow_server_url", &mask_proxy(&self.pow_server_url))
            .field("pow_api_key", &masked_or_null(&self.pow_api_key))
            .field("pow_use_token", &self.pow_use_token)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::seed(
            &MachineConfig::default(),
            &PoolConfig::default(),
            &PowService::default(),
            None,
        )
    }
}

impl Settings {
    /// The settings the engine runs with now (the first start's values).
    pub(super) fn seed(
        machine: &MachineConfig,
        pool: &PoolConfig,
        pow: &PowService,
        proxy_url: Option<&str>,
    ) -> Settings {
        Settings {
            error_ban_threshold: pool.error_threshold,
            task_retry_enabled: machine.max_retries > 0,
            task_max_retries: machine.max_retries,
            poll_interval_ms: machine.poll_interval_ms,
            image_timeout_ms: machine.image_timeout_ms,
            video_timeout_ms: machine.video_timeout_ms,
            call_mode: match pool.strategy {
                Strategy::Random => CallMode::Default,
                Strategy::RoundRobin => CallMode::Polling,
            },
            proxy_enabled: proxy_url.is_some(),
            proxy_url: proxy_url.unwrap_or_default().to_owned(),
            pow_mode: pow.mode.as_str().to_owned(),
            pow_server_url: pow.server_url.clone(),
            pow_api_key: pow.api_key.expose().to_owned(),
            pow_use_token: pow.use_token_for_pow,
        }
    }

    /// The global proxy in effect: enabled and not empty.
    pub(super) fn global_proxy(&self) -> Option<&str> {
        (self.proxy_enabled && !self.proxy_url.is_empty()).then_some(self.proxy_url.as_str())
    }

    /// The PoW service settings.
    pub(super) fn pow_service(&self) -> PowService {
        PowService {
            mode: if self.pow_mode == "external" { PowMode::External } else { PowMode::Local },
            server_url: self.pow_server_url.clone(),
            api_key: Secret::new(self.pow_api_key.clone()),
            use_token_for_pow: self.pow_use_token,
        }
    }

    /// Applies everything but the proxy to the engine: the machine settings of new tasks,
    /// the pool's threshold and strategy, the PoW service.
    pub(super) fn apply(&self, engine: &Engine) {
        let mut machine = (*engine.machine_config()).clone();
        machine.max_retries = if self.task_retry_enabled { self.task_max_retries } else { 0 };
        machine.poll_interval_ms = self.poll_interval_ms;
        machine.image_timeout_ms = self.image_timeout_ms;
        machine.video_timeout_ms = self.video_timeout_ms;
        engine.set_machine_config(machine);
        engine.with_pool(|pool| {
            let mut config = pool.config().clone();
            config.error_threshold = self.error_ban_threshold;
            config.strategy = match self.call_mode {
                CallMode::Default => Strategy::Random,
                CallMode::Polling => Strategy::RoundRobin,
            };
            if config != *pool.config() {
                pool.set_config(config);
            }
        });
        engine.set_pow_service(self.pow_service());
    }

    /// The stored form.
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// From the stored form; `None` if it does not parse.
    pub(super) fn from_bytes(bytes: &[u8]) -> Option<Settings> {
        serde_json::from_slice(bytes).ok()
    }
}

// === the settings routes ===

/// Which settings route: what it shows and which fields it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum View {
    /// `/admin/config`: the ban threshold, retries, poll interval, timeouts, call mode.
    Admin,
    /// `/generation/timeout`: the two timeouts.
    Timeout,
    /// `/call-logic/config`: call mode and poll interval.
    CallLogic,
    /// `/proxy/config`: the global proxy.
    Proxy,
    /// `/pow/config`: the PoW service.
    Pow,
}

fn seconds(ms: u64) -> u64 {
    ms / 1000
}

fn seconds_f(ms: u64) -> f64 {
    // Poll intervals are small: exact in f64.
    ms as f64 / 1000.0
}

impl View {
    /// The route's GET body (secrets masked: proxy credentials, the PoW API key).
    pub(super) fn show(self, s: &Settings, username: &str) -> Value {
        match self {
            View::Admin => json!({
                "error_ban_threshold": s.error_ban_threshold,
                "task_retry_enabled": s.task_retry_enabled,
                "task_max_retries": s.task_max_retries,
                "poll_interval": seconds_f(s.poll_interval_ms),
                "image_timeout": seconds(s.image_timeout_ms),
                "video_timeout": seconds(s.video_timeout_ms),
                "call_mode": s.call_mode.as_str(),
                "admin_username": username,
            }),
            View::Timeout => json!({
                "success": true,
                "config": {
                    "image_timeout": seconds(s.image_timeout_ms),
                    "video_timeout": seconds(s.video_timeout_ms),
                },
            }),
            View::CallLogic => json!({
                "success": true,
                "config": {
                    "call_mode": s.call_mode.as_str(),
                    "polling_mode_enabled": s.call_mode == CallMode::Polling,
                    "poll_interval": seconds_f(s.poll_interval_ms),
                },
            }),
            View::Proxy => json!({
                "proxy_enabled": s.proxy_enabled,
                "proxy_url": mask_proxy(&s.proxy_url),
            }),
            View::Pow => json!({
                "success": true,
                "config": {
                    "mode": s.pow_mode,
                    "server_url": mask_proxy(&s.pow_server_url),
                    "api_key": masked_or_null(&s.pow_api_key),
                    "use_token_for_pow": s.pow_use_token,
                },
            }),
        }
    }

    /// Applies a POST body's fields for this route to `s`, each checked; the first bad one
    /// is a 400 naming it. Absent and `null` fields keep their value.
    pub(super) fn change(self, s: &mut Settings, body: &Body) -> Result<(), Failure> {
        match self {
            View::Admin => {
                if let Some(n) =
                    body.int_in("error_ban_threshold", BAN_THRESHOLD.0, BAN_THRESHOLD.1)?
                {
                    s.error_ban_threshold = u32::try_from(n).unwrap_or(u32::MAX);
                }
                if let Some(on) = body.bool("task_retry_enabled")? {
                    s.task_retry_enabled = on;
                }
                if let Some(n) = body.int_in("task_max_retries", MAX_RETRIES.0, MAX_RETRIES.1)? {
                    s.task_max_retries = u32::try_from(n).unwrap_or(0);
                }
                poll_interval(s, body)?;
                timeouts(s, body)?;
                call_mode(s, body)
            }
            View::Timeout => timeouts(s, body),
            View::CallLogic => {
                if let Some(polling) = body.bool("polling_mode_enabled")? {
                    s.call_mode = if polling { CallMode::Polling } else { CallMode::Default };
                }
                call_mode(s, body)?;
                poll_interval(s, body)
            }
            View::Proxy => {
                if let Some(on) = body.bool("proxy_enabled")? {
                    s.proxy_enabled = on;
                }
                if let Some(url) = body.str("proxy_url")? {
                    let url = url.trim();
                    // The masked form a GET showed means "unchanged".
                    if url != mask_proxy(&s.proxy_url) {
                        if !url.is_empty() {
                            check_proxy_url(url)
                                .map_err(|e| Failure::invalid("proxy_url", e.to_string()))?;
                        }
                        s.proxy_url = url.to_owned();
                    }
                }
                Ok(())
            }
            View::Pow => {
                if let Some(mode) = body.str("mode")? {
                    match mode.as_str() {
                        "local" | "external" => s.pow_mode = mode,
                        _ => {
                            return Err(Failure::invalid("mode", "mode must be local or external"))
                        }
                    }
                }
                if let Some(url) = body.str("server_url")? {
                    let url = url.trim().trim_end_matches('/');
                    if url != mask_proxy(&s.pow_server_url) {
                        if !url.is_empty() {
                            check_http_url(url)?;
                        }
                        s.pow_server_url = url.to_owned();
                    }
                }
                if let Some(key) = body.str("api_key")? {
                    if masked_or_null(&s.pow_api_key).as_deref() != Some(key.as_str()) {
                        s.pow_api_key = key;
                    }
                }
                if let Some(on) = body.bool("use_token_for_pow")? {
                    s.pow_use_token = on;
                }
                if s.pow_mode == "external" && s.pow_server_url.is_empty() {
                    return Err(Failure::invalid(
                        "server_url",
                        "server_url is required when mode is external",
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The masked API key, or `null` when there is none.
fn masked_or_null(key: &str) -> Option<String> {
    (!key.is_empty()).then(|| Secret::new(key).masked())
}

fn poll_interval(s: &mut Settings, body: &Body) -> Result<(), Failure> {
    if let Some(secs) = body.number("poll_interval")? {
        let (min, max) = POLL_INTERVAL_S;
        if !(min..=max).contains(&secs) {
            return Err(Failure::invalid(
                "poll_interval",
                format!("poll_interval must be between {min} and {max} seconds"),
            ));
        }
        // In range: a positive number of milliseconds well within u64.
        s.poll_interval_ms = (secs * 1000.0).round() as u64;
    }
    Ok(())
}

fn timeouts(s: &mut Settings, body: &Body) -> Result<(), Failure> {
    let ms = |secs: i64| u64::try_from(secs).unwrap_or(0).saturating_mul(1000);
    if let Some(secs) = body.int_in("image_timeout", IMAGE_TIMEOUT_S.0, IMAGE_TIMEOUT_S.1)? {
        s.image_timeout_ms = ms(secs);
    }
    if let Some(secs) = body.int_in("video_timeout", VIDEO_TIMEOUT_S.0, VIDEO_TIMEOUT_S.1)? {
        s.video_timeout_ms = ms(secs);
    }
    Ok(())
}

fn call_mode(s: &mut Settings, body: &Body) -> Result<(), Failure> {
    if let Some(mode) = body.str("call_mode")? {
        s.call_mode = match mode.as_str() {
            "default" => CallMode::Default,
            "polling" => CallMode::Polling,
            _ => return Err(Failure::invalid("call_mode", "call_mode must be default or polling")),
        };
    }
    Ok(())
}

/// An absolute `http` or `https` URL with a host.
fn check_http_url(url: &str) -> Result<(), Failure> {
    let bad = || Failure::invalid("server_url", "server_url must be an http:// or https:// URL");
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad());
    }
    Ok(())
}

// === API keys and credentials, stored ===

/// The admin username and password hash, as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredCredentials {
    pub username: String,
    pub password_hash: String,
}

/// The client API keys, as stored (plaintext: a client presents them, so they must be
/// comparable; the token store is as sensitive as the tokens it holds).
#[derive(Serialize, Deserialize)]
pub(super) struct StoredKeys {
    pub keys: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> Body {
        Body::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn seed_round_trips_through_the_store() {
        let s = Settings::default();
        assert_eq!(Settings::from_bytes(&s.to_bytes()), Some(s.clone()));
        assert_eq!(s.image_timeout_ms, 300_000);
        assert!(s.task_retry_enabled && s.task_max_retries == 3);
        assert_eq!(Settings::from_bytes(b"{}"), Some(s), "missing fields take defaults");
        assert_eq!(Settings::from_bytes(br#"{"task_max_retries":"x"}"#), None);
        assert_eq!(Settings::from_bytes(b"not json"), None);
    }

    #[test]
    fn changes_are_checked_and_name_the_param() {
        let mut s = Settings::default();
        View::Admin
            .change(&mut s, &body(r#"{"error_ban_threshold":5,"poll_interval":1.5,"call_mode":"polling","image_timeout":600}"#))
            .unwrap();
        assert_eq!((s.error_ban_threshold, s.poll_interval_ms), (5, 1_500));
        assert_eq!((s.call_mode, s.image_timeout_ms), (CallMode::Polling, 600_000));
        for (view, json, param) in [
            (View::Admin, r#"{"error_ban_threshold":-1}"#, "error_ban_threshold"),
            (View::Admin, r#"{"task_max_retries":11}"#, "task_max_retries"),
            (View::Admin, r#"{"poll_interval":0}"#, "poll_interval"),
            (View::Admin, r#"{"call_mode":"fast"}"#, "call_mode"),
            (View::Timeout, r#"{"image_timeout":59}"#, "image_timeout"),
            (View::Timeout, r#"{"video_timeout":7201}"#, "video_timeout"),
            (View::Proxy, r#"{"proxy_url":"ftp://p"}"#, "proxy_url"),
            (View::Pow, r#"{"mode":"remote"}"#, "mode"),
            (View::Pow, r#"{"mode":"external"}"#, "server_url"),
            (View::Pow, r#"{"server_url":"localhost:8002"}"#, "server_url"),
        ] {
            let before = s.clone();
            let failure = view.change(&mut s.clone(), &body(json)).unwrap_err();
            let text = String::from_utf8(failure.into_response().body().to_vec()).unwrap();
            assert!(text.contains(&format!(r#""param":"{param}""#)), "{json}: {text}");
            assert!(s == before);
        }
    }

    #[test]
    fn masked_values_posted_back_mean_unchanged() {
        let mut s = Settings {
            proxy_enabled: true,
            proxy_url: "http://u:secret@proxy:1".into(),
            pow_api_key: "pow-secret-key".into(),
            ..Settings::default()
        };
        let shown = View::Proxy.show(&s, "admin");
        assert!(!shown.to_string().contains("secret"));
        View::Proxy.change(&mut s, &Body::from_value(shown, "body").unwrap()).unwrap();
        assert_eq!(s.proxy_url, "http://u:secret@proxy:1");
        let shown = View::Pow.show(&s, "admin")["config"].clone();
        assert!(!shown.to_string().contains("pow-secret-key"));
        View::Pow.change(&mut s, &Body::from_value(shown, "body").unwrap()).unwrap();
        assert_eq!(s.pow_api_key, "pow-secret-key");
    }
}
