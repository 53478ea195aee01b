//! The scenarios; each returns a markdown table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use sora2api_tower::core::sim::{SimConfig, Timings};

use crate::load::{self, MakeRequest};
use crate::measure::{count, now, rss_kib, show, CpuSample, CpuSplit, Percentiles};
use crate::world::{World, WorldConfig, KEY};
use crate::Args;

fn fast_world(args: &Args, accounts: usize, image_concurrency: Option<u32>) -> WorldConfig {
    WorldConfig {
        sim: SimConfig::fast(),
        accounts,
        image_concurrency,
        poll_interval_ms: args.poll_ms,
        gateway_threads: args.gateway_threads,
        client_threads: args.client_threads,
    }
}

fn get(path: &str, key: &str) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::default());
    *req.uri_mut() = http::Uri::try_from(path).unwrap_or_default();
    if let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {key}")) {
        req.headers_mut().insert(http::header::AUTHORIZATION, value);
    }
    req.headers_mut().insert(http::header::HOST, http::HeaderValue::from_static("bench"));
    req
}

fn post(path: &str, body: String) -> Request<Full<Bytes>> {
    let mut req = get(path, KEY);
    *req.method_mut() = http::Method::POST;
    req.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    *req.body_mut() = Full::new(Bytes::from(body));
    req
}

