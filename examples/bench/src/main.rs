//! `sora2api-bench`: the gateway against the in-process simulated backend, driven over
//! loopback; prints markdown tables (see BENCHMARKS.md for the commands and the figures).
//!
//! ```text
//! sora2api-bench models   [--concurrency 1,32,256] [--duration 5]
//! sora2api-bench overhead [--concurrency 1,32]     [--duration 5]
//! sora2api-bench image    [--concurrency 1,16,64]  [--duration 5]
//! sora2api-bench streams  [--streams 1000] [--video-secs 60]
//! sora2api-bench redb     [--concurrency 1,16]     [--duration 3]
//! sora2api-bench streams-proc [--streams 10000] [--video-secs 60] [--per-account 10]
//!                [--gateway-bin target/release/sora2api] [--gateway-log info]
//! ```
//!
//! `streams-proc` runs the sim (`sora2api-bench sim-server`) and the real gateway binary as
//! processes of their own; see [`procs`].
//!
//! Otherwise the sim, the gateway and the load generator run in this process on three Tokio runtimes
//! whose threads are named apart, so the CPU of each is read from its threads
//! (`/proc/self/task/*/schedstat`). Resident memory is the whole process's.

use std::io::Write;
use std::time::Duration;

mod load;
mod measure;
mod procs;
mod scenarios;
mod world;

/// The command line.
#[derive(Debug, Clone)]
pub struct Args {
    pub scenario: String,
    pub concurrency: Option<Vec<usize>>,
    pub duration: Option<Duration>,
    pub streams: usize,
    pub video_secs: u64,
    pub poll_ms: u64,
    pub gateway_threads: usize,
    pub client_threads: usize,
    /// `streams-proc`: videos per sim account (the accounts are streams / this).
    pub per_account: usize,
    /// `streams-proc`: the gateway binary (default: `sora2api` next to this program).
    pub gateway_bin: Option<std::path::PathBuf>,
    /// `streams-proc`: the gateway's `SORA2API_LOG`.
    pub gateway_log: String,
    /// `streams-proc`: worker threads of the sim process.
    pub sim_threads: usize,
    /// `streams-proc`: the gateway's `limits.max_upstream_calls` (default: its default).
    pub upstream_calls: Option<usize>,
}

const USAGE: &str =
    "usage: sora2api-bench <models|overhead|image|streams|redb|all|streams-proc|sizes> \
     [--concurrency 1,32,256] [--duration SECS] [--streams N] [--video-secs SECS] \
     [--poll-ms MS] [--gateway-threads N] [--client-threads N] [--per-account N] \
     [--gateway-bin PATH] [--gateway-log LEVEL] [--sim-threads N] [--upstream-calls N]";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let scenario = args.next().ok_or(USAGE)?;
    let mut parsed = Args {
        scenario,
        concurrency: None,
        duration: None,
        streams: 1_000,
        video_secs: 60,
        poll_ms: 0,
        gateway_threads: 2,
        client_threads: 2,
        per_account: 10,
        gateway_bin: None,
        gateway_log: "info".into(),
        sim_threads: 2,
        upstream_calls: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--concurrency" => {
                let list: Result<Vec<usize>, String> =
                    value.split(',').map(|v| number(v).map(|n| n as usize)).collect();
                parsed.concurrency = Some(list?);
            }
            "--duration" => {
                let secs: f64 = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
                parsed.duration = Some(Duration::from_secs_f64(secs));
            }
            "--streams" => parsed.streams = number(&value)? as usize,
            "--video-secs" => parsed.video_secs = number(&value)?,
            "--poll-ms" => parsed.poll_ms = number(&value)?,
            "--gateway-threads" => parsed.gateway_threads = number(&value)?.max(1) as usize,
            "--client-threads" => parsed.client_threads = number(&value)?.max(1) as usize,
            "--per-account" => parsed.per_account = number(&value)?.max(1) as usize,
            "--gateway-bin" => parsed.gateway_bin = Some(value.into()),
            "--gateway-log" => parsed.gateway_log = value,
            "--sim-threads" => parsed.sim_threads = number(&value)?.max(1) as usize,
            "--upstream-calls" => parsed.upstream_calls = Some(number(&value)?.max(1) as usize),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

fn main() -> Result<(), String> {
    let args = parse_args(std::env::args().skip(1))?;
    let mut out = std::io::stdout().lock();
    let run = |name: &str, out: &mut dyn Write| -> Result<(), String> {
        let table = match name {
            "models" => scenarios::models(&args)?,
            "overhead" => scenarios::overhead(&args)?,
            "image" => scenarios::image(&args)?,
            "streams" => scenarios::streams(&args)?,
            "redb" => scenarios::redb(&args)?,
            "streams-proc" => procs::streams_proc(&args)?,
            "sim-server" => procs::sim_server(&args)?,
            "sizes" => sizes(),
            other => return Err(format!("unknown scenario {other}\n{USAGE}")),
        };
        writeln!(out, "{table}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())
    };
    if args.scenario == "all" {
        for name in ["models", "overhead", "image", "redb"] {
            run(name, &mut out)?;
        }
        Ok(())
    } else {
        run(&args.scenario.clone(), &mut out)
    }
}

/// `sizes`: the in-memory size of what every running task and stream holds inline.
fn sizes() -> String {
    use sora2api_tower::core::machine::Generation;
    use sora2api_tower::core::record::TaskRecord;
    use sora2api_tower::core::task::Event;
    let mut t = String::from("| type | bytes |\n|---|---:|\n");
    for (name, size) in [
        ("core::machine::Generation", std::mem::size_of::<Generation>()),
        ("core::record::TaskRecord", std::mem::size_of::<TaskRecord>()),
        ("core::task::Event (one broadcast slot holds one)", std::mem::size_of::<Event>()),
        ("tower::SseBody", std::mem::size_of::<sora2api_tower::SseBody>()),
    ] {
        t.push_str(&format!("| {name} | {size} |\n"));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scenario but the long ones runs end to end for a moment.
    #[test]
    fn smoke() {
        let args = |s: &str| Args {
            scenario: s.into(),
            concurrency: Some(vec![2]),
            duration: Some(Duration::from_millis(200)),
            streams: 4,
            video_secs: 1,
            poll_ms: 0,
            gateway_threads: 1,
            client_threads: 1,
            per_account: 10,
            gateway_bin: None,
            gateway_log: "warn".into(),
            sim_threads: 1,
            upstream_calls: None,
        };
        let models = scenarios::models(&args("models")).unwrap();
        assert!(models.contains("| 2 |"), "{models}");
        let overhead = scenarios::overhead(&args("overhead")).unwrap();
        assert!(overhead.contains("| 2 |"), "{overhead}");
        let streams = scenarios::streams(&args("streams")).unwrap();
        assert!(streams.contains("4 / 4"), "{streams}");
    }
}
