//! What the benchmarks read from the machine: the wall clock, per-thread CPU time (grouped by
//! runtime through the thread names), and the process's resident memory.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The thread name of the simulated backend's runtime.
pub const SIM_THREADS: &str = "bench-sim";
/// The thread name of the gateway's runtime (its workers and its blocking pool).
pub const GATEWAY_THREADS: &str = "bench-gw";
/// The thread name of the load generator's runtime.
pub const CLIENT_THREADS: &str = "bench-client";

/// The benchmarks' one clock read.
#[expect(clippy::disallowed_methods, reason = "benchmarks measure wall time")]
pub fn now() -> Instant {
    Instant::now()
}

/// CPU time used so far by the threads of each runtime (by thread name), from
/// `/proc/self/task/*/schedstat` (nanoseconds on the CPU). Threads that already exited are
/// missing (Tokio's idle blocking threads exit after 10 s), so take deltas over short spans.
#[derive(Debug, Clone, Default)]
pub struct CpuSample {
    by_name: BTreeMap<String, Duration>,
}

impl CpuSample {
    /// Reads every thread of this process.
    pub fn take() -> CpuSample {
        let mut by_name = BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return CpuSample::default() };
        for task in tasks.flatten() {
            let dir = task.path();
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let ns = std::fs::read_to_string(dir.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
                .unwrap_or(0);
            *by_name.entry(name.trim().to_owned()).or_insert(Duration::ZERO) +=
                Duration::from_nanos(ns);
        }
        CpuSample { by_name }
    }

    /// CPU of the threads named `name` since `earlier`.
    pub fn since(&self, earlier: &CpuSample, name: &str) -> Duration {
        let now = self.by_name.get(name).copied().unwrap_or_default();
        let then = earlier.by_name.get(name).copied().unwrap_or_default();
        now.saturating_sub(then)
    }

    /// CPU of every thread of the process since `earlier`.
    pub fn total_since(&self, earlier: &CpuSample) -> Duration {
        let now: Duration = self.by_name.values().sum();
        let then: Duration = earlier.by_name.values().sum();
        now.saturating_sub(then)
    }
}

/// CPU split of one measured span.
#[derive(Debug, Clone, Copy)]
pub struct CpuSplit {
    pub gateway: Duration,
    pub sim: Duration,
    pub client: Duration,
    pub total: Duration,
}

impl CpuSplit {
    pub fn between(before: &CpuSample, after: &CpuSample) -> CpuSplit {
        CpuSplit {
            gateway: after.since(before, GATEWAY_THREADS),
            sim: after.since(before, SIM_THREADS),
            client: after.since(before, CLIENT_THREADS),
            total: after.total_since(before),
        }
    }
}

/// The number after `key` (`VmRSS:`, `Threads:`) in a `/proc/.../status` file; 0 if absent.
pub fn status_number(path: &str, key: &str) -> u64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
}

/// The process's resident set size (`VmRSS`) and its peak (`VmHWM`), in KiB.
pub fn rss_kib() -> (u64, u64) {
    let field = |key: &str| status_number("/proc/self/status", key);
    (field("VmRSS:"), field("VmHWM:"))
}

/// Latency percentiles of a set of samples (nanoseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
}

impl Percentiles {
    /// Sorts `ns` in place and reads the percentiles (nearest rank).
    pub fn of(ns: &mut [u64]) -> Percentiles {
        if ns.is_empty() {
            return Percentiles::default();
        }
        ns.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len());
            Duration::from_nanos(ns[rank - 1])
        };
        Percentiles { p50: at(0.50), p99: at(0.99), p999: at(0.999) }
    }
}

/// A duration for a table cell: µs below 10 ms, else ms.
pub fn show(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.1} ms", us / 1e3)
    }
}

/// A count with thin thousands separators (`30 000`).
pub fn count(n: f64) -> String {
    let n = n.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}
