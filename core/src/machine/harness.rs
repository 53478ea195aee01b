//! A miniature of the shell's driver for tests and fuzzing: the pool grants leases, the
//! simulated backend answers requests, the real solver does the proof of work, all on
//! virtual time.

use std::sync::Arc;

use super::*;
use crate::pool::{PoolConfig, Strategy, TokenPool};
use crate::secret::Secret;
use crate::sim::{AccountSpec, Sim, SimConfig, SimResponse};
use crate::upstream::Method;

/// The virtual time every world starts at.
pub(crate) const START_MS: u64 = 1_767_758_400_000;
/// The simulator's origin.
pub(crate) const SIM: &str = "http://sim.test";

/// The machine configuration of tests: every host at the simulator.
pub(crate) fn cfg() -> Arc<MachineConfig> {
    Arc::new(MachineConfig { upstream: UpstreamConfig::at_origin(SIM), ..MachineConfig::default() })
}

pub(crate) struct World {
    pub(crate) sim: Sim,
    pub(crate) pool: TokenPool,
    pub(crate) now: u64,
    pub(crate) events: Vec<Event>,
    pub(crate) releases: Vec<Outcome>,
    pub(crate) checkpoints: Vec<Checkpoint>,
    pub(crate) refresh_tokens: Vec<(TokenId, Secret)>,
    pub(crate) rng: u64,
    /// Inputs the machine refused: a correct driver never causes one.
    pub(crate) input_errors: Vec<InputError>,
    /// Whether a run hit the step limit without finishing.
    pub(crate) stalled: bool,
    /// Leases the task holds now (granted, not yet released).
    pub(crate) held: Vec<crate::pool::LeaseId>,
    /// The most leases the task held at once.
    pub(crate) most_held: usize,
    /// The shell's sentinel cache, shared by every task of the world.
    pub(crate) sentinels: SentinelCache,
}

impl World {
    pub(crate) fn new(accounts: &[AccountSpec]) -> Self {
        World::with_sim(accounts, SimConfig { start_ms: START_MS, ..SimConfig::fast() })
    }

    /// A world whose simulator runs with `config`.
    pub(crate) fn with_sim(accounts: &[AccountSpec], config: SimConfig) -> Self {
        let mut sim = Sim::new(config);
        let mut pool =
            TokenPool::new(PoolConfig { strategy: Strategy::RoundRobin, ..PoolConfig::default() });
        let mut refresh_tokens = Vec::new();
        for spec in accounts {
            let minted = sim.add_account(spec.clone());
            let id = pool.add(minted.token_record(spec.plan == "chatgpt_pro"));
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
            input_errors: vec![],
            stalled: false,
            held: vec![],
            most_held: 0,
            sentinels: SentinelCache::new(300_000),
        }
    }

    /// Hands the task a lease, tracking it until it comes back.
    fn grant(&mut self, g: &mut Generation, lease: crate::pool::Lease) {
        self.held.push(lease.id);
        self.most_held = self.most_held.max(self.held.len());
        let key = (lease.token, lease.credentials.proxy.clone());
        self.input(g, self.now, Input::Leased(lease));
        if let Some(sentinel) = self.sentinels.get(self.now, &key) {
            self.input(g, self.now, Input::CachedSentinel(sentinel));
        }
    }

    /// The process dies: the machine and the leases it held are gone; the pool is rebuilt from
    /// its records, as the shell rebuilds it on start.
    pub(crate) fn crash(&mut self) {
        let mut pool = TokenPool::new(self.pool.config().clone());
        for record in self.pool.records() {
            let _ = pool.insert_with_id(record.clone());
        }
        self.pool = pool;
        self.held.clear();
    }

    /// Feeds an input, keeping any refusal for the caller to check.
    pub(crate) fn input(&mut self, g: &mut Generation, now: u64, input: Input) {
        if let Err(error) = g.handle_input(now, input) {
            self.input_errors.push(error);
        }
    }

    pub(crate) fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    pub(crate) fn send(
        &mut self,
        request: &UpstreamRequest,
    ) -> Result<UpstreamReply, TransportError> {
        match self.sim.handle(self.now, request) {
            SimResponse::Reply(reply) => Ok(reply),
            SimResponse::Transport(error) => Err(error),
        }
    }

