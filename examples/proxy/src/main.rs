//! `sora2api`: the standalone gateway binary.
//!
//! Today it serves the simulated Sora backend (`sora2api sim`) and mints tokens for it
//! (`sora2api sim mint-token`); the gateway itself (`--config`, `--demo`) arrives with
//! issue 4. Arguments are parsed by hand: two subcommands and five options do not need a
//! parser crate.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use sora2api_tower::core::sim::{AccountSpec, SimConfig};
use sora2api_tower::sim_server::{self, SimServer};

const USAGE: &str = "\
usage:
  sora2api sim [--listen ADDR] [--fast] [--seed N]
      Serve the simulated Sora backend alone: every host of the real service on one address
      under the real paths (/backend/..., /backend-api/sentinel/req, /api/auth/session,
      /oauth/token, /media/...). Prints the origin on the first line, then a ready Pro
      access token; serves until ctrl-c or SIGTERM.
        --listen ADDR  address to bind (default 127.0.0.1:8080; port 0 picks a free port)
        --fast         tasks finish on the first poll, proof of work is trivial
                       (default: the observed timings, ~150 s a video, and difficulty)
        --seed N       seed of every id and token (decimal or 0x-hex); tokens from
                       mint-token are accepted by a server with the same seed
  sora2api sim mint-token [--plan P] [--email E] [--seed N]
      Print a fresh access token (JWT) a running `sora2api sim` with the same seed
      accepts; its first use creates the account.
        --plan P       pro (default), plus, team, free, or a plan id like chatgpt_pro
        --email E      the account's email (default: a new sim-<time>@example.com)
  sora2api --help
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Help,
    Serve {
        listen: SocketAddr,
        fast: bool,
        seed: u64,
    },
    MintToken {
        plan: String,
        email: Option<String>,
        seed: u64,
    },
    /// The gateway itself (anything that is not `sim` or `--help`).
    Gateway,
}

/// A command line that does not parse: the message, then usage, status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UsageError(String);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(Command::Help) => {
            out(USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Gateway) if args.first().map(String::as_str) == Some("--demo") => {
            let listen = match args.get(1).map(String::as_str) {
                Some("--listen") => match args.get(2).and_then(|a| a.parse().ok()) {
                    Some(addr) => addr,
                    None => {
                        err(&format!("sora2api: --listen needs an address\n\n{USAGE}"));
                        return ExitCode::from(2);
                    }
                },
                _ => SocketAddr::from(([127, 0, 0, 1], 8000)),
            };
            demo(listen)
        }
        Ok(Command::Gateway) => {
            err(&format!(
                "sora2api: the gateway itself ({}) arrives with issue 4; today this binary \
                 serves the simulated backend only.\n\n{USAGE}",
                args.first().map_or("no arguments", String::as_str)
            ));
            ExitCode::from(2)
        }
        Ok(Command::MintToken { plan, email, seed }) => {
            let minted = sim_server::mint_token(seed, email.as_deref(), &plan);
            out(&format!("{}\n", minted.access_token));
            err(&format!(
                "minted for {} (plan {}), valid 10 days, for `sora2api sim --seed {seed}`\n",
                minted.email,
                if minted.plan.is_empty() { "none" } else { &minted.plan }
            ));
            ExitCode::SUCCESS
        }
        Ok(Command::Serve { listen, fast, seed }) => serve(listen, fast, seed),
        Err(UsageError(message)) => {
            err(&format!("sora2api: {message}\n\n{USAGE}"));
            ExitCode::from(2)
        }
    }
}

// === parsing ===

fn parse(args: &[String]) -> Result<Command, UsageError> {
    let mut args = args.iter().map(String::as_str);
    match args.next() {
        Some("--help" | "-h" | "help") => Ok(Command::Help),
        Some("sim") => {
            let rest: Vec<&str> = args.collect();
            match rest.split_first() {
                Some((&"mint-token", options)) => parse_mint(options),
                _ => parse_serve(&rest),
            }
        }
        _ => Ok(Command::Gateway),
    }
}

fn parse_serve(options: &[&str]) -> Result<Command, UsageError> {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut fast = false;
    let mut seed = SimConfig::default().seed;
    let mut options = options.iter().copied();
    while let Some(option) = options.next() {
        match option {
            "--listen" => {
                let value = value_of(option, options.next())?;
                listen = value.parse().map_err(|_| {
                    UsageError(format!(
                        "--listen: `{value}` is not an address like 127.0.0.1:8080 or [::1]:0"
                    ))
                })?;
            }
            "--fast" => fast = true,
            "--seed" => seed = parse_seed(value_of(option, options.next())?)?,
            "--help" | "-h" => return Ok(Command::Help),
            other => return Err(unknown(other, "sim")),
        }
    }
    Ok(Command::Serve { listen, fast, seed })
}

