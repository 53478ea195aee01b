//! The `sora2api` command line: [`parse_args`] turns the arguments into a [`Cli`], a pure
//! function (the binary passes `std::env::args().skip(1)`).
//!
//! Parsed by hand: three commands and a dozen options do not need a parser crate.

use std::net::SocketAddr;
use std::path::PathBuf;

use sora2api_tower::core::sim::SimConfig;

use crate::config::ConfigError;

/// The usage text (`sora2api --help`).
pub const USAGE: &str = "\
usage:
  sora2api [--config FILE] [--listen ADDR] [--data-dir DIR] [--demo]
      Run the gateway.
        --config FILE    the TOML configuration (see sora2api.example.toml); without it,
                         every default plus SORA2API_<SECTION>_<KEY> environment variables
        --listen ADDR    address to bind, over server.host/port (like 0.0.0.0:8000)
        --data-dir DIR   the data directory, over storage.data_dir
        --demo           serve the simulated Sora backend in-process instead of the real one
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
  sora2api --help | --version
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    /// `--help` (or `-h`, `help`, anywhere an option is expected).
    Help,
    /// `--version` (or `-V`).
    Version,
    /// `sim`: serve the simulated backend.
    Sim(SimArgs),
    /// `sim mint-token`: print a token for a running `sim`.
    MintToken(MintArgs),
    /// The gateway itself (no command).
    Gateway(GatewayArgs),
}

/// `sora2api sim` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimArgs {
    /// `--listen` (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// `--fast`: instant tasks and trivial proof of work.
    pub fast: bool,
    /// `--seed` (default [`SimConfig::default`]'s).
    pub seed: u64,
}

/// `sora2api sim mint-token` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintArgs {
    /// `--plan` as a plan id (`chatgpt_pro`; empty for free).
    pub plan: String,
    /// `--email`.
    pub email: Option<String>,
    /// `--seed`.
    pub seed: u64,
}

/// The gateway's options; each flag, when given, wins over file and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayArgs {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--demo`: the simulated backend in-process.
    pub demo: bool,
}

/// Parses the arguments after the program name. Errors are [`ConfigError::Usage`] with a
/// message naming the option and the bad value.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, ConfigError> {
    let args: Vec<String> = args.into_iter().collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.split_first() {
        Some((&"sim", rest)) => match rest.split_first() {
            Some((&"mint-token", options)) => parse_mint(options),
            _ => parse_sim(rest),
        },
        Some((&("help" | "--help" | "-h"), _)) => Ok(Cli::Help),
        Some((&("--version" | "-V"), _)) => Ok(Cli::Version),
        _ => parse_gateway(&args),
    }
}

fn usage(message: String) -> ConfigError {
    ConfigError::Usage(message)
}

fn parse_gateway(options: &[&str]) -> Result<Cli, ConfigError> {
    let mut args = GatewayArgs::default();
    let mut options = options.iter().copied();
    while let Some(option) = options.next() {
        match option {
            "--config" => {
                let value = value_of(option, options.next())?;
                args.config = Some(PathBuf::from(non_empty(option, value)?));
            }
            "--listen" => args.listen = Some(parse_listen(value_of(option, options.next())?)?),
            "--data-dir" => {
                let value = value_of(option, options.next())?;
                args.data_dir = Some(PathBuf::from(non_empty(option, value)?));
            }
            "--demo" => args.demo = true,
            "--help" | "-h" => return Ok(Cli::Help),
            "--version" | "-V" => return Ok(Cli::Version),
            other if other.starts_with('-') => return Err(unknown(other, "sora2api")),
            other => {
                return Err(usage(format!(
                    "`{other}` is not a command (the commands are `sim` and `sim mint-token`)"
                )))
            }
        }
    }
    Ok(Cli::Gateway(args))
}

fn parse_sim(options: &[&str]) -> Result<Cli, ConfigError> {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut fast = false;
    let mut seed = SimConfig::default().seed;
    let mut options = options.iter().copied();
    while let Some(option) = options.next() {
        match option {
            "--listen" => listen = parse_listen(value_of(option, options.next())?)?,
            "--fast" => fast = true,
            "--seed" => seed = parse_seed(value_of(option, options.next())?)?,
            "--help" | "-h" => return Ok(Cli::Help),
            other => return Err(unknown(other, "sora2api sim")),
        }
    }
    Ok(Cli::Sim(SimArgs { listen, fast, seed }))
}

fn parse_mint(options: &[&str]) -> Result<Cli, ConfigError> {
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
                    return Err(usage(format!("--email: `{value}` is not an email")));
                }
                email = Some(value.to_owned());
            }
            "--seed" => seed = parse_seed(value_of(option, options.next())?)?,
            "--help" | "-h" => return Ok(Cli::Help),
            other => return Err(unknown(other, "sora2api sim mint-token")),
        }
    }
    Ok(Cli::MintToken(MintArgs { plan, email, seed }))
}

