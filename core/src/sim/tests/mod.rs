//! Tests of the simulated backend, on virtual time. The helpers build valid requests the
//! way a client must (sentinel/req, proof of work, the header); they are private on purpose:
//! the real client builders live in `upstream`.

mod accounts;
mod characters;
mod client;
mod drafts;
mod images;
mod markers;
mod sentinel;
mod videos;

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::pow::{
    self, FingerprintPicks, PowChallenge, PowEnv, SentinelHeader, SentinelReply, PY_HEAD,
};
use crate::upstream::{Method, UpstreamRequest};

pub(super) const T0: u64 = 1_767_225_600_000;
const ORIGIN: &str = "http://sim.test";

/// A simulator, a virtual clock and a default Pro account.
pub(super) struct H {
    pub(super) sim: Sim,
    pub(super) now: u64,
    pub(super) at: String,
    pub(super) minted: MintedAccount,
    device_counter: u8,
}

impl H {
    /// Fast (instant, difficulty `ff`) with a Pro account `pro@example.com`.
    pub(super) fn fast() -> Self {
        H::with(SimConfig::fast())
    }

    /// Observed timings, real-looking difficulty `0fffff` (about 16 hashes).
    pub(super) fn observed() -> Self {
        H::with(SimConfig { pow_difficulty: "0fffff".into(), ..SimConfig::default() })
    }

    pub(super) fn with(config: SimConfig) -> Self {
        let mut sim = Sim::new(config);
        let minted = sim.add_account(AccountSpec::pro("pro@example.com"));
        H { sim, now: T0, at: minted.access_token.clone(), minted, device_counter: 0 }
    }

    pub(super) fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    pub(super) fn request(
        method: Method,
        path: &str,
        headers: Vec<(String, String)>,
        body: impl Into<Bytes>,
    ) -> UpstreamRequest {
        UpstreamRequest {
            method,
            url: format!("{ORIGIN}{path}"),
            headers,
            body: body.into(),
            timeout_ms: 30_000,
            proxy: None,
        }
    }

    pub(super) fn send(&mut self, req: &UpstreamRequest) -> SimResponse {
        self.sim.handle(self.now, req)
    }

    pub(super) fn bearer(token: &str) -> Vec<(String, String)> {
        vec![("authorization".into(), format!("Bearer {token}"))]
    }

    /// GET with the default account.
    pub(super) fn get(&mut self, path: &str) -> SimResponse {
        let at = self.at.clone();
        self.get_as(&at, path)
    }

    pub(super) fn get_as(&mut self, token: &str, path: &str) -> SimResponse {
        let req = H::request(Method::Get, path, H::bearer(token), Bytes::new());
        self.send(&req)
    }

    /// POST JSON with the default account, no sentinel.
    pub(super) fn post(&mut self, path: &str, body: &Value) -> SimResponse {
        let at = self.at.clone();
        self.post_as(&at, path, body)
    }

    pub(super) fn post_as(&mut self, token: &str, path: &str, body: &Value) -> SimResponse {
        let mut headers = H::bearer(token);
        headers.push(("content-type".into(), "application/json".into()));
        let req = H::request(Method::Post, path, headers, body.to_string());
        self.send(&req)
    }

    pub(super) fn delete(&mut self, path: &str) -> SimResponse {
        let req = H::request(Method::Delete, path, H::bearer(&self.at.clone()), Bytes::new());
        self.send(&req)
    }

    /// The next device id (a uuid4).
    pub(super) fn device_id(&mut self) -> String {
        self.device_counter = self.device_counter.wrapping_add(1);
        pow::uuid4([self.device_counter; 16])
    }

    /// `POST /backend-api/sentinel/req` as PY does (text/plain body, requirements token),
    /// optionally with a bearer; returns the parsed reply.
    pub(super) fn sentinel_reply(&mut self, bearer: Option<&str>, id: &str) -> SentinelReply {
        let requirements =
            pow::solve(&PowChallenge::requirements("0.25"), &config()).requirements_token();
        let body = pow::sentinel_req_body(&requirements, id);
        let mut headers = vec![("content-type".into(), "text/plain;charset=UTF-8".into())];
        if let Some(token) = bearer {
            headers.extend(H::bearer(token));
        }
        let req = H::request(Method::Post, "/backend-api/sentinel/req", headers, body);
        let reply = ok(self.send(&req));
        SentinelReply::parse(&reply.body).unwrap()
    }

    /// A valid `openai-sentinel-token` value and its device id.
    pub(super) fn sentinel(&mut self) -> (String, String) {
        let id = self.device_id();
        let reply = self.sentinel_reply(None, &id);
        (header_for(&reply, &id), id)
    }

