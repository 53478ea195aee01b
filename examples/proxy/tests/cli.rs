//! The `sora2api` binary: `sim` on port 0, `sim mint-token`, clean exit on SIGTERM, and the
//! errors of every other invocation. Plain std: a child process and hand-written HTTP/1.1.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly, like the tests")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sora2api");

/// A running `sora2api sim`, killed if a test fails before it stops it.
struct Running {
    child: Child,
    origin: String,
    access_token: String,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .arg("sim")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        // The first line ends with the origin: parseable whatever the port.
        let origin = first.rsplit(' ').next().unwrap().to_owned();
        assert!(first.starts_with("sora2api sim: listening on http://"), "{first}");
        let second = lines.next().unwrap().unwrap();
        let access_token = second.strip_prefix("access_token: ").unwrap().to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Running { child, origin, access_token }
    }

    /// `GET path` with a bearer: status and body.
    fn get(&self, path: &str, bearer: &str) -> (u16, String) {
        let host = self.origin.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {bearer}\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response.split(' ').nth(1).unwrap().parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
        (status, body)
    }

    /// SIGTERM, then the exit status and stderr.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (status, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn sim_serves_accepts_minted_tokens_and_stops_on_sigterm() {
    let sim = Running::start(&["--listen", "127.0.0.1:0", "--fast", "--seed", "7"]);
    assert!(!sim.origin.ends_with(":0"), "{}", sim.origin);

    // The printed Pro token works.
    let (status, body) = sim.get("/backend/me", &sim.access_token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""plan_type":"chatgpt_pro""#), "{body}");

    // mint-token with the same seed prints a token the running server accepts.
    let minted =
        run(&["sim", "mint-token", "--seed", "7", "--plan", "plus", "--email", "cli@example.com"]);
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let token = text(&minted.stdout).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");
    assert!(text(&minted.stderr).contains("cli@example.com"));
    let (status, body) = sim.get("/backend/me", &token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""email":"cli@example.com""#), "{body}");
    assert!(body.contains(r#""plan_type":"chatgpt_plus""#), "{body}");

    // Another seed's token is unknown; unknown paths are 404 JSON.
    let foreign = run(&["sim", "mint-token", "--seed", "8"]);
    let (status, body) = sim.get("/backend/me", text(&foreign.stdout).trim());
    assert_eq!((status, body.contains("token_invalidated")), (401, true), "{body}");
    let (status, body) = sim.get("/nowhere", "x");
    assert_eq!((status, body.contains(r#""code":"not_found""#)), (404, true), "{body}");

    let (status, stderr) = sim.terminate();
    assert!(status.success(), "{status}: {stderr}");
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(&["sim", "--listen", &addr]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
    assert!(stderr.to_lowercase().contains("in use"), "{stderr}");
}

#[test]
fn usage_errors_and_the_gateway_exit_2() {
    let output = run(&["sim", "--listen", "nowhere"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("`nowhere` is not an address"));

    // The gateway refuses to start on a bad configuration, saying which setting is wrong.
    for (args, says) in [
        (&["--config", "/nonexistent/sora2api.toml"][..], "cannot read the configuration file"),
        (&[], "no API key is set"),
    ] {
        let output =
            Command::new(BIN).args(args).env_remove("SORA2API_GLOBAL_API_KEY").output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }

    let output = run(&["sim", "mint-token", "--plan", "gold"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("`gold`"));

    // Gateway options are checked before anything starts.
    for (args, says) in [
        (&["--listen", "nowhere"][..], "`nowhere` is not an address"),
        (&["--config"], "--config needs a value"),
        (&["--port", "1"], "`--port` is not an option of `sora2api`"),
        (&["serve"], "`serve` is not a command"),
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(text(&output.stderr).contains(says), "{args:?}: {}", text(&output.stderr));
    }

    let version = run(&["--version"]);
    assert!(version.status.success());
    assert_eq!(text(&version.stdout), format!("sora2api {}\n", env!("CARGO_PKG_VERSION")));

    let help = run(&["--help"]);
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("sora2api sim mint-token"));
}
