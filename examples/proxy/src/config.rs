//! The gateway's configuration: a TOML file laid out like the reference implementation's
//! `setting.toml`, environment overrides on top, command-line flags on top of both.
//!
//! Pure functions, so every rule is tested without files or processes:
//! [`Config::from_toml_str`] (each value checked), [`Config::apply_env`],
//! [`Config::apply_flags`], [`Config::check`] (what needs several keys); [`Config::load`] runs
//! them in that order after reading the file. Then the helpers hand the server its pieces:
//! [`Config::machine_config`], [`Config::pool_config`], [`Config::token_records`],
//! [`Config::api_keys`], [`Config::listen_addr`], [`Config::data_dir`],
//! [`Config::http_upstream_config`].
//!
//! `sora2api.example.toml` beside this crate's manifest shows every key with its default.
//!
//! ```
//! use sora2api_proxy::config::Config;
//!
//! let file = "[server]\nport = 9000\n[sora]\npoll_interval = 5\n";
//! let mut config = Config::from_toml_str(file).unwrap();
//! config.apply_env([
//!     ("SORA2API_SERVER_HOST".to_owned(), "127.0.0.1".to_owned()),
//!     ("SORA2API_GLOBAL_API_KEY".to_owned(), "a-long-random-key".to_owned()),
//! ]).unwrap();
//! config.check().unwrap();
//! assert_eq!(config.listen_addr().to_string(), "127.0.0.1:9000");
//! assert_eq!(config.machine_config().poll_interval_ms, 5_000);
//!
//! let typo = Config::from_toml_str("[server]\nprot = 9000\n").unwrap_err();
//! assert_eq!(typo.to_string(), "unknown key server.prot; did you mean server.port?");
//! let bad = Config::from_toml_str("[sora]\ntimeout = -1\n").unwrap_err();
//! assert_eq!(
//!     bad.to_string(),
//!     "sora.timeout: expected a number of seconds > 0 (like 120 or 2.5), found an integer -1"
//! );
//! ```
//!
//! # Keys
//!
//! | key | default | environment | expects |
//! |---|---|---|---|
//! | `server.host` | `0.0.0.0` | `SORA2API_SERVER_HOST` | an IP address (or `localhost`) |
//! | `server.port` | `8000` | `SORA2API_SERVER_PORT` | 0-65535 |
//! | `server.shutdown_grace` | `10` | `SORA2API_SERVER_SHUTDOWN_GRACE` | seconds >= 0 |
//! | `server.max_connections` | `25000` | `SORA2API_SERVER_MAX_CONNECTIONS` | connections > 0 |
//! | `global.api_key` | none | `SORA2API_GLOBAL_API_KEY` | a key without whitespace |
//! | `global.api_keys` | `[]` | `SORA2API_GLOBAL_API_KEYS` (comma-separated) | keys, added to `api_key` |
//! | `global.admin_username` | `admin` | `SORA2API_GLOBAL_ADMIN_USERNAME` | not empty |
//! | `global.admin_password` | none (admin login off) | `SORA2API_GLOBAL_ADMIN_PASSWORD` | not empty |
//! | `sora.base_url` | `https://sora.chatgpt.com/backend` | `SORA2API_SORA_BASE_URL` | http(s) URL |
//! | `sora.auth_session_url` | `https://sora.chatgpt.com/api/auth/session` | `SORA2API_SORA_AUTH_SESSION_URL` | http(s) URL |
//! | `sora.oauth_token_url` | `https://auth.openai.com/oauth/token` | `SORA2API_SORA_OAUTH_TOKEN_URL` | http(s) URL |
//! | `sora.sentinel_url` | `https://chatgpt.com/backend-api/sentinel/req` | `SORA2API_SORA_SENTINEL_URL` | http(s) URL |
//! | `sora.timeout` | `120` | `SORA2API_SORA_TIMEOUT` | seconds > 0 |
//! | `sora.poll_interval` | `2.5` | `SORA2API_SORA_POLL_INTERVAL` | seconds > 0 |
//! | `sora.create_recovery_window` | `30` | `SORA2API_SORA_CREATE_RECOVERY_WINDOW` | seconds > 0 |
//! | `generation.image_timeout` | `300` | `SORA2API_GENERATION_IMAGE_TIMEOUT` | seconds > 0 |
//! | `generation.video_timeout` | `3000` | `SORA2API_GENERATION_VIDEO_TIMEOUT` | seconds > 0 |
//! | `admin.error_ban_threshold` | `3` | `SORA2API_ADMIN_ERROR_BAN_THRESHOLD` | 0-1000 (0 = never) |
//! | `admin.task_retry_enabled` | `true` | `SORA2API_ADMIN_TASK_RETRY_ENABLED` | boolean |
//! | `admin.task_max_retries` | `3` | `SORA2API_ADMIN_TASK_MAX_RETRIES` | 0-100 |
//! | `proxy.proxy_enabled` | `false` | `SORA2API_PROXY_PROXY_ENABLED` | boolean |
//! | `proxy.proxy_url` | `""` | `SORA2API_PROXY_PROXY_URL` | http, https, socks5 or socks5h URL |
//! | `call_logic.call_mode` | `default` | `SORA2API_CALL_LOGIC_CALL_MODE` | `default` (random) or `polling` (round robin) |
//! | `pow_service.mode` | `local` | `SORA2API_POW_SERVICE_MODE` | `local` or `external` |
//! | `pow_service.server_url` | `""` | `SORA2API_POW_SERVICE_SERVER_URL` | http(s) URL; required when external |
//! | `pow_service.api_key` | none | `SORA2API_POW_SERVICE_API_KEY` | not empty |
//! | `pow_service.use_token_for_pow` | `false` | `SORA2API_POW_SERVICE_USE_TOKEN_FOR_POW` | boolean |
//! | `storage.data_dir` | `data` | `SORA2API_STORAGE_DATA_DIR` | a path |
//! | `limits.max_body_bytes` | `67108864` (64 MiB) | `SORA2API_LIMITS_MAX_BODY_BYTES` | bytes > 0 |
//! | `limits.blocking_wait` | `600` | `SORA2API_LIMITS_BLOCKING_WAIT` | seconds > 0 |
//! | `limits.max_tasks` | `20000` | `SORA2API_LIMITS_MAX_TASKS` | tasks > 0 |
//! | `limits.max_upstream_calls` | `1024` | `SORA2API_LIMITS_MAX_UPSTREAM_CALLS` | calls > 0 |
//!
//! Two keys of the reference are read as aliases: `call_logic.polling_mode_enabled = true`
//! (`SORA2API_CALL_LOGIC_POLLING_MODE_ENABLED`) means `call_mode = "polling"` unless
//! `call_mode` is given too, and `call_logic.poll_interval`
//! (`SORA2API_CALL_LOGIC_POLL_INTERVAL`) sets `sora.poll_interval` and wins over it, as the
//! reference's stored setting does.
//!
//! Tokens are `[[tokens]]` entries (file only): `access_token` (required, a JWT: its expiry
//! and e-mail are read from it), `session_token`, `refresh_token`, `client_id`, `proxy_url`,
//! `image_enabled`, `video_enabled` (booleans, default true), `image_concurrency`,
//! `video_concurrency` (-1 or absent = unlimited, 0 = none, n = at most n at once) and
//! `remark`. Errors name an entry by its index from 0: `tokens[0].access_token`.
//!
//! # Unknown keys
//!
//! An unknown key or section in the file is an **error** naming it and, when there is one,
//! the nearest known key (`unknown key server.prot; did you mean server.port?`): a mistyped
//! key would otherwise silently keep its default. The reference's keys that this gateway does
//! not have (`[debug]`, `[cache]`, `[watermark_free]`, `[token_refresh]`, `[timezone]`,
//! `[pow_proxy]`, `sora.max_retries`, `sora.max_poll_attempts`, `admin.auto_disable_on_401`,
//! `proxy.image_upload_proxy_*`, `pow_service.proxy_*`) are accepted and ignored with a
//! warning ([`Config::warnings`]), so its `setting.toml` loads as it is.
//!
//! An unknown `SORA2API_*` environment variable is only a **warning** (with the nearest known
//! name): the environment is shared with other programs and with variables a later build may
//! read, and a process should not refuse to start over one of those.
//!
//! # Defaults that differ from the reference
//!
//! There is no default API key and no default admin password (the reference's `han1234` and
//! `admin`/`admin` are public, B23): [`Config::check`] refuses a configuration without an API
//! key, and without an admin password the admin login is off. Using either well-known value
//! is a warning.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sora2api_tower::core::machine::MachineConfig;
use sora2api_tower::core::pool::{PoolConfig, Strategy, TokenRecord};
use sora2api_tower::core::secret::Secret;
use sora2api_tower::core::upstream::UpstreamConfig;
use sora2api_tower::HttpUpstreamConfig;

