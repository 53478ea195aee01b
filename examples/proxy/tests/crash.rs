//! Crash safety of the real binary: `kill -9` at chosen points of a task's life and at seeded
//! moments, restarts on the same data directory, and every task completes, created once.
//!
//! The simulated backend runs in this process with an observer
//! ([`SimServer::with_observer`]) that sees every request before the sim handles it and after
//! (before the reply is written). Each round starts the proxy (a child process), submits a
//! target job and two others, and kills the proxy with SIGKILL from inside the observer when
//! the target reaches its kill point; the request that triggered it is then dropped (a kill
//! before the sim means the sim never saw it; after, the sim's effects stay and no reply is
//! written):
//!
//! | point | the kill happens |
//! |---|---|
//! | `CreateSent` | the sim performed the target's create; its reply never reaches the proxy |
//! | `CreateAnswered` | at the proxy's next request (any task's) after the create's reply was written |
//! | `Poll` | when the sim receives a status poll after the create (`pending/v2`, `recent_tasks`, cameo progress) |
//! | `Lookup` | after the sim answered a result lookup (drafts, `recent_tasks`; for a character the first finalize after its upload, which may be a companion's) |
//! | `Refresh` | at a credential refresh (`/oauth/token`, `/api/auth/session`) forced by `#fail=401` |
//! | `Upload` | when the sim receives (or has stored) the target's media upload |
//! | `Time` | a seeded delay after the submissions (the old time-based kill) |
//!
//! The plan (seeded) is fixed; what the companions are doing at the kill depends on timing,
//! so which companions see a duplicate varies from run to run.
//!
//! Jobs mix every kind (image, image-to-image, video, image-to-video, storyboard, remix,
//! character, character video) and mode (stream, blocking, async); every prompt and every
//! inline medium carries a unique marker, so the sim's request log tells each task's creates
//! apart. After each kill the test opens the redb file (the proxy is dead, the lock is free)
//! and reads the unfinished records, which also gives the ids of tasks whose client never
//! heard of them (a killed blocking request).
//!
//! Asserted:
//! - every task id a client received answers `GET /v1/tasks/{id}` after every restart, and is
//!   in the store after every kill;
//! - every task finishes; after a clean stop the store holds no unfinished task;
//! - no token slot leaks (the admin API's in-flight counts are zero at the end);
//! - last, all reported before the first is asserted: exactly one accepted generation create
//!   per task in the sim's log, one finalize per cameo, every task ended as scripted
//!   (`completed`; the one `#policy` job `failed`), and one character upload per character
//!   task plus at most one repeat per kill it lived through (a cameo upload has no list to
//!   look in: the one documented at-least-once step). The gateway stores "create sent" and
//!   "finalize sent" before those calls leave and, on resume, looks the create up (pending,
//!   drafts, recent tasks) and checks the finalize (is its username taken?) instead of
//!   sending them again.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly, like the tests")]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sora2api_proxy::RedbTaskStore;
use sora2api_tower::core::record::TaskRecord;
use sora2api_tower::core::sim::{AccountSpec, SimConfig, Timings};
use sora2api_tower::core::task::TaskId;
use sora2api_tower::core::upstream::{Method, UpstreamRequest};
use sora2api_tower::sim_server::{Observed, SimHandle, SimServer, Stage, Verdict};
use sora2api_tower::TaskStore;
// The std clock is the shell's alone (clippy.toml); tokio's reads the same one here.
use tokio::time::Instant;

use common::{origin_in, start, Proc};

const KEY: &str = "crash-key-1";
/// The plan's seed; `SORA2API_CRASH_SEED` (decimal or `0x` hex) picks another to explore.
const SEED: u64 = 0x5eed_2026;

fn seed() -> u64 {
    let Ok(text) = std::env::var("SORA2API_CRASH_SEED") else { return SEED };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    // Zero would stall the xorshift.
    parsed.ok().filter(|s| *s != 0).unwrap()
}

/// A seeded xorshift: the plan reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::try_from(self.next(from.len() as u64)).unwrap()]
    }
}

// === jobs ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image,
    ImageEdit,
    Video,
    ImageVideo,
    Storyboard,
    Remix,
    Character,
    CharacterVideo,
}

const KINDS: [Kind; 8] = [
    Kind::Image,
    Kind::ImageEdit,
    Kind::Video,
    Kind::ImageVideo,
    Kind::Storyboard,
    Kind::Remix,
    Kind::Character,
    Kind::CharacterVideo,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Stream,
    Blocking,
    Async,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    CreateSent,
    CreateAnswered,
    Poll,
    Lookup,
    Refresh(Stage),
    Upload(Stage),
    Time(u64),
}