    /// POST with a fresh valid sentinel (headers as PY's create profile).
    pub(super) fn create(&mut self, path: &str, body: &Value) -> SimResponse {
        let at = self.at.clone();
        self.create_as(&at, path, body)
    }

    pub(super) fn create_as(&mut self, token: &str, path: &str, body: &Value) -> SimResponse {
        let (sentinel, device) = self.sentinel();
        self.post_with(token, path, body, Some(&sentinel), Some(&device))
    }

    pub(super) fn post_with(
        &mut self,
        token: &str,
        path: &str,
        body: &Value,
        sentinel: Option<&str>,
        device: Option<&str>,
    ) -> SimResponse {
        let mut headers = H::bearer(token);
        headers.push(("content-type".into(), "application/json".into()));
        if let Some(s) = sentinel {
            headers.push(("openai-sentinel-token".into(), s.to_owned()));
        }
        if let Some(d) = device {
            headers.push(("oai-device-id".into(), d.to_owned()));
        }
        let req = H::request(Method::Post, path, headers, body.to_string());
        self.send(&req)
    }

    /// Creates a video and returns its task id.
    pub(super) fn video(&mut self, prompt: &str) -> String {
        let reply = ok(self.create("/backend/nf/create", &video_body(prompt)));
        json_of(&reply)["id"].as_str().unwrap().to_owned()
    }

    /// Creates a video and drives time until its draft exists; returns (task id, gen id).
    pub(super) fn finished_video(&mut self, prompt: &str) -> (String, String) {
        let task = self.video(prompt);
        for _ in 0..200 {
            let drafts = json_of(&ok(self.get("/backend/project_y/profile/drafts?limit=100")));
            if let Some(item) =
                drafts["items"].as_array().unwrap().iter().find(|i| i["task_id"] == task.as_str())
            {
                return (task, item["id"].as_str().unwrap().to_owned());
            }
            self.advance(5_000);
        }
        panic!("video {task} never finished");
    }

    pub(super) fn multipart(
        &mut self,
        path: &str,
        parts: &[(&str, Option<&str>, &[u8])],
    ) -> SimResponse {
        let mut body = Vec::new();
        for (name, filename, data) in parts {
            body.extend_from_slice(b"--BOUNDARY\r\n");
            match filename {
                Some(f) => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes()),
                None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
            }
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--BOUNDARY--\r\n");
        let mut headers = H::bearer(&self.at.clone());
        headers.push(("content-type".into(), "multipart/form-data; boundary=BOUNDARY".into()));
        let req = H::request(Method::Post, path, headers, body);
        self.send(&req)
    }

    /// Uploads a PNG and returns its media id.
    pub(super) fn upload_image(&mut self) -> String {
        let reply = ok(self.multipart(
            "/backend/uploads",
            &[("file", Some("image.png"), media::PNG), ("file_name", None, b"image.png")],
        ));
        json_of(&reply)["id"].as_str().unwrap().to_owned()
    }

    /// The logged requests to `path` (without query).
    pub(super) fn logged(&self, path: &str) -> Vec<&LoggedRequest> {
        self.sim.requests().iter().filter(|r| r.path() == path).collect()
    }
}

/// A fixed fingerprint for proofs.
pub(super) fn config() -> pow::ConfigArray {
    let env = PowEnv {
        now_unix_ms: T0,
        utc_offset_minutes: 0,
        tz_name: "UTC",
        user_agent: "Mozilla/5.0 test",
    };
    PY_HEAD.build(&env, &FingerprintPicks::from_seed(42)).unwrap()
}

/// The header for a reply: solve its challenge (if any) and render.
pub(super) fn header_for(reply: &SentinelReply, id: &str) -> String {
    let requirements =
        pow::solve(&PowChallenge::requirements("0.25"), &config()).requirements_token();
    let answer = reply.proof_of_work.as_ref().map(|c| pow::solve(c, &config()));
    let p = pow::header_proof(&requirements, answer.as_ref());
    SentinelHeader::new(&p, reply, id, pow::FLOW_CREATE_TASK_AUTO).render()
}

pub(super) fn video_body(prompt: &str) -> Value {
    json!({"kind":"video","prompt":prompt,"orientation":"landscape","size":"small","n_frames":300,"model":"sy_8","inpaint_items":[],"style_id":null})
}

pub(super) fn image_body(prompt: &str) -> Value {
    json!({"type":"image_gen","operation":"simple_compose","prompt":prompt,"width":360,"height":360,"n_variants":1,"n_frames":1,"inpaint_items":[]})
}