mod input;
mod read;
#[cfg(test)]
mod tests;
mod tokens;

// === errors ===

/// A configuration (file, environment or command line) that cannot be used. The message
/// names the key, the bad value (never a secret's) and what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why (the OS error).
        reason: String,
    },
    /// The file is not valid TOML: the parser's message and the position (no source text is
    /// quoted, the line may hold a secret).
    Syntax {
        /// What the parser says.
        message: String,
        /// 1-based line of the error, if known.
        line: usize,
        /// 1-based column of the error, if known.
        column: usize,
    },
    /// A key or section this build does not know (file only; the environment warns).
    UnknownKey {
        /// The key as written (`server.prot`, `tokens[1].acess_token`).
        key: String,
        /// The nearest known key, if one is close.
        suggestion: Option<String>,
    },
    /// A value of the wrong type, out of range or unusable, or a combination of values that
    /// does not work (no API key; a proxy enabled without URL).
    Invalid {
        /// The key (`server.port`; with the variable for the environment:
        /// `server.port (SORA2API_SERVER_PORT)`; `--listen` for a flag).
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// The command line does not parse.
    Usage(String),
}

impl ConfigError {
    /// The key the error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } | ConfigError::Usage(_) => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, reason } => {
                write!(f, "cannot read the configuration file {}: {reason}", path.display())
            }
            ConfigError::Syntax { message, line, column } => {
                let message = message.trim_end().replace('\n', "; ");
                write!(f, "not valid TOML at line {line}, column {column}: {message}")
            }
            ConfigError::UnknownKey { key, suggestion: Some(s) } => {
                write!(f, "unknown key {key}; did you mean {s}?")
            }
            ConfigError::UnknownKey { key, suggestion: None } => write!(f, "unknown key {key}"),
            ConfigError::Invalid { key, problem } => write!(f, "{key}: {problem}"),
            ConfigError::Usage(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ConfigError {}

// === the configuration ===

/// The whole configuration. [`Config::default`] is every key's default (and no API key, so
/// it does not pass [`Config::check`] by itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[server]`: where to listen, how long to drain at shutdown.
    pub server: ServerConfig,
    /// `[global]`: client API keys and the admin login.
    pub global: GlobalConfig,
    /// `[sora]`: the upstream hosts, timeout and poll interval.
    pub sora: SoraConfig,
    /// `[generation]`: per-task deadlines.
    pub generation: GenerationConfig,
    /// `[admin]`: auto-disable and retries.
    pub admin: AdminConfig,
    /// `[proxy]`: the global upstream proxy.
    pub proxy: ProxyConfig,
    /// `[call_logic]`: how a token is picked.
    pub call_logic: CallLogicConfig,
    /// `[pow_service]`: where proofs of work come from.
    pub pow_service: PowServiceConfig,
    /// `[storage]`: the data directory.
    pub storage: StorageConfig,
    /// `[limits]`: request size and blocking wait.
    pub limits: LimitsConfig,
    /// `[[tokens]]`: tokens from the file, as pool records (ids unassigned: 0).
    pub tokens: Vec<TokenRecord>,
    /// Keys that were accepted but have no effect, and unknown `SORA2API_*` variables: one
    /// line each, for the log at start.
    pub warnings: Vec<String>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `host`: the address to bind (default `0.0.0.0`).
    pub host: IpAddr,
    /// `port` (default 8000; 0 picks a free port).
    pub port: u16,
    /// `shutdown_grace`: how long requests in flight may finish after a shutdown signal
    /// (default 10 s).
    pub shutdown_grace: Duration,
    /// `max_connections`: connections served at once; one more gets a 503 and is closed
    /// (default 25 000).
    pub max_connections: usize,
}

