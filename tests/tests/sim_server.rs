//! The simulated backend over real HTTP on `127.0.0.1:0` ([`SimServer`]), driven by the
//! core's own request builders and decoders, as any client of the real service would.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly, like the tests")]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sora2api_core::catalog;
use sora2api_core::pow::{self, FingerprintPicks, PowChallenge, PowEnv, SentinelReply, PY_HEAD};
use sora2api_core::secret::Secret;
use sora2api_core::sim::{AccountSpec, SimConfig};
use sora2api_core::upstream::{
    self, Auth, DraftOutcome, Method, SentinelToken, UpstreamConfig, UpstreamReply,
    UpstreamRequest, VideoPending, VideoSource,
};
use sora2api_tower::sim_server::{self, SimHandle, SimServer};

type HttpClient = Client<HttpConnector, Full<Bytes>>;
type Failure = Box<dyn std::error::Error + Send + Sync>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends an [`UpstreamRequest`] the way the gateway's upstream does: its method, URL,
/// headers and body, within its timeout.
async fn send(client: &HttpClient, req: &UpstreamRequest) -> Result<UpstreamReply, Failure> {
    let mut builder = hyper::Request::builder().method(req.method.as_str()).uri(&req.url);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(Full::new(req.body.clone()))?;
    let exchange = async {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, Failure>(UpstreamReply { status, headers, body })
    };
    tokio::time::timeout(Duration::from_millis(req.timeout_ms), exchange).await?
}

fn get(url: String, bearer: Option<&str>) -> UpstreamRequest {
    UpstreamRequest {
        method: Method::Get,
        url,
        headers: bearer
            .map(|at| ("authorization".into(), format!("Bearer {at}")))
            .into_iter()
            .collect(),
        body: Bytes::new(),
        timeout_ms: 10_000,
        proxy: None,
    }
}

fn json(reply: &UpstreamReply) -> Value {
    assert_eq!(reply.header("content-type"), Some("application/json"), "{reply:?}");
    serde_json::from_slice(&reply.body).unwrap()
}

/// A fixed browser fingerprint for the proofs of work.
fn fingerprint() -> pow::ConfigArray {
    let env = PowEnv {
        now_unix_ms: sim_server::unix_now_ms(),
        utc_offset_minutes: 0,
        tz_name: "UTC",
        user_agent: "Mozilla/5.0 (Linux; Android 6.0; Nexus 5 Build/MRA58N)",
    };
    PY_HEAD.build(&env, &FingerprintPicks::from_seed(42)).unwrap()
}

/// The client's sentinel exchange over HTTP: `sentinel/req`, solve, build the header.
async fn sentinel(client: &HttpClient, cfg: &UpstreamConfig, n: u8) -> SentinelToken {
    let config = fingerprint();
    let id = pow::uuid4([n; 16]);
    let requirements =
        pow::solve(&PowChallenge::requirements(pow::requirements_seed(u64::from(n))), &config)
            .requirements_token();
    let reply = send(client, &upstream::sentinel_req(cfg, &requirements, &id, None)).await.unwrap();
    assert_eq!(reply.status, 200);
    let reply = SentinelReply::parse(&reply.body).unwrap();
    let answer = reply.proof_of_work.as_ref().map(|c| pow::solve(c, &config));
    let p = pow::header_proof(&requirements, answer.as_ref());
    SentinelToken::build(&p, &reply.turnstile_dx, &reply.token, &id, upstream::SENTINEL_FLOW)
}

fn serve(config: SimConfig) -> (SimHandle, sora2api_core::sim::MintedAccount) {
    let server = SimServer::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let account = server.add_account(AccountSpec::pro("ada@example.com"));
    (server.spawn(), account)
}

