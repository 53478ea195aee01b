//! [`Sora2ApiLayer`]: the gateway as tower middleware, and its validating builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use tower::Layer;

use sora2api_core::pool::{PoolConfig, TokenPool};
use sora2api_core::translate::Limits;

use crate::auth::ApiKeys;
use crate::engine::{Engine, EngineConfig};
use crate::routes::API_ROOT;
use crate::service::Sora2ApiService;
use crate::sse::{DEFAULT_KEEP_ALIVE, MIN_KEEP_ALIVE};
use crate::store::{MemoryStore, TaskStore};
use crate::upstream::{BoxFuture, Upstream};

/// The default request body limit: 64 MiB (issue 4).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;
/// How long a blocking (`stream: false`) request waits before it answers `202` with the task
/// id (decisions 1: 10 min).
pub const DEFAULT_BLOCKING_WAIT: Duration = Duration::from_secs(600);
/// How long a client may take to send its request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(120);
/// Where the admin API is mounted unless told otherwise (the original's `/api`).
pub const DEFAULT_ADMIN_PREFIX: &str = "/api";

/// An admin API: one request (path below the admin prefix, body collected within the
/// layer's limit) to one response. [`crate::Admin`] is the one this crate ships; an embedder
/// may plug in its own.
pub type AdminHandler =
    Arc<dyn Fn(Request<Bytes>) -> BoxFuture<'static, Response<Bytes>> + Send + Sync>;

/// The gateway as a tower [`Layer`]: wraps any service; the client API routes (and the admin
/// API, if configured) are answered by the gateway, every other request goes to the inner
/// service untouched.
///
/// Cheap to clone; every service it makes shares one [`Engine`] (tasks, token pool, store).
///
/// ```no_run
/// # fn demo(upstream: std::sync::Arc<dyn sora2api_tower::Upstream>) -> Result<(), sora2api_tower::LayerError> {
/// use sora2api_tower::{ApiKeys, Sora2ApiLayer};
///
/// let layer = Sora2ApiLayer::builder()
///     .upstream(upstream)
///     .api_keys(ApiKeys::new(["han1234"]))
///     .build()?;
/// // axum: Router::new().nest_service("/sora", layer.layer(fallback_service))
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sora2ApiLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for Sora2ApiLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sora2ApiLayer")
            .field("prefix", &self.shared.prefix)
            .field("admin", &self.shared.admin.as_ref().map(|(p, _)| p))
            .finish_non_exhaustive()
    }
}

/// What every service of one layer shares.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    /// `None`: no authentication (explicitly asked for with [`Builder::without_auth`]).
    pub(crate) keys: Option<ApiKeys>,
    /// The path prefix, `""` or `/x`.
    pub(crate) prefix: String,
    /// `prefix` + `/v1`: everything under it is the client API's.
    pub(crate) api_root: String,
    pub(crate) admin: Option<(String, AdminHandler)>,
    pub(crate) media_limits: Limits,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) blocking_wait: Duration,
    pub(crate) keep_alive: Duration,
}

/// Which part of the gateway a path belongs to.
pub(crate) enum Owner {
    /// The client API; the path below the prefix.
    Api(String),
    /// The admin API; the path below the admin prefix.
    Admin(String),
    /// Not ours: the inner service.
    Inner,
}

impl Shared {
    pub(crate) fn owner(&self, path: &str) -> Owner {
        if under(path, &self.api_root) {
            return Owner::Api(path[self.prefix.len()..].to_owned());
        }
        match &self.admin {
            Some((prefix, _)) if under(path, prefix) => {
                let rest = &path[prefix.len()..];
                Owner::Admin(if rest.is_empty() { "/".to_owned() } else { rest.to_owned() })
            }
            _ => Owner::Inner,
        }
    }
}

/// Whether `path` is `root` or below it.
fn under(path: &str, root: &str) -> bool {
    path.strip_prefix(root).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Sora2ApiLayer {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The engine every service of this layer uses (resume tasks after a start, read the
    /// pool, shut down).
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }
}

impl<S> Layer<S> for Sora2ApiLayer {
    type Service = Sora2ApiService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Sora2ApiService::new(inner, self.shared.clone())
    }
}

