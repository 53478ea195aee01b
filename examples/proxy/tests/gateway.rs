//! The `sora2api` binary as users run it: `--config` against `sora2api sim`, a restart on
//! the same data directory, and `--demo`. Plain std: child processes and hand-written
//! HTTP/1.1 on loopback.
#![expect(clippy::unwrap_used, clippy::panic, reason = "test helpers fail loudly, like the tests")]

mod common;

use std::path::{Path, PathBuf};

use common::{origin_in, request, start};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sora2api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_config(dir: &Path, sim: &str, token: &str) -> PathBuf {
    let config = format!(
        r#"[server]
host = "127.0.0.1"
port = 0
shutdown_grace = 2
[global]
api_key = "test-key-1"
admin_password = "test-admin-pass"
[sora]
base_url = "{sim}/backend"
auth_session_url = "{sim}/api/auth/session"
oauth_token_url = "{sim}/oauth/token"
sentinel_url = "{sim}/backend-api/sentinel/req"
poll_interval = 0.05
[storage]
data_dir = "{}"
[[tokens]]
access_token = "{token}"
video_concurrency = 3
"#,
        dir.join("data").display()
    );
    let path = dir.join("sora2api.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn config_mode_serves_survives_a_restart_and_keeps_one_copy_of_each_token() {
    let dir = temp_dir("gateway");
    let (_sim, first, more) = start(&["sim", "--listen", "127.0.0.1:0", "--fast"], "warn", 1);
    let sim = origin_in(&first);
    let token = more[0].strip_prefix("access_token: ").unwrap().to_owned();
    let config = write_config(&dir, &sim, &token);
    let config = config.to_str().unwrap();

    let (gateway, line, _) = start(&["--config", config], "warn", 0);
    assert!(line.contains("1 token(s)") && line.contains("0 task(s) resumed"), "{line}");
    let gw = origin_in(&line);
    let (status, body) =
        request(&gw, "POST", "/v1/images/generate", "test-key-1", r#"{"prompt":"A cat"}"#);
    assert_eq!(status, 200, "{body}");
    assert!(json(&body)["choices"][0]["message"]["content"].as_str().unwrap().contains(&sim));
    let (status, body) = request(
        &gw,
        "POST",
        "/v1/videos/generate",
        "test-key-1",
        r#"{"prompt":"A cat","async_mode":true}"#,
    );
    assert_eq!(status, 200, "{body}");
    let task = json(&body)["task_id"].as_str().unwrap().to_owned();
    let (status, _) = request(&gw, "GET", "/v1/models", "wrong-key", "");
    assert_eq!(status, 401);
    let (status, body) = request(&gw, "GET", "/nothing", "test-key-1", "");
    assert_eq!(status, 404);
    assert!(json(&body)["error"]["message"].is_string());
    assert!(gateway.terminate().success(), "a clean exit on SIGTERM");

    // The same data directory: the token is not added twice, the task is still known.
    let (gateway, line, _) = start(&["--config", config], "warn", 0);
    assert!(line.contains("1 token(s)"), "{line}");
    let gw = origin_in(&line);
    let mut done = false;
    for _ in 0..200 {
        let (status, body) = request(&gw, "GET", &format!("/v1/tasks/{task}"), "test-key-1", "");
        assert_eq!(status, 200, "{body}");
        if json(&body)["status"] == "completed" {
            done = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(done, "the task completed after the restart");
    let (status, body) = request(
        &gw,
        "POST",
        "/api/login",
        "",
        r#"{"username":"admin","password":"test-admin-pass"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let session = json(&body)["token"].as_str().unwrap().to_owned();
    let (status, body) = request(&gw, "GET", "/api/tokens", &session, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body).as_array().map(Vec::len), Some(1), "{body}");
    assert!(!body.contains(&token), "the admin API never shows a token");
    assert!(gateway.terminate().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_mode_answers_the_founding_documents_requests() {
    let (demo, first, _) = start(&["--demo", "--listen", "127.0.0.1:0"], "warn", 0);
    let gw = origin_in(&first);
    let (status, body) = request(&gw, "GET", "/v1/models", "han1234", "");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["data"].as_array().map(Vec::len), Some(31));
    let (status, body) = request(
        &gw,
        "POST",
        "/v1/images/generate",
        "han1234",
        r#"{"prompt":"A cute kitten","model":"gpt-image","stream":true}"#,
    );
    assert_eq!(status, 200);
    assert!(body.contains("![Generated Image]("), "{body}");
    assert_eq!(body.matches("data: [DONE]").count(), 1);
    assert!(demo.terminate().success());
}