fn image_request(n: u64) -> Request<Full<Bytes>> {
    post(
        "/v1/images/generate",
        format!(r#"{{"prompt":"A cat on a sofa bnonce{n}x","model":"gpt-image"}}"#),
    )
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn cpu_per(d: Duration, n: usize) -> String {
    if n == 0 {
        return "-".into();
    }
    show(d / u32::try_from(n).unwrap_or(u32::MAX))
}

// === GET /v1/models and 401 ===

pub fn models(args: &Args) -> Result<String, String> {
    let world = World::start(fast_world(args, 1, None))?;
    let duration = args.duration.unwrap_or(Duration::from_secs(5));
    let mut table = String::from(
        "| request | concurrency | requests/s | p50 | p99 | p999 | errors | gateway CPU/req | client CPU/req |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in args.concurrency.clone().unwrap_or(vec![1, 32, 256]) {
        for (name, key, status) in [
            ("GET /v1/models", KEY, StatusCode::OK),
            ("GET /v1/models, bad key (401)", "wrong-key", StatusCode::UNAUTHORIZED),
        ] {
            let make: MakeRequest = Arc::new(move |_| get("/v1/models", key));
            let before = CpuSample::take();
            let run = world.run(load::run(world.gateway, c, duration, make, status))??;
            let cpu = CpuSplit::between(&before, &CpuSample::take());
            let n = run.samples.len();
            let mut ns: Vec<u64> = run.samples.iter().map(|s| s.1).collect();
            let p = Percentiles::of(&mut ns);
            let _ = writeln!(
                table,
                "| {name} | {c} | {} | {} | {} | {} | {} | {} | {} |",
                count(per_sec(n, run.elapsed)),
                show(p.p50),
                show(p.p99),
                show(p.p999),
                run.errors,
                cpu_per(cpu.gateway, n),
                cpu_per(cpu.client, n),
            );
        }
    }
    Ok(table)
}

// === gateway overhead ===

pub fn overhead(args: &Args) -> Result<String, String> {
    let levels = args.concurrency.clone().unwrap_or(vec![1, 32]);
    let accounts = levels.iter().copied().max().unwrap_or(1) * 2;
    // One task per token at a time: the timing upstream ties calls to tasks by token.
    let world = World::start(fast_world(args, accounts, Some(1)))?;
    let duration = args.duration.unwrap_or(Duration::from_secs(5));
    let mut table = String::from(
        "| concurrency | generations | end to end p50 | p99 | upstream wait p50 | overhead p50 | overhead p99 | overhead p999 | unmatched |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    // Warm up: connections to the sim, the pool, the allocator.
    let warm: MakeRequest = Arc::new(|n| image_request(n + 1_000_000_000));
    world.run(load::run(world.gateway, 4, Duration::from_millis(300), warm, StatusCode::OK))??;
    for c in levels {
        let make: MakeRequest = Arc::new(image_request);
        let offset = 10_000_000_000 * c as u64;
        let make_offset: MakeRequest = Arc::new(move |n| make(n + offset));
        let run =
            world.run(load::run(world.gateway, c, duration, make_offset, StatusCode::OK))??;
        let (mut e2e, mut waits, mut overheads) = (Vec::new(), Vec::new(), Vec::new());
        let mut unmatched = 0;
        for (n, ns) in &run.samples {
            e2e.push(*ns);
            match world.timing.waited_ns(n + offset) {
                Some(wait) => {
                    waits.push(wait);
                    overheads.push(ns.saturating_sub(wait));
                }
                None => unmatched += 1,
            }
        }
        let e = Percentiles::of(&mut e2e);
        let w = Percentiles::of(&mut waits);
        let o = Percentiles::of(&mut overheads);
        let _ = writeln!(
            table,
            "| {c} | {} | {} | {} | {} | {} | {} | {} | {unmatched} |",
            count(run.samples.len() as f64),
            show(e.p50),
            show(e.p99),
            show(w.p50),
            show(o.p50),
            show(o.p99),
            show(o.p999),
        );
        if run.errors > 0 {
            let _ = writeln!(table, "\n({} failed requests at concurrency {c})\n", run.errors);
        }
    }
    Ok(table)
}

// === end-to-end image generation ===

pub fn image(args: &Args) -> Result<String, String> {
    let levels = args.concurrency.clone().unwrap_or(vec![1, 16, 64]);
    let accounts = levels.iter().copied().max().unwrap_or(1);
    let world = World::start(fast_world(args, accounts, None))?;
    let duration = args.duration.unwrap_or(Duration::from_secs(5));
    let warm: MakeRequest = Arc::new(|n| image_request(n + 1_000_000_000));
    world.run(load::run(world.gateway, 4, Duration::from_millis(300), warm, StatusCode::OK))??;
    let mut table = String::from(
        "| concurrency | completions/s | p50 | p99 | errors | gateway CPU/task | sim CPU/task | client CPU/task | process CPU/task | upstream calls/task |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in levels {
        let make: MakeRequest = Arc::new(image_request);
        let (calls_before, _) = world.timing.totals();
        let before = CpuSample::take();
        let run = world.run(load::run(world.gateway, c, duration, make, StatusCode::OK))??;
        let cpu = CpuSplit::between(&before, &CpuSample::take());
        let (calls_after, _) = world.timing.totals();
        let n = run.samples.len();
        let mut ns: Vec<u64> = run.samples.iter().map(|s| s.1).collect();
        let p = Percentiles::of(&mut ns);
        let _ = writeln!(
            table,
            "| {c} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            count(per_sec(n, run.elapsed)),
            show(p.p50),
            show(p.p99),
            run.errors,
            cpu_per(cpu.gateway, n),
            cpu_per(cpu.sim, n),
            cpu_per(cpu.client, n),
            cpu_per(cpu.total, n),
            (calls_after - calls_before) as f64 / n.max(1) as f64,
        );
    }
    Ok(table)
}

// === many streams held open ===

/// What the streams seen so far delivered.
#[derive(Default)]
pub(crate) struct StreamCounters {
    pub opened: AtomicU64,
    pub keep_alives: AtomicU64,
    pub chunks: AtomicU64,
    pub done: AtomicU64,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    /// Why streams failed, and how often.
    errors: Mutex<BTreeMap<String, u64>>,
}

impl StreamCounters {
    /// The table rows every stream scenario ends with: keep-alives, chunks, endings, time.
    pub fn write_rows(&self, t: &mut String, all_done: Duration) {
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(t, "| keep-alive comments delivered | {} |", c(&self.keep_alives));
        let _ = writeln!(t, "| SSE data chunks delivered | {} |", c(&self.chunks));
        let _ = writeln!(
            t,
            "| completed ([DONE] after a non-error chunk) / ended / failed | {} / {} / {} |",
            c(&self.completed),
            c(&self.done),
            c(&self.failed)
        );
        let _ = writeln!(t, "| all ended after | {:.1} s |", all_done.as_secs_f64());
    }

    /// Counts a failed stream and its reason.
    pub fn fail(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        *errors.entry(error).or_insert(0) += 1;
    }

    /// Why streams failed, and how often.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// One stream on its own connection: a 10 s video with `stream: true`, read to its end.
pub(crate) async fn one_stream(
    addr: std::net::SocketAddr,
    n: u64,
    counters: Arc<StreamCounters>,
) -> Result<(), String> {
    let mut sender = load::connect(addr).await?;
    let body = format!(
        r#"{{"prompt":"A cat running bnonce{n}x","model":"sora2-landscape-10s","stream":true}}"#
    );
    let response =
        sender.send_request(post("/v1/videos/generate", body)).await.map_err(|e| e.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("status {}", response.status()));
    }
    counters.opened.fetch_add(1, Ordering::Relaxed);
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    let mut last_data = String::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else { continue };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            let event = String::from_utf8_lossy(&event);
            if event.starts_with(':') {
                counters.keep_alives.fetch_add(1, Ordering::Relaxed);
            } else if event.starts_with("data: [DONE]") {
                counters.done.fetch_add(1, Ordering::Relaxed);
                if !last_data.contains("\"error\"") {
                    counters.completed.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                counters.chunks.fetch_add(1, Ordering::Relaxed);
                last_data = event.into_owned();
            }
        }
    }
    Ok(())
}

/// Opens `n` streams to `addr` (256 at a time, so the listen backlog never overflows) and
/// holds each to its end; failures are counted in `counters`.
pub(crate) async fn open_streams(
    addr: std::net::SocketAddr,
    n: usize,
    counters: Arc<StreamCounters>,
) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n as u64 {
        let counters = counters.clone();
        set.spawn(async move {
            if let Err(e) = one_stream(addr, i, counters.clone()).await {
                counters.fail(e);
            }
        });
        if i % 256 == 255 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while set.join_next().await.is_some() {}
}

pub fn streams(args: &Args) -> Result<String, String> {
    let n = args.streams;
    // The observed video schedule (157 s from create to draft) scaled to `video_secs`.
    let percent = (args.video_secs * 100).div_ceil(157).max(1);
    let sim = SimConfig {
        timings: Timings::observed().scaled(percent),
        instant: false,
        pow_difficulty: "ff".into(),
        ..SimConfig::default()
    };
    // At most 50 tasks per account: the drafts listing the gateway reads shows the latest 60
    // items only (with 100 per account, 40 per account never appeared and never ended).
    let accounts = n.div_ceil(50).max(1);
    let world = World::start(WorldConfig {
        sim,
        accounts,
        image_concurrency: None,
        poll_interval_ms: if args.video_secs < 10 { 200 } else { 2_500 },
        gateway_threads: args.gateway_threads,
        client_threads: args.client_threads,
    })?;
    let (rss_start, _) = rss_kib();
    let counters = Arc::new(StreamCounters::default());
    let addr = world.gateway;
    let start = now();
    let opener = world.client_rt.spawn(open_streams(addr, n, counters.clone()));
    // Wait until every stream is open (or failed).
    let limit = Duration::from_secs(args.video_secs * 3 + 60);
    while counters.opened.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed)
        < n as u64
        && start.elapsed() < limit
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let all_open = start.elapsed();
    let (rss_open, _) = rss_kib();
    // The idle window: every stream open, tasks queued or running upstream.
    std::thread::sleep(Duration::from_secs(1));
    let idle_start = now();
    let idle_before = CpuSample::take();
    let idle_for = Duration::from_secs((args.video_secs / 3).max(1));
    std::thread::sleep(idle_for);
    let idle_cpu = CpuSplit::between(&idle_before, &CpuSample::take());
    let idle_wall = idle_start.elapsed();
    let (rss_idle, _) = rss_kib();
    while counters.done.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed) < n as u64
        && start.elapsed() < limit
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let all_done = start.elapsed();
    let (rss_end, rss_peak) = rss_kib();
    opener.abort();
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let pct = |d: Duration| format!("{:.1} %", 100.0 * d.as_secs_f64() / idle_wall.as_secs_f64());
    let mib = |kib: u64| format!("{:.0} MiB", kib as f64 / 1024.0);
    let mut t = String::from("| measure | figure |\n|---|---|\n");
    let _ = writeln!(t, "| streams opened / asked | {} / {n} |", c(&counters.opened));
    let _ = writeln!(
        t,
        "| upstream video length (sim schedule at {percent} %) | ~{} s |",
        args.video_secs
    );
    let _ = writeln!(t, "| all open after | {:.1} s |", all_open.as_secs_f64());
    let _ = writeln!(
        t,
        "| RSS (whole process: gateway + sim + client) before / all open / idle / end / peak | {} / {} / {} / {} / {} |",
        mib(rss_start), mib(rss_open), mib(rss_idle), mib(rss_end), mib(rss_peak)
    );
    let _ = writeln!(
        t,
        "| RSS per open stream (all open - before) | {:.1} KiB |",
        rss_open.saturating_sub(rss_start) as f64 / n.max(1) as f64
    );
    let _ = writeln!(
        t,
        "| CPU while held ({:.0} s window): gateway / sim / client | {} / {} / {} of one core |",
        idle_wall.as_secs_f64(),
        pct(idle_cpu.gateway),
        pct(idle_cpu.sim),
        pct(idle_cpu.client)
    );
    counters.write_rows(&mut t, all_done);
    Ok(t)
}