impl Point {
    fn applies_to(self, kind: Kind) -> bool {
        match self {
            Point::Refresh(_) => {
                matches!(kind, Kind::Image | Kind::ImageEdit | Kind::Video | Kind::ImageVideo)
            }
            // A character's upload is its create: only the moment before it counts here.
            Point::Upload(Stage::Answered) => {
                matches!(kind, Kind::ImageEdit | Kind::ImageVideo | Kind::CharacterVideo)
            }
            Point::Upload(_) => matches!(
                kind,
                Kind::ImageEdit | Kind::ImageVideo | Kind::Character | Kind::CharacterVideo
            ),
            _ => true,
        }
    }
}

#[derive(Debug, Clone)]
struct Job {
    kind: Kind,
    mode: Mode,
    /// Unique to the job: in its prompt and in its inline media.
    marker: String,
    /// `#fail=401` (a forced refresh) or `#policy` (a scripted failure).
    extra: &'static str,
}

impl Job {
    fn new(n: usize, kind: Kind, mode: Mode, extra: &'static str) -> Job {
        // Characters have no async mode.
        let mode = match (kind, mode) {
            (Kind::Character | Kind::CharacterVideo, Mode::Async) => Mode::Stream,
            _ => mode,
        };
        Job { kind, mode, marker: format!("zq{n:02}xy"), extra }
    }