fn value_of<'a>(option: &str, value: Option<&'a str>) -> Result<&'a str, ConfigError> {
    value.ok_or_else(|| usage(format!("{option} needs a value")))
}

fn non_empty<'a>(option: &str, value: &'a str) -> Result<&'a str, ConfigError> {
    if value.is_empty() {
        return Err(usage(format!("{option} needs a value, not an empty one")));
    }
    Ok(value)
}

fn unknown(option: &str, command: &str) -> ConfigError {
    usage(format!("`{option}` is not an option of `{command}`"))
}

fn parse_listen(value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        usage(format!("--listen: `{value}` is not an address like 127.0.0.1:8080 or [::1]:0"))
    })
}

fn parse_seed(text: &str) -> Result<u64, ConfigError> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| usage(format!("--seed: `{text}` is not a number (decimal or 0x-hex)")))
}

/// The plan id for a `--plan` value (the ids the simulator's accounts use).
fn plan_id(plan: &str) -> Result<String, ConfigError> {
    Ok(match plan {
        "pro" => "chatgpt_pro".into(),
        "plus" => "chatgpt_plus".into(),
        "team" => "chatgpt_team".into(),
        "free" => String::new(),
        id if id.starts_with("chatgpt_") => id.into(),
        other => {
            return Err(usage(format!(
                "--plan: `{other}` is not pro, plus, team, free or a chatgpt_… plan id"
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Cli, ConfigError> {
        parse_args(line.split_whitespace().map(str::to_owned))
    }

    fn message(line: &str) -> String {
        match parse(line) {
            Err(ConfigError::Usage(message)) => message,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn sim_options() {
        let default_seed = SimConfig::default().seed;
        assert_eq!(
            parse("sim"),
            Ok(Cli::Sim(SimArgs {
                listen: "127.0.0.1:8080".parse().unwrap(),
                fast: false,
                seed: default_seed
            }))
        );
        assert_eq!(
            parse("sim --listen [::1]:0 --fast --seed 0x10"),
            Ok(Cli::Sim(SimArgs { listen: "[::1]:0".parse().unwrap(), fast: true, seed: 16 }))
        );
        assert!(message("sim --listen nowhere").contains("nowhere"));
        assert!(message("sim --listen").contains("needs a value"));
        assert!(parse("sim --seed -1").is_err());
        assert!(message("sim --demo").contains("--demo"));
        assert_eq!(parse("sim --help"), Ok(Cli::Help));
    }

    #[test]
    fn mint_options() {
        let default_seed = SimConfig::default().seed;
        let mint = |plan: &str, email: Option<&str>, seed| {
            Ok(Cli::MintToken(MintArgs { plan: plan.into(), email: email.map(Into::into), seed }))
        };
        assert_eq!(parse("sim mint-token"), mint("chatgpt_pro", None, default_seed));
        assert_eq!(
            parse("sim mint-token --plan free --email a@b.c --seed 7"),
            mint("", Some("a@b.c"), 7)
        );
        assert_eq!(
            parse("sim mint-token --plan chatgpt_team"),
            mint("chatgpt_team", None, default_seed)
        );
        assert!(message("sim mint-token --plan gold").contains("`gold`"));
        assert!(parse("sim mint-token --email nobody").is_err());
        assert!(parse("sim mint-token --fast").is_err());
    }

    #[test]
    fn gateway_options() {
        assert_eq!(parse(""), Ok(Cli::Gateway(GatewayArgs::default())));
        assert_eq!(
            parse("--demo"),
            Ok(Cli::Gateway(GatewayArgs { demo: true, ..GatewayArgs::default() }))
        );
        assert_eq!(
            parse("--config sora2api.toml --listen 127.0.0.1:0 --data-dir /var/lib/sora2api"),
            Ok(Cli::Gateway(GatewayArgs {
                config: Some("sora2api.toml".into()),
                listen: Some("127.0.0.1:0".parse().unwrap()),
                data_dir: Some("/var/lib/sora2api".into()),
                demo: false,
            }))
        );
        assert!(message("--config").contains("--config needs a value"));
        assert!(message("--listen 8000").contains("`8000` is not an address"));
        assert!(message("--data-dir").contains("--data-dir needs a value"));
        assert!(message("--port 8000").contains("`--port` is not an option of `sora2api`"));
        assert!(message("serve").contains("`serve` is not a command"));
        assert_eq!(
            parse_args(["--data-dir".to_owned(), String::new()]),
            Err(ConfigError::Usage("--data-dir needs a value, not an empty one".into()))
        );
    }

    #[test]
    fn help_and_version() {
        for line in ["--help", "-h", "help", "--demo --help", "--config x.toml -h"] {
            assert_eq!(parse(line), Ok(Cli::Help), "{line}");
        }
        for line in ["--version", "-V", "--demo --version"] {
            assert_eq!(parse(line), Ok(Cli::Version), "{line}");
        }
        assert!(USAGE.contains("sora2api sim mint-token") && USAGE.contains("--data-dir DIR"));
    }
}