/// A setting of [`Builder`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerError {
    /// Neither an upstream nor an engine was given.
    MissingUpstream,
    /// No API key, and [`Builder::without_auth`] was not asked for.
    NoApiKeys,
    /// A path prefix is not of the form `/segment[/segment...]` (no trailing `/`, no `?`/`#`).
    InvalidPrefix {
        /// Which prefix (`path_prefix` or `admin_prefix`).
        which: &'static str,
        /// The value given.
        value: String,
    },
    /// The admin prefix would hide client API routes, or the other way round.
    OverlappingPrefixes,
    /// A limit or timeout is zero or out of range.
    InvalidLimit {
        /// The setting's name.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
    },
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerError::MissingUpstream => {
                f.write_str("no upstream: call .upstream(..) or .engine(..)")
            }
            LayerError::NoApiKeys => f.write_str(
                "no API key: give at least one with .api_keys(..), or call .without_auth() if \
                 authentication happens in front of the layer",
            ),
            LayerError::InvalidPrefix { which, value } => write!(
                f,
                "{which} {value:?} is not a path prefix: it must start with '/', not end with \
                 '/', and have no '?' or '#' (use \"\" for none)"
            ),
            LayerError::OverlappingPrefixes => {
                f.write_str("the admin prefix and the client API root (path prefix + /v1) overlap")
            }
            LayerError::InvalidLimit { name, expected } => write!(f, "{name} must be {expected}"),
        }
    }
}

impl std::error::Error for LayerError {}

