//! Every flow end to end against the simulated backend, on virtual time (no sleeps, no
//! sockets). The harness is a miniature of the shell's driver: the pool grants leases, the
//! simulator answers requests, the real solver does the proof of work.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::*;
use crate::pool::{PoolConfig, Strategy, TokenPool, TokenRecord};
use crate::secret::Secret;
use crate::sim::{AccountSpec, Sim, SimConfig, SimResponse};
use crate::translate::{self, Endpoint, Limits};
use crate::upstream::Method;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR fake png";
const MP4: &[u8] = b"\0\0\0\x18ftypmp42 fake mp4";
const START_MS: u64 = 1_767_758_400_000;

struct World {
    sim: Sim,
    pool: TokenPool,
    now: u64,
    events: Vec<Event>,
    releases: Vec<Outcome>,
    checkpoints: Vec<Checkpoint>,
    refresh_tokens: Vec<(TokenId, Secret)>,
    rng: u64,
}

impl World {
    fn new(accounts: &[AccountSpec]) -> Self {
        let mut sim = Sim::new(SimConfig::fast());
        let mut pool =
            TokenPool::new(PoolConfig { strategy: Strategy::RoundRobin, ..PoolConfig::default() });
        let mut refresh_tokens = Vec::new();
        for spec in accounts {
            let minted = sim.add_account(spec.clone());
            let mut record = TokenRecord::new(Secret::new(minted.access_token.clone()));
            record.pro = spec.plan == "chatgpt_pro";
            record.refresh_token = minted.refresh_token.clone().map(Secret::new);
            let id = pool.add(record);
            if let Some(rt) = minted.refresh_token {
                refresh_tokens.push((id, Secret::new(rt)));
            }
        }
        World {
            sim,
            pool,
            now: START_MS,
            events: vec![],
            releases: vec![],
            checkpoints: vec![],
            refresh_tokens,
            rng: 7,
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn send(&mut self, request: &UpstreamRequest) -> Result<UpstreamReply, TransportError> {
        match self.sim.handle(self.now, request) {
            SimResponse::Reply(reply) => Ok(reply),
            SimResponse::Transport(error) => Err(error),
        }
    }

    /// Drives `g` until it finishes, or until `stop` says so after an output.
    fn run_until(&mut self, g: &mut Generation, mut stop: impl FnMut(&Output, &World) -> bool) {
        for _ in 0..100_000 {
            let output = g.poll_output(self.now);
            let halt = stop(&output, self);
            match output {
                Output::Lease(req) => {
                    let random = self.random();
                    match self.pool.request(self.now, 1, req, random) {
                        crate::pool::Decision::Granted(lease) => {
                            g.handle_input(self.now, Input::Leased(lease)).unwrap()
                        }
                        crate::pool::Decision::Refused(error) => {
                            g.handle_input(self.now, Input::NoToken(error)).unwrap()
                        }
                        crate::pool::Decision::Queued { deadline_ms } => {
                            self.wait_for_lease(g, deadline_ms)
                        }
                    }
                }
                Output::Send(id, request) => {
                    let input = match self.send(&request) {
                        Ok(reply) => Input::Reply(id, reply),
                        Err(error) => Input::Transport(id, error),
                    };
                    g.handle_input(self.now, input).unwrap();
                }
                Output::Fetch(id, url) => {
                    let request = UpstreamRequest {
                        method: Method::Get,
                        url,
                        headers: vec![],
                        body: bytes::Bytes::new(),
                        timeout_ms: 30_000,
                        proxy: None,
                    };
                    let input = match self.send(&request) {
                        Ok(reply) => Input::Reply(id, reply),
                        Err(error) => Input::Transport(id, error),
                    };
                    g.handle_input(self.now, input).unwrap();
                }
                Output::Solve(id, job) => {
                    let answer = crate::pow::Solver::new(&job.challenge, &job.config)
                        .with_max_iterations(job.max_iterations)
                        .solve();
                    g.handle_input(self.now, Input::Solved(id, answer)).unwrap();
                }
                Output::Refresh(token) => {
                    let credentials = self.refresh(token);
                    g.handle_input(self.now, Input::Refreshed(credentials)).unwrap();
                }
                Output::Release(lease, outcome) => {
                    self.releases.push(outcome);
                    let _ = self.pool.release(self.now, lease, outcome);
                }
                Output::Event(event) => self.events.push(event),
                Output::Persist => self.checkpoints.push(g.checkpoint()),
                Output::Wait(Some(at)) => {
                    self.now = self.now.max(at);
                    g.handle_input(self.now, Input::Timeout).unwrap();
                }
                Output::Wait(None) => return,
            }
            if halt {
                return;
            }
        }
        panic!("the task did not finish within 100 000 steps");
    }

    fn run(&mut self, g: &mut Generation) {
        self.run_until(g, |_, _| false);
    }

    fn wait_for_lease(&mut self, g: &mut Generation, deadline_ms: u64) {
        loop {
            self.now = self.now.max(self.pool.next_wakeup().unwrap_or(deadline_ms));
            if let Some(event) = self.pool.poll(self.now).into_iter().next() {
                match event {
                    crate::pool::PoolEvent::Granted { lease, .. } => {
                        return g.handle_input(self.now, Input::Leased(lease)).unwrap();
                    }
                    crate::pool::PoolEvent::TimedOut { error, .. } => {
                        return g.handle_input(self.now, Input::NoToken(error)).unwrap();
                    }
                }
            }
        }
    }

    /// The shell's refresh: RT -> AT against the simulator's OAuth endpoint.
    fn refresh(&mut self, token: TokenId) -> Option<Credentials> {
        let rt = self.refresh_tokens.iter().find(|(id, _)| *id == token)?.1.clone();
        let request =
            crate::upstream::refresh_to_access(&UpstreamConfig::at_origin(SIM), &rt, None, None);
        let reply = self.send(&request).ok()?;
        let tokens = crate::upstream::decode_oauth(&reply).ok()?;
        Some(Credentials { access_token: tokens.access_token, session_token: None, proxy: None })
    }

    fn completed(&self) -> Option<&TaskResult> {
        self.events.iter().find_map(|e| match e {
            Event::Completed(result) => Some(result),
            _ => None,
        })
    }

    fn terminal(&self) -> Option<&Event> {
        self.events.iter().rev().find(|e| e.is_terminal())
    }
}

const SIM: &str = "http://sim.test";

fn cfg() -> Arc<MachineConfig> {
    Arc::new(MachineConfig { upstream: UpstreamConfig::at_origin(SIM), ..MachineConfig::default() })
}

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
    world.run(&mut g);
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
        world.run(&mut g);
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
    world.run(&mut g);
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
    world.run(&mut g);
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
        world.run(&mut g);
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
    world.run(&mut g);
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
    world.run(&mut g);
    assert!(world.completed().is_some(), "{:?}", world.events);
    assert_eq!(logged(&world, Method::Post, "/oauth/token"), 1);
    assert_eq!(world.releases, vec![Outcome::Success]);
}

#[test]
fn stale_sentinel_is_refreshed_once() {
    let mut world = one_account();
    let mut g = task(chat("sora2-landscape-10s", "A cat #fail=400"));
    world.run(&mut g);
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
    world.run(&mut g);
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
    world.run(&mut g);
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
    world.run(&mut g);
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
    world.run(&mut g);
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
    world.run(&mut g);
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
        world.run(&mut g);
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
            world.pool = {
                let mut pool = TokenPool::new(PoolConfig::default());
                for record in world.pool.records() {
                    pool.insert_with_id(record.clone());
                }
                pool
            };
            let mut resumed = Generation::resume(
                world.now,
                TaskId::new(START_MS, 42),
                request.clone(),
                cfg(),
                checkpoint,
            );
            world.run(&mut resumed);
            assert!(
                world.completed().is_some(),
                "{} resumed at checkpoint {k}: {:?}",
                request.operation.name(),
                world.events
            );
            let creates = world.sim.creates();
            assert!(creates <= 1, "{} resumed at {k}: {creates} creates", request.operation.name());
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
    world.run(&mut first);
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
    world.run(&mut g);
    assert!(matches!(world.completed(), Some(TaskResult::Videos(_))), "{:?}", world.events);
    assert_eq!(world.sim.creates(), 2);
    assert!(world.events.contains(&Event::Submitting));
    assert_eq!(world.releases, vec![Outcome::Success]);
}