fn create_video(
    cfg: &UpstreamConfig,
    auth: &Auth,
    sentinel: &SentinelToken,
    prompt: &str,
) -> UpstreamRequest {
    let video = catalog::model("sora2-landscape-10s").unwrap().video().unwrap();
    upstream::nf_create(cfg, auth, sentinel, video, prompt, VideoSource::Text, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_generation_over_http() {
    // Instant tasks, but the real proof-of-work difficulty and the strict sentinel checks.
    let (sim, account) = serve(SimConfig { pow_difficulty: "06a7c5".into(), ..SimConfig::fast() });
    let cfg = sim.upstream_config();
    assert_eq!(cfg.sentinel_url, format!("{}/backend-api/sentinel/req", sim.origin()));
    let auth = Auth::new(Secret::new(account.access_token.clone()));
    let client = http_client();

    let me = upstream::decode_me(&send(&client, &upstream::me(&cfg, &auth)).await.unwrap());
    assert_eq!(me.unwrap().email.as_deref(), Some("ada@example.com"));

    let sentinel = sentinel(&client, &cfg, 1).await;
    let create = create_video(&cfg, &auth, &sentinel, "a cat on a skateboard");
    let reply = send(&client, &create).await.unwrap();
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    let task = upstream::decode_task_id(&reply).unwrap();

    // Poll as the gateway does: pending until the task leaves it, then the drafts.
    let mut outcome = DraftOutcome::NotYet;
    for _ in 0..10 {
        let pending = send(&client, &upstream::pending_v2(&cfg, &auth)).await.unwrap();
        if upstream::decode_pending(&pending, &task).unwrap() != VideoPending::Absent {
            continue;
        }
        let drafts = send(&client, &upstream::drafts_v2(&cfg, &auth, 15, None)).await.unwrap();
        outcome = upstream::decode_drafts(&drafts).unwrap().find(&task);
        if matches!(outcome, DraftOutcome::Ready { .. }) {
            break;
        }
    }
    let DraftOutcome::Ready { url, .. } = outcome else { panic!("{task}: {outcome:?}") };
    assert!(url.starts_with(&format!("{}/media/", sim.origin())), "{url}");

    // The result file, without credentials, is an MP4.
    let file = send(&client, &get(url, None)).await.unwrap();
    assert_eq!(file.status, 200);
    assert_eq!(file.header("content-type"), Some("video/mp4"));
    assert_eq!(file.body.get(4..8), Some(&b"ftyp"[..]));

    // The session and OAuth exchanges live at the same origin.
    let st = Secret::new(account.session_token.clone().unwrap());
    let session = send(&client, &upstream::session_to_access(&cfg, &st, None)).await.unwrap();
    let session = upstream::decode_session(&session).unwrap();
    assert_eq!(session.email.as_deref(), Some("ada@example.com"));
    let rt = Secret::new(account.refresh_token.clone().unwrap());
    let oauth = upstream::refresh_to_access(&cfg, &rt, Some(&account.client_id), None);
    let tokens = upstream::decode_oauth(&send(&client, &oauth).await.unwrap()).unwrap();
    let refreshed = Auth::new(tokens.access_token);
    assert_eq!(send(&client, &upstream::nf_check(&cfg, &refreshed)).await.unwrap().status, 200);

    // What the backend saw: one create, with the device id of its sentinel.
    sim.with_sim(|s| {
        assert_eq!(s.creates(), 1);
        let created: Vec<_> = s.requests().iter().filter(|r| r.is_sentinel_route()).collect();
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].status, Some(200));
        assert_eq!(created[0].header("oai-device-id"), Some(sentinel.device_id()));
    });
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_marker_resets_the_connection() {
    let (sim, account) = serve(SimConfig::fast());
    let cfg = sim.upstream_config();
    let auth = Auth::new(Secret::new(account.access_token.clone()));
    let client = http_client();
    let sentinel = sentinel(&client, &cfg, 2).await;

    let failure = send(&client, &create_video(&cfg, &auth, &sentinel, "a dog #reset"))
        .await
        .expect_err("a reset, not a reply");
    let failure = format!("{failure:?}");
    assert!(failure.contains("ConnectionReset"), "{failure}");
    // Only that connection broke: the same prompt goes through the second time (the fault
    // fires once), on a new connection.
    let reply = send(&client, &create_video(&cfg, &auth, &sentinel, "a dog #reset")).await.unwrap();
    assert_eq!(reply.status, 200);
    sim.with_sim(|s| {
        let statuses: Vec<_> =
            s.requests().iter().filter(|r| r.is_sentinel_route()).map(|r| r.status).collect();
        assert_eq!(statuses, [None, Some(200)]);
        assert_eq!(s.creates(), 1);
    });
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_holds_until_the_client_gives_up_or_shutdown() {
    let (sim, account) = serve(SimConfig::fast());
    let cfg = sim.upstream_config();
    let auth = Auth::new(Secret::new(account.access_token.clone()));
    let client = http_client();
    let sentinel = sentinel(&client, &cfg, 3).await;

    // A client that gives up after 300 ms sees its own timeout, never a reply.
    let mut hang = create_video(&cfg, &auth, &sentinel, "a bird #hang");
    hang.timeout_ms = 300;
    let failure = send(&client, &hang).await.expect_err("no reply to #hang");
    assert!(failure.is::<tokio::time::error::Elapsed>(), "{failure:?}");

    // A patient client is cut at shutdown, long before the 120 s hold limit.
    let mut hang = create_video(&cfg, &auth, &sentinel, "a fish #hang");
    hang.timeout_ms = 60_000;
    let patient = tokio::spawn({
        let client = client.clone();
        async move { send(&client, &hang).await }
    });
    // Wait until the server holds it (the request is in the sim's log).
    while sim.with_sim(|s| s.requests().iter().filter(|r| r.is_sentinel_route()).count()) < 2 {
        tokio::task::yield_now().await;
    }
    tokio::time::timeout(Duration::from_secs(15), sim.shutdown()).await.unwrap().unwrap();
    let cut = patient.await.unwrap().expect_err("cut without a reply");
    assert!(!cut.is::<tokio::time::error::Elapsed>(), "{cut:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json() {
    let server = SimServer::bind("127.0.0.1:0".parse().unwrap(), SimConfig::fast())
        .unwrap()
        .with_body_limit(1024);
    let account = server.add_account(AccountSpec::pro("ada@example.com"));
    let sim = server.spawn();
    let origin = sim.origin();
    let client = http_client();

    let unknown = send(&client, &get(format!("{origin}/nowhere"), None)).await.unwrap();
    assert_eq!(unknown.status, 404);
    assert_eq!(json(&unknown)["error"]["code"], "not_found");

    let no_auth = send(&client, &get(format!("{origin}/backend/me"), None)).await.unwrap();
    assert_eq!(no_auth.status, 401);
    assert_eq!(json(&no_auth)["error"]["code"], "token_invalidated");
    let bad = send(&client, &get(format!("{origin}/backend/me"), Some("eyJ.forged.sig"))).await;
    assert_eq!(json(&bad.unwrap())["error"]["code"], "token_invalidated");

    let at = account.access_token.as_str();
    let unknown_backend =
        send(&client, &get(format!("{origin}/backend/nowhere"), Some(at))).await.unwrap();
    assert_eq!(unknown_backend.status, 404);

    // A method the backend never sees, and a body over the cap: the shell's own errors.
    let patch = hyper::Request::builder()
        .method("PATCH")
        .uri(format!("{origin}/backend/me"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let patch = client.request(patch).await.unwrap();
    assert_eq!(patch.status(), 405);
    let mut big = get(format!("{origin}/backend/nf/create"), Some(at));
    big.method = Method::Post;
    big.body = Bytes::from(vec![b'x'; 4096]);
    let big = send(&client, &big).await.unwrap();
    assert_eq!(big.status, 413);
    assert_eq!(json(&big)["error"]["code"], "request_too_large");
    // Neither reached the simulator.
    assert_eq!(sim.with_sim(|s| s.requests().len()), 4);
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_tokens_work_when_enabled() {
    let config = SimConfig { seed: 99, accept_offline_tokens: true, ..SimConfig::fast() };
    let (sim, _) = serve(config);
    let client = http_client();
    let minted = sim_server::mint_token(99, Some("cli@example.com"), "chatgpt_plus");
    let me =
        send(&client, &get(format!("{}/backend/me", sim.origin()), Some(&minted.access_token)))
            .await
            .unwrap();
    assert_eq!(me.status, 200);
    assert_eq!(json(&me)["plan_type"], "chatgpt_plus");
    let foreign = sim_server::mint_token(98, None, "chatgpt_pro");
    let me =
        send(&client, &get(format!("{}/backend/me", sim.origin()), Some(&foreign.access_token)))
            .await
            .unwrap();
    assert_eq!(me.status, 401);
    sim.shutdown().await.unwrap();
}