    /// Path and JSON body.
    fn request(&self) -> (&'static str, String) {
        let m = &self.marker;
        let x = self.extra;
        let mode = match self.mode {
            Mode::Stream => r#","stream":true"#,
            Mode::Blocking => "",
            Mode::Async => r#","async_mode":true"#,
        };
        let png = format!("data:image/png;base64,{}", base64(&marked(PNG, m)));
        let mp4 = format!("data:video/mp4;base64,{}", base64(&marked(MP4, m)));
        match self.kind {
            Kind::Image => ("/v1/images/generate", format!(r#"{{"prompt":"cat {m}{x}"{mode}}}"#)),
            Kind::ImageEdit => (
                "/v1/images/transform",
                format!(r#"{{"prompt":"oil {m}{x}","image":"{png}"{mode}}}"#),
            ),
            Kind::Video => ("/v1/videos/generate", format!(r#"{{"prompt":"dog {m}{x}"{mode}}}"#)),
            Kind::ImageVideo => (
                "/v1/videos/transform",
                format!(r#"{{"prompt":"fish {m}{x}","image":"{png}"{mode}}}"#),
            ),
            Kind::Storyboard => (
                "/v1/videos/storyboard",
                format!(r#"{{"prompt":"[2s]bird {m} flies [3s]bird lands{x}"{mode}}}"#),
            ),
            Kind::Remix => (
                "/v1/videos/remix",
                format!(
                    r#"{{"prompt":"ink {m}{x}","remix_target_id":"s_68e3a06dcd888191b150971da152c1f5"{mode}}}"#
                ),
            ),
            Kind::Character => ("/v1/characters/create", format!(r#"{{"video":"{mp4}"{mode}}}"#)),
            Kind::CharacterVideo => (
                "/v1/characters/generate",
                format!(r#"{{"prompt":"dance {m}{x}","video":"{mp4}"{mode}}}"#),
            ),
        }
    }

    /// The status the task ends with.
    fn expected_end(&self) -> &'static str {
        if self.extra.contains("#policy") {
            "failed"
        } else {
            "completed"
        }
    }

    /// Whether the sim's logged request is one of this job's creates (accepted or not).
    fn is_create(&self, path: &str) -> bool {
        path == create_path(self.kind)
    }
}

/// The upstream call that creates a task of this kind (for a character: its video upload,
/// which makes the cameo).
fn create_path(kind: Kind) -> &'static str {
    match kind {
        Kind::Image | Kind::ImageEdit => "/backend/video_gen",
        Kind::Storyboard => "/backend/nf/create/storyboard",
        Kind::Character => "/backend/characters/upload",
        Kind::Video | Kind::ImageVideo | Kind::Remix | Kind::CharacterVideo => "/backend/nf/create",
    }
}

fn is_poll(kind: Kind, path: &str) -> bool {
    match kind {
        Kind::Image | Kind::ImageEdit => path == "/backend/v2/recent_tasks",
        Kind::Character => path.starts_with("/backend/project_y/cameos/in_progress/"),
        _ => path == "/backend/nf/pending/v2",
    }
}

fn is_lookup(kind: Kind, path: &str) -> bool {
    match kind {
        Kind::Image | Kind::ImageEdit => path == "/backend/v2/recent_tasks",
        Kind::Character => path == "/backend/characters/finalize",
        _ => path.starts_with("/backend/project_y/profile/drafts"),
    }
}

fn is_upload(path: &str) -> bool {
    path == "/backend/uploads" || path == "/backend/characters/upload"
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

// === media ===

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x64, 0xf8, 0xcf, 0x50,
    0x0f, 0x00, 0x03, 0x86, 0x01, 0x80, 0x5a, 0x34, 0x7d, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// An MP4 `ftyp` box.
const MP4: &[u8] = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41";

/// The medium with the job's marker after its end (trailing bytes every reader ignores),
/// aligned so the marker's base64 shows verbatim in the stored record's base64.
fn marked(media: &[u8], marker: &str) -> Vec<u8> {
    let mut bytes = media.to_vec();
    while bytes.len() % 3 != 0 {
        bytes.push(0);
    }
    bytes.extend_from_slice(marker.as_bytes());
    bytes
}

/// The job a stored record belongs to: its marker in the prompt, or in the inline media
/// (until they are dropped).
fn job_of(jobs: &[Job], record: &TaskRecord) -> Option<usize> {
    let stored = String::from_utf8_lossy(&record.to_bytes()).into_owned();
    jobs.iter().position(|job| {
        stored.contains(&job.marker) || stored.contains(&base64(job.marker.as_bytes()))
    })
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// === the kill switch ===

/// What the observer watches for: the target job's kill point.
struct Target {
    job: Job,
    point: Point,
    /// The sim accepted the target's create.
    created: bool,
    /// The sim answered a create of the target with the scripted 401.
    refused: bool,
    /// For [`Point::Poll`]: also hit at the second poll when no create was seen (a resumed
    /// task that found its create upstream instead of sending it again).
    resumed: bool,
    polls: u32,
}

impl Target {
    /// Whether this request is the kill point.
    fn hit(&mut self, o: &Observed<'_>) -> bool {
        let path = path_of(o.request);
        let mine = contains(&o.request.body, &self.job.marker);
        let answered = o.stage == Stage::Answered;
        let create = answered && mine && self.job.is_create(path);
        if self.point == Point::CreateSent {
            return create && o.status == Some(200);
        }
        if create && o.status == Some(401) {
            self.refused = true;
        }
        let was_created = self.created;
        if create && o.status == Some(200) {
            self.created = true;
        }
        let kind = self.job.kind;
        match self.point {
            Point::CreateAnswered => was_created && o.stage == Stage::Received,
            Point::Poll => {
                let poll = o.stage == Stage::Received && is_poll(kind, path);
                self.polls += u32::from(poll);
                poll && (was_created || (self.resumed && self.polls >= 2))
            }
            Point::Lookup => was_created && answered && is_lookup(kind, path),
            Point::Refresh(stage) => {
                self.refused
                    && o.stage == stage
                    && (path == "/oauth/token" || path == "/api/auth/session")
            }
            Point::Upload(stage) => o.stage == stage && mine && is_upload(path),
            Point::CreateSent | Point::Time(_) => false,
        }
    }
}

fn path_of(request: &UpstreamRequest) -> &str {
    let pq = request.path_and_query();
    pq.split_once('?').map_or(pq, |(p, _)| p)
}

/// Shared between the test and the sim's observer.
#[derive(Default)]
struct Switch {
    target: Option<Target>,
    proxy: Option<Proc>,
    /// Told when the observer killed the proxy: the request that did it.
    killed: Option<mpsc::Sender<String>>,
    /// At the kill point, wait for this first (at most 10 s): the test's client has its
    /// acknowledgement.
    hold: Option<mpsc::Receiver<()>>,
}

fn observer(switch: Arc<Mutex<Switch>>) -> sora2api_tower::sim_server::Observer {
    Arc::new(move |o: &Observed<'_>| {
        let mut s = switch.lock().unwrap();
        let hit = s.target.as_mut().is_some_and(|t| t.hit(o));
        if hit {
            if let Some(hold) = s.hold.take() {
                let _ = hold.recv_timeout(Duration::from_secs(10));
            }
            // SIGKILL and reap: the proxy runs no more code, this request's reply (if any is
            // still to be written) reaches no one.
            drop(s.proxy.take());
            s.target = None;
            let what = format!("{:?} {} {:?}", o.stage, o.request.path_and_query(), o.status);
            if let Some(tx) = s.killed.take() {
                let _ = tx.send(what);
            }
            // Nobody is left to answer; before the sim, the request never happened.
            return Verdict::Drop;
        }
        Verdict::Serve
    })
}

// === the proxy ===

fn sim(switch: &Arc<Mutex<Switch>>) -> SimHandle {
    let config = SimConfig {
        timings: Timings { cameo_polls: 0, ..Timings::observed().scaled(2) },
        instant: false,
        pow_difficulty: "ff".into(),
        accept_any_remix_target: true,
        ..SimConfig::default()
    };
    SimServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .unwrap()
        .with_observer(observer(Arc::clone(switch)))
        .spawn()
}

fn write_config(
    dir: &Path,
    sim: &str,
    token: &sora2api_tower::core::sim::MintedAccount,
) -> PathBuf {
    let text = format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\nshutdown_grace = 1\n\
         [global]\napi_key = \"{KEY}\"\nadmin_password = \"crash-admin-pass\"\n\
         [sora]\nbase_url = \"{sim}/backend\"\nauth_session_url = \"{sim}/api/auth/session\"\n\
         oauth_token_url = \"{sim}/oauth/token\"\nsentinel_url = \"{sim}/backend-api/sentinel/req\"\n\
         poll_interval = 0.1\ncreate_recovery_window = 1\n[storage]\ndata_dir = \"{}\"\n\
         [[tokens]]\naccess_token = \"{}\"\nsession_token = \"{}\"\nrefresh_token = \"{}\"\n\
         client_id = \"{}\"\n",
        dir.join("data").display(),
        token.access_token,
        token.session_token.clone().unwrap(),
        token.refresh_token.clone().unwrap(),
        token.client_id,
    );
    let path = dir.join("crash.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_proxy(config: &Path) -> (Proc, String) {
    let (proxy, first, _) = start(&["--config", config.to_str().unwrap()], "error", 0);
    (proxy, origin_in(&first))
}

/// One request on its own connection that tolerates the server dying: the status and the
/// lower-cased head, or `None` if the connection failed before a head arrived. With
/// `head_only` the client leaves after the head (a streaming client that goes away).
fn try_send(origin: &str, path: &str, body: &str, head_only: bool) -> Option<(u16, String)> {
    let host = origin.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if head_only && response.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    let (head, _) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok())?;
    Some((status, head.to_owned()))
}

fn task_id_in(head: &str) -> Option<String> {
    head.lines().find_map(|l| l.strip_prefix("x-task-id: ")).map(|id| id.trim().to_owned())
}

/// GET with the API key (or a session token); status and body.
fn get(origin: &str, path: &str, auth: &str) -> (u16, String) {
    let reply = common::send(origin, "GET", path, auth, "", false);
    (reply.status, reply.body)
}

// === the test ===

/// The sim with its kill switch, and a data directory with the proxy's configuration.
struct World {
    runtime: tokio::runtime::Runtime,
    switch: Arc<Mutex<Switch>>,
    sim: SimHandle,
    dir: PathBuf,
    config: PathBuf,
    db: PathBuf,
}

impl World {
    fn new(tag: &str) -> World {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let switch = Arc::new(Mutex::new(Switch::default()));
        let sim = runtime.block_on(async { sim(&switch) });
        let account =
            sim.add_account(AccountSpec { quota: 1_000, ..AccountSpec::pro("crash@example.com") });
        let dir = std::env::temp_dir().join(format!("sora2api-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = write_config(&dir, &sim.origin(), &account);
        let db = dir.join("data").join("sora2api.redb");
        World { runtime, switch, sim, dir, config, db }
    }

    /// Starts the proxy and arms the switch: kill it when `job` reaches `point`. The
    /// receiver hears what request did it.
    fn arm(
        &self,
        job: &Job,
        point: Point,
        hold: Option<mpsc::Receiver<()>>,
    ) -> (String, mpsc::Receiver<String>) {
        // The target is armed before the proxy starts: a resumed task may reach its kill
        // point while the proxy is still starting.
        let (tx, rx) = mpsc::channel();
        {
            let mut s = self.switch.lock().unwrap();
            s.killed = Some(tx);
            s.hold = hold;
            s.target = Some(Target {
                job: job.clone(),
                point,
                created: false,
                refused: false,
                resumed: point == Point::Poll,
                polls: 0,
            });
        }
        let (proxy, origin) = start_proxy(&self.config);
        let mut s = self.switch.lock().unwrap();
        if s.target.is_some() {
            s.proxy = Some(proxy);
        } else {
            // Hit before the proxy was handed over: its request was dropped; kill it now.
            drop(proxy);
        }
        (origin, rx)
    }

    /// What the kill armed for `point` hit (its stage, path and status); after 30 s without
    /// one, fails showing the sim's last requests.
    #[expect(clippy::panic, reason = "a test helper fails loudly, like the tests")]
    fn killed(&self, killed: &mpsc::Receiver<String>, marker: &str, point: &str) -> String {
        killed.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            let log: Vec<String> = self.sim.with_sim(|s| {
                let last = s.requests().iter().rev().take(40);
                last.map(|r| format!("{} {:?}", r.path_and_query, r.status)).collect()
            });
            panic!("{marker}: no {point} kill within 30 s; the sim's last requests: {log:#?}")
        })
    }

    /// The stored record of a task (the proxy must be stopped).
    fn record(&self, id: &str) -> TaskRecord {
        let store = RedbTaskStore::open(&self.db).unwrap();
        let record = self.runtime.block_on(store.get(&TaskId::parse(id).unwrap()));
        // `None`: the task is not stored.
        record.unwrap().unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn kill_9_at_lifecycle_points_loses_no_task_and_creates_once() {
    let began = Instant::now();
    let world = World::new("crash");
    let World { runtime, switch, sim, config, db, .. } = &world;
    let (runtime, sim, config, db) = (runtime, sim, config.as_path(), db.as_path());

    // The plan: every lifecycle point at least once, targets and companions seeded.
    let seed = seed();
    let mut rng = Rng(seed);
    // A kind forced where a point matters most for it: a character's finalize (its
    // lookup point) is the one step of its flow after the upload that changes upstream state.
    let mut points = vec![
        (Point::CreateSent, None),
        (Point::CreateAnswered, None),
        (Point::Poll, None),
        (Point::Lookup, None),
        (Point::Lookup, Some(Kind::Character)),
        (Point::Refresh(Stage::Received), None),
        (Point::Refresh(Stage::Answered), None),
        (Point::Upload(Stage::Received), None),
        (Point::Upload(Stage::Answered), None),
        (Point::CreateSent, None),
        (Point::CreateSent, None),
        (Point::Time(rng.next(2_000)), None),
        (Point::Time(rng.next(2_000)), None),
    ];
    for i in (1..points.len()).rev() {
        points.swap(i, usize::try_from(rng.next(i as u64 + 1)).unwrap());
    }
    let modes = [Mode::Stream, Mode::Blocking, Mode::Async];
    let mut jobs: Vec<Job> = Vec::new();
    let mut rounds: Vec<(Point, Vec<usize>)> = Vec::new();
    for &(point, kind) in &points {
        let kinds: Vec<Kind> = KINDS.into_iter().filter(|k| point.applies_to(*k)).collect();
        let mut round = Vec::new();
        let extra = if matches!(point, Point::Refresh(_)) { " #fail=401" } else { "" };
        round.push(jobs.len());
        let kind = kind.unwrap_or_else(|| rng.pick(&kinds));
        jobs.push(Job::new(jobs.len(), kind, rng.pick(&modes), extra));
        for _ in 0..2 {
            let extra = if jobs.len() == 3 { " #policy" } else { "" };
            let kind = if extra.is_empty() { rng.pick(&KINDS) } else { Kind::Video };
            round.push(jobs.len());
            jobs.push(Job::new(jobs.len(), kind, rng.pick(&modes), extra));
        }
        rounds.push((point, round));
    }
    eprintln!("crash test: seed {seed:#x}, {} rounds, {} jobs", rounds.len(), jobs.len());
    for (r, (point, round)) in rounds.iter().enumerate() {
        let show: Vec<String> = round
            .iter()
            .map(|&j| {
                format!("{} {:?}/{:?}{}", jobs[j].marker, jobs[j].kind, jobs[j].mode, jobs[j].extra)
            })
            .collect();
        eprintln!("  round {r}: kill at {point:?} of {}; with {}", show[0], show[1..].join(", "));
    }

    // Task ids by job: those a client was told, and those only the store knows.
    let mut told: BTreeMap<String, usize> = BTreeMap::new();
    let mut stored: BTreeMap<String, Option<usize>> = BTreeMap::new();
    for (r, (point, round)) in rounds.iter().enumerate() {
        let (proxy, origin) = start_proxy(config);
        for id in told.keys() {
            let (status, body) = get(&origin, &format!("/v1/tasks/{id}"), KEY);
            assert_eq!(status, 200, "round {r}, {id} after the restart: {body}");
        }
        let (tx, rx) = mpsc::channel();
        {
            let mut s = switch.lock().unwrap();
            s.proxy = Some(proxy);
            s.killed = Some(tx);
            s.target = match point {
                Point::Time(_) => None,
                _ => Some(Target {
                    job: jobs[round[0]].clone(),
                    point: *point,
                    created: false,
                    refused: false,
                    resumed: false,
                    polls: 0,
                }),
            };
        }
        let clients: Vec<_> = round
            .iter()
            .map(|&j| {
                let (path, body) = jobs[j].request();
                let head_only = jobs[j].mode == Mode::Stream;
                let origin = origin.clone();
                std::thread::spawn(move || (j, try_send(&origin, path, &body, head_only)))
            })
            .collect();
        let how = match point {
            Point::Time(ms) => {
                // The seeded moment: a kill at a time, not at a request.
                std::thread::sleep(Duration::from_millis(*ms));
                let mut s = switch.lock().unwrap();
                drop(s.proxy.take());
                s.target = None;
                format!("after {ms} ms")
            }
            _ => match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(what) => what,
                Err(_) => panic!("round {r}: the kill point {point:?} was never reached"),
            },
        };
        eprintln!("  round {r}: killed at {how}");
        for client in clients {
            let (j, reply) = client.join().unwrap();
            if let Some(id) = reply.and_then(|(_, head)| task_id_in(&head)) {
                told.insert(id, j);
            }
        }
        // The proxy is dead: its store is readable. Every told id is there; unfinished
        // records name the tasks whose clients never heard of them.
        let store = RedbTaskStore::open(db).unwrap();
        runtime.block_on(async {
            for id in told.keys() {
                let record = store.get(&TaskId::parse(id).unwrap()).await.unwrap();
                assert!(record.is_some(), "round {r}: {id} was told but not stored");
            }
            for record in store.unfinished().await.unwrap() {
                let id = record.id.as_str().to_owned();
                if !told.contains_key(&id) {
                    stored.insert(id, job_of(&jobs, &record));
                }
            }
        });
    }

    // The last start: everything finishes.
    let (proxy, origin) = start_proxy(config);
    // Every task: told, or found in the store (a record whose media were dropped before
    // its client heard of it names no job: it is anonymous, and must complete all the same).
    let mut all = stored.clone();
    all.extend(told.iter().map(|(id, j)| (id.clone(), Some(*j))));
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut wrong: Vec<String> = Vec::new();
    for (id, &j) in &all {
        let (marker, end) = j.map_or(("anonymous", "completed"), |j| {
            (jobs[j].marker.as_str(), jobs[j].expected_end())
        });
        loop {
            let (status, body) = get(&origin, &format!("/v1/tasks/{id}"), KEY);
            assert_eq!(status, 200, "{id} ({marker}): {body}");
            let task: serde_json::Value = serde_json::from_str(&body).unwrap();
            if task["status"] != "processing" {
                if task["status"] != end {
                    wrong.push(format!("{id} ({marker}): {task}"));
                }
                break;
            }
            assert!(Instant::now() < deadline, "{id} ({marker}) did not finish: {task}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if !wrong.is_empty() {
        // What the sim refused, to tell why.
        sim.with_sim(|s| {
            for r in s
                .requests()
                .iter()
                .filter(|r| r.status.is_none_or(|s| s >= 400) || r.path().ends_with("/finalize"))
            {
                let body = String::from_utf8_lossy(&r.body);
                let body: String = body.chars().take(300).collect();
                eprintln!("  sim: {:?} {} -> {:?}: {body}", r.method, r.path_and_query, r.status);
            }
        });
    }
    let login = common::send(
        &origin,
        "POST",
        "/api/login",
        "",
        r#"{"username":"admin","password":"crash-admin-pass"}"#,
        false,
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let session: serde_json::Value = serde_json::from_str(&login.body).unwrap();
    let session = session["token"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = get(&origin, "/api/tokens", &session);
        let tokens: serde_json::Value = serde_json::from_str(&body).unwrap();
        let busy: Vec<&serde_json::Value> = tokens
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["in_flight_image"] != 0 || t["in_flight_video"] != 0)
            .collect();
        if busy.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "token slots leaked: {busy:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(proxy.terminate().success());
    let store = RedbTaskStore::open(db).unwrap();
    let left = runtime.block_on(store.unfinished()).unwrap();
    let left: Vec<String> = left.iter().map(|r| format!("{} {}", r.id, r.client_prompt)).collect();
    assert!(left.is_empty(), "unfinished after the end: {left:?}");
    drop(store);

    // Exactly once, per task: its generation create (`video_gen`, `nf/create`, storyboard:
    // what the gateway's create lookup covers), its character upload (which makes a cameo),
    // and per cameo its finalize.
    let log = sim.with_sim(|s| s.requests().to_vec());
    let accepted = |job: &Job, path: &str| {
        log.iter()
            .filter(|r| r.method == Method::Post && r.status == Some(200) && r.path() == path)
            .filter(|r| contains(&r.body, &job.marker))
            .count()
    };
    let tracked: BTreeSet<usize> = all.values().filter_map(|j| *j).collect();
    // Anonymous tasks are characters whose record lost its media: each stands for one
    // untracked character job with one upload.
    let mut anonymous = all.values().filter(|j| j.is_none()).count();
    let (mut creates, mut duplicates, mut uploads) = (0, Vec::new(), Vec::new());
    for (j, job) in jobs.iter().enumerate() {
        let round = rounds.iter().position(|(_, js)| js.contains(&j)).unwrap();
        let show = |n: usize, what: &str| {
            let why = if rounds[round].1[0] == j {
                format!("target of {:?}", rounds[round].0)
            } else {
                "companion".into()
            };
            let known = if tracked.contains(&j) { "" } else { ", id unknown" };
            format!(
                "{} {:?}/{:?} (round {round}, {why}{known}): {n} {what}",
                job.marker, job.kind, job.mode
            )
        };
        // A task is known by its id (told or stored); one that never was had its request
        // cut before the record was written, and nothing may have been made for it.
        let known = usize::from(tracked.contains(&j));
        if job.kind != Kind::Character {
            let n = accepted(job, create_path(job.kind));
            creates += n;
            if n != known {
                duplicates.push(show(n, "creates"));
            }
        }
        if matches!(job.kind, Kind::Character | Kind::CharacterVideo) {
            let n = accepted(job, "/backend/characters/upload");
            let mut want = known;
            if want == 0 && n == 1 && job.kind == Kind::Character && anonymous > 0 {
                anonymous -= 1;
                want = 1;
            }
            // A cameo upload has no list to look in (documented): a kill between it and its
            // stored answer repeats it, at most once per kill the task lived through.
            let kills_lived = rounds.len() - round;
            if n < want || n > want + kills_lived {
                uploads.push(show(n, "character uploads"));
            } else if n > want {
                eprintln!("  repeated (documented): {}", show(n, "character uploads"));
            }
        }
    }
    let mut finalized: BTreeMap<String, usize> = BTreeMap::new();
    for r in log.iter().filter(|r| r.path() == "/backend/characters/finalize") {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let cameo = body["cameo_id"].as_str().unwrap_or_default().to_owned();
        *finalized.entry(cameo).or_default() += 1;
    }
    let finalizes: Vec<String> = finalized
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(cameo, n)| format!("cameo {cameo}: {n} finalize calls"))
        .collect();
    eprintln!(
        "crash test (seed {seed:#x}): {} jobs, {} ids ({} told), {} kills, {creates} creates, {:.1} s",
        jobs.len(),
        all.len(),
        told.len(),
        rounds.len(),
        began.elapsed().as_secs_f64()
    );
    for line in duplicates.iter().chain(&uploads).chain(&finalizes) {
        eprintln!("  not exactly once: {line}");
    }
    for line in &wrong {
        eprintln!("  did not end as scripted: {line}");
    }
    // Each comes from a step that changes upstream state being repeated after a crash: a
    // generation create; a character's finalize (the backend refuses the second one and the
    // task fails); a character upload repeated more often than the kills it lived through.
    assert!(duplicates.is_empty(), "tasks not created exactly once: {duplicates:#?}");
    assert!(finalizes.is_empty(), "cameos finalized more than once: {finalizes:#?}");
    assert!(wrong.is_empty(), "tasks that did not end as scripted: {wrong:#?}");
    assert!(uploads.is_empty(), "character uploads missing or repeated: {uploads:#?}");
}

/// Issue 5, item 5: a task acknowledged before its upload reached the upstream keeps its
/// media in the stored record until the upstream acknowledged the create, and a kill in
/// between loses nothing. For an image (image to video, async) and a video (a character,
/// streamed):
/// 1. kill when the sim receives the upload, after the client has the task id: the record
///    holds the whole medium, nothing was uploaded;
/// 2. restart, kill after the sim performed the create: uploaded now, medium still kept (the
///    gateway never heard the create's answer);
/// 3. restart, kill at the first status poll after a create the gateway heard: the medium is
///    dropped, the checkpoint says accepted;
/// 4. restart: the task completes, the medium stays dropped.
#[test]
fn media_survive_a_kill_until_the_upstream_has_them() {
    let world = World::new("media");
    let cases = [
        // Slow enough upstream that the video still runs when the proxy comes back from the
        // second kill: the resumed task finds its create in `pending` and polls it.
        Job::new(90, Kind::ImageVideo, Mode::Async, " #slow=8000"),
        Job::new(91, Kind::Character, Mode::Stream, ""),
    ];
    for job in &cases {
        let m = &job.marker;
        let medium = match job.kind {
            Kind::Character => base64(&marked(MP4, m)),
            _ => base64(&marked(PNG, m)),
        };
        let uploads = || {
            world.sim.with_sim(|s| {
                s.requests()
                    .iter()
                    .filter(|r| is_upload(r.path()) && r.status == Some(200))
                    .filter(|r| contains(&r.body, m))
                    .count()
            })
        };
        let kept = |record: &TaskRecord| {
            !record.media_dropped() && String::from_utf8_lossy(&record.to_bytes()).contains(&medium)
        };

        // 1. Acknowledged, then killed as the upload arrives.
        let (acked, hold) = mpsc::channel();
        let (origin, killed) = world.arm(job, Point::Upload(Stage::Received), Some(hold));
        let (path, body) = job.request();
        let reply = try_send(&origin, path, &body, job.mode == Mode::Stream);
        let (status, head) = reply.unwrap_or_else(|| panic!("{m}: no answer"));
        assert_eq!(status, 200, "{m}: {head}");
        let id = task_id_in(&head).unwrap();
        acked.send(()).unwrap();
        let how = killed.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(how.starts_with("Received"), "{m}: {how}");
        let record = world.record(&id);
        assert!(!record.is_finished(), "{m}: {:?}", record.status);
        assert!(kept(&record), "{m}: the medium is not in the record before its upload");
        assert_eq!(uploads(), 0, "{m}: uploaded before the kill");

        // 2. The create performed, its answer lost.
        let (_, killed) = world.arm(job, Point::CreateSent, None);
        let how = world.killed(&killed, m, "create");
        assert!(how.starts_with("Answered"), "{m}: {how}");
        assert!(uploads() >= 1, "{m}: the resumed task did not upload");
        let record = world.record(&id);
        assert!(kept(&record), "{m}: the medium was dropped before the create was acknowledged");

        // 3. A create the gateway heard: at its first poll the medium is gone.
        let (_, killed) = world.arm(job, Point::Poll, None);
        let how = world.killed(&killed, m, "poll");
        assert!(how.starts_with("Received"), "{m}: {how}");
        let record = world.record(&id);
        assert!(record.checkpoint.is_some(), "{m}: polled without a stored checkpoint");
        assert!(record.media_dropped(), "{m}: the medium outlived the acknowledged create");
        assert!(!String::from_utf8_lossy(&record.to_bytes()).contains(&medium), "{m}");

        // 4. The end.
        let (proxy, origin) = start_proxy(&world.config);
        let mut polls = 0;
        loop {
            let (status, body) = get(&origin, &format!("/v1/tasks/{id}"), KEY);
            assert_eq!(status, 200, "{m}: {body}");
            let task: serde_json::Value = serde_json::from_str(&body).unwrap();
            if task["status"] != "processing" {
                assert_eq!(task["status"], "completed", "{m}: {task}");
                break;
            }
            polls += 1;
            assert!(polls < 300, "{m} did not finish: {task}");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(proxy.terminate().success());
        let record = world.record(&id);
        assert!(record.is_finished() && record.media_dropped(), "{m}: {:?}", record.status);
    }
}
