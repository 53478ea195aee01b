//! Every flow end to end against the simulated backend, on virtual time (no sleeps, no
//! sockets). The harness is a miniature of the shell's driver: the pool grants leases, the
//! simulator answers requests, the real solver does the proof of work.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::harness::{cfg, World, SIM, START_MS};
use super::*;
use crate::sim::{AccountSpec, Sim, SimConfig};
use crate::translate::{self, Endpoint, Limits};
use crate::upstream::Method;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake png";
const MP4: &[u8] = b"\0\0\0\x18ftypmp42 fake mp4";

fn dedicated(endpoint: Endpoint, body: serde_json::Value) -> GenerationRequest {
    translate::dedicated(endpoint, body.to_string().as_bytes(), &Limits::default()).unwrap().request
}

fn chat(model: &str, prompt: &str) -> GenerationRequest {
    let body =
        serde_json::json!({"model": model, "messages": [{"role": "user", "content": prompt}]});
    translate::chat(body.to_string().as_bytes(), &Limits::default()).unwrap().request
}

fn task(request: GenerationRequest) -> Generation {
    Generation::new(START_MS, TaskId::new(START_MS, 42), request, cfg(), 0x5eed)
}

/// Runs a task to its end; the driver never feeds an input the machine refuses.
fn run(world: &mut World, g: &mut Generation) {
    world.run(g);
    assert!(!world.stalled, "the task did not finish: {:?}", world.events);
    assert!(world.input_errors.is_empty(), "refused inputs: {:?}", world.input_errors);
    assert!(g.is_finished());
}

fn one_account() -> World {
    World::new(&[AccountSpec::pro("pro@example.com")])
}

/// The request log entries on a path, by method.
fn logged(world: &World, method: Method, path_prefix: &str) -> usize {
    world
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path().starts_with(path_prefix))
        .count()
}

#[test]
fn text_to_image_completes() {
    let mut world = one_account();
    let mut g = task(dedicated(Endpoint::ImagesGenerate, serde_json::json!({"prompt": "A cat"})));
    run(&mut world, &mut g);
    assert!(
        matches!(world.completed(), Some(TaskResult::Images(urls)) if !urls.is_empty()),
        "{:?}",
        world.events
    );
    assert!(matches!(
        world.events.first(),
        Some(Event::Started(Flow::Generation { with_image: false }))
    ));
    assert_eq!(world.sim.creates(), 1);
    assert_eq!(world.releases, vec![Outcome::Success]);
    assert_eq!(world.pool.total_in_flight(), 0);
    assert_eq!(g.progress(), 100.0);
    assert!(g.is_finished());
}

