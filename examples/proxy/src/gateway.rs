//! `sora2api --config FILE`: the gateway against a real (or simulated) backend, with durable
//! tasks and tokens in the data directory.
//!
//! Start: open the data directory; load the stored tokens into the pool and add the file's
//! `[[tokens]]` that are not stored yet (matched by access token); start the admin API if a
//! login is configured or stored; bind; resume every unfinished task from its record; serve.
//! While running: token state and stats go to the store every [`TOKEN_SAVE_INTERVAL`], and
//! tokens close to expiry are refreshed every [`REFRESH_CHECK_INTERVAL`].
//!
//! Stop (ctrl-c or SIGTERM): stop accepting, let connections finish within the grace period
//! (`server.shutdown_grace`, default 10 s; streams still open then are cut), save the tokens,
//! stop every task driver and make the task store durable. Every task that did not finish
//! resumes on the next start: one the upstream accepted is only polled again, never created
//! twice.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use sora2api_tower::core::pool::TokenPool;
use sora2api_tower::{
    Admin, AdminConfig, AdminError, ApiKeys, Engine, EngineConfig, HttpUpstream, Sora2ApiLayer,
    TokenStore,
};

use crate::config::{Config, PowMode};
use crate::data_dir::DataDir;
use crate::server;
use crate::token_store::RedbTokenStore;

/// How often token state and stats are written to the store.
pub const TOKEN_SAVE_INTERVAL: Duration = Duration::from_secs(30);
/// How often tokens close to expiry are looked for.
pub const REFRESH_CHECK_INTERVAL: Duration = Duration::from_secs(300);
/// A token whose access token expires within this margin is refreshed ahead of time.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(24 * 3600);