// === redb task store ===

pub fn redb(args: &Args) -> Result<String, String> {
    use sora2api_proxy::RedbTaskStore;
    use sora2api_tower::core::record::TaskRecord;
    use sora2api_tower::core::task::TaskId;
    use sora2api_tower::core::translate;
    use sora2api_tower::TaskStore;

    let dir = std::env::temp_dir().join(format!("sora2api-bench-redb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let store = RedbTaskStore::open(&dir.join("tasks.redb")).map_err(|e| e.to_string())?;
    let body = br#"{"model":"gpt-image","messages":[{"role":"user","content":"A cat on a sofa"}]}"#;
    let call = translate::chat(body, &translate::Limits::default()).map_err(|e| e.to_string())?;
    let duration = args.duration.unwrap_or(Duration::from_secs(3));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(crate::measure::CLIENT_THREADS)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut t =
        String::from("| write | writers | writes/s | p50 | p99 |\n|---|---:|---:|---:|---:|\n");
    let next_id = Arc::new(AtomicU64::new(1));
    for writers in args.concurrency.clone().unwrap_or(vec![1, 16]) {
        for durable in [true, false] {
            let (store, call, next_id) = (store.clone(), call.clone(), next_id.clone());
            let run = rt.block_on(async move {
                let start = now();
                let deadline = start + duration;
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..writers {
                    let (store, call, next_id) = (store.clone(), call.clone(), next_id.clone());
                    set.spawn(async move {
                        let id = u128::from(next_id.fetch_add(1, Ordering::Relaxed));
                        let mut rec = TaskRecord::new(
                            TaskId::new(1_767_225_600_000, id),
                            &call,
                            1_767_225_600_000,
                        );
                        store.put(rec.clone()).await.map_err(|e| e.to_string())?;
                        let mut samples = Vec::new();
                        let mut i = 0u64;
                        while now() < deadline {
                            i += 1;
                            rec.updated_at_ms += 1;
                            if durable {
                                // A new checkpoint: the store fsyncs it (as a transition).
                                rec.checkpoint = Some(format!("{{\"step\":{i}}}"));
                            } else {
                                rec.progress = (i % 100) as f32;
                            }
                            let t0 = now();
                            store.put(rec.clone()).await.map_err(|e| e.to_string())?;
                            samples.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(0));
                        }
                        Ok::<_, String>(samples)
                    });
                }
                let mut all = Vec::new();
                while let Some(joined) = set.join_next().await {
                    all.extend(joined.map_err(|e| e.to_string())??);
                }
                Ok::<_, String>((all, start.elapsed()))
            });
            let (mut samples, elapsed) = run?;
            let n = samples.len();
            let p = Percentiles::of(&mut samples);
            let kind =
                if durable { "durable transition (fsync)" } else { "progress update (no fsync)" };
            let _ = writeln!(
                t,
                "| {kind} | {writers} | {} | {} | {} |",
                count(per_sec(n, elapsed)),
                show(p.p50),
                show(p.p99)
            );
        }
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(t)
}
