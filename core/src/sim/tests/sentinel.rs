//! `sentinel/req` and the verifier of spec 3.6.

use serde_json::json;

use super::*;

const CREATE: &str = "/backend/nf/create";

fn create_with(h: &mut H, sentinel: Option<&str>, device: Option<&str>) -> SimResponse {
    let at = h.at.clone();
    h.post_with(&at, CREATE, &video_body("sentinel test"), sentinel, device)
}

#[test]
fn sentinel_req_answers_a_challenge() {
    let mut h = H::observed();
    let id = h.device_id();
    let requirements =
        pow::solve(&PowChallenge::requirements("0.5"), &config()).requirements_token();
    let req = H::request(
        Method::Post,
        "/backend-api/sentinel/req",
        vec![],
        pow::sentinel_req_body(&requirements, &id),
    );
    let body = json_of(&ok(h.send(&req)));
    assert!(body["token"].as_str().unwrap().starts_with("gAAAAAB"));
    assert!(!body["turnstile"]["dx"].as_str().unwrap().is_empty());
    assert_eq!(body["proofofwork"]["required"], true);
    assert_eq!(body["proofofwork"]["difficulty"], "0fffff");
    assert!(body["proofofwork"]["seed"].as_str().unwrap().parse::<f64>().is_ok());
    assert_eq!(body["expire_after"], 540);
    // GO's JSON flavour with a bearer works too.
    let mut headers = H::bearer(&h.at.clone());
    headers.push(("content-type".into(), "application/json".into()));
    let go = json!({"p": requirements, "flow": "sora_2_create_task", "id": id}).to_string();
    ok(h.send(&H::request(Method::Post, "/backend-api/sentinel/req", headers, go)));
}

#[test]
fn sentinel_req_rejects_malformed_bodies() {
    let mut h = H::fast();
    let requirements =
        pow::solve(&PowChallenge::requirements("0.5"), &config()).requirements_token();
    let id = h.device_id();
    for body in [
        String::new(),
        "not json".into(),
        json!({"id": id, "flow": "sora_init"}).to_string(),
        json!({"p": requirements, "flow": "sora_init"}).to_string(),
        json!({"p": requirements, "id": id}).to_string(),
        json!({"p": requirements, "id": "not-a-uuid", "flow": "sora_init"}).to_string(),
        json!({"p": "gAAAAABwrongprefix", "id": id, "flow": "sora_init"}).to_string(),
        json!({"p": "gAAAAACbm90IGFuIGFycmF5", "id": id, "flow": "sora_init"}).to_string(),
    ] {
        let req = H::request(Method::Post, "/backend-api/sentinel/req", vec![], body.clone());
        assert_invalid_request(h.send(&req));
    }
}

#[test]
fn a_valid_sentinel_is_accepted_at_real_difficulty() {
    let mut h = H::observed();
    let (sentinel, device) = h.sentinel();
    ok(create_with(&mut h, Some(&sentinel), Some(&device)));
    // Reusable by default (PY's browser path caches tokens).
    ok(create_with(&mut h, Some(&sentinel), Some(&device)));
    assert_eq!(h.sim.creates(), 2);
}

#[test]
fn missing_or_malformed_header_is_invalid_request() {
    let mut h = H::fast();
    let (sentinel, device) = h.sentinel();
    assert_invalid_request(create_with(&mut h, None, Some(&device)));
    assert_invalid_request(create_with(&mut h, Some("not json"), Some(&device)));
    let mut obj: Value = serde_json::from_str(&sentinel).unwrap();
    obj.as_object_mut().unwrap().remove("t");
    assert_invalid_request(create_with(&mut h, Some(&obj.to_string()), Some(&device)));
    let mut obj: Value = serde_json::from_str(&sentinel).unwrap();
    obj["c"] = json!(5);
    assert_invalid_request(create_with(&mut h, Some(&obj.to_string()), Some(&device)));
    assert_eq!(h.sim.creates(), 0);
}