/// The reply, which must be a 2xx.
#[track_caller]
pub(super) fn ok(response: SimResponse) -> UpstreamReply {
    match response {
        SimResponse::Reply(r) if (200..300).contains(&r.status) => r,
        other => panic!("expected success, got {other:?}: {}", body_text(&other)),
    }
}

/// The reply, which must have this status.
#[track_caller]
pub(super) fn status(response: SimResponse, expected: u16) -> UpstreamReply {
    match response {
        SimResponse::Reply(r) if r.status == expected => r,
        other => panic!("expected {expected}, got {other:?}: {}", body_text(&other)),
    }
}

fn body_text(response: &SimResponse) -> String {
    response.reply().map(|r| String::from_utf8_lossy(&r.body).into_owned()).unwrap_or_default()
}

pub(super) fn json_of(reply: &UpstreamReply) -> Value {
    serde_json::from_slice(&reply.body).unwrap()
}

/// The error code of an error reply.
#[track_caller]
pub(super) fn code(reply: &UpstreamReply) -> String {
    json_of(reply)["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// Asserts the reply is the exact observed 400 `invalid_request`.
#[track_caller]
pub(super) fn assert_invalid_request(response: SimResponse) {
    let reply = status(response, 400);
    assert_eq!(
        json_of(&reply),
        json!({"error":{"message":"Hmmm something didn't look right with your request. Please try again later or visit https://help.openai.com if this issue persists.","type":"invalid_request_error","param":null,"code":"invalid_request"}})
    );
}

// === general ===

#[test]
fn unknown_routes_and_methods() {
    let mut h = H::fast();
    status(h.get("/backend/nope"), 404);
    status(h.get("/backend/nf/create"), 405);
    status(h.get("/elsewhere"), 404);
    let req = H::request(Method::Put, "/oauth/token", vec![], Bytes::new());
    status(h.send(&req), 405);
    // Auth comes before routing on BACKEND.
    status(h.get_as("bogus", "/backend/nope"), 401);
}

#[test]
fn query_strings_and_hosts_are_ignored_for_routing() {
    let mut h = H::fast();
    let req = UpstreamRequest {
        url: "https://sora.chatgpt.com/backend/me?x=1".into(),
        ..H::request(Method::Get, "/", H::bearer(&h.at), Bytes::new())
    };
    ok(h.send(&req));
}

#[test]
fn request_log_records_everything() {
    let mut h = H::fast();
    let task = h.video("a cat");
    h.get("/backend/nf/pending/v2");
    let log = h.sim.requests();
    // sentinel/req, nf/create, pending.
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].path(), "/backend-api/sentinel/req");
    let create = &log[1];
    assert!(create.is_sentinel_route());
    assert_eq!(create.status, Some(200));
    assert!(create.body.starts_with(b"{"));
    let sentinel: Value =
        serde_json::from_str(create.header("openai-sentinel-token").unwrap()).unwrap();
    assert_eq!(Some(sentinel["id"].as_str().unwrap()), create.header("oai-device-id"));
    assert!(log[2].header("openai-sentinel-token").is_none() && !log[2].is_sentinel_route());
    assert_eq!(log[2].at_ms, T0);
    assert_eq!(h.sim.creates(), 1);
    assert!(task.starts_with("task_"));
}

#[test]
fn same_inputs_same_outputs() {
    let run = || {
        let mut h = H::fast();
        let task = h.video("determinism");
        let (_, gen) = h.finished_video("second");
        (task, gen, h.minted.access_token.clone())
    };
    assert_eq!(run(), run());
}

#[test]
fn ids_have_the_upstream_shapes() {
    let mut h = H::fast();
    let task = h.video("shape");
    assert!(rng::is_ulid(&task, "task_"), "{task}");
    let (_, gen) = h.finished_video("shape 2");
    assert!(rng::is_ulid(&gen, "gen_"), "{gen}");
    for post in h.sim.posts() {
        assert!(rng::is_post_id(&post), "{post}");
    }
    assert_eq!(h.sim.posts().len(), 3);
}

