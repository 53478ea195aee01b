//! The real client (`crate::upstream` builders and decoders) against the simulator: every
//! call the gateway makes is accepted, and every reply decodes to what the client needs.

use bytes::Bytes;

use super::*;
use crate::catalog::{self, ExpansionLevel};
use crate::prompt::{GenerationId, RemixId, Storyboard};
use crate::request::{Media, MediaFormat};
use crate::secret::Secret;
use crate::upstream::{
    self, Auth, CameoProgress, DraftOutcome, FileUseCase, ImageTaskStatus, SentinelToken,
    UpstreamConfig, VideoPending, VideoSource,
};

struct Client {
    h: H,
    cfg: UpstreamConfig,
    auth: Auth,
    seed: u64,
}

impl Client {
    fn new(h: H) -> Self {
        let auth = Auth::new(Secret::new(h.at.clone()));
        Client { h, cfg: UpstreamConfig::at_origin("http://127.0.0.1:9"), auth, seed: 0 }
    }

    fn send(&mut self, req: &UpstreamRequest) -> UpstreamReply {
        ok(self.h.send(req))
    }

    /// The client's own sentinel exchange: `upstream::sentinel_req`, solve, build.
    fn sentinel(&mut self) -> SentinelToken {
        let id = self.h.device_id();
        let requirements =
            pow::solve(&PowChallenge::requirements("0.75"), &config()).requirements_token();
        let req = upstream::sentinel_req(&self.cfg, &requirements, &id, None);
        let reply = SentinelReply::parse(&self.send(&req).body).unwrap();
        let answer = reply.proof_of_work.as_ref().map(|c| pow::solve(c, &config()));
        let p = pow::header_proof(&requirements, answer.as_ref());
        SentinelToken::build(&p, &reply.turnstile_dx, &reply.token, &id, upstream::SENTINEL_FLOW)
    }

    fn boundary(&mut self) -> u64 {
        self.seed += 1;
        self.seed
    }

    /// Polls pending, then drafts, until the task's draft is final.
    fn await_video(&mut self, task: &str) -> DraftOutcome {
        for _ in 0..100 {
            let pending = self.send(&upstream::pending_v2(&self.cfg, &self.auth));
            if upstream::decode_pending(&pending, task).unwrap() == VideoPending::Absent {
                let drafts = self.send(&upstream::drafts_v2(&self.cfg, &self.auth, 15, None));
                match upstream::decode_drafts(&drafts).unwrap().find(task) {
                    DraftOutcome::NotYet | DraftOutcome::NoUrl => {}
                    outcome => return outcome,
                }
            }
            self.h.advance(3_000);
        }
        panic!("{task} never finished");
    }
}

#[test]
fn account_and_credential_calls() {
    let h = H::fast();
    let (st, rt, client_id) = (
        h.minted.session_token.clone().unwrap(),
        h.minted.refresh_token.clone().unwrap(),
        h.minted.client_id.clone(),
    );
    let mut c = Client::new(h);
    let me = upstream::decode_me(&c.send(&upstream::me(&c.cfg, &c.auth))).unwrap();
    assert_eq!(me.email.as_deref(), Some("pro@example.com"));
    let sub =
        upstream::decode_subscription(&c.send(&upstream::billing_subscriptions(&c.cfg, &c.auth)))
            .unwrap();
    assert!(sub.is_pro());
    assert!(sub.end_unix_ms.is_some());
    upstream::decode_invite(&c.send(&upstream::invite_mine(&c.cfg, &c.auth))).unwrap();
    c.send(&upstream::m_bootstrap(&c.cfg, &c.auth));
    let quota = upstream::decode_nf_check(&c.send(&upstream::nf_check(&c.cfg, &c.auth))).unwrap();
    assert_eq!((quota.remaining, quota.rate_limit_reached), (Some(30), false));
    assert_eq!(quota.resets_in_ms, Some(86_400_000));

    let session = upstream::decode_session(&c.send(&upstream::session_to_access(
        &c.cfg,
        &Secret::new(st),
        None,
    )))
    .unwrap();
    assert_eq!(session.email.as_deref(), Some("pro@example.com"));
    assert!(session.expires_unix_ms.is_some());
    let via_st = Auth::new(session.access_token);
    c.send(&upstream::me(&c.cfg, &via_st));

    let tokens = upstream::decode_oauth(&c.send(&upstream::refresh_to_access(
        &c.cfg,
        &Secret::new(rt),
        Some(&client_id),
        None,
    )))
    .unwrap();
    assert!(tokens.refresh_token.is_some());
    assert_eq!(tokens.expires_in_s, Some(864_000));
    let claims = upstream::jwt_claims(tokens.access_token.expose()).unwrap();
    assert_eq!(claims.email.as_deref(), Some("pro@example.com"));
    assert!(claims.exp_unix_ms.is_some());
    c.send(&upstream::me(&c.cfg, &Auth::new(tokens.access_token)));

    let enhanced = upstream::decode_enhance(&c.send(&upstream::enhance_prompt(
        &c.cfg,
        &c.auth,
        "a cat",
        ExpansionLevel::Long,
        15,
    )))
    .unwrap();
    assert!(enhanced.unwrap().starts_with("a cat."));
}

