//! Streams with the gateway as a process of its own (`streams-proc`), and the simulated
//! backend as a process (`sim-server`).
//!
//! 10 000 streams cannot run in one process here: the hard descriptor limit is 20 000 per
//! process, and every stream costs a descriptor at the client, one at the gateway and the
//! gateway's upstream connections. So `streams-proc` starts
//!
//! - the simulated backend: this program again, `sora2api-bench sim-server` (scaled video
//!   schedule, `--per-account` videos per account, unlimited quota), which prints its origin
//!   and one access token per account and serves until its stdin closes;
//! - the gateway: the real binary, `sora2api --config` (next to this program, or
//!   `--gateway-bin`), with a configuration naming the sim's hosts and every account, a redb
//!   data directory in a temporary directory, the default poll interval (2.5 s) and
//!   keep-alive (15 s), and `limits.max_tasks`, `server.max_connections` above the streams;
//!
//! and is itself the load generator (one connection per stream). It reads the gateway's
//! resident memory (`/proc/PID/status`), CPU (`/proc/PID/stat`) and upstream connections
//! (`/proc/net/tcp`, established connections to the sim's port: only the gateway has them).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sora2api_tower::core::sim::{AccountSpec, SimConfig, Timings};
use sora2api_tower::sim_server::SimServer;

use crate::measure::now;
use crate::scenarios::{open_streams, StreamCounters};
use crate::Args;

/// The gateway's API key in the generated configuration.
const KEY: &str = crate::world::KEY;

/// The sim's schedule for a video of about `video_secs` (the observed 157 s scaled).
pub fn video_timings(video_secs: u64) -> (Timings, u64) {
    let percent = (video_secs * 100).div_ceil(157).max(1);
    (Timings::observed().scaled(percent), percent)
}

// === sim-server ===

/// `sim-server`: the simulated backend alone, `args.streams / args.per_account` accounts.
/// Prints `origin URL`, one `token AT` per account and `ready`; serves until stdin closes.
pub fn sim_server(args: &Args) -> Result<String, String> {
    let accounts = args.streams.div_ceil(args.per_account.max(1)).max(1);
    let (timings, _) = video_timings(args.video_secs);
    let config =
        SimConfig { timings, instant: false, pow_difficulty: "ff".into(), ..SimConfig::default() };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.sim_threads)
        .thread_name(crate::measure::SIM_THREADS)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let server = SimServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .map_err(|e| format!("binding the sim: {e}"))?
        .with_log_limit(1_000);
    let mut out = std::io::stdout().lock();
    let mut text = format!("origin {}\n", server.origin());
    for i in 0..accounts {
        let mut spec = AccountSpec::pro(&format!("bench{i}@example.com"));
        spec.quota = u32::MAX;
        let account = server.add_account(spec);
        let _ = writeln!(text, "token {}", account.access_token);
    }
    text.push_str("ready\n");
    out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::stdin().lock().read_to_end(&mut Vec::new());
        let _ = stop.send(());
    });
    rt.block_on(server.serve(async move {
        let _ = stopped.await;
    }))
    .map_err(|e| e.to_string())?;
    Ok(String::new())
}

// === child processes ===

/// A child process killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_line(name: &str, from: &mut BufReader<ChildStdout>) -> Result<String, String> {
    let mut line = String::new();
    let n = from.read_line(&mut line).map_err(|e| format!("{name}: {e}"))?;
    if n == 0 {
        return Err(format!("{name} exited before it was ready (see its log)"));
    }
    Ok(line.trim_end().to_owned())
}

/// The gateway's configuration: every host at the sim's origin, the accounts as tokens,
/// the data directory in `dir`, admission limits above `streams`.
fn gateway_config(
    origin: &str,
    tokens: &[String],
    dir: &Path,
    streams: usize,
    upstream_calls: Option<usize>,
) -> String {
    let mut toml = format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\nmax_connections = {conns}\n\n\
         [global]\napi_key = \"{KEY}\"\n\n\
         [sora]\nbase_url = \"{origin}/backend\"\nauth_session_url = \"{origin}/api/auth/session\"\n\
         oauth_token_url = \"{origin}/oauth/token\"\nsentinel_url = \"{origin}/backend-api/sentinel/req\"\n\n\
         [storage]\ndata_dir = \"{data}\"\n\n\
         [limits]\nmax_tasks = {tasks}\n",
        conns = (streams + 1_000).max(25_000),
        tasks = (streams + 1_000).max(20_000),
        data = dir.join("data").display(),
    );
    if let Some(calls) = upstream_calls {
        let _ = writeln!(toml, "max_upstream_calls = {calls}");
    }
    for token in tokens {
        let _ = write!(toml, "\n[[tokens]]\naccess_token = \"{token}\"\n");
    }
    toml
}

// === what is read from /proc ===

/// `VmRSS` and `VmHWM` of a process, KiB.
fn rss_of(pid: u32) -> (u64, u64) {
    (status_field(pid, "VmRSS:"), status_field(pid, "VmHWM:"))
}