fn parse_mint(options: &[&str]) -> Result<Command, UsageError> {
    let mut plan = plan_id("pro")?;
    let mut email = None;
    let mut seed = SimConfig::default().seed;
    let mut options = options.iter().copied();
    while let Some(option) = options.next() {
        match option {
            "--plan" => plan = plan_id(value_of(option, options.next())?)?,
            "--email" => {
                let value = value_of(option, options.next())?;
                if !value.contains('@') || value.chars().any(char::is_whitespace) {
                    return Err(UsageError(format!("--email: `{value}` is not an email")));
                }
                email = Some(value.to_owned());
            }
            "--seed" => seed = parse_seed(value_of(option, options.next())?)?,
            "--help" | "-h" => return Ok(Command::Help),
            other => return Err(unknown(other, "sim mint-token")),
        }
    }
    Ok(Command::MintToken { plan, email, seed })
}

fn value_of<'a>(option: &str, value: Option<&'a str>) -> Result<&'a str, UsageError> {
    value.ok_or_else(|| UsageError(format!("{option} needs a value")))
}

fn unknown(option: &str, command: &str) -> UsageError {
    UsageError(format!("`{option}` is not an option of `sora2api {command}`"))
}

fn parse_seed(text: &str) -> Result<u64, UsageError> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| UsageError(format!("--seed: `{text}` is not a number (decimal or 0x-hex)")))
}

/// The plan id for a `--plan` value (the ids the simulator's accounts use).
fn plan_id(plan: &str) -> Result<String, UsageError> {
    Ok(match plan {
        "pro" => "chatgpt_pro".into(),
        "plus" => "chatgpt_plus".into(),
        "team" => "chatgpt_team".into(),
        "free" => String::new(),
        id if id.starts_with("chatgpt_") => id.into(),
        other => {
            return Err(UsageError(format!(
                "--plan: `{other}` is not pro, plus, team, free or a chatgpt_… plan id"
            )))
        }
    })
}

// === sora2api --demo ===

fn demo(listen: SocketAddr) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            err(&format!("sora2api --demo: cannot start the runtime: {e}\n"));
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = io::stdout();
    match runtime.block_on(sora2api_proxy::demo::run(listen, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err(&format!("sora2api --demo: {e}\n"));
            ExitCode::FAILURE
        }
    }
}

// === sora2api sim ===

fn serve(listen: SocketAddr, fast: bool, seed: u64) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            err(&format!("sora2api sim: cannot start the runtime: {e}\n"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(listen, fast, seed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            err(&format!("sora2api sim: {message}\n"));
            ExitCode::FAILURE
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn serve_options() {
        let default_seed = SimConfig::default().seed;
        assert_eq!(
            parse(&args("sim")),
            Ok(Command::Serve {
                listen: "127.0.0.1:8080".parse().unwrap(),
                fast: false,
                seed: default_seed
            })
        );
        assert_eq!(
            parse(&args("sim --listen [::1]:0 --fast --seed 0x10")),
            Ok(Command::Serve { listen: "[::1]:0".parse().unwrap(), fast: true, seed: 16 })
        );
        assert!(parse(&args("sim --listen nowhere")).unwrap_err().0.contains("nowhere"));
        assert!(parse(&args("sim --listen")).unwrap_err().0.contains("needs a value"));
        assert!(parse(&args("sim --seed -1")).is_err());
        assert!(parse(&args("sim --demo")).unwrap_err().0.contains("--demo"));
        assert_eq!(parse(&args("sim --help")), Ok(Command::Help));
    }

    #[test]
    fn mint_options() {
        let default_seed = SimConfig::default().seed;
        assert_eq!(
            parse(&args("sim mint-token")),
            Ok(Command::MintToken { plan: "chatgpt_pro".into(), email: None, seed: default_seed })
        );
        assert_eq!(
            parse(&args("sim mint-token --plan free --email a@b.c --seed 7")),
            Ok(Command::MintToken { plan: String::new(), email: Some("a@b.c".into()), seed: 7 })
        );
        assert_eq!(
            parse(&args("sim mint-token --plan chatgpt_team")),
            Ok(Command::MintToken { plan: "chatgpt_team".into(), email: None, seed: default_seed })
        );
        assert!(parse(&args("sim mint-token --plan gold")).is_err());
        assert!(parse(&args("sim mint-token --email nobody")).is_err());
        assert!(parse(&args("sim mint-token --fast")).is_err());
    }

    #[test]
    fn everything_else_is_the_gateway_or_help() {
        assert_eq!(parse(&args("")), Ok(Command::Gateway));
        assert_eq!(parse(&args("--demo")), Ok(Command::Gateway));
        assert_eq!(parse(&args("--config sora2api.toml")), Ok(Command::Gateway));
        assert_eq!(parse(&args("--help")), Ok(Command::Help));
        assert_eq!(parse(&args("-h")), Ok(Command::Help));
    }
}