/// `[global]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    /// `api_key`: a client API key (no default).
    pub api_key: Option<Secret>,
    /// `api_keys`: more client API keys.
    pub api_keys: Vec<Secret>,
    /// `admin_username` (default `admin`).
    pub admin_username: String,
    /// `admin_password`: no default; without one the admin login is off.
    pub admin_password: Option<Secret>,
}

/// `[sora]`: the upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct SoraConfig {
    /// `base_url`: the business API, `BACKEND`, without a trailing slash.
    pub base_url: String,
    /// `auth_session_url`: ST -> AT exchange.
    pub auth_session_url: String,
    /// `oauth_token_url`: RT -> AT exchange.
    pub oauth_token_url: String,
    /// `sentinel_url`: the proof-of-work challenge.
    pub sentinel_url: String,
    /// `timeout`: timeout of business calls (default 120 s).
    pub timeout: Duration,
    /// `poll_interval`: time between status polls (default 2.5 s).
    pub poll_interval: Duration,
    /// `create_recovery_window`: after a crash lost a create's answer, how long the task
    /// looks for the create upstream before it creates again (default 30 s).
    pub create_recovery_window: Duration,
}

/// `[generation]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// `image_timeout`: overall deadline of image tasks (default 300 s).
    pub image_timeout: Duration,
    /// `video_timeout`: overall deadline of every other task (default 3000 s).
    pub video_timeout: Duration,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// `error_ban_threshold`: consecutive failures that disable a token (default 3; 0 never).
    pub error_ban_threshold: u32,
    /// `task_retry_enabled`: whether a failed attempt is retried (default true).
    pub task_retry_enabled: bool,
    /// `task_max_retries`: retries after the first attempt (default 3).
    pub task_max_retries: u32,
}