    /// Drives `g` until it finishes, or until `stop` says so after an output.
    pub(crate) fn run_until(
        &mut self,
        g: &mut Generation,
        mut stop: impl FnMut(&Output, &World) -> bool,
    ) {
        for _ in 0..100_000 {
            let output = g.poll_output(self.now);
            let halt = stop(&output, self);
            match output {
                Output::Lease(req) => {
                    let random = self.random();
                    match self.pool.request(self.now, 1, req, random) {
                        crate::pool::Decision::Granted(lease) => self.grant(g, lease),
                        crate::pool::Decision::Refused(error) => {
                            self.input(g, self.now, Input::NoToken(error))
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
                    self.input(g, self.now, input);
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
                    // As the shell's fetch: anything but a 2xx body is a failed fetch.
                    let input = match self.send(&request) {
                        Ok(reply) if (200..300).contains(&reply.status) => Input::Reply(id, reply),
                        Ok(reply) => Input::FetchFailed(id, format!("status {}", reply.status)),
                        Err(error) => Input::FetchFailed(id, format!("{error:?}")),
                    };
                    self.input(g, self.now, input);
                }
                Output::Solve(id, job) => {
                    let answer = crate::pow::Solver::new(&job.challenge, &job.config)
                        .with_max_iterations(job.max_iterations)
                        .solve();
                    self.input(g, self.now, Input::Solved(id, answer));
                }
                Output::Refresh(token) => {
                    let credentials = self.refresh(token);
                    self.input(g, self.now, Input::Refreshed(credentials));
                }
                Output::Release(lease, outcome) => {
                    let position = self.held.iter().position(|id| *id == lease.id);
                    assert!(position.is_some(), "lease {:?} released but not held", lease.id);
                    if let Some(i) = position {
                        self.held.swap_remove(i);
                    }
                    self.releases.push(outcome);
                    let _ = self.pool.release(self.now, lease, outcome);
                }
                Output::Event(event) => self.events.push(event),
                Output::Sentinel(SentinelNote::Fresh { key, sentinel }) => {
                    self.sentinels.put(self.now, key, sentinel);
                }
                Output::Sentinel(SentinelNote::Stale { key }) => self.sentinels.invalidate(&key),
                Output::Persist => self.checkpoints.push(g.checkpoint()),
                Output::Wait(Some(at)) => {
                    self.now = self.now.max(at);
                    self.input(g, self.now, Input::Timeout);
                }
                Output::Wait(None) => return,
            }
            if halt {
                return;
            }
        }
        self.stalled = true;
    }

    pub(crate) fn run(&mut self, g: &mut Generation) {
        self.run_until(g, |_, _| false);
    }

    pub(crate) fn wait_for_lease(&mut self, g: &mut Generation, deadline_ms: u64) {
        loop {
            self.now = self.now.max(self.pool.next_wakeup().unwrap_or(deadline_ms));
            if let Some(event) = self.pool.poll(self.now).into_iter().next() {
                match event {
                    crate::pool::PoolEvent::Granted { lease, .. } => {
                        return self.grant(g, lease);
                    }
                    crate::pool::PoolEvent::TimedOut { error, .. } => {
                        return self.input(g, self.now, Input::NoToken(error));
                    }
                }
            }
        }
    }

    /// The shell's refresh: RT -> AT against the simulator's OAuth endpoint.
    pub(crate) fn refresh(&mut self, token: TokenId) -> Option<Credentials> {
        let rt = self.refresh_tokens.iter().find(|(id, _)| *id == token)?.1.clone();
        let request =
            crate::upstream::refresh_to_access(&UpstreamConfig::at_origin(SIM), &rt, None, None);
        let reply = self.send(&request).ok()?;
        let tokens = crate::upstream::decode_oauth(&reply).ok()?;
        Some(Credentials { access_token: tokens.access_token, session_token: None, proxy: None })
    }

    #[cfg(test)]
    pub(crate) fn completed(&self) -> Option<&TaskResult> {
        self.events.iter().find_map(|e| match e {
            Event::Completed(result) => Some(result),
            _ => None,
        })
    }

    #[cfg(test)]
    pub(crate) fn terminal(&self) -> Option<&Event> {
        self.events.iter().rev().find(|e| e.is_terminal())
    }
}

/// The requests the fuzzer picks from (by the first input byte).
fn fuzz_request(choice: u8, marker: &str, remix: &str) -> Option<GenerationRequest> {
    use crate::translate::{self, Endpoint, Limits};
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ";
    let mp4 = "AAAAGGZ0eXBtcDQyZmFrZQ==";
    let chat = |model: &str, prompt: String| {
        let body =
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": prompt}]});
        translate::chat(body.to_string().as_bytes(), &Limits::default()).ok()
    };
    let dedicated = |endpoint: Endpoint, body: serde_json::Value| {
        translate::dedicated(endpoint, body.to_string().as_bytes(), &Limits::default()).ok()
    };
    let call = match choice % 9 {
        0 => chat("gpt-image", format!("A cat {marker}")),
        1 => dedicated(
            Endpoint::ImagesTransform,
            serde_json::json!({"prompt": format!("blue {marker}"), "image": png}),
        ),
        2 => chat("sora2-landscape-10s", format!("A cat {marker}")),
        3 => dedicated(
            Endpoint::VideosTransform,
            serde_json::json!({"prompt": format!("go {marker}"), "image": png}),
        ),
        4 => dedicated(
            Endpoint::VideosRemix,
            serde_json::json!({"prompt": format!("rain {marker}"), "remix_target_id": remix}),
        ),
        5 => chat("sora2-landscape-10s", format!("[5s]cat jumps {marker} [5s]cat lands")),
        6 => chat("prompt-enhance-short-10s", format!("a cat {marker}")),
        7 => dedicated(Endpoint::CharactersCreate, serde_json::json!({"video": mp4})),
        _ => dedicated(
            Endpoint::CharactersGenerate,
            serde_json::json!({"prompt": format!("dances {marker}"), "video": mp4}),
        ),
    };
    call.map(|c| c.request)
}

const FUZZ_MARKERS: [&str; 16] = [
    "",
    "#fail=429",
    "#fail=401",
    "#fail=400",
    "#heavy",
    "#cf",
    "#hang",
    "#reset",
    "#html",
    "#garbage",
    "#policy",
    "#queue=3",
    "#nourl",
    "#fail=500x9",
    "#country",
    "#fail=429x9",
];

/// Fuzz entry: a task against the simulator under an operation sequence. Bytes: the request,
/// the fault marker, the accounts, then operations (run a few steps, cancel, crash and resume
/// from the last checkpoint, jump time). Invariants: at most one lease at a time, each released
/// exactly once, no input the machine refuses, nothing sent after the end, the pool back to
/// zero, and the task ends.
pub(crate) fn check_ops(data: &[u8]) {
    let [choice, marker, accounts, ops @ ..] = data else { return };
    let specs: Vec<AccountSpec> = (0..1 + accounts % 3)
        .map(|i| AccountSpec {
            with_refresh_token: accounts & (8 << i) != 0,
            ..AccountSpec::pro(&format!("user{i}@example.com"))
        })
        .collect();
    let mut world = World::new(&specs);
    let remix = world.sim.posts().first().cloned().unwrap_or_default();
    let marker = FUZZ_MARKERS[usize::from(*marker) % FUZZ_MARKERS.len()];
    let Some(request) = fuzz_request(*choice, marker, &remix) else { return };
    let id = TaskId::new(START_MS, 1);
    let mut g =
        Generation::new(START_MS, id.clone(), request.clone(), cfg(), u64::from(*choice) + 1);
    for op in ops.iter().take(64) {
        if g.is_finished() {
            break;
        }
        match op % 4 {
            0 => {
                let mut outputs = 0;
                let budget = 1 + usize::from(op / 4);
                world.run_until(&mut g, |_, _| {
                    outputs += 1;
                    outputs >= budget
                });
            }
            1 if op & 0x40 != 0 => g.cancel(world.now),
            2 => {
                let checkpoint = world.checkpoints.last().cloned();
                world.crash();
                g = match checkpoint {
                    Some(c) => Generation::resume(world.now, id.clone(), request.clone(), cfg(), c),
                    None => Generation::new(world.now, id.clone(), request.clone(), cfg(), 7),
                };
            }
            _ => world.now += u64::from(*op) * 1_000,
        }
    }
    world.run(&mut g);
    assert!(!world.stalled, "the task did not end");
    assert!(g.is_finished());
    let sent = world.sim.requests().len();
    assert!(matches!(g.poll_output(world.now), Output::Wait(None)), "outputs after the end");
    assert_eq!(world.sim.requests().len(), sent, "requests after the end");
    assert!(world.input_errors.is_empty(), "refused inputs: {:?}", world.input_errors);
    assert!(world.most_held <= 1, "{} leases held at once", world.most_held);
    assert!(world.held.is_empty(), "a lease was never released");
    assert_eq!(world.pool.total_in_flight(), 0, "pool slots leaked");
}