#[test]
fn garbage_requests_never_panic() {
    let mut h = H::fast();
    let bodies: [&[u8]; 8] = [b"", b"{", b"[]", b"null", b"{\"prompt\":5}", b"\xff\xfe", b"{\"kind\":\"video\",\"prompt\":\"#fail=99999999999x99999999999999 #queue=-1 #slow=abc #nourl=x #\"}", b"--B\r\n\r\n"];
    let paths = [
        "/",
        "/api/auth/session",
        "/oauth/token",
        "/backend-api/sentinel/req",
        "/media/images/x.png",
        "/backend/me",
        "/backend/uploads",
        "/backend/video_gen",
        "/backend/v2/recent_tasks?limit=-1",
        "/backend/nf/create",
        "/backend/nf/create/storyboard",
        "/backend/project_y/profile/drafts/gen_x/long_video_extension",
        "/backend/nf/pending/v2",
        "/backend/project_y/profile/drafts/v2?cursor=%%%",
        "/backend/project_y/post",
        "/backend/project_y/post/s_x",
        "/backend/characters/upload",
        "/backend/characters/from-generation",
        "/backend/project_y/cameos/in_progress/x",
        "/backend/project_y/file/upload",
        "/backend/characters/finalize",
        "/backend/project_y/cameos/by_id/x/update_v2",
        "/backend/project_y/characters/x",
        "/backend/editor/enhance_prompt",
        "/backend/project_y/profile/username/set",
        "/backend/project_y/invite/accept",
        "//",
        "/backend/",
        "",
    ];
    let (sentinel, device) = h.sentinel();
    for path in paths {
        for body in bodies {
            for method in [Method::Get, Method::Post, Method::Put, Method::Delete] {
                let mut headers = H::bearer(&h.at);
                headers.push(("content-type".into(), "multipart/form-data; boundary=B".into()));
                headers.push(("openai-sentinel-token".into(), sentinel.clone()));
                headers.push(("oai-device-id".into(), device.clone()));
                headers.push(("cookie".into(), "__Secure-next-auth.session-token=".into()));
                let req = H::request(method, path, headers, Bytes::copy_from_slice(body));
                let _ = h.send(&req);
            }
        }
    }
    for url in ["no-scheme", "http://", "http://host?x", "\u{0}/\u{ff}"] {
        let req = UpstreamRequest {
            url: url.into(),
            ..H::request(Method::Get, "", vec![], Bytes::new())
        };
        let _ = h.send(&req);
    }
}

#[test]
fn media_files_have_the_right_magic() {
    let mut h = H::fast();
    let (_, gen) = h.finished_video("media");
    let drafts = json_of(&ok(h.get("/backend/project_y/profile/drafts")));
    let url = drafts["items"][0]["downloadable_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:8080/media/videos/"), "{url}");
    let path = url.trim_start_matches("http://127.0.0.1:8080");
    let req = H::request(Method::Get, path, vec![], Bytes::new());
    let file = ok(h.send(&req));
    assert_eq!(
        crate::request::MediaFormat::sniff(&file.body),
        Some(crate::request::MediaFormat::Mp4)
    );
    assert_eq!(file.header("content-type"), Some("video/mp4"));
    let req = H::request(Method::Get, &format!("/media/videos/{gen}.mp4"), vec![], Bytes::new());
    ok(h.send(&req));
    let req = H::request(Method::Get, "/media/videos/gen_unknown.mp4", vec![], Bytes::new());
    status(h.send(&req), 404);
    assert_eq!(
        crate::request::MediaFormat::sniff(media::PNG),
        Some(crate::request::MediaFormat::Png)
    );
    assert_eq!(
        crate::request::MediaFormat::sniff(media::WEBP),
        Some(crate::request::MediaFormat::Webp)
    );
}

#[test]
fn media_origin_without_path_serves_at_root() {
    let mut h =
        H::with(SimConfig { media_origin: "http://media.test".into(), ..SimConfig::fast() });
    h.video("root media");
    let drafts = json_of(&ok(h.get("/backend/project_y/profile/drafts")));
    let url = drafts["items"][0]["url"].as_str().unwrap().to_owned();
    let req =
        H::request(Method::Get, url.trim_start_matches("http://media.test"), vec![], Bytes::new());
    ok(h.send(&req));
}

#[test]
fn sim_response_helpers() {
    let timeout = SimResponse::Transport(TransportError::Timeout);
    assert_eq!(timeout.status(), None);
    assert_eq!(timeout.into_result(), Err(TransportError::Timeout));
    let reply = SimResponse::from(UpstreamReply::json(200, "{}"));
    assert_eq!(reply.status(), Some(200));
}

#[test]
fn sim_is_send_sync_clone_and_the_log_drains() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Sim>();
    let mut h = H::fast();
    h.get("/backend/me");
    let snapshot = h.sim.clone();
    assert_eq!(h.sim.take_requests().len(), 1);
    assert!(h.sim.requests().is_empty());
    assert_eq!(snapshot.requests().len(), 1);
}
