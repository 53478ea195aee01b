//! Helpers of the binary's integration tests: a child-process guard, starting `sora2api`
//! and reading its first lines, and hand-written HTTP/1.1 over loopback (plain std).
#![allow(dead_code, reason = "each test binary uses a part")]
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly, like the tests")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sora2api");

/// A child process, killed with SIGKILL when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGTERM, then the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.0.wait().unwrap()
    }
}

/// Starts `sora2api args..` (logging at `log`); returns it, the first line of its stdout and
/// the `extra` lines after it (the rest is drained so the child never blocks on the pipe).
pub fn start(args: &[&str], log: &str, extra: usize) -> (Proc, String, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("SORA2API_LOG", log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let more: Vec<String> = lines.by_ref().take(extra).map(Result::unwrap).collect();
    std::thread::spawn(move || lines.for_each(drop));
    (Proc(child), first, more)
}

/// The `http://...` in a "listening on http://addr; ..." line.
pub fn origin_in(line: &str) -> String {
    let start = line.find("http://").unwrap();
    line[start..].split([';', ' ', ',']).next().unwrap().to_owned()
}

/// An answer: the status, the head (lower-cased) and the body (empty for `headers_only`).
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// One request with a bearer and a JSON body, on its own connection. With `headers_only`
/// the client reads the head and goes away (a streaming client that leaves).
pub fn send(
    origin: &str,
    method: &str,
    path: &str,
    auth: &str,
    body: &str,
    headers_only: bool,
) -> Reply {
    let host = origin.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    if headers_only {
        let mut buf = [0u8; 4096];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            response.extend_from_slice(&buf[..n]);
        }
    } else {
        stream.read_to_end(&mut response).unwrap();
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: if headers_only { String::new() } else { body.to_owned() },
    }
}

/// [`send`] reading the whole answer: status and body.
pub fn request(origin: &str, method: &str, path: &str, auth: &str, body: &str) -> (u16, String) {
    let reply = send(origin, method, path, auth, body, false);
    (reply.status, reply.body)
}