#[test]
fn images_text_and_remix() {
    let mut c = Client::new(H::observed());
    let spec = match catalog::model("gpt-image-landscape").unwrap().kind {
        catalog::ModelKind::Image(spec) => spec,
        _ => unreachable!(),
    };
    let media = Media { bytes: Bytes::from_static(media::PNG), format: MediaFormat::Png };
    let seed = c.boundary();
    let upload =
        upstream::decode_id(&c.send(&upstream::upload_image(&c.cfg, &c.auth, &media, seed)))
            .unwrap();
    for source in [None, Some(upload.as_str())] {
        let sentinel = c.sentinel();
        let req = upstream::image_gen(&c.cfg, &c.auth, &sentinel, "a fox", &spec, source);
        let task = upstream::decode_task_id(&c.send(&req)).unwrap();
        let poll = |c: &mut Client| {
            let reply = c.send(&upstream::recent_tasks(&c.cfg, &c.auth, 20));
            upstream::decode_recent_tasks(&reply, &task).unwrap()
        };
        assert!(matches!(poll(&mut c), ImageTaskStatus::Queued { progress_pct: None }));
        c.h.advance(6_000);
        assert!(
            matches!(poll(&mut c), ImageTaskStatus::Running { progress_pct: Some(p) } if p == 50.0)
        );
        c.h.advance(4_000);
        let ImageTaskStatus::Succeeded { urls } = poll(&mut c) else { panic!("not done") };
        assert_eq!(urls.len(), 1);
    }
}

#[test]
fn videos_every_kind() {
    let mut c = Client::new(H::observed());
    let media = Media { bytes: Bytes::from_static(media::PNG), format: MediaFormat::Png };
    let seed = c.boundary();
    let upload =
        upstream::decode_id(&c.send(&upstream::upload_image(&c.cfg, &c.auth, &media, seed)))
            .unwrap();
    let remix = RemixId::find(&c.h.sim.posts()[0]).unwrap();
    let style = catalog::style("anime");
    for model in ["sora2-landscape-10s", "sora2pro-hd-portrait-15s", "sora2pro-portrait-25s"] {
        let video = catalog::model(model).unwrap().video().unwrap();
        for source in [
            VideoSource::Text,
            VideoSource::Image { upload_id: &upload },
            VideoSource::Remix { target: &remix },
        ] {
            let sentinel = c.sentinel();
            let req =
                upstream::nf_create(&c.cfg, &c.auth, &sentinel, video, "a cat", source, style);
            let task = upstream::decode_task_id(&c.send(&req)).unwrap();
            assert!(matches!(c.await_video(&task), DraftOutcome::Ready { .. }));
        }
    }
    // Storyboard.
    let board =
        Storyboard::parse("A cat adventure\n[5.0s]cat jumps\n[5s]cat lands").unwrap().unwrap();
    let video = catalog::model("sora2-landscape-10s").unwrap().video().unwrap();
    let sentinel = c.sentinel();
    let req = upstream::nf_create_storyboard(&c.cfg, &c.auth, &sentinel, video, &board, None, None);
    let task = upstream::decode_task_id(&c.send(&req)).unwrap();
    let DraftOutcome::Ready { generation_id: Some(gen), .. } = c.await_video(&task) else {
        panic!("storyboard failed")
    };
    // Extension of that draft.
    let gen = GenerationId::find(&gen).unwrap();
    let sentinel = c.sentinel();
    let duration = upstream::ExtensionDuration::Fifteen;
    let req =
        upstream::long_video_extension(&c.cfg, &c.auth, &sentinel, &gen, "and it rains", duration);
    let task = upstream::decode_task_id(&c.send(&req)).unwrap();
    assert!(matches!(c.await_video(&task), DraftOutcome::Ready { .. }));
    // Legacy drafts decode the same.
    let legacy = c.send(&upstream::drafts(&c.cfg, &c.auth, 15, None));
    assert!(matches!(
        upstream::decode_drafts(&legacy).unwrap().find(&task),
        DraftOutcome::Ready { .. }
    ));
    // A policy violation is classified as one.
    let sentinel = c.sentinel();
    let video = catalog::model("sora2-portrait-10s").unwrap().video().unwrap();
    let req = upstream::nf_create(
        &c.cfg,
        &c.auth,
        &sentinel,
        video,
        "no #policy",
        VideoSource::Text,
        None,
    );
    let task = upstream::decode_task_id(&c.send(&req)).unwrap();
    assert!(matches!(c.await_video(&task), DraftOutcome::Violation { reason: Some(_) }));
    // Every sentinel call carried a device id equal to the sentinel id.
    for r in c.h.sim.requests().iter().filter(|r| r.is_sentinel_route()) {
        let token: Value =
            serde_json::from_str(r.header("openai-sentinel-token").unwrap()).unwrap();
        assert_eq!(Some(token["id"].as_str().unwrap()), r.header("oai-device-id"));
    }
}

