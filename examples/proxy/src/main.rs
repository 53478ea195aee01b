//! `sora2api`: the standalone gateway binary.
//!
//! `sora2api --config FILE` runs the gateway (see [`sora2api_proxy::gateway`]); `--demo`
//! runs it against the in-process simulated backend ([`sora2api_proxy::demo`]); `sora2api
//! sim` serves the simulated Sora backend alone and `sora2api sim mint-token` mints tokens
//! for it. The command line is parsed by [`sora2api_proxy::cli`].

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use sora2api_proxy::cli::{self, Cli, MintArgs, SimArgs, USAGE};
use sora2api_proxy::config::{self, Config, ConfigError};
use sora2api_tower::core::sim::{AccountSpec, SimConfig};
use sora2api_tower::sim_server::{self, SimServer};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse_args(args.iter().cloned()) {
        Ok(Cli::Help) => {
            out(USAGE);
            ExitCode::SUCCESS
        }
        Ok(Cli::Version) => {
            out(&format!("sora2api {}\n", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        Ok(Cli::Gateway(gateway)) if gateway.demo => {
            let listen = gateway.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8000)));
            init_logging();
            demo(listen)
        }
        Ok(Cli::Gateway(gateway)) => match Config::load(&gateway, config::env_vars()) {
            Ok(config) => run_gateway(config),
            Err(error) => {
                err(&format!("sora2api: {error}\n"));
                ExitCode::from(2)
            }
        },
        Ok(Cli::MintToken(MintArgs { plan, email, seed })) => {
            let minted = sim_server::mint_token(seed, email.as_deref(), &plan);
            out(&format!("{}\n", minted.access_token));
            err(&format!(
                "minted for {} (plan {}), valid 10 days, for `sora2api sim --seed {seed}`\n",
                minted.email,
                if minted.plan.is_empty() { "none" } else { &minted.plan }
            ));
            ExitCode::SUCCESS
        }
        Ok(Cli::Sim(SimArgs { listen, fast, seed })) => serve(listen, fast, seed),
        Err(error) => {
            let message = match error {
                ConfigError::Usage(message) => message,
                other => other.to_string(),
            };
            err(&format!("sora2api: {message}\n\n{USAGE}"));
            ExitCode::from(2)
        }
    }
}

// === sora2api --config ===

fn run_gateway(config: Config) -> ExitCode {
    init_logging();
    let mut stdout = io::stdout();
    block_on("sora2api", async move { sora2api_proxy::gateway::run(config, &mut stdout).await })
}

/// Runs `work` on a multi-threaded runtime; its error goes to stderr after `name`.
fn block_on<E: std::fmt::Display>(
    name: &str,
    work: impl std::future::Future<Output = Result<(), E>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            err(&format!("{name}: cannot start the runtime: {e}\n"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err(&format!("{name}: {e}\n"));
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at the level of `SORA2API_LOG` (`error`, `warn`, `info` (default),
/// `debug`, `trace`). Lines carry task and request spans (ids, model, token id), never a
/// secret.
fn init_logging() {
    let level = std::env::var("SORA2API_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr)
        .try_init();
}

// === sora2api --demo ===

fn demo(listen: SocketAddr) -> ExitCode {
    let mut stdout = io::stdout();
    block_on("sora2api --demo", async move { sora2api_proxy::demo::run(listen, &mut stdout).await })
}

// === sora2api sim ===

fn serve(listen: SocketAddr, fast: bool, seed: u64) -> ExitCode {
    block_on("sora2api sim", run(listen, fast, seed))
}

async fn run(listen: SocketAddr, fast: bool, seed: u64) -> Result<(), String> {
    // Register the signal handlers before announcing the address, so a client that reads the
    // first line and signals at once reaches them.
    let shutdown = shutdown_signal().map_err(|e| format!("cannot listen for signals: {e}"))?;
    let base = if fast { SimConfig::fast() } else { SimConfig::default() };
    let difficulty = base.pow_difficulty.clone();
    let config = SimConfig { seed, accept_offline_tokens: true, ..base };
    let server = SimServer::bind(listen, config)
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?
        .with_log_limit(10_000);
    let account = server.add_account(AccountSpec::pro("pro@example.com"));
    let origin = server.origin();
    let timings = if fast {
        "instant (every task finishes on its first poll)".to_owned()
    } else {
        "observed (a video takes about 150 s; --fast for instant)".to_owned()
    };
    let mut text = format!(
        "sora2api sim: listening on {origin}\n\
         access_token: {at}\n\
         email: {email} (Pro, 30 videos a day)\n",
        at = account.access_token,
        email = account.email,
    );
    if let Some(st) = &account.session_token {
        text.push_str(&format!("session_token: {st}\n"));
    }
    if let Some(rt) = &account.refresh_token {
        text.push_str(&format!("refresh_token: {rt}\nclient_id: {}\n", account.client_id));
    }
    text.push_str(&format!(
        "\nPoint any client of the real service at it (every host at this origin):\n\
         \x20 backend   {origin}/backend\n\
         \x20 sentinel  {origin}/backend-api/sentinel/req\n\
         \x20 session   {origin}/api/auth/session\n\
         \x20 oauth     {origin}/oauth/token\n\
         Timings: {timings}; proof-of-work difficulty {difficulty}; seed {seed}.\n\
         More tokens: sora2api sim mint-token --seed {seed} [--plan P] [--email E]\n\
         Stop with ctrl-c.\n"
    ));
    out(&text);
    server.serve(shutdown).await.map_err(|e| format!("serving on {origin} failed: {e}"))?;
    err("sora2api sim: stopped\n");
    Ok(())
}

/// A future that completes at ctrl-c (SIGINT) or SIGTERM; the handlers are registered now.
#[cfg(unix)]
fn shutdown_signal() -> io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// A future that completes at ctrl-c.
#[cfg(not(unix))]
fn shutdown_signal() -> io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

// === output ===

/// Writes to stdout (a closed pipe is not worth a panic).
fn out(text: &str) {
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Writes to stderr.
fn err(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