/// `[proxy]`: the global proxy.
#[derive(Clone, PartialEq)]
pub struct ProxyConfig {
    /// `proxy_enabled` (default false).
    pub proxy_enabled: bool,
    /// `proxy_url` (default none; checked even while disabled).
    pub proxy_url: Option<String>,
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A proxy URL may carry credentials.
        f.debug_struct("ProxyConfig")
            .field("proxy_enabled", &self.proxy_enabled)
            .field("proxy_url", &self.proxy_url.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// `[call_logic]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallLogicConfig {
    /// `call_mode`: `default` is [`Strategy::Random`], `polling` is [`Strategy::RoundRobin`].
    pub call_mode: Strategy,
}

/// `pow_service.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowMode {
    /// `local`: solved in-process (the default).
    Local,
    /// `external`: fetched from `server_url`.
    External,
}

/// `[pow_service]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PowServiceConfig {
    /// `mode` (default local).
    pub mode: PowMode,
    /// `server_url`: the external solver (required when external).
    pub server_url: Option<String>,
    /// `api_key`: the external solver's key.
    pub api_key: Option<Secret>,
    /// `use_token_for_pow`: send the token's credentials to the PoW source (default false).
    pub use_token_for_pow: bool,
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// `data_dir`: where the database lives (default `data`, relative to the working
    /// directory).
    pub data_dir: PathBuf,
}

/// `[limits]` (ours, not the reference's).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// `max_body_bytes`: the largest request body accepted (default 64 MiB).
    pub max_body_bytes: usize,
    /// `blocking_wait`: how long a non-streaming request waits for its task before it is
    /// answered with the task id to poll (default 600 s).
    pub blocking_wait: Duration,
    /// `max_tasks`: tasks running at once; beyond it new generations get 503 with
    /// `Retry-After` (default 20 000).
    pub max_tasks: usize,
    /// `max_upstream_calls`: upstream calls in flight at once; more wait for a slot within
    /// their timeout (default 1 024; each costs a connection, ~40 KiB, while it runs).
    pub max_upstream_calls: usize,
}