/// Runs the gateway until ctrl-c or SIGTERM. Lines for the operator go to `out`.
///
/// # Errors
///
/// What stops the start, in words: the data directory, the HTTP client, the stores, the
/// admin settings, the listen address.
pub async fn run(config: Config, out: &mut dyn Write) -> Result<(), String> {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let dir = config.data_dir().to_owned();
    let data = tokio::task::spawn_blocking(move || DataDir::open(dir))
        .await
        .map_err(|e| format!("opening the data directory failed: {e}"))?
        .map_err(|e| format!("data directory {}: {e}", config.data_dir().display()))?;
    let tokens = data.token_store();
    let tasks = data.task_store();

    let upstream = HttpUpstream::new(config.http_upstream_config())
        .map_err(|e| format!("the HTTP client could not be built: {e}"))?;
    let engine_config = EngineConfig {
        machine: config.machine_config(),
        pow_service: pow_service(&config),
        max_live_tasks: config.limits.max_tasks,
        ..EngineConfig::default()
    };
    let pool = load_tokens(&tokens, &config).await?;
    let engine = Engine::new(engine_config, Arc::new(upstream), Arc::new(tasks.clone()), pool);
    let keys = ApiKeys::new(config.api_keys().iter().map(|k| k.expose().to_owned()));

    let admin = start_admin(&config, &engine, &tokens, &keys).await?;
    let mut builder = Sora2ApiLayer::builder()
        .engine(engine.clone())
        .api_keys(keys.clone())
        .max_body_bytes(config.limits.max_body_bytes)
        .blocking_wait(config.limits.blocking_wait);
    if let Some(admin) = &admin {
        builder = builder.admin_api(sora2api_tower::layer::DEFAULT_ADMIN_PREFIX, admin.clone());
    }
    let layer = builder.build().map_err(|e| e.to_string())?;

    let listen = config.listen_addr();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let resumed = engine
        .resume_unfinished()
        .await
        .map_err(|e| format!("resuming unfinished tasks failed: {}", e.message()))?;
    let tokens_in_pool = engine.with_pool(|p| p.records().count());
    let admin_line = match admin {
        Some(_) => {
            format!("admin API on http://{addr}{}", sora2api_tower::layer::DEFAULT_ADMIN_PREFIX)
        }
        None => "admin API off (set global.admin_password)".to_owned(),
    };
    writeln!(
        out,
        "sora2api: listening on http://{addr}; {tokens_in_pool} token(s), {} API key(s), \
         {resumed} task(s) resumed; {admin_line}; data in {}",
        keys.len(),
        data.path().display()
    )
    .map_err(|e| e.to_string())?;
    let _ = out.flush();

    let background = tokio::spawn(maintain(admin.clone(), engine.clone(), tokens.clone()));
    let service = tower::Layer::layer(&layer, server::not_found());
    let serve_config = server::ServeConfig::new(config.server.shutdown_grace)
        .max_connections(config.server.max_connections);
    server::serve_with(listener, service, server::shutdown_signal(), serve_config)
        .await
        .map_err(|e| e.to_string())?;

    background.abort();
    save_tokens(admin.as_ref(), &engine, &tokens).await;
    engine.abort();
    if let Err(e) = tasks.sync().await {
        tracing::error!(error = %e, "the task store could not be made durable at shutdown");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The engine's PoW source from `[pow_service]`.
fn pow_service(config: &Config) -> sora2api_tower::engine::PowService {
    let section = &config.pow_service;
    sora2api_tower::engine::PowService {
        mode: match section.mode {
            PowMode::Local => sora2api_tower::engine::PowMode::Local,
            PowMode::External => sora2api_tower::engine::PowMode::External,
        },
        server_url: section.server_url.clone().unwrap_or_default(),
        api_key: section.api_key.clone().unwrap_or_default(),
        use_token_for_pow: section.use_token_for_pow,
    }
}

/// The pool: every stored token (with its id, state and stats), then each `[[tokens]]`
/// entry whose access token is not stored yet (written to the store at once).
async fn load_tokens(store: &RedbTokenStore, config: &Config) -> Result<TokenPool, String> {
    let stored = store.tokens().await.map_err(|e| format!("loading the tokens failed: {e}"))?;
    let mut pool = TokenPool::new(config.pool_config());
    let known: HashSet<String> =
        stored.iter().map(|r| r.access_token.expose().to_owned()).collect();
    for record in stored {
        pool.insert_with_id(record);
    }
    let mut added = Vec::new();
    for record in config.token_records() {
        if !known.contains(record.access_token.expose()) {
            let id = pool.add(record);
            added.extend(pool.get(id).cloned());
        }
    }
    if !added.is_empty() {
        tracing::info!(tokens = added.len(), "tokens from the configuration file stored");
        store.put_tokens(added).await.map_err(|e| format!("storing the tokens failed: {e}"))?;
    }
    Ok(pool)
}

/// The admin API, if a password is configured or a login is stored; `None` (admin off)
/// when there is neither.
async fn start_admin(
    config: &Config,
    engine: &Engine,
    tokens: &RedbTokenStore,
    keys: &ApiKeys,
) -> Result<Option<Admin>, String> {
    let password = config.global.admin_password.as_ref().map(|p| p.expose().to_owned());
    let mut admin_config =
        AdminConfig::new(config.global.admin_username.clone(), password.unwrap_or_default());
    admin_config.proxy_url = config.proxy.proxy_url.clone().filter(|_| config.proxy.proxy_enabled);
    let store: Arc<dyn TokenStore> = Arc::new(tokens.clone());
    match Admin::new(admin_config, engine.clone(), store, keys.clone()).await {
        Ok(admin) => Ok(Some(admin)),
        Err(AdminError::EmptyCredentials) => Ok(None),
        Err(e) => Err(format!("the admin API could not start: {e}")),
    }
}

/// Saves token state on a timer and refreshes tokens ahead of expiry.
async fn maintain(admin: Option<Admin>, engine: Engine, tokens: RedbTokenStore) {
    let mut save = tokio::time::interval(TOKEN_SAVE_INTERVAL);
    let mut refresh = tokio::time::interval(REFRESH_CHECK_INTERVAL);
    loop {
        tokio::select! {
            _ = save.tick() => save_tokens(admin.as_ref(), &engine, &tokens).await,
            _ = refresh.tick() => {
                if let Some(admin) = &admin {
                    let margin = u64::try_from(REFRESH_MARGIN.as_millis()).unwrap_or(u64::MAX);
                    let refreshed = admin.refresh_expiring(margin).await;
                    if refreshed > 0 {
                        tracing::info!(refreshed, "tokens refreshed ahead of expiry");
                    }
                }
            }
        }
    }
}

/// Writes the pool's token records to the store (through the admin API, which writes only
/// the changed ones, when it runs).
async fn save_tokens(admin: Option<&Admin>, engine: &Engine, tokens: &RedbTokenStore) {
    let result = match admin {
        Some(admin) => admin.save_tokens().await.map(|_| ()),
        None => tokens.put_tokens(engine.with_pool(|p| p.records().cloned().collect())).await,
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "token state could not be saved");
    }
}
