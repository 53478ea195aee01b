//! Crash safety of the real binary: `kill -9` at seeded moments while a mix of tasks runs,
//! restarts on the same data directory, and every task a client was told about completes.
//!
//! The simulated backend runs in this process (so its request log can be read); the proxy is
//! a child process killed with SIGKILL. What is asserted:
//! - every task id a client received answers `GET /v1/tasks/{id}` after every restart, and
//!   ends `completed`;
//! - no token slot leaks (the admin API's in-flight counts are zero at the end);
//! - creates are at least one per task, and duplicates only come from the documented
//!   at-least-once window (a kill between a create and its stored acknowledgement), so at most
//!   one per kill; the count is printed.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly, like the tests")]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sora2api_tower::core::sim::{AccountSpec, SimConfig, Timings};
use sora2api_tower::sim_server::{SimHandle, SimServer};

use common::{origin_in, send, start, Proc};

const KEY: &str = "crash-key-1";

/// Starts the proxy on `config`; the process and its origin.
fn start_proxy(config: &Path) -> (Proc, String) {
    let (proxy, first, _) = start(&["--config", config.to_str().unwrap()], "error", 0);
    (proxy, origin_in(&first))
}

/// One request; status, lower-cased head and body (the body is not read for streams).
fn request(
    origin: &str,
    method: &str,
    path: &str,
    auth: &str,
    body: &str,
    stream: bool,
) -> (u16, String, String) {
    let reply = send(origin, method, path, auth, body, stream);
    (reply.status, reply.head, reply.body)
}

/// A seeded xorshift: the kill points reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn sim() -> SimHandle {
    let config = SimConfig {
        timings: Timings::observed().scaled(2),
        instant: false,
        pow_difficulty: "ff".into(),
        accept_any_remix_target: true,
        ..SimConfig::default()
    };
    SimServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).unwrap().spawn()
}

fn write_config(dir: &Path, sim: &str, token: &str) -> PathBuf {
    let text = format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\nshutdown_grace = 1\n\
         [global]\napi_key = \"{KEY}\"\nadmin_password = \"crash-admin-pass\"\n\
         [sora]\nbase_url = \"{sim}/backend\"\nauth_session_url = \"{sim}/api/auth/session\"\n\
         oauth_token_url = \"{sim}/oauth/token\"\nsentinel_url = \"{sim}/backend-api/sentinel/req\"\n\
         poll_interval = 0.1\n[storage]\ndata_dir = \"{}\"\n\
         [[tokens]]\naccess_token = \"{token}\"\n",
        dir.join("data").display()
    );
    let path = dir.join("crash.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// The i-th request of the mix: (path, body, stream).
fn job(i: u64) -> (&'static str, String, bool) {
    let stream = i % 3 == 1;
    let mode = if stream { r#""stream":true"# } else { r#""async_mode":true"# };
    match i % 5 {
        0 => ("/v1/images/generate", format!(r#"{{"prompt":"cat {i}",{mode}}}"#), stream),
        1 => ("/v1/videos/generate", format!(r#"{{"prompt":"dog {i}",{mode}}}"#), stream),
        2 => (
            "/v1/videos/storyboard",
            format!(r#"{{"prompt":"[2s]bird {i} flies [3s]bird {i} lands",{mode}}}"#),
            stream,
        ),
        3 => (
            "/v1/videos/remix",
            format!(
                r#"{{"prompt":"ink {i}","remix_target_id":"s_68e3a06dcd888191b150971da152c1f5",{mode}}}"#
            ),
            stream,
        ),
        _ => (
            "/v1/videos/transform",
            format!(r#"{{"prompt":"fish {i}","image":"data:image/png;base64,{PNG}",{mode}}}"#),
            stream,
        ),
    }
}

#[test]
fn kill_9_at_seeded_moments_loses_no_task() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let sim = runtime.block_on(async { sim() });
    let account = sim.add_account(AccountSpec::pro("crash@example.com"));
    let dir = std::env::temp_dir().join(format!("sora2api-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = write_config(&dir, &sim.origin(), &account.access_token);

    let seed = 0x5eed_2026;
    let mut rng = Rng(seed);
    let mut ids: Vec<String> = Vec::new();
    let mut kills = 0;
    let mut next_job = 0;
    for round in 0..6 {
        let (proxy, origin) = start_proxy(&config);
        // Every id known so far answers right after the start.
        for id in &ids {
            let (status, _, body) =
                request(&origin, "GET", &format!("/v1/tasks/{id}"), KEY, "", false);
            assert_eq!(status, 200, "round {round}, {id}: {body}");
        }
        for _ in 0..4 {
            let (path, body, stream) = job(next_job);
            next_job += 1;
            let (status, head, text) = request(&origin, "POST", path, KEY, &body, stream);
            assert_eq!(status, 200, "{path}: {text}");
            let id = head
                .lines()
                .find_map(|l| l.strip_prefix("x-task-id: "))
                .unwrap_or_else(|| panic!("no task id: {head}"))
                .trim()
                .to_owned();
            ids.push(id);
        }
        // A seeded moment in the tasks' lives: before their creates, while polling, ...
        std::thread::sleep(Duration::from_millis(rng.next(2_500)));
        drop(proxy); // SIGKILL
        kills += 1;
    }

    // The last start: everything finishes.
    let (proxy, origin) = start_proxy(&config);
    // At most 120 s in all (1 200 polls 100 ms apart).
    let mut polls = 0;
    for id in &ids {
        loop {
            polls += 1;
            let (status, _, body) =
                request(&origin, "GET", &format!("/v1/tasks/{id}"), KEY, "", false);
            assert_eq!(status, 200, "{id}: {body}");
            let task: serde_json::Value = serde_json::from_str(&body).unwrap();
            if task["status"] == "completed" {
                break;
            }
            assert_eq!(task["status"], "processing", "{id}: {task}");
            assert!(polls < 1_200, "{id} did not finish: {task}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let (status, _, body) = request(
        &origin,
        "POST",
        "/api/login",
        "",
        r#"{"username":"admin","password":"crash-admin-pass"}"#,
        false,
    );
    assert_eq!(status, 200, "{body}");
    let session: serde_json::Value = serde_json::from_str(&body).unwrap();
    let session = session["token"].as_str().unwrap().to_owned();
    let (_, _, body) = request(&origin, "GET", "/api/tokens", &session, "", false);
    let tokens: serde_json::Value = serde_json::from_str(&body).unwrap();
    for token in tokens.as_array().unwrap() {
        assert_eq!(token["in_flight_image"], 0, "{token}");
        assert_eq!(token["in_flight_video"], 0, "{token}");
    }
    let creates = sim.with_sim(|s| s.creates());
    let tasks = ids.len();
    eprintln!("crash test (seed {seed:#x}): {tasks} tasks, {kills} kill -9, {creates} creates");
    assert!(creates >= tasks, "every task was created: {creates} < {tasks}");
    assert!(creates - tasks <= kills, "duplicates only from the at-least-once window");
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}