#[test]
fn unknown_token_is_invalid_request() {
    let mut h = H::fast();
    let (sentinel, device) = h.sentinel();
    let mut obj: Value = serde_json::from_str(&sentinel).unwrap();
    obj["c"] = json!("gAAAAABnot-issued");
    assert_invalid_request(create_with(&mut h, Some(&obj.to_string()), Some(&device)));
}

#[test]
fn expired_token_is_invalid_request() {
    let mut h = H::with(SimConfig { sentinel_ttl_ms: 10_000, ..SimConfig::fast() });
    let (sentinel, device) = h.sentinel();
    h.advance(9_999);
    ok(create_with(&mut h, Some(&sentinel), Some(&device)));
    h.advance(1);
    assert_invalid_request(create_with(&mut h, Some(&sentinel), Some(&device)));
}

#[test]
fn single_use_tokens() {
    let mut h = H::with(SimConfig { sentinel_single_use: true, ..SimConfig::fast() });
    let (sentinel, device) = h.sentinel();
    ok(create_with(&mut h, Some(&sentinel), Some(&device)));
    assert_invalid_request(create_with(&mut h, Some(&sentinel), Some(&device)));
}

#[test]
fn wrong_proof_is_invalid_request() {
    // A difficulty no unsolved answer meets by chance.
    let mut h = H::with(SimConfig { pow_difficulty: "0000ff".into(), ..SimConfig::fast() });
    let id = h.device_id();
    let reply = h.sentinel_reply(None, &id);
    let challenge = reply.proof_of_work.clone().unwrap();
    // The requirements token reused (gAAAAAC) is refused when a proof is required.
    let requirements =
        pow::solve(&PowChallenge::requirements("0.25"), &config()).requirements_token();
    let reused =
        SentinelHeader::new(&requirements, &reply, &id, pow::FLOW_CREATE_TASK_AUTO).render();
    assert_invalid_request(create_with(&mut h, Some(&reused), Some(&id)));
    // An answer for another seed fails the hash check.
    let other = pow::solve(&PowChallenge::new("0.123", "0000ff").unwrap(), &config());
    let wrong =
        SentinelHeader::new(&other.proof_token(), &reply, &id, pow::FLOW_CREATE_TASK_AUTO).render();
    if !challenge.accepts_hash(&challenge.hash(other.as_str())) {
        assert_invalid_request(create_with(&mut h, Some(&wrong), Some(&id)));
    }
    // The fallback answer is sent but refused.
    let fallback = SentinelHeader::new(
        &pow::PowAnswer::fallback(challenge.seed()).proof_token(),
        &reply,
        &id,
        pow::FLOW_CREATE_TASK_AUTO,
    )
    .render();
    assert_invalid_request(create_with(&mut h, Some(&fallback), Some(&id)));
    // Missing the ~S suffix.
    let good = pow::solve(&challenge, &config());
    let mut header =
        SentinelHeader::new(&good.proof_token(), &reply, &id, pow::FLOW_CREATE_TASK_AUTO);
    header.p = header.p.trim_end_matches("~S").to_owned();
    assert_invalid_request(create_with(&mut h, Some(&header.render()), Some(&id)));
    // And the right one passes.
    let right =
        SentinelHeader::new(&good.proof_token(), &reply, &id, pow::FLOW_CREATE_TASK_AUTO).render();
    ok(create_with(&mut h, Some(&right), Some(&id)));
}

#[test]
fn wrong_flow_is_invalid_request() {
    let mut h = H::fast();
    let id = h.device_id();
    let reply = h.sentinel_reply(None, &id);
    let p = pow::solve(reply.proof_of_work.as_ref().unwrap(), &config()).proof_token();
    let bad = SentinelHeader::new(&p, &reply, &id, "sora_init").render();
    assert_invalid_request(create_with(&mut h, Some(&bad), Some(&id)));
    let old = SentinelHeader::new(&p, &reply, &id, pow::FLOW_CREATE_TASK).render();
    ok(create_with(&mut h, Some(&old), Some(&id)));
}