/// A number from `/proc/PID/status` (`VmRSS:`, `Threads:`).
fn status_field(pid: u32, key: &str) -> u64 {
    crate::measure::status_number(&format!("/proc/{pid}/status"), key)
}

/// User + system CPU of a process (every thread, exited ones included), from
/// `/proc/PID/stat` (clock ticks of 10 ms).
fn cpu_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name and state.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Established TCP connections whose remote port is `port` (IPv4).
fn connections_to(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.get(2).is_some_and(|remote| remote.ends_with(&port)) && cols.get(3) == Some(&"01")
        })
        .count() as u64
}

fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// What the orchestrator watches while it waits.
struct Watch {
    gateway: u32,
    sim_port: u16,
    rss_max: u64,
    upstream_max: u64,
    threads_max: u64,
    last_conn_check: Option<Instant>,
    /// Every 5 s from the start: seconds, gateway RSS (KiB), upstream connections.
    timeline: Vec<(u64, u64, u64)>,
    started: Instant,
}

impl Watch {
    fn sample(&mut self) {
        self.rss_max = self.rss_max.max(rss_of(self.gateway).0);
        self.threads_max = self.threads_max.max(status_field(self.gateway, "Threads:"));
        if self.last_conn_check.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
            let upstream = connections_to(self.sim_port);
            self.upstream_max = self.upstream_max.max(upstream);
            self.last_conn_check = Some(now());
            let secs = self.started.elapsed().as_secs();
            if self.timeline.last().is_none_or(|(t, _, _)| secs >= t + 5) {
                self.timeline.push((secs, rss_of(self.gateway).0, upstream));
            }
        }
    }

    /// Samples every 200 ms until `done` or `limit` after `start`.
    fn wait(&mut self, start: Instant, limit: Duration, done: impl Fn() -> bool) {
        while !done() && start.elapsed() < limit {
            self.sample();
            std::thread::sleep(Duration::from_millis(200));
        }
        self.sample();
    }

    /// Samples every 200 ms for `d`.
    fn sleep(&mut self, d: Duration) {
        let start = now();
        self.wait(start, d, || false);
    }
}

// === streams-proc ===