impl Default for Config {
    fn default() -> Self {
        let upstream = UpstreamConfig::default();
        let machine = MachineConfig::default();
        let pool = PoolConfig::default();
        Config {
            server: ServerConfig {
                host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                port: 8000,
                shutdown_grace: Duration::from_secs(10),
                max_connections: crate::server::DEFAULT_MAX_CONNECTIONS,
            },
            global: GlobalConfig {
                api_key: None,
                api_keys: Vec::new(),
                admin_username: "admin".into(),
                admin_password: None,
            },
            sora: SoraConfig {
                base_url: upstream.base_url,
                auth_session_url: upstream.auth_session_url,
                oauth_token_url: upstream.oauth_token_url,
                sentinel_url: upstream.sentinel_url,
                timeout: Duration::from_millis(upstream.request_timeout_ms),
                poll_interval: Duration::from_millis(machine.poll_interval_ms),
                create_recovery_window: Duration::from_millis(machine.create_recovery_window_ms),
            },
            generation: GenerationConfig {
                image_timeout: Duration::from_millis(machine.image_timeout_ms),
                video_timeout: Duration::from_millis(machine.video_timeout_ms),
            },
            admin: AdminConfig {
                error_ban_threshold: pool.error_threshold,
                task_retry_enabled: true,
                task_max_retries: machine.max_retries,
            },
            proxy: ProxyConfig { proxy_enabled: false, proxy_url: None },
            call_logic: CallLogicConfig { call_mode: pool.strategy },
            pow_service: PowServiceConfig {
                mode: PowMode::Local,
                server_url: None,
                api_key: None,
                use_token_for_pow: false,
            },
            storage: StorageConfig { data_dir: PathBuf::from("data") },
            limits: LimitsConfig {
                max_body_bytes: 64 << 20,
                blocking_wait: Duration::from_secs(600),
                max_tasks: sora2api_tower::engine::DEFAULT_MAX_LIVE_TASKS,
                max_upstream_calls: HttpUpstreamConfig::default().max_in_flight,
            },
            tokens: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

// === helpers for the server ===

impl Config {
    /// The state machine's settings: hosts, business-call timeout, poll interval, task
    /// deadlines, retries (`task_max_retries`, or none when `task_retry_enabled` is false);
    /// everything else at [`MachineConfig::default`].
    pub fn machine_config(&self) -> MachineConfig {
        MachineConfig {
            upstream: UpstreamConfig {
                base_url: self.sora.base_url.clone(),
                auth_session_url: self.sora.auth_session_url.clone(),
                oauth_token_url: self.sora.oauth_token_url.clone(),
                sentinel_url: self.sora.sentinel_url.clone(),
                request_timeout_ms: millis(self.sora.timeout),
                ..UpstreamConfig::default()
            },
            poll_interval_ms: millis(self.sora.poll_interval),
            create_recovery_window_ms: millis(self.sora.create_recovery_window),
            image_timeout_ms: millis(self.generation.image_timeout),
            video_timeout_ms: millis(self.generation.video_timeout),
            max_retries: if self.admin.task_retry_enabled {
                self.admin.task_max_retries
            } else {
                0
            },
            ..MachineConfig::default()
        }
    }

    /// The pool's settings: `call_mode` and `error_ban_threshold`; the rest at
    /// [`PoolConfig::default`].
    pub fn pool_config(&self) -> PoolConfig {
        PoolConfig {
            strategy: self.call_logic.call_mode,
            error_threshold: self.admin.error_ban_threshold,
            ..PoolConfig::default()
        }
    }

    /// The `[[tokens]]` entries as pool records (ids unassigned: add them with
    /// `TokenPool::add`, or match them against stored tokens by access token first).
    pub fn token_records(&self) -> Vec<TokenRecord> {
        self.tokens.clone()
    }

    /// Every client API key: `api_key` then `api_keys`, without duplicates.
    pub fn api_keys(&self) -> Vec<Secret> {
        let mut keys: Vec<Secret> = Vec::new();
        for key in self.global.api_key.iter().chain(&self.global.api_keys) {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// The address to listen on (`server.host`, `server.port`, or `--listen`).
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.server.host, self.server.port)
    }

    /// The data directory (`storage.data_dir`, or `--data-dir`).
    pub fn data_dir(&self) -> &Path {
        &self.storage.data_dir
    }

    /// The HTTP client's settings: the global proxy when `proxy_enabled`, the calls in flight
    /// (`limits.max_upstream_calls`); the rest at [`HttpUpstreamConfig::default`].
    pub fn http_upstream_config(&self) -> HttpUpstreamConfig {
        HttpUpstreamConfig {
            global_proxy: self.proxy.proxy_url.clone().filter(|_| self.proxy.proxy_enabled),
            max_in_flight: self.limits.max_upstream_calls,
            ..HttpUpstreamConfig::default()
        }
    }
}

/// The process environment for [`Config::apply_env`] and [`Config::load`]. Unlike
/// `std::env::vars` it never panics: a name that is not UTF-8 is skipped (it cannot be a
/// `SORA2API_*` variable), a value that is not UTF-8 is converted lossily (and then most
/// likely refused by its key's check).
pub fn env_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.to_string_lossy().into_owned()))
        })
        .collect()
}

/// A duration in whole milliseconds (saturating; the core counts in ms).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