/// Builds a [`Sora2ApiLayer`]; [`Builder::build`] checks every setting.
#[must_use]
pub struct Builder {
    upstream: Option<Arc<dyn Upstream>>,
    engine: Option<Engine>,
    task_store: Option<Arc<dyn TaskStore>>,
    token_pool: Option<TokenPool>,
    engine_config: EngineConfig,
    keys: Option<ApiKeys>,
    no_auth: bool,
    prefix: String,
    admin: Option<(String, AdminHandler)>,
    media_limits: Limits,
    max_body_bytes: usize,
    body_timeout: Duration,
    blocking_wait: Duration,
    keep_alive: Duration,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            upstream: None,
            engine: None,
            task_store: None,
            token_pool: None,
            engine_config: EngineConfig::default(),
            keys: None,
            no_auth: false,
            prefix: String::new(),
            admin: None,
            media_limits: Limits::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            blocking_wait: DEFAULT_BLOCKING_WAIT,
            keep_alive: DEFAULT_KEEP_ALIVE,
        }
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl Builder {
    /// The upstream the tasks call (required unless [`Builder::engine`] is given).
    pub fn upstream(mut self, upstream: Arc<dyn Upstream>) -> Self {
        self.upstream = Some(upstream);
        self
    }

    /// Where task records live (default: a [`MemoryStore`], lost with the process).
    pub fn task_store(mut self, store: Arc<dyn TaskStore>) -> Self {
        self.task_store = Some(store);
        self
    }

    /// The tokens (default: an empty pool with default settings; add tokens through
    /// [`Engine::with_pool`] or the admin API).
    pub fn token_pool(mut self, pool: TokenPool) -> Self {
        self.token_pool = Some(pool);
        self
    }

    /// The engine's and the state machine's settings: upstream hosts, timeouts, poll
    /// interval, retries, PoW budget.
    pub fn engine_config(mut self, config: EngineConfig) -> Self {
        self.engine_config = config;
        self
    }

    /// A ready engine instead of upstream, store, pool and engine settings (for example one
    /// shared with an admin API built first).
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// The accepted API keys (shared: changes through the admin API apply at once).
    pub fn api_keys(mut self, keys: ApiKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// No API key check at all: for a layer behind an authenticating gateway. Must be asked
    /// for explicitly.
    pub fn without_auth(mut self) -> Self {
        self.no_auth = true;
        self
    }

    /// Serve the client API under `prefix` + `/v1/...` (default `""`). Under an axum
    /// `nest_service`, which strips its own prefix, leave it empty.
    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Serve `admin` under `prefix` (for example [`DEFAULT_ADMIN_PREFIX`]).
    pub fn admin(mut self, prefix: impl Into<String>, admin: AdminHandler) -> Self {
        self.admin = Some((prefix.into(), admin));
        self
    }

    /// Serve this crate's admin API ([`crate::Admin`]) under `prefix` (for example
    /// [`DEFAULT_ADMIN_PREFIX`]).
    pub fn admin_api(self, prefix: impl Into<String>, admin: crate::Admin) -> Self {
        let handler: AdminHandler = Arc::new(move |req| {
            let admin = admin.clone();
            Box::pin(async move { admin.handle(req).await })
        });
        self.admin(prefix, handler)
    }

    /// Largest decoded media and prompt sizes.
    pub fn media_limits(mut self, limits: Limits) -> Self {
        self.media_limits = limits;
        self
    }

    /// Largest request body in bytes (default 64 MiB); larger ones get a `413`.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// How long a client may take to send its body (default 120 s); then `408`.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How long a blocking request waits for its result before it answers `202` with the
    /// task id (default 10 min).
    pub fn blocking_wait(mut self, wait: Duration) -> Self {
        self.blocking_wait = wait;
        self
    }

    /// The SSE keep-alive interval (default 15 s; at least 100 ms).
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.keep_alive = interval;
        self
    }

    /// Checks every setting and makes the layer. Does not start anything (tasks start on
    /// the first request, or with [`Engine::resume_unfinished`]).
    pub fn build(self) -> Result<Sora2ApiLayer, LayerError> {
        check_prefix("path_prefix", &self.prefix)?;
        let api_root = format!("{}{API_ROOT}", self.prefix);
        if let Some((admin, _)) = &self.admin {
            check_prefix("admin_prefix", admin)?;
            if admin.is_empty() || under(admin, &api_root) || under(&api_root, admin) {
                return Err(LayerError::OverlappingPrefixes);
            }
        }
        let keys = match (self.keys, self.no_auth) {
            (_, true) => None,
            (Some(keys), false) => Some(keys),
            (None, false) => return Err(LayerError::NoApiKeys),
        };
        let limit = |ok: bool, name, expected| {
            if ok {
                Ok(())
            } else {
                Err(LayerError::InvalidLimit { name, expected })
            }
        };
        limit(self.max_body_bytes > 0, "max_body_bytes", "at least 1")?;
        limit(!self.body_timeout.is_zero(), "body_timeout", "more than 0")?;
        limit(!self.blocking_wait.is_zero(), "blocking_wait", "more than 0")?;
        limit(self.keep_alive >= MIN_KEEP_ALIVE, "keep_alive", "at least 100 ms")?;
        let engine = match (self.engine, self.upstream) {
            (Some(engine), _) => engine,
            (None, Some(upstream)) => Engine::new(
                self.engine_config,
                upstream,
                self.task_store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                self.token_pool.unwrap_or_else(|| TokenPool::new(PoolConfig::default())),
            ),
            (None, None) => return Err(LayerError::MissingUpstream),
        };
        Ok(Sora2ApiLayer {
            shared: Arc::new(Shared {
                engine,
                keys,
                prefix: self.prefix,
                api_root,
                admin: self.admin,
                media_limits: self.media_limits,
                max_body_bytes: self.max_body_bytes,
                body_timeout: self.body_timeout,
                blocking_wait: self.blocking_wait,
                keep_alive: self.keep_alive,
            }),
        })
    }
}

fn check_prefix(which: &'static str, prefix: &str) -> Result<(), LayerError> {
    let ok = prefix.is_empty()
        || (prefix.starts_with('/')
            && !prefix.ends_with('/')
            && !prefix.contains(['?', '#', ' '])
            && !prefix.contains("//"));
    if ok {
        Ok(())
    } else {
        Err(LayerError::InvalidPrefix { which, value: prefix.to_owned() })
    }
}