#[test]
fn characters_end_to_end() {
    let mut c = Client::new(H::observed());
    let video = Media { bytes: Bytes::from_static(media::MP4), format: MediaFormat::Mp4 };
    let seed = c.boundary();
    let req = upstream::characters_upload(&c.cfg, &c.auth, &video, None, seed);
    let cameo = upstream::decode_id(&c.send(&req)).unwrap();
    let profile = loop {
        let reply = c.send(&upstream::cameo_in_progress(&c.cfg, &c.auth, &cameo));
        match upstream::decode_cameo_progress(&reply).unwrap() {
            CameoProgress::Processing => c.h.advance(5_000),
            CameoProgress::Ready(profile) => break profile,
            CameoProgress::Failed { message } => panic!("{message:?}"),
        }
    };
    let avatar_path = profile.profile_asset_url.trim_start_matches("http://127.0.0.1:8080");
    let avatar = c.send(&H::request(Method::Get, avatar_path, vec![], Bytes::new()));
    let image = Media { format: MediaFormat::sniff(&avatar.body).unwrap(), bytes: avatar.body };
    let seed = c.boundary();
    let req = upstream::file_upload(&c.cfg, &c.auth, &image, FileUseCase::Profile, seed);
    let pointer = upstream::decode_file_upload(&c.send(&req)).unwrap();
    let username = upstream::character_username(profile.username_hint.as_deref(), 123);
    let req = upstream::characters_finalize(
        &c.cfg,
        &c.auth,
        &cameo,
        &username,
        profile.display_name(),
        &pointer,
    );
    let character = upstream::decode_finalize(&c.send(&req)).unwrap();
    c.send(&upstream::cameo_update_v2(&c.cfg, &c.auth, &cameo));
    c.send(&upstream::delete_character(&c.cfg, &c.auth, &character));

    // From a generation, with fractional timestamps.
    let (_, gen) = c.h.finished_video("a dancer");
    let gen = GenerationId::find(&gen).unwrap();
    let stamps = crate::request::Timestamps { start_ms: 500, end_ms: 2_500 };
    let req = upstream::characters_from_generation(&c.cfg, &c.auth, &gen, Some(stamps));
    upstream::decode_id(&c.send(&req)).unwrap();
}

#[test]
fn error_replies_classify_as_the_client_expects() {
    use upstream::Class;
    let mut c = Client::new(H::fast());
    let video = catalog::model("sora2-landscape-10s").unwrap().video().unwrap();
    let create = |c: &mut Client, prompt: &str| {
        let sentinel = c.sentinel();
        let req =
            upstream::nf_create(&c.cfg, &c.auth, &sentinel, video, prompt, VideoSource::Text, None);
        c.h.send(&req)
    };
    let class = |r: SimResponse| match r {
        SimResponse::Reply(reply) => upstream::classify(&reply),
        SimResponse::Transport(e) => upstream::classify_transport(&e),
    };
    assert_eq!(class(create(&mut c, "x #fail=400")), Class::InvalidRequest);
    for prompt in [
        "x #fail=429",
        "x #fail=401",
        "x #fail=500",
        "x #heavy",
        "x #heavy=200",
        "x #cf",
        "x #country",
        "x #hang",
    ] {
        let got = class(create(&mut c, prompt));
        assert_ne!(got, Class::Ok, "{prompt}: {got:?}");
    }
    // 200 with HTML or broken JSON passes the status check and fails decoding.
    for prompt in ["x #html", "x #garbage"] {
        let SimResponse::Reply(reply) = create(&mut c, prompt) else { panic!("{prompt}") };
        assert!(upstream::decode_task_id(&reply).is_err(), "{prompt}");
    }
    let free = c.h.sim.add_account(AccountSpec::free("free@example.com"));
    let pro_video = catalog::model("sora2pro-landscape-10s").unwrap().video().unwrap();
    let sentinel = c.sentinel();
    let req = upstream::nf_create(
        &c.cfg,
        &Auth::new(Secret::new(free.access_token)),
        &sentinel,
        pro_video,
        "x",
        VideoSource::Text,
        None,
    );
    assert_ne!(class(c.h.send(&req)), Class::Ok);
}