#[test]
fn every_flow_completes() {
    // The strict simulator remixes only posts that exist.
    let remix = one_account().sim.posts().first().cloned().expect("the simulator seeds posts");
    let cases: Vec<(&str, GenerationRequest)> = vec![
        (
            "image to image",
            dedicated(
                Endpoint::ImagesTransform,
                serde_json::json!({"prompt": "blue", "image": B64.encode(PNG)}),
            ),
        ),
        (
            "text to video",
            dedicated(
                Endpoint::VideosGenerate,
                serde_json::json!({"prompt": "A cat running", "style": "anime"}),
            ),
        ),
        (
            "image to video",
            dedicated(
                Endpoint::VideosTransform,
                serde_json::json!({"prompt": "go", "image": B64.encode(PNG)}),
            ),
        ),
        (
            "remix",
            dedicated(
                Endpoint::VideosRemix,
                serde_json::json!({"prompt": "rain", "remix_target_id": remix}),
            ),
        ),
        (
            "storyboard",
            dedicated(
                Endpoint::VideosStoryboard,
                serde_json::json!({"prompt": "[5s]cat jumps [5s]cat lands"}),
            ),
        ),
        ("pro hd", chat("sora2pro-hd-landscape-15s", "A cat in HD")),
        ("enhance", chat("prompt-enhance-short-10s", "a cat")),
        (
            "character",
            dedicated(Endpoint::CharactersCreate, serde_json::json!({"video": B64.encode(MP4)})),
        ),
        (
            "character video",
            dedicated(
                Endpoint::CharactersGenerate,
                serde_json::json!({"prompt": "dances", "video": B64.encode(MP4)}),
            ),
        ),
    ];
    for (name, request) in cases {
        let mut world = one_account();
        let kind = request.operation.task_kind();
        let mut g = task(request);
        run(&mut world, &mut g);
        let result = world.completed().unwrap_or_else(|| panic!("{name}: {:?}", world.events));
        match (kind, result) {
            (TaskKind::Image, TaskResult::Images(urls))
            | (TaskKind::Video, TaskResult::Videos(urls)) => {
                assert!(!urls.is_empty(), "{name}")
            }
            (TaskKind::Character, TaskResult::Character(card)) => {
                assert!(
                    !card.username.is_empty() && !card.character_id.is_empty(),
                    "{name}: {card:?}"
                )
            }
            (TaskKind::Enhance, TaskResult::EnhancedPrompt(text)) => {
                assert!(!text.is_empty(), "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(world.releases, vec![Outcome::Success], "{name}: one lease, released once");
        assert_eq!(world.pool.total_in_flight(), 0, "{name}");
        assert!(world.sim.creates() <= 1, "{name}: never resubmitted");
    }
}

#[test]
fn character_video_deletes_its_character_before_the_end() {
    let mut world = one_account();
    let mut g = task(dedicated(
        Endpoint::CharactersGenerate,
        serde_json::json!({"prompt": "dances", "video": B64.encode(MP4)}),
    ));
    run(&mut world, &mut g);
    assert!(matches!(world.completed(), Some(TaskResult::Videos(_))));
    assert_eq!(logged(&world, Method::Delete, "/backend/project_y/characters/"), 1);
    let cleanup =
        world.events.iter().position(|e| *e == Event::Character(CharacterStepRef::CleaningUp));
    let end = world.events.iter().position(Event::is_terminal);
    assert!(cleanup < end, "cleanup is announced before the result");
    let create = world.sim.requests().iter().find(|r| r.path() == "/backend/nf/create").unwrap();
    let body: serde_json::Value = serde_json::from_slice(&create.body).unwrap();
    assert!(body["prompt"].as_str().unwrap().starts_with('@'), "{body}");
}

use crate::task::CharacterStep as CharacterStepRef;

#[test]
fn sentinel_only_on_creates_and_device_id_matches() {
    let mut world = one_account();
    let mut g = task(dedicated(Endpoint::VideosGenerate, serde_json::json!({"prompt": "A cat"})));
    run(&mut world, &mut g);
    assert!(world.completed().is_some());
    let mut creates = 0;
    for r in world.sim.requests() {
        let sentinel = r.header("openai-sentinel-token");
        if r.path() == "/backend/nf/create" {
            creates += 1;
            let header: serde_json::Value = serde_json::from_str(sentinel.unwrap()).unwrap();
            assert_eq!(r.header("oai-device-id"), header["id"].as_str());
        } else {
            assert!(sentinel.is_none(), "{} carries a sentinel", r.path());
        }
    }
    assert_eq!(creates, 1);
}

#[test]
fn content_violation_is_not_retried_nor_held_against_the_token() {
    for request in
        [chat("sora2-landscape-10s", "A cat #policy"), chat("gpt-image", "A cat #policy")]
    {
        let mut world = one_account();
        let mut g = task(request);
        run(&mut world, &mut g);
        assert!(
            matches!(world.terminal(), Some(Event::ContentViolation { .. })),
            "{:?}",
            world.events
        );
        assert_eq!(world.sim.creates(), 1);
        assert_eq!(world.releases, vec![Outcome::ContentViolation]);
    }
}

#[test]
fn rate_limit_rotates_to_another_token() {
    let mut world =
        World::new(&[AccountSpec::pro("a@example.com"), AccountSpec::pro("b@example.com")]);
    let mut g = task(chat("sora2-landscape-10s", "A cat #fail=429"));
    run(&mut world, &mut g);
    assert!(world.completed().is_some(), "{:?}", world.events);
    assert!(
        matches!(world.releases.as_slice(), [Outcome::RateLimited { .. }, Outcome::Success]),
        "{:?}",
        world.releases
    );
    assert!(world.events.iter().any(|e| matches!(e, Event::Retrying { attempt: 1, .. })));
    assert_eq!(world.pool.total_in_flight(), 0);
}

#[test]
fn unauthorised_token_is_refreshed_then_succeeds() {
    let mut world = World::new(&[AccountSpec {
        with_refresh_token: true,
        ..AccountSpec::pro("a@example.com")
    }]);
    let mut g = task(chat("sora2-landscape-10s", "A cat #fail=401"));
    run(&mut world, &mut g);
    assert!(world.completed().is_some(), "{:?}", world.events);
    assert_eq!(logged(&world, Method::Post, "/oauth/token"), 1);
    assert_eq!(world.releases, vec![Outcome::Success]);
}

#[test]
fn stale_sentinel_is_refreshed_once() {
    let mut world = one_account();
    let mut g = task(chat("sora2-landscape-10s", "A cat #fail=400"));
    run(&mut world, &mut g);
    assert!(world.completed().is_some(), "{:?}", world.events);
    assert_eq!(logged(&world, Method::Post, "/backend-api/sentinel/req"), 2);
    assert_eq!(world.releases, vec![Outcome::Success]);
}

#[test]
fn retries_end_after_max_attempts_with_the_reason() {
    // Two tokens in round robin: each fails twice, neither reaches the disable threshold.
    let mut world =
        World::new(&[AccountSpec::pro("a@example.com"), AccountSpec::pro("b@example.com")]);
    let mut g = task(chat("sora2-landscape-10s", "A cat #fail=500x9"));
    run(&mut world, &mut g);
    match world.terminal() {
        Some(Event::Failed(error)) => {
            assert_eq!(
                error.message(),
                "Upstream generation failed: Upstream temporarily unavailable (status 500)"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        world.releases,
        vec![Outcome::Failure; 4],
        "1 attempt + 3 retries, each lease released once"
    );
    assert_eq!(world.pool.total_in_flight(), 0);
    assert_eq!(world.sim.creates(), 0);
}

#[test]
fn consecutive_failures_disable_the_token_and_the_task_keeps_the_reason() {
    let mut world = one_account();
    let mut g = task(chat("sora2-landscape-10s", "A cat #fail=500x9"));
    run(&mut world, &mut g);
    assert_eq!(world.releases, vec![Outcome::Failure; 3]);
    let state = world.pool.records().next().map(|r| r.state);
    assert_eq!(
        state,
        Some(crate::pool::TokenState::Disabled(crate::pool::DisableReason::ErrorLimit))
    );
    match world.terminal() {
        Some(Event::Failed(error)) => assert!(error.message().contains("status 500"), "{error}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_token_fails_with_the_exact_message() {
    let mut world = World::new(&[AccountSpec::free("free@example.com")]);
    let mut g = task(chat("sora2pro-landscape-10s", "A cat"));
    run(&mut world, &mut g);
    match world.terminal() {
        Some(Event::Failed(error)) => assert_eq!(
            error.message(),
            "No available Pro tokens. Pro models require a ChatGPT Pro subscription."
        ),
        other => panic!("{other:?}"),
    }
    assert!(world.releases.is_empty());
}

#[test]
fn deadline_fails_a_task_that_never_finishes() {
    let mut world = one_account();
    let mut g = task(chat("gpt-image", "A cat #queue=100000"));
    run(&mut world, &mut g);
    assert!(
        matches!(world.terminal(), Some(Event::Failed(Error::Timeout { seconds: 300 }))),
        "{:?}",
        world.terminal()
    );
    assert_eq!(
        world.sim.creates(),
        1,
        "an accepted task is never resubmitted after a timeout (B10)"
    );
    assert_eq!(world.pool.total_in_flight(), 0);
}

#[test]
fn cancel_releases_once_and_sends_nothing_more() {
    let mut world = one_account();
    let mut g = task(chat("sora2-landscape-10s", "A cat #queue=50"));
    let mut polls = 0;
    world.run_until(&mut g, |o, _| {
        if matches!(o, Output::Send(_, r) if r.url.contains("pending")) {
            polls += 1;
        }
        polls == 2
    });
    let sent = world.sim.requests().len();
    g.cancel(world.now);
    run(&mut world, &mut g);
    assert_eq!(world.sim.requests().len(), sent, "nothing is sent after cancel");
    assert_eq!(world.releases, vec![Outcome::Abandoned]);
    assert!(matches!(world.terminal(), Some(Event::Failed(Error::Cancelled))));
    assert_eq!(world.pool.total_in_flight(), 0);
}

#[test]
fn resume_from_every_checkpoint_creates_exactly_once() {
    let requests = [
        chat("sora2-landscape-10s", "A cat"),
        chat("gpt-image", "A cat"),
        dedicated(Endpoint::CharactersCreate, serde_json::json!({"video": B64.encode(MP4)})),
    ];
    for request in requests {
        // How many checkpoints does an uninterrupted run persist?
        let mut world = one_account();
        let mut g = task(request.clone());
        run(&mut world, &mut g);
        let total = world.checkpoints.len();
        assert!(total >= 2, "{:?}", request.operation.name());
        for k in 1..=total {
            let mut world = one_account();
            let mut g = task(request.clone());
            let mut seen = 0;
            world.run_until(&mut g, |o, _| {
                if matches!(o, Output::Persist) {
                    seen += 1;
                }
                seen == k
            });
            let checkpoint =
                Checkpoint::from_json(&world.checkpoints.last().unwrap().to_json()).unwrap();
            // The process dies here: the old machine and its lease are gone.
            drop(g);
            world.crash();
            let mut resumed = Generation::resume(
                world.now,
                TaskId::new(START_MS, 42),
                request.clone(),
                cfg(),
                checkpoint,
            );
            run(&mut world, &mut resumed);
            assert!(
                world.completed().is_some(),
                "{} resumed at checkpoint {k}: {:?}",
                request.operation.name(),
                world.events
            );
            let creates = world.sim.creates();
            let expected =
                usize::from(!matches!(request.operation, Operation::CharacterCreate { .. }));
            assert_eq!(
                creates,
                expected,
                "{} resumed at checkpoint {k}: exactly one create",
                request.operation.name()
            );
            assert_eq!(world.pool.total_in_flight(), 0);
        }
    }
}

#[test]
fn stray_inputs_are_errors_and_a_stray_lease_is_released() {
    let mut world = one_account();
    let mut g = task(chat("gpt-image", "A cat"));
    assert_eq!(
        g.handle_input(world.now, Input::Refreshed(None)),
        Err(InputError::Unexpected("Refreshed while not refreshing"))
    );
    assert_eq!(
        g.handle_input(world.now, Input::Reply(RequestId(99), UpstreamReply::json(200, "{}"))),
        Err(InputError::UnknownRequest(RequestId(99)))
    );
    let decision = world.pool.request(
        world.now,
        9,
        LeaseRequest { work: Work::Image, pro: false, token: None },
        1,
    );
    let crate::pool::Decision::Granted(lease) = decision else { panic!("{decision:?}") };
    assert_eq!(g.handle_input(world.now, Input::Leased(lease)), Err(InputError::UnexpectedLease));
    assert!(matches!(g.poll_output(world.now), Output::Release(_, Outcome::Abandoned)));
}

#[test]
fn extension_of_a_finished_video_completes() {
    let mut world = one_account();
    let mut first = task(chat("sora2-landscape-10s", "A cat"));
    run(&mut world, &mut first);
    assert!(world.completed().is_some());
    // The finished video's generation id, as a client would copy it from its drafts.
    let token = world.pool.records().next().map(|r| r.access_token.clone()).unwrap();
    let request = crate::upstream::drafts_v2(
        &UpstreamConfig::at_origin(SIM),
        &crate::upstream::Auth::new(token),
        15,
        None,
    );
    let page = crate::upstream::decode_drafts(&world.send(&request).unwrap()).unwrap();
    let generation = page.items.first().and_then(|d| d.id.clone()).unwrap();
    world.events.clear();
    world.releases.clear();
    let mut g = Generation::new(
        world.now,
        TaskId::new(world.now, 43),
        chat("sora2-extension-10s", &format!("{generation} meteor shower")),
        cfg(),
        9,
    );
    run(&mut world, &mut g);
    assert!(matches!(world.completed(), Some(TaskResult::Videos(_))), "{:?}", world.events);
    assert_eq!(world.sim.creates(), 2);
    assert!(world.events.contains(&Event::Submitting));
    assert_eq!(world.releases, vec![Outcome::Success]);
}

/// Every failure class on a create, and what it does to the token (decisions 15).
#[test]
fn failure_classes_and_their_effect_on_the_token() {
    use crate::pool::{DisableReason, TokenState};
    type Check = fn(&Outcome) -> bool;
    let cases: [(&str, Check, Option<TokenState>); 7] = [
        (
            "#fail=429",
            |o| matches!(o, Outcome::RateLimited { retry_after_ms: 30_000 }),
            Some(TokenState::CoolingDown { until_ms: 0 }),
        ),
        ("#heavy", |o| *o == Outcome::HeavyLoad, Some(TokenState::Active)),
        (
            "#cf",
            |o| matches!(o, Outcome::Cloudflare { .. }),
            Some(TokenState::CoolingDown { until_ms: 0 }),
        ),
        (
            "#country",
            |o| *o == Outcome::CountryUnsupported,
            Some(TokenState::Disabled(DisableReason::Country)),
        ),
        ("#fail=503", |o| *o == Outcome::Failure, Some(TokenState::Active)),
        ("#hang", |o| *o == Outcome::Failure, Some(TokenState::Active)),
        ("#garbage", |o| *o == Outcome::Failure, Some(TokenState::Active)),
    ];
    for (marker, first_outcome, first_token_state) in cases {
        let mut world =
            World::new(&[AccountSpec::pro("a@example.com"), AccountSpec::pro("b@example.com")]);
        // Its own egress, so a Cloudflare cooldown of the first token's egress spares it.
        world.pool.update(TokenId(2), |r| r.proxy_url = Some("socks5://egress-b:1080".into()));
        let mut g = task(chat("sora2-landscape-10s", &format!("A cat {marker}")));
        run(&mut world, &mut g);
        assert!(
            world.completed().is_some(),
            "{marker}: recovers on the other token: {:?}",
            world.events
        );
        assert!(first_outcome(&world.releases[0]), "{marker}: {:?}", world.releases);
        assert_eq!(world.releases.last(), Some(&Outcome::Success), "{marker}");
        assert_eq!(world.sim.creates(), 1, "{marker}");
        let first = world.pool.records().next().map(|r| r.state);
        match (first, first_token_state) {
            (Some(TokenState::CoolingDown { until_ms }), Some(TokenState::CoolingDown { .. })) => {
                assert!(until_ms > START_MS, "{marker}: cooldown in the future")
            }
            (got, want) => assert_eq!(got, want, "{marker}"),
        }
        assert_eq!(world.pool.total_in_flight(), 0, "{marker}");
    }
}

#[test]
fn quota_exhaustion_waits_and_recovers_by_itself() {
    let spec = AccountSpec { quota: 1, quota_reset_s: 600, ..AccountSpec::pro("a@example.com") };
    let mut world = World::new(&[spec]);
    let mut first = task(chat("sora2-landscape-10s", "A cat"));
    run(&mut world, &mut first);
    assert!(world.completed().is_some());

    // The quota is spent: the create is refused, the token waits for the reset, and with no
    // other token the task fails with the reason instead of hanging.
    world.events.clear();
    world.releases.clear();
    let mut second = Generation::new(
        world.now,
        TaskId::new(world.now, 2),
        chat("sora2-landscape-10s", "A dog"),
        cfg(),
        3,
    );
    run(&mut world, &mut second);
    assert!(matches!(world.terminal(), Some(Event::Failed(_))), "{:?}", world.events);
    assert!(
        matches!(
            world.releases.first(),
            Some(Outcome::RateLimited { .. } | Outcome::QuotaExhausted { .. })
        ),
        "{:?}",
        world.releases
    );
    assert_eq!(world.sim.creates(), 1);

    // After the reset the same token works again, with no admin action (B6).
    world.now += 601_000;
    world.events.clear();
    world.releases.clear();
    let mut third = Generation::new(
        world.now,
        TaskId::new(world.now, 3),
        chat("sora2-landscape-10s", "A bird"),
        cfg(),
        4,
    );
    run(&mut world, &mut third);
    assert!(world.completed().is_some(), "{:?}", world.events);
    assert_eq!(world.releases, vec![Outcome::Success]);
    assert_eq!(world.sim.creates(), 2);
}

/// Regression (found by the machine fuzz target): a cancel that arrives while a request is
/// still queued behind an event must drop the request, not send it after the end.
#[test]
fn cancel_drops_a_request_queued_behind_an_event() {
    let mut world = one_account();
    let mut g =
        task(dedicated(Endpoint::CharactersCreate, serde_json::json!({"video": B64.encode(MP4)})));
    world.run_until(&mut g, |o, _| {
        matches!(o, Output::Event(Event::Character(CharacterStepRef::UploadingVideo)))
    });
    let sent = world.sim.requests().len();
    g.cancel(world.now);
    run(&mut world, &mut g);
    assert_eq!(world.sim.requests().len(), sent, "the queued upload was not sent");
    assert!(matches!(world.terminal(), Some(Event::Failed(Error::Cancelled))));
    assert_eq!(world.pool.total_in_flight(), 0);
}

/// The fuzz target's driver over a few operation sequences: steps, cancels, crashes with
/// resume, time jumps, under several faults.
#[test]
fn operation_sequences_keep_the_invariants() {
    let sequences: [&[u8]; 6] = [
        &[2, 0, 0, 0x04, 0x02, 0x08, 0x06, 0x0c, 0x42, 0x00],
        &[7, 12, 9, 0x10, 0x06, 0x0a, 0x02, 0x14],
        &[4, 2, 8, 0x0c, 0x0e, 0x02, 0x10],
        &[8, 5, 2, 0x40, 0x41, 0x02, 0x45],
        &[1, 13, 1, 0x08, 0x02, 0x02, 0x02],
        &[0, 6, 2, 0x03, 0x07, 0x0b],
    ];
    for data in sequences {
        super::harness::check_ops(data);
    }
}

#[test]
fn sentinels_are_reused_from_the_cache_across_tasks() {
    let mut world = one_account();
    for (i, prompt) in ["A cat", "A dog", "A bird"].into_iter().enumerate() {
        let mut g = Generation::new(
            world.now,
            TaskId::new(world.now, i as u128),
            chat("sora2-landscape-10s", prompt),
            cfg(),
            i as u64 + 1,
        );
        run(&mut world, &mut g);
        assert!(world.completed().is_some());
    }
    assert_eq!(world.sim.creates(), 3);
    assert_eq!(
        logged(&world, Method::Post, "/backend-api/sentinel/req"),
        1,
        "one sentinel for three creates"
    );
}

#[test]
fn a_stale_cached_sentinel_is_dropped_and_fetched_again() {
    let mut world = one_account();
    world.sim =
        Sim::new(SimConfig { start_ms: START_MS, sentinel_single_use: true, ..SimConfig::fast() });
    let minted = world.sim.add_account(AccountSpec::pro("pro@example.com"));
    world
        .pool
        .update(TokenId(1), |r| r.access_token = crate::secret::Secret::new(minted.access_token));
    for (i, prompt) in ["A cat", "A dog"].into_iter().enumerate() {
        let mut g = Generation::new(
            world.now,
            TaskId::new(world.now, i as u128),
            chat("sora2-landscape-10s", prompt),
            cfg(),
            i as u64 + 1,
        );
        run(&mut world, &mut g);
        assert!(world.completed().is_some(), "{:?}", world.events);
    }
    assert_eq!(world.sim.creates(), 2);
    // The second task tried the cached (spent) sentinel, was told it is stale, fetched anew.
    assert_eq!(logged(&world, Method::Post, "/backend-api/sentinel/req"), 2);
    assert_eq!(logged(&world, Method::Post, "/backend/nf/create"), 3);
    assert_eq!(world.sentinels.len(), 1);
}

#[test]
fn a_video_url_that_cannot_be_fetched_is_a_client_error() {
    let mut world = one_account();
    let url = format!("{SIM}/media/missing.mp4");
    let mut g = task(dedicated(Endpoint::CharactersCreate, serde_json::json!({"video": url})));
    run(&mut world, &mut g);
    match world.terminal() {
        Some(Event::Failed(error)) => {
            assert_eq!((error.status(), error.param()), (400, Some("video")));
            assert!(error.message().starts_with("the video URL could not be fetched: "), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(world.releases, vec![Outcome::Abandoned], "no retry, no penalty for the token");
    assert_eq!(logged(&world, Method::Post, "/backend/characters/upload"), 0);
}

/// The kinds of create a lost answer can hide: image, video, image-to-video, storyboard,
/// remix, character video.
fn creating_requests() -> Vec<GenerationRequest> {
    // Every world seeds the same posts; the strict simulator remixes only those.
    let remix = one_account().sim.posts().first().cloned().unwrap();
    vec![
        chat("gpt-image", "A lost image"),
        chat("sora2-landscape-10s", "A lost video"),
        dedicated(
            Endpoint::VideosTransform,
            serde_json::json!({"prompt": "A lost i2v", "image": B64.encode(PNG)}),
        ),
        chat("sora2-landscape-10s", "[5s]A lost shot [5s]Another lost shot"),
        dedicated(
            Endpoint::VideosRemix,
            serde_json::json!({"prompt": "A lost remix", "remix_target_id": remix}),
        ),
        dedicated(
            Endpoint::CharactersGenerate,
            serde_json::json!({"prompt": "A lost dance", "video": B64.encode(MP4)}),
        ),
    ]
}

/// Runs `request` until its create has been sent and answered, then crashes before the
/// answer is stored; returns the world and the last stored checkpoint (which says "create
/// sent").
fn crash_after_the_create_left(request: &GenerationRequest) -> (World, Checkpoint) {
    let mut world = World::new(&[AccountSpec::pro("pro@example.com")]);
    let mut g = task(request.clone());
    world.run_until(&mut g, |o, _| {
        matches!(o, Output::Send(_, r) if [
            "/backend/nf/create", "/backend/video_gen", "/backend/nf/create/storyboard",
        ].contains(&r.path_and_query()))
    });
    assert_eq!(world.sim.creates(), 1, "{}", request.operation.name());
    let stored = world.checkpoints.last().unwrap().to_json();
    let json: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert!(json["create_sent_ms"].is_u64(), "stored before the create left: {stored}");
    assert!(json["upstream_task"].is_null(), "{stored}");
    drop(g);
    world.crash();
    (world, Checkpoint::from_json(&stored).unwrap())
}

#[test]
fn a_create_whose_answer_was_lost_is_found_not_sent_again() {
    for request in creating_requests() {
        // Resumed at once (the task still runs upstream) and long after (a video is done and
        // only its draft lists it; an image is still in recent_tasks).
        for downtime_ms in [0, 120_000] {
            let (mut world, checkpoint) = crash_after_the_create_left(&request);
            world.now += downtime_ms;
            let mut resumed = Generation::resume(
                world.now,
                TaskId::new(START_MS, 42),
                request.clone(),
                cfg(),
                checkpoint,
            );
            run(&mut world, &mut resumed);
            let name = request.operation.name();
            assert!(
                world.completed().is_some(),
                "{name} after {downtime_ms} ms: {:?}",
                world.events
            );
            assert_eq!(world.sim.creates(), 1, "{name} after {downtime_ms} ms: one create");
            assert!(resumed.is_accepted());
            assert_eq!(world.pool.total_in_flight(), 0);
        }
    }
}

#[test]
fn a_create_that_never_arrived_is_sent_once_after_the_window() {
    for request in creating_requests() {
        let name = request.operation.name();
        // Stop at the Persist that stores "create sent", before the create leaves.
        let mut world = World::new(&[AccountSpec::pro("pro@example.com")]);
        let mut g = task(request.clone());
        let mut k = 0;
        loop {
            k += 1;
            let mut seen = 0;
            let mut probe = World::new(&[AccountSpec::pro("pro@example.com")]);
            let mut p = task(request.clone());
            probe.run_until(&mut p, |o, _| {
                if matches!(o, Output::Persist) {
                    seen += 1;
                }
                seen == k
            });
            let stored = probe.checkpoints.last().unwrap().to_json();
            if stored.contains("\"create_sent_ms\":null") {
                assert!(k < 20, "{name}: no checkpoint says create sent");
                continue;
            }
            assert_eq!(probe.sim.creates(), 0, "{name}: stored before it left");
            break;
        }
        let mut seen = 0;
        world.run_until(&mut g, |o, _| {
            if matches!(o, Output::Persist) {
                seen += 1;
            }
            seen == k
        });
        let checkpoint = world.checkpoints.last().unwrap().clone();
        let sent_ms = world.now;
        drop(g);
        world.crash();
        let mut resumed =
            Generation::resume(world.now, TaskId::new(START_MS, 42), request, cfg(), checkpoint);
        run(&mut world, &mut resumed);
        assert!(world.completed().is_some(), "{name}: {:?}", world.events);
        assert_eq!(world.sim.creates(), 1, "{name}: created once, after looking");
        let create_at = world
            .sim
            .requests()
            .iter()
            .find(|r| {
                r.method == Method::Post
                    && ["/backend/nf/create", "/backend/video_gen", "/backend/nf/create/storyboard"]
                        .contains(&r.path())
            })
            .map(|r| r.at_ms)
            .unwrap();
        assert!(
            create_at >= sent_ms + cfg().create_recovery_window_ms,
            "{name}: looked for the whole window before creating again"
        );
        let looked = logged(&world, Method::Get, "/backend/nf/pending/v2")
            + logged(&world, Method::Get, "/backend/v2/recent_tasks");
        assert!(looked >= 2, "{name}: looked at least twice, {looked}");
    }
}

/// An account with room for many tasks, and a task of `model` run until its create (sent
/// to `create_path`) was answered; other tasks then make the account busy.
fn busy_account_after_create(model: &str, create_path: &str) -> (World, Generation) {
    let mut world =
        World::new(&[AccountSpec { quota: 1_000, ..AccountSpec::pro("busy@example.com") }]);
    let mut g = task(chat(model, "The busy account's task"));
    world.run_until(
        &mut g,
        |o, _| matches!(o, Output::Send(_, r) if r.path_and_query() == create_path),
    );
    (world, g)
}

#[test]
fn a_draft_far_back_in_a_busy_account_is_found() {
    // 80 videos finish on the account while ours runs: its draft is on page 6 of 15, beyond
    // the old fixed lookback of 4 pages.
    let (mut world, mut g) = busy_account_after_create("sora2-landscape-10s", "/backend/nf/create");
    let mut others: Vec<Generation> = (0..80)
        .map(|i| {
            Generation::new(
                world.now,
                TaskId::new(world.now, 1000 + i),
                chat("sora2-landscape-10s", &format!("Another video {i}")),
                cfg(),
                i as u64,
            )
        })
        .collect();
    // Ours is done upstream first; the others finish after it, so their drafts are newer.
    world.now += 600_000;
    for other in &mut others {
        world.events.clear();
        world.run(other);
        assert!(world.completed().is_some(), "{:?}", world.events);
    }
    world.events.clear();
    run(&mut world, &mut g);
    assert!(
        matches!(world.terminal(), Some(Event::Completed(TaskResult::Videos(_)))),
        "{:?}",
        world.terminal()
    );
    let pages = logged(&world, Method::Get, "/backend/project_y/profile/drafts");
    assert!(pages >= 6, "paged back to the draft: {pages} pages");
}

#[test]
fn a_create_whose_reply_the_connection_lost_is_found_not_sent_again() {
    for model in ["gpt-image", "sora2-landscape-10s"] {
        let mut world = one_account();
        let mut g = task(chat(model, "A cat whose answer is lost #lost"));
        run(&mut world, &mut g);
        assert!(world.completed().is_some(), "{model}: {:?}", world.events);
        assert_eq!(world.sim.creates(), 1, "{model}: looked for, not created again");
    }
    // A create that never arrived (the connection was refused or reset before the upstream
    // took it) is sent again after the window, within the retries.
    let mut world = one_account();
    let mut g = task(chat("gpt-image", "A cat whose create is reset #reset"));
    run(&mut world, &mut g);
    assert!(world.completed().is_some(), "{:?}", world.events);
    assert_eq!(world.sim.creates(), 1);
}

#[test]
fn a_finalize_whose_answer_was_lost_is_checked_not_sent_again() {
    let requests = [
        dedicated(Endpoint::CharactersCreate, serde_json::json!({"video": B64.encode(MP4)})),
        dedicated(
            Endpoint::CharactersGenerate,
            serde_json::json!({"prompt": "The character waves", "video": B64.encode(MP4)}),
        ),
    ];
    for request in requests {
        let name = request.operation.name();
        let mut world = one_account();
        let mut g = task(request.clone());
        // The finalize reaches the upstream and is answered, but the process dies before
        // the answer is stored.
        world.run_until(&mut g, |o, _| {
            matches!(o, Output::Send(_, r) if r.path_and_query() == "/backend/characters/finalize")
        });
        let stored = world.checkpoints.last().unwrap().to_json();
        assert!(stored.contains("\"finalize_sent\":true"), "{name}: {stored}");
        drop(g);
        world.crash();
        let checkpoint = Checkpoint::from_json(&stored).unwrap();
        let mut resumed =
            Generation::resume(world.now, TaskId::new(START_MS, 42), request, cfg(), checkpoint);
        run(&mut world, &mut resumed);
        assert!(world.completed().is_some(), "{name}: {:?}", world.events);
        assert_eq!(logged(&world, Method::Post, "/backend/characters/finalize"), 1, "{name}");
        assert_eq!(logged(&world, Method::Post, "/backend/project_y/profile/username/check"), 1);
        if let Some(TaskResult::Character(card)) = world.completed() {
            assert!(!card.username.is_empty(), "{card:?}");
            assert_eq!(card.character_id, "", "its id was only in the lost answer");
        }
    }
}

#[test]
fn a_finalize_that_never_arrived_is_sent_after_the_check() {
    let request =
        dedicated(Endpoint::CharactersCreate, serde_json::json!({"video": B64.encode(MP4)}));
    let mut world = one_account();
    let mut g = task(request.clone());
    // Stop at the Persist that stores "finalize sent", before the finalize leaves.
    world.run_until(&mut g, |o, w| {
        matches!(o, Output::Persist)
            && w.sim.requests().iter().any(|r| r.path() == "/backend/project_y/file/upload")
    });
    let stored = world.checkpoints.last().unwrap().to_json();
    assert!(stored.contains("\"finalize_sent\":true"), "{stored}");
    assert_eq!(logged(&world, Method::Post, "/backend/characters/finalize"), 0);
    drop(g);
    world.crash();
    let checkpoint = Checkpoint::from_json(&stored).unwrap();
    let mut resumed =
        Generation::resume(world.now, TaskId::new(START_MS, 42), request, cfg(), checkpoint);
    run(&mut world, &mut resumed);
    match world.completed() {
        Some(TaskResult::Character(card)) => assert!(card.character_id.starts_with("char_")),
        other => panic!("{other:?}: {:?}", world.events),
    }
    assert_eq!(logged(&world, Method::Post, "/backend/characters/finalize"), 1);
}

#[test]
fn a_lost_create_listed_late_is_found_within_the_window_and_not_beyond() {
    // The upstream lists a new task only after a delay (GO's gap). Within the recovery window
    // the task keeps looking and finds it. Beyond it, an image has to be taken as never
    // created (the documented limit of the window), while a (fast) video that finished
    // meanwhile is still found in the drafts, which are not delayed.
    let window = cfg().create_recovery_window_ms;
    let cases = [
        (window / 2, "gpt-image", 1),
        (window / 2, "sora2-landscape-10s", 1),
        (window * 3, "gpt-image", 2),
        (window * 3, "sora2-landscape-10s", 1),
    ];
    for (delay_ms, model, creates) in cases {
        let config =
            SimConfig { start_ms: START_MS, listing_delay_ms: delay_ms, ..SimConfig::fast() };
        let mut world = World::with_sim(&[AccountSpec::pro("pro@example.com")], config);
        let request = chat(model, "A cat listed late #lost");
        let mut g = task(request);
        run(&mut world, &mut g);
        assert!(world.completed().is_some(), "{model}, {delay_ms} ms: {:?}", world.events);
        assert_eq!(world.sim.creates(), creates, "{model}, listed after {delay_ms} ms");
    }
}

#[test]
fn an_image_pushed_off_the_first_page_is_found_further_back() {
    let (mut world, mut g) = busy_account_after_create("gpt-image", "/backend/video_gen");
    // 15 newer images on the account push ours off the first page of 10.
    for i in 0..15u64 {
        let request = chat("gpt-image", &format!("Another image {i}"));
        let mut other = Generation::new(
            world.now,
            TaskId::new(world.now, 2000 + u128::from(i)),
            request,
            cfg(),
            i,
        );
        world.events.clear();
        world.run(&mut other);
        assert!(world.completed().is_some(), "{:?}", world.events);
    }
    world.events.clear();
    let polls_before = logged(&world, Method::Get, "/backend/v2/recent_tasks");
    run(&mut world, &mut g);
    assert!(matches!(world.completed(), Some(TaskResult::Images(_))), "{:?}", world.events);
    let ours: Vec<String> = world
        .sim
        .requests()
        .iter()
        .filter(|r| r.path() == "/backend/v2/recent_tasks")
        .skip(polls_before)
        .map(|r| r.path_and_query.clone())
        .collect();
    assert_eq!(ours, ["/backend/v2/recent_tasks?limit=10", "/backend/v2/recent_tasks?limit=50"]);
}