/// `streams-proc`: see the module docs.
pub fn streams_proc(args: &Args) -> Result<String, String> {
    let n = args.streams;
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let gateway_bin: PathBuf =
        args.gateway_bin.clone().unwrap_or_else(|| exe.with_file_name("sora2api"));
    let dir = std::env::temp_dir().join(format!("sora2api-bench-procs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = run_procs(args, n, &exe, &gateway_bin, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_procs(
    args: &Args,
    n: usize,
    exe: &Path,
    gateway_bin: &Path,
    dir: &Path,
) -> Result<String, String> {
    let load_at_start = loadavg();
    // The sim.
    let mut sim = Proc {
        name: "the sim",
        child: Command::new(exe)
            .args(["sim-server", "--streams", &n.to_string()])
            .args(["--per-account", &args.per_account.to_string()])
            .args(["--video-secs", &args.video_secs.to_string()])
            .args(["--sim-threads", &args.sim_threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the sim ({}): {e}", exe.display()))?,
    };
    let mut sim_out = BufReader::new(sim.child.stdout.take().ok_or("the sim's stdout")?);
    let origin_line = read_line(sim.name, &mut sim_out)?;
    let origin = origin_line.strip_prefix("origin ").ok_or("the sim's first line")?.to_owned();
    let sim_port: u16 = origin
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no port in {origin}"))?;
    let mut tokens = Vec::new();
    loop {
        let line = read_line(sim.name, &mut sim_out)?;
        if line == "ready" {
            break;
        }
        if let Some(token) = line.strip_prefix("token ") {
            tokens.push(token.to_owned());
        }
    }
    // The gateway.
    let config = dir.join("sora2api.toml");
    std::fs::write(&config, gateway_config(&origin, &tokens, dir, n, args.upstream_calls))
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let log = std::fs::File::create(dir.join("gateway.log")).map_err(|e| e.to_string())?;
    let mut gateway = Proc {
        name: "the gateway",
        child: Command::new(gateway_bin)
            .arg("--config")
            .arg(&config)
            .env("SORA2API_LOG", &args.gateway_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting the gateway ({}): {e}", gateway_bin.display()))?,
    };
    let mut gateway_out = BufReader::new(gateway.child.stdout.take().ok_or("gateway stdout")?);
    let line = read_line(gateway.name, &mut gateway_out)?;
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("no address in the gateway's line: {line}"))?;
    let gateway_pid = gateway.pid();
    let (sim_pid, gw_pid) = (sim.pid().to_string(), gateway_pid.to_string());
    let mut watch = Watch {
        gateway: gateway_pid,
        sim_port,
        rss_max: 0,
        upstream_max: 0,
        threads_max: 0,
        last_conn_check: None,
        timeline: Vec::new(),
        started: now(),
    };
    std::thread::sleep(Duration::from_secs(1));
    let (rss_before, _) = rss_of(gateway_pid);

    // The load: one connection and one stream each.
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .thread_name(crate::measure::CLIENT_THREADS)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let counters = Arc::new(StreamCounters::default());
    let start = now();
    let opener = client_rt.spawn(open_streams(addr, n, counters.clone()));
    watch.started = start;
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let limit = Duration::from_secs(args.video_secs * 3 + 120);
    watch.wait(start, limit, || c(&counters.opened) + c(&counters.failed) >= n as u64);
    let all_open = start.elapsed();
    let (rss_open, _) = rss_of(gateway_pid);
    let upstream_open = connections_to(sim_port);
    // The idle window: every stream open, the tasks queued or running upstream.
    watch.sleep(Duration::from_secs(1));
    let idle_for = Duration::from_secs((args.video_secs / 3).max(1));
    let (gw_cpu0, sim_cpu0, me_cpu0) = (cpu_of(&gw_pid), cpu_of(&sim_pid), cpu_of("self"));
    let idle_start = now();
    watch.sleep(idle_for);
    let idle_wall = idle_start.elapsed();
    let idle_cpu = (
        cpu_of(&gw_pid).saturating_sub(gw_cpu0),
        cpu_of(&sim_pid).saturating_sub(sim_cpu0),
        cpu_of("self").saturating_sub(me_cpu0),
    );
    let (rss_idle, _) = rss_of(gateway_pid);
    let upstream_idle = connections_to(sim_port);
    let load_idle = loadavg();
    watch.wait(start, limit, || c(&counters.done) + c(&counters.failed) >= n as u64);
    let all_done = start.elapsed();
    let (rss_end, rss_peak) = rss_of(gateway_pid);
    let (sim_rss, _) = rss_of(sim.pid());
    opener.abort();
    drop(client_rt);
    drop(gateway);
    drop(sim);

    let pct = |d: Duration| format!("{:.1} %", 100.0 * d.as_secs_f64() / idle_wall.as_secs_f64());
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let per = |kib: u64| format!("{:.1} KiB", kib.saturating_sub(rss_before) as f64 / n as f64);
    let (_, percent) = video_timings(args.video_secs);
    let mut t = String::from("| measure | figure |\n|---|---|\n");
    let _ = writeln!(t, "| streams opened / asked | {} / {n} |", c(&counters.opened));
    if let Some(calls) = args.upstream_calls {
        let _ = writeln!(t, "| gateway limits.max_upstream_calls | {calls} |");
    }
    let _ = writeln!(
        t,
        "| sim accounts / videos per account / upstream video | {} / {} / ~{} s (schedule at {percent} %) |",
        tokens.len(),
        args.per_account,
        args.video_secs
    );
    let _ = writeln!(t, "| all open after | {:.1} s |", all_open.as_secs_f64());
    let _ = writeln!(
        t,
        "| gateway RSS before / all open / idle / end / peak (VmHWM) | {} / {} / {} / {} / {} |",
        mib(rss_before),
        mib(rss_open),
        mib(rss_idle),
        mib(rss_end),
        mib(rss_peak.max(watch.rss_max))
    );
    let _ = writeln!(
        t,
        "| gateway RSS per stream: (all open - before) / N, (idle - before) / N, (peak - before) / N | {} / {} / {} |",
        per(rss_open),
        per(rss_idle),
        per(rss_peak.max(watch.rss_max))
    );
    let _ = writeln!(
        t,
        "| CPU while held ({:.0} s window): gateway / sim / load generator | {} / {} / {} of one core |",
        idle_wall.as_secs_f64(),
        pct(idle_cpu.0),
        pct(idle_cpu.1),
        pct(idle_cpu.2)
    );
    let _ = writeln!(
        t,
        "| gateway upstream connections (to the sim): all open / idle / max seen | {upstream_open} / {upstream_idle} / {} |",
        watch.upstream_max
    );
    let _ = writeln!(t, "| gateway threads: max seen | {} |", watch.threads_max);
    counters.write_rows(&mut t, all_done);
    let _ = writeln!(t, "| sim RSS at the end | {} |", mib(sim_rss));
    let _ = writeln!(
        t,
        "| load average at start / in the idle window | {load_at_start} / {load_idle} |"
    );
    let timeline: Vec<String> = watch
        .timeline
        .iter()
        .map(|(s, kib, conns)| format!("{s} s: {:.0} MiB, {conns}", *kib as f64 / 1024.0))
        .collect();
    let _ =
        writeln!(t, "| timeline (gateway RSS, upstream connections) | {} |", timeline.join("; "));
    let errors: BTreeMap<String, u64> = counters.errors();
    for (error, count) in errors.iter().take(5) {
        let _ = writeln!(t, "| failure: {error} | {count} |");
    }
    Ok(t)
}