#[test]
fn strict_device_id() {
    let mut h = H::fast();
    let (sentinel, device) = h.sentinel();
    assert_invalid_request(create_with(&mut h, Some(&sentinel), None));
    let other = h.device_id();
    assert_invalid_request(create_with(&mut h, Some(&sentinel), Some(&other)));
    // The header id must be the one sent to sentinel/req.
    let mut obj: Value = serde_json::from_str(&sentinel).unwrap();
    obj["id"] = json!(other);
    assert_invalid_request(create_with(&mut h, Some(&obj.to_string()), Some(&other)));
    ok(create_with(&mut h, Some(&sentinel), Some(&device)));
}

#[test]
fn lax_device_id_accepts_go_style_creates() {
    let mut h = H::with(SimConfig { strict_device_id: false, ..SimConfig::fast() });
    let (sentinel, _) = h.sentinel();
    ok(create_with(&mut h, Some(&sentinel), None));
}

#[test]
fn tokens_bound_to_an_account() {
    let mut h = H::fast();
    let other = h.sim.add_account(AccountSpec::pro("other@example.com"));
    let id = h.device_id();
    let reply = h.sentinel_reply(Some(&other.access_token), &id);
    let header = header_for(&reply, &id);
    assert_invalid_request(create_with(&mut h, Some(&header), Some(&id)));
    ok(h.post_with(&other.access_token, CREATE, &video_body("mine"), Some(&header), Some(&id)));
}

#[test]
fn proof_not_required_accepts_the_requirements_token() {
    let mut h = H::with(SimConfig { pow_required: false, ..SimConfig::fast() });
    let id = h.device_id();
    let reply = h.sentinel_reply(None, &id);
    assert!(reply.proof_of_work.is_none());
    let header = header_for(&reply, &id);
    assert!(header.contains("gAAAAAC"), "{header}");
    ok(create_with(&mut h, Some(&header), Some(&id)));
    // Still structurally checked.
    let junk =
        SentinelHeader::new("gAAAAACjunk~S", &reply, &id, pow::FLOW_CREATE_TASK_AUTO).render();
    assert_invalid_request(create_with(&mut h, Some(&junk), Some(&id)));
}

#[test]
fn forced_rejection_on_the_nth_attempt() {
    let mut h = H::with(SimConfig { reject_sentinel_on_attempts: vec![1], ..SimConfig::fast() });
    assert_invalid_request(h.create(CREATE, &video_body("first")));
    ok(h.create(CREATE, &video_body("first")));
    assert_eq!(h.sim.creates(), 1);
}

#[test]
fn every_sentinel_route_checks_and_polls_do_not() {
    let mut h = H::fast();
    let (_, gen) = h.finished_video("source");
    let routes = [
        ("/backend/video_gen", image_body("img")),
        ("/backend/nf/create", video_body("v")),
        ("/backend/nf/create/storyboard", video_body("Shot 1:\nduration: 5sec\nScene: s")),
        (
            &*format!("/backend/project_y/profile/drafts/{gen}/long_video_extension"),
            json!({"user_prompt":"more","extension_duration_s":10}),
        ),
        (
            "/backend/project_y/post",
            json!({"attachments_to_create":[{"generation_id": gen, "kind":"sora"}],"post_text":""}),
        ),
    ];
    for (path, body) in &routes {
        assert_invalid_request(h.post(path, body));
        ok(h.create(path, body));
    }
    // Polls without any sentinel or device id.
    for path in [
        "/backend/nf/pending/v2",
        "/backend/v2/recent_tasks?limit=20",
        "/backend/project_y/profile/drafts/v2?limit=15",
    ] {
        ok(h.get(path));
    }
    for r in h.sim.requests() {
        assert_eq!(
            r.header("openai-sentinel-token").is_some() && r.status == Some(200),
            r.is_sentinel_route() && r.status == Some(200),
            "{}",
            r.path()
        );
    }
}
