//! `Generation`: the per-task upstream state machine (after quinn-proto and str0m).
//!
//! One `Generation` drives one task against the Sora backend. It performs no IO and reads no
//! clock: the shell feeds it [`Input`]s with the current time (unix milliseconds) and drains
//! [`Output`]s with [`Generation::poll_output`] until [`Output::Wait`]:
//!
//! ```text
//! loop {
//!     match generation.poll_output(now) {
//!         Output::Lease(req)          => pool.request(..)        -> Input::Leased / Input::NoToken
//!         Output::Send(id, request)   => upstream.send(request)  -> Input::Reply / Input::Transport
//!         Output::Fetch(id, url)      => fetch under the client-URL policy -> Input::Reply / Input::Transport
//!         Output::Solve(id, job)      => PoW on a blocking thread -> Input::Solved
//!         Output::Refresh(token)      => single-flight ST/RT refresh -> Input::Refreshed
//!         Output::Release(lease, why) => pool.release(lease, why)
//!         Output::Event(event)        => subscribers, task record
//!         Output::Persist             => store.put(record with generation.checkpoint())
//!         Output::Wait(deadline)      => sleep until deadline or the next input, then Input::Timeout
//!     }
//! }
//! ```
//!
//! Times are unix milliseconds rather than `Instant`s so the deadlines in a persisted record
//! mean the same after a restart.
//!
//! ## Lifecycle
//!
//! ```text
//!            new/resume
//!                │
//!                ▼          NoToken
//!             Leasing ───────────────────────────────┐
//!                │ Leased                             │
//!                ▼                                    │
//!      ┌───▶  Ready ──(next call due)──▶ InFlight ────┤ reply: facts learnt ─▶ Ready
//!      │        │  ▲                       │  ▲       │ 401 ─▶ Refreshing ─▶ Ready
//!      │        │  └──────── Solved ─── Solving        │ stale sentinel ─▶ Ready (once)
//!      │        │ (sentinel challenge) ──▶ ┘           │ retryable, not yet accepted:
//!      │        │                                      │   release ─▶ Backoff ─▶ Leasing
//!      └── Backoff                                     │ accepted upstream: poll again later
//!               │ deadline, terminal reply, cancel     │
//!               ▼                                      ▼
//!            Finished ◀────────────────────────────────┘
//! ```
//!
//! Rules kept by construction: every lease is released exactly once (on retry, on finish, on
//! cancel, or at once when it arrives unexpectedly); nothing is sent after `Finished`; a task
//! whose create the upstream accepted is only ever polled again, never resubmitted (B10); a
//! create whose answer was lost (a crash, a timeout, a broken connection) is looked for on its
//! account before it is sent again (module `recover`); a content violation is never retried and
//! never held against the token (decisions 5).

mod calls;
mod checkpoint;
#[cfg(all(feature = "sim", any(test, feature = "fuzzing")))]
pub(crate) mod harness;
mod recover;
mod sentinel_cache;
#[cfg(test)]
#[cfg(feature = "sim")]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::pool::{Credentials, Lease, LeaseRequest, Outcome, TokenId, Work};
use crate::pow::PowChallenge;
use crate::request::{GenerationRequest, Operation, TaskKind};
use crate::task::{Event, Flow, TaskId, TaskResult};
use crate::upstream::{Class, TransportError, UpstreamConfig, UpstreamReply, UpstreamRequest};

use calls::{Call, Facts};
pub use checkpoint::Checkpoint;
pub use sentinel_cache::{SentinelCache, SentinelKey};

/// Tunables of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// Hosts, user agents and timeouts of the upstream.
    pub upstream: UpstreamConfig,
    /// Time between status polls (default 2.5 s).
    pub poll_interval_ms: u64,
    /// Time between cameo (character) polls (default 5 s).
    pub cameo_poll_interval_ms: u64,
    /// Overall deadline of image tasks (default 300 s).
    pub image_timeout_ms: u64,
    /// Overall deadline of every other task (default 3000 s).
    pub video_timeout_ms: u64,
    /// Retries after the first attempt before a task fails (`task_max_retries`, default 3).
    pub max_retries: u32,
    /// First backoff between attempts (default 2 s), doubling up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    /// Longest backoff between attempts (default 30 s).
    pub backoff_max_ms: u64,
    /// Drafts per page when looking up a finished video (default 15).
    pub drafts_page_size: u32,
    /// Most pages of drafts looked through before waiting for the next poll (default 40,
    /// B24). Paging stops earlier, at the first page that reaches drafts made before the task
    /// started: the task's draft cannot be older than the task.
    pub drafts_lookback_pages: u32,
    /// Image tasks looked through in `recent_tasks` (default 50, B24) when the task was not
    /// among the newest; see [`MachineConfig::recent_tasks_first_limit`].
    pub recent_tasks_limit: u32,
    /// Image tasks asked for in an image poll while the task is among them (default 10): a
    /// poll's cost is mostly the page it reads. A task not on that page is looked for with
    /// [`MachineConfig::recent_tasks_limit`] on the next poll.
    pub recent_tasks_first_limit: u32,
    /// A video progress message goes out at least this often (default 30 s, decisions 3).
    pub progress_heartbeat_ms: u64,
    /// How long after a create whose answer was lost (a crash) the task keeps looking for it
    /// in the account's task lists before it creates again (default 30 s; see
    /// [`Checkpoint`]). The upstream may list a new task only after a delay.
    pub create_recovery_window_ms: u64,
    /// Iterations the PoW solver may spend on one challenge (the shell's CPU budget).
    pub pow_max_iterations: u32,
    /// UTC offset (minutes) and zone name the PoW date string claims.
    pub pow_timezone: (i32, String),
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            upstream: UpstreamConfig::default(),
            poll_interval_ms: 2_500,
            cameo_poll_interval_ms: 5_000,
            image_timeout_ms: 300_000,
            video_timeout_ms: 3_000_000,
            max_retries: 3,
            backoff_base_ms: 2_000,
            backoff_max_ms: 30_000,
            drafts_page_size: 15,
            drafts_lookback_pages: 40,
            recent_tasks_limit: 50,
            recent_tasks_first_limit: 10,
            progress_heartbeat_ms: 30_000,
            create_recovery_window_ms: 30_000,
            pow_max_iterations: crate::pow::POW_MAX_ITERATION,
            pow_timezone: (0, "Coordinated Universal Time".into()),
        }
    }
}

/// Identifies one request the machine sent, so its reply finds its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A proof of work for the shell to solve off the async threads.
#[derive(Debug, Clone, PartialEq)]
pub struct PowJob {
    /// The challenge from `sentinel/req`.
    pub challenge: PowChallenge,
    /// The fingerprint config array the answer is built from.
    pub config: crate::pow::ConfigArray,
    /// Iteration budget; the shell gives up (and answers with the fallback) beyond it.
    pub max_iterations: u32,
}

/// What the shell feeds in.
#[derive(Debug)]
pub enum Input {
    /// A timer may have expired (early or duplicate timeouts are harmless).
    Timeout,
    /// The pool granted the lease asked for with [`Output::Lease`].
    Leased(Lease),
    /// The pool refused: no token can take the task (already the client-facing error).
    NoToken(Error),
    /// The proof of work of [`Output::Solve`] is done.
    Solved(RequestId, crate::pow::PowAnswer),
    /// A reply to [`Output::Send`] or [`Output::Fetch`].
    Reply(RequestId, UpstreamReply),
    /// No reply to [`Output::Send`] or [`Output::Fetch`].
    Transport(RequestId, TransportError),
    /// The client's URL of [`Output::Fetch`] was refused by the fetch policy or could not be
    /// fetched; the reason is shown to the client (a 400 on `video`).
    FetchFailed(RequestId, String),
    /// The outcome of [`Output::Refresh`]: fresh credentials, or `None` when the token cannot
    /// be refreshed (no session/refresh token, or the refresh failed).
    Refreshed(Option<Credentials>),
    /// A cached sentinel for the leased token and proxy (see [`SentinelCache`]); feed it right
    /// after [`Input::Leased`] to spare the `sentinel/req` round trip and the proof of work. A
    /// task that needs none keeps what it has.
    CachedSentinel(crate::upstream::SentinelToken),
}

/// Sentinel bookkeeping for the shell's [`SentinelCache`] (decisions 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentinelNote {
    /// A sentinel was fetched and solved for this token and proxy: cache it.
    Fresh {
        /// The key to cache it under.
        key: SentinelKey,
        /// The ready sentinel.
        sentinel: crate::upstream::SentinelToken,
    },
    /// The upstream called the sentinel of this token and proxy stale: drop it.
    Stale {
        /// The key to drop.
        key: SentinelKey,
    },
}

/// What the machine asks the shell to do.
#[derive(Debug)]
pub enum Output {
    /// Ask the pool for a lease.
    Lease(LeaseRequest),
    /// Send a request upstream.
    Send(RequestId, UpstreamRequest),
    /// Download a client-supplied URL: the shell applies its fetch policy (scheme, size,
    /// private addresses) and answers like a [`Output::Send`].
    Fetch(RequestId, String),
    /// Solve a proof of work.
    Solve(RequestId, Box<PowJob>),
    /// Refresh this token's access token (single-flight per token), then [`Input::Refreshed`].
    Refresh(TokenId),
    /// Update the shared sentinel cache.
    Sentinel(SentinelNote),
    /// Release a lease, with what happened on it.
    Release(Lease, Outcome),
    /// Something happened (progress, result, failure).
    Event(Event),
    /// Store [`Generation::checkpoint`] with the task record durably now: a state transition happened.
    Persist,
    /// Nothing to do until this time (or the next input).
    Wait(Option<u64>),
}

/// An input that did not fit the machine's state. The machine stays consistent (a stray lease
/// is released at once); the shell logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// A lease arrived while none was asked for; it is released again.
    UnexpectedLease,
    /// A refusal or refresh arrived while none was asked for.
    Unexpected(&'static str),
    /// A reply, transport error or answer for a request that is not in flight (late, after a
    /// retry or cancellation).
    UnknownRequest(RequestId),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::UnexpectedLease => f.write_str("a lease arrived that was not asked for"),
            InputError::Unexpected(what) => write!(f, "unexpected input: {what}"),
            InputError::UnknownRequest(id) => write!(f, "no request {} is in flight", id.0),
        }
    }
}

impl std::error::Error for InputError {}

/// What a failed call means for the token it ran on (the pool applies cooldowns and disables).
fn outcome_of(class: &Class, now_ms: u64) -> Outcome {
    /// A 429 without Retry-After cools the token down this long.
    const DEFAULT_RATE_LIMIT_MS: u64 = 60_000;
    /// Quota without a reset time waits this long.
    const DEFAULT_QUOTA_WAIT_MS: u64 = 3_600_000;
    /// A Cloudflare challenge cools the token's egress down this long.
    const CLOUDFLARE_COOLDOWN_MS: u64 = 300_000;
    match class {
        Class::Ok => Outcome::Success,
        Class::RateLimited { retry_after_ms } => {
            Outcome::RateLimited { retry_after_ms: retry_after_ms.unwrap_or(DEFAULT_RATE_LIMIT_MS) }
        }
        Class::QuotaExhausted { resets_in_ms } => Outcome::QuotaExhausted {
            resets_at_ms: now_ms.saturating_add(resets_in_ms.unwrap_or(DEFAULT_QUOTA_WAIT_MS)),
        },
        Class::TokenInvalid => Outcome::TokenInvalid,
        Class::TokenExpired => Outcome::TokenExpired,
        Class::HeavyLoad => Outcome::HeavyLoad,
        Class::Cloudflare => Outcome::Cloudflare { cooldown_ms: CLOUDFLARE_COOLDOWN_MS },
        Class::CountryUnsupported { .. } => Outcome::CountryUnsupported,
        Class::ContentPolicy { .. } => Outcome::ContentViolation,
        Class::InvalidRequest | Class::Transient { .. } | Class::Fatal { .. } => Outcome::Failure,
    }
}

/// Where the machine is; see the module docs for the diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Nothing emitted yet.
    Start,
    /// A lease was asked for.
    Leasing,
    /// Holding a lease, nothing in flight: the next call goes out when it is due.
    Ready,
    /// A request is out.
    InFlight { id: RequestId, call: Call },
    /// A proof of work is out.
    Solving { id: RequestId },
    /// A credential refresh is out.
    Refreshing,
    /// Between attempts: the lease is released; a new one is asked for at `until_ms`.
    Backoff { until_ms: u64 },
    /// Terminal: nothing more is sent.
    Finished,
}

/// One task's upstream state machine.
#[derive(Debug)]
pub struct Generation {
    id: TaskId,
    request: GenerationRequest,
    cfg: Arc<MachineConfig>,
    stage: Stage,
    lease: Option<Lease>,
    /// The token an accepted task belongs to (it can only be polled with that account).
    token: Option<TokenId>,
    facts: Facts,
    /// 1-based attempt number.
    attempt: u32,
    /// Whether a refresh was tried in this attempt.
    refresh_tried: bool,
    /// Why the previous attempt failed: the root cause when a retry finds no token.
    last_failure: Option<String>,
    started_ms: u64,
    deadline_ms: u64,
    /// When the next poll may go out.
    next_poll_ms: u64,
    /// Consecutive failed polls (backoff while polling).
    poll_failures: u32,
    /// Highest progress reported, 0-100.
    progress: f32,
    last_progress_event_ms: u64,
    /// A terminal event held back until cleanup (deleting a temporary character) is done.
    pending_end: Option<(Event, Outcome)>,
    next_request: u64,
    rng: u64,
    resumed: bool,
    out: VecDeque<Output>,
}

// === impl Generation ===

impl Generation {
    /// A new task. `seed` is the randomness the task uses (device ids, fingerprints,
    /// multipart boundaries, character name suffixes).
    pub fn new(
        now_ms: u64,
        id: TaskId,
        request: GenerationRequest,
        cfg: Arc<MachineConfig>,
        seed: u64,
    ) -> Self {
        let timeout = match request.operation.task_kind() {
            TaskKind::Image => cfg.image_timeout_ms,
            _ => cfg.video_timeout_ms,
        };
        Generation {
            id,
            request,
            stage: Stage::Start,
            lease: None,
            token: None,
            facts: Facts::default(),
            attempt: 1,
            refresh_tried: false,
            last_failure: None,
            started_ms: now_ms,
            deadline_ms: now_ms.saturating_add(timeout),
            next_poll_ms: 0,
            poll_failures: 0,
            progress: 0.0,
            last_progress_event_ms: now_ms,
            pending_end: None,
            next_request: 1,
            rng: seed | 1,
            resumed: false,
            out: VecDeque::new(),
            cfg,
        }
    }

    /// Continues a task from its checkpoint (after a restart). A task the upstream already
    /// accepted asks for a lease on the same token and polls again; it is never resubmitted.
    pub fn resume(
        now_ms: u64,
        id: TaskId,
        request: GenerationRequest,
        cfg: Arc<MachineConfig>,
        checkpoint: Checkpoint,
    ) -> Self {
        let mut g = Generation::new(now_ms, id, request, cfg, checkpoint.rng);
        checkpoint.apply(&mut g);
        g.resumed = true;
        g
    }

    /// The task id.
    pub fn id(&self) -> &TaskId {
        &self.id
    }

    /// The request this machine runs.
    pub fn request(&self) -> &GenerationRequest {
        &self.request
    }

    /// Highest progress so far, 0 to 100.
    pub fn progress(&self) -> f32 {
        self.progress
    }

    /// Whether the task has ended (no more outputs but a final `Wait(None)`).
    pub fn is_finished(&self) -> bool {
        self.stage == Stage::Finished
    }

    /// Whether the upstream holds work of this task (a create was accepted), so the task must
    /// never be submitted again.
    pub fn is_accepted(&self) -> bool {
        self.facts.committed()
    }

    /// What to persist so the task can [`Generation::resume`].
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::of(self)
    }

    /// Stops the task: releases its lease, emits [`Error::Cancelled`] and sends nothing more.
    pub fn cancel(&mut self, _now_ms: u64) {
        if self.stage == Stage::Finished {
            return;
        }
        self.pending_end = None;
        self.finish(Event::Failed(Error::Cancelled), Outcome::Abandoned);
    }

    /// Feeds one input. After it, drain [`Generation::poll_output`] until `Wait`.
    pub fn handle_input(&mut self, now_ms: u64, input: Input) -> Result<(), InputError> {
        match input {
            Input::Timeout => {
                self.check_deadline(now_ms);
                Ok(())
            }
            Input::Leased(lease) => {
                if self.stage != Stage::Leasing {
                    self.out.push_back(Output::Release(lease, Outcome::Abandoned));
                    return Err(InputError::UnexpectedLease);
                }
                self.token = Some(lease.token);
                self.lease = Some(lease);
                self.refresh_tried = false;
                self.stage = Stage::Ready;
                Ok(())
            }
            Input::NoToken(error) => {
                if self.stage != Stage::Leasing {
                    return Err(InputError::Unexpected("NoToken while not leasing"));
                }
                if self.facts.create_sent_ms.is_some() && !self.facts.committed() {
                    // The account that may hold the lost create is gone: nothing can be
                    // looked up or polled there, so create again on any account.
                    self.facts.create_sent_ms = None;
                    self.ask_lease();
                    return Ok(());
                }
                // A retry that finds no token fails with what made it retry (often the reason
                // the pool has no token left, e.g. an auto-disable), not with the pool's text.
                let error = match self.last_failure.take() {
                    Some(message) => Error::Upstream { message },
                    None => error,
                };
                self.finish(Event::Failed(error), Outcome::Abandoned);
                Ok(())
            }
            Input::Solved(id, answer) => match self.stage {
                Stage::Solving { id: want } if want == id => {
                    self.facts.solved(answer);
                    self.note_fresh_sentinel();
                    self.stage = Stage::Ready;
                    Ok(())
                }
                _ => Err(InputError::UnknownRequest(id)),
            },
            Input::CachedSentinel(sentinel) => {
                if self.lease.is_none() {
                    return Err(InputError::Unexpected("a cached sentinel without a lease"));
                }
                // Optional: a task that needs no sentinel now (accepted, or one in the making)
                // keeps what it has.
                if !self.facts.committed() {
                    self.facts.use_cached(sentinel);
                }
                Ok(())
            }
            Input::Refreshed(credentials) => {
                if self.stage != Stage::Refreshing {
                    return Err(InputError::Unexpected("Refreshed while not refreshing"));
                }
                match (credentials, self.lease.as_mut()) {
                    (Some(credentials), Some(lease)) => {
                        lease.credentials = credentials;
                        self.stage = Stage::Ready;
                    }
                    _ => self.token_unusable(now_ms),
                }
                Ok(())
            }
            Input::Reply(id, reply) => {
                let call = self.take_in_flight(id)?;
                self.facts.answered(call);
                let class = crate::upstream::classify(&reply);
                match class {
                    Class::Ok => match calls::learn(self, call, &reply, now_ms) {
                        Ok(()) => {}
                        Err(class) => self.failed_call(now_ms, call, class),
                    },
                    class => self.failed_call(now_ms, call, class),
                }
                Ok(())
            }
            Input::FetchFailed(id, reason) => {
                let call = self.take_in_flight(id)?;
                if call != Call::FetchVideo {
                    self.failed_call(now_ms, call, Class::Transient { status: None });
                    return Ok(());
                }
                // The client's input is at fault: no retry, no penalty for the token.
                let message = format!("the video URL could not be fetched: {reason}");
                self.end(Event::Failed(Error::invalid("video", message)), Outcome::Abandoned);
                Ok(())
            }
            Input::Transport(id, error) => {
                let call = self.take_in_flight(id)?;
                // A create that timed out or whose connection broke may have reached the
                // upstream: keep `create_sent_ms`, so the next attempt looks for it before it
                // creates again. One that could not connect never left.
                if !matches!(error, TransportError::Timeout | TransportError::Reset) {
                    self.facts.answered(call);
                }
                self.failed_call(now_ms, call, crate::upstream::classify_transport(&error));
                Ok(())
            }
        }
    }

    /// The next thing to do. Call until it returns [`Output::Wait`].
    #[must_use]
    pub fn poll_output(&mut self, now_ms: u64) -> Output {
        loop {
            if let Some(output) = self.out.pop_front() {
                return output;
            }
            if !self.drive(now_ms) {
                return Output::Wait(self.next_timer());
            }
        }
    }

    // --- driving ---

    /// Makes progress without input; returns whether it queued anything.
    fn drive(&mut self, now_ms: u64) -> bool {
        if self.stage != Stage::Finished && now_ms >= self.deadline_ms {
            self.check_deadline(now_ms);
            return !self.out.is_empty();
        }
        match self.stage.clone() {
            Stage::Start => {
                if !self.resumed {
                    self.out.push_back(Output::Event(Event::Started(self.flow())));
                }
                self.ask_lease();
                true
            }
            Stage::Backoff { until_ms } if now_ms >= until_ms => {
                self.ask_lease();
                true
            }
            Stage::Ready => self.next_call(now_ms),
            _ => false,
        }
    }

    fn ask_lease(&mut self) {
        let work = match self.request.operation.task_kind() {
            TaskKind::Image => Work::Image,
            _ => Work::Video,
        };
        // An accepted task can only be polled with the account that owns it, and a create
        // whose answer was lost can only be looked for there.
        let pinned = self.facts.committed() || self.facts.create_sent_ms.is_some();
        let token = if pinned { self.token } else { None };
        let request = LeaseRequest { work, pro: self.request.requires_pro(), token };
        self.out.push_back(Output::Lease(request));
        self.stage = Stage::Leasing;
    }

    /// Decides and sends the next call, if one is due.
    fn next_call(&mut self, now_ms: u64) -> bool {
        // A held-back end goes out once the cleanup it waited for is done.
        if !self.facts.needs_cleanup() {
            if let Some((event, outcome)) = self.pending_end.take() {
                self.finish(event, outcome);
                return true;
            }
        }
        let Some(call) = calls::next(self) else {
            return false;
        };
        if (call.is_poll() || self.facts.gated) && now_ms < self.next_poll_ms {
            return false;
        }
        let id = RequestId(self.next_request);
        self.next_request += 1;
        match calls::build(self, call, now_ms) {
            calls::Built::Send(request) => {
                if call.changes_upstream_once() {
                    // Stored before it leaves: a crash before its answer is stored makes the
                    // resumed task look for what it made instead of sending it again.
                    self.facts.sent(call, now_ms);
                    self.out.push_back(Output::Persist);
                }
                self.out.push_back(Output::Send(id, request));
                self.stage = Stage::InFlight { id, call };
            }
            calls::Built::Fetch(url) => {
                self.out.push_back(Output::Fetch(id, url));
                self.stage = Stage::InFlight { id, call };
            }
            calls::Built::Solve(job) => {
                self.out.push_back(Output::Solve(id, job));
                self.stage = Stage::Solving { id };
            }
            calls::Built::Finish(event, outcome) => {
                self.end(event, outcome);
            }
        }
        true
    }

    fn take_in_flight(&mut self, id: RequestId) -> Result<Call, InputError> {
        match self.stage {
            Stage::InFlight { id: want, call } if want == id => {
                self.stage = Stage::Ready;
                Ok(call)
            }
            _ => Err(InputError::UnknownRequest(id)),
        }
    }

    // --- failures, retries and the end ---

    /// A call failed with this class: refresh, re-sentinel, poll again later, retry the
    /// attempt on another token, or end the task.
    fn failed_call(&mut self, now_ms: u64, call: Call, class: Class) {
        if calls::absorb(self, call, &class) {
            return;
        }
        let reason = class.message().into_owned();
        match class {
            Class::Ok => {}
            Class::ContentPolicy { reason } => {
                let reason = reason.unwrap_or_else(|| "the upstream refused the content".into());
                self.end(Event::ContentViolation { reason }, Outcome::ContentViolation);
            }
            Class::TokenInvalid | Class::TokenExpired => {
                if !self.refresh_tried {
                    if let Some(token) = self.token {
                        self.refresh_tried = true;
                        self.stage = Stage::Refreshing;
                        self.out.push_back(Output::Refresh(token));
                        return;
                    }
                }
                self.token_unusable(now_ms);
            }
            Class::InvalidRequest if call.needs_sentinel() && !self.facts.sentinel_retried => {
                // A stale sentinel: fetch a fresh one and send the create again, once.
                self.facts.sentinel_retried = true;
                self.facts.drop_sentinel();
                if let Some(key) = self.sentinel_key() {
                    self.out.push_back(Output::Sentinel(SentinelNote::Stale { key }));
                }
            }
            _ if call.is_cleanup() => {
                // Deleting a temporary character failed: never fail the task for it.
                self.facts.cleanup_done();
            }
            _ if call.is_lookup() => match class {
                Class::CountryUnsupported { .. } | Class::Fatal { .. } | Class::InvalidRequest => {
                    // Nothing can be looked up here: stop looking and send it again.
                    self.facts.create_sent_ms = None;
                    self.facts.finalize_sent = false;
                }
                _ => {
                    // Unknown whether the create is there: look again later.
                    self.poll_failures = self.poll_failures.saturating_add(1);
                    let delay = self.backoff(self.poll_failures).max(self.cfg.poll_interval_ms);
                    self.next_poll_ms = now_ms.saturating_add(delay);
                    self.facts.retry_later(call);
                }
            },
            _ if self.facts.committed() => match class {
                Class::CountryUnsupported { .. } | Class::Fatal { .. } | Class::InvalidRequest => {
                    self.end(Event::Failed(Error::Upstream { message: reason }), Outcome::Failure);
                }
                _ => {
                    // Accepted upstream: never resubmit; poll again after a backoff.
                    self.poll_failures = self.poll_failures.saturating_add(1);
                    let delay = self.backoff(self.poll_failures).max(self.cfg.poll_interval_ms);
                    self.next_poll_ms = now_ms.saturating_add(delay);
                    self.facts.retry_later(call);
                }
            },
            _ => self.retry_attempt(now_ms, outcome_of(&class, now_ms), reason),
        }
    }

    /// The cache key of the leased token's sentinel.
    fn sentinel_key(&self) -> Option<SentinelKey> {
        self.lease.as_ref().map(|l| (l.token, l.credentials.proxy.clone()))
    }

    /// A sentinel was just made ready from a fetch: tell the shell to cache it.
    fn note_fresh_sentinel(&mut self) {
        if let (Some(key), Some(sentinel)) = (self.sentinel_key(), self.facts.ready_sentinel()) {
            self.out.push_back(Output::Sentinel(SentinelNote::Fresh { key, sentinel }));
        }
    }

    /// The token is refused and cannot be refreshed.
    fn token_unusable(&mut self, now_ms: u64) {
        if self.facts.committed() {
            let message =
                "the upstream account that owns this task is no longer authorised".to_owned();
            self.end(Event::Failed(Error::Upstream { message }), Outcome::TokenInvalid);
        } else {
            self.retry_attempt(now_ms, Outcome::TokenInvalid, "the token was refused (401)".into());
        }
    }

    /// Ends this attempt before the upstream accepted anything: release the lease with what
    /// happened and, if attempts remain, try again on a new lease after a backoff.
    fn retry_attempt(&mut self, now_ms: u64, outcome: Outcome, reason: String) {
        let max = self.cfg.max_retries.saturating_add(1);
        if self.attempt >= max {
            self.end(Event::Failed(Error::Upstream { message: reason }), outcome);
            return;
        }
        if let Some(lease) = self.lease.take() {
            if matches!(outcome, Outcome::TokenInvalid) {
                self.out.push_back(Output::Event(Event::TokenDisabled { token_id: lease.token.0 }));
            }
            self.out.push_back(Output::Release(lease, outcome));
        }
        self.attempt += 1;
        self.refresh_tried = false;
        self.last_failure = Some(reason.clone());
        self.facts.new_attempt();
        self.out.push_back(Output::Event(Event::Retrying {
            attempt: self.attempt - 1,
            max: self.cfg.max_retries,
            reason,
        }));
        self.stage =
            Stage::Backoff { until_ms: now_ms.saturating_add(self.backoff(self.attempt - 1)) };
        self.out.push_back(Output::Persist);
    }

    /// Ends the task, after cleanup if a temporary character must be deleted first.
    fn end(&mut self, event: Event, outcome: Outcome) {
        if self.facts.needs_cleanup() && self.lease.is_some() {
            self.pending_end = Some((event, outcome));
            self.stage = Stage::Ready;
        } else {
            self.finish(event, outcome);
        }
    }

    fn finish(&mut self, event: Event, outcome: Outcome) {
        // Nothing goes out after the end, not even what was queued before it (a cancel can
        // arrive while a request waits behind an event in the queue).
        self.out.retain(|o| {
            !matches!(
                o,
                Output::Send(..)
                    | Output::Fetch(..)
                    | Output::Solve(..)
                    | Output::Lease(_)
                    | Output::Refresh(_)
            )
        });
        if let Some(lease) = self.lease.take() {
            self.out.push_back(Output::Release(lease, outcome));
        }
        if matches!(event, Event::Completed(_)) {
            self.progress = 100.0;
        }
        self.out.push_back(Output::Event(event));
        self.out.push_back(Output::Persist);
        self.stage = Stage::Finished;
    }

    fn check_deadline(&mut self, now_ms: u64) {
        if self.stage == Stage::Finished || now_ms < self.deadline_ms {
            return;
        }
        let seconds = self.deadline_ms.saturating_sub(self.started_ms) / 1000;
        let error = if self.facts.has_urlless_draft() {
            Error::Upstream { message: "draft has no URL".into() }
        } else {
            Error::Timeout { seconds }
        };
        self.pending_end = None;
        self.finish(Event::Failed(error), Outcome::Abandoned);
    }

    fn next_timer(&self) -> Option<u64> {
        match self.stage {
            Stage::Finished => None,
            Stage::Backoff { until_ms } => Some(until_ms.min(self.deadline_ms)),
            Stage::Ready if calls::next(self).is_some_and(|c| c.is_poll()) => {
                Some(self.next_poll_ms.min(self.deadline_ms))
            }
            _ => Some(self.deadline_ms),
        }
    }

    fn backoff(&self, n: u32) -> u64 {
        let factor = 1u64 << n.saturating_sub(1).min(16);
        self.cfg.backoff_base_ms.saturating_mul(factor).min(self.cfg.backoff_max_ms)
    }

    /// The next pseudo-random word (xorshift64*), seeded at construction.
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn flow(&self) -> Flow {
        match &self.request.operation {
            Operation::TextToImage { .. } | Operation::TextToVideo { .. } => {
                Flow::Generation { with_image: false }
            }
            Operation::Storyboard { image, .. } => Flow::Generation { with_image: image.is_some() },
            Operation::ImageToImage { .. } | Operation::ImageToVideo { .. } => {
                Flow::Generation { with_image: true }
            }
            Operation::Remix { .. } => Flow::Remix,
            Operation::Extension { generation, .. } => Flow::Extension {
                generation_id: generation.as_str().to_owned(),
                seconds: calls::extension_seconds(self),
            },
            Operation::PromptEnhance { .. } => Flow::Enhance,
            Operation::CharacterCreate { source, .. } => Flow::Character {
                from_generation: match source {
                    crate::request::CharacterSource::Generation(g) => Some(g.as_str().to_owned()),
                    crate::request::CharacterSource::Video(_) => None,
                },
            },
            Operation::CharacterVideo { .. } => Flow::CharacterVideo,
        }
    }

    /// Records progress (never backwards) and emits a progress event when it changed or the
    /// heartbeat is due.
    fn report_progress(&mut self, now_ms: u64, percent: f32, event: Event) {
        let percent = if percent.is_finite() { percent.clamp(0.0, 100.0) } else { 0.0 };
        let changed = percent > self.progress;
        if changed {
            self.progress = percent;
        }
        if changed
            || now_ms.saturating_sub(self.last_progress_event_ms) >= self.cfg.progress_heartbeat_ms
        {
            self.last_progress_event_ms = now_ms;
            self.out.push_back(Output::Event(event));
        }
    }

    /// A poll answered "not yet": poll again after the interval, give or take a tenth of it
    /// (from the task's seeded randomness), so that tasks started together do not keep
    /// polling together: 10 000 streams otherwise poll in bursts that each open a thousand
    /// upstream connections.
    fn poll_later(&mut self, now_ms: u64, interval_ms: u64) {
        self.poll_failures = 0;
        let spread = interval_ms / 10;
        let jitter = if spread == 0 { 0 } else { self.random() % (2 * spread + 1) };
        self.next_poll_ms = now_ms.saturating_add(interval_ms - spread + jitter);
    }

    /// The task produced its result.
    fn completed(&mut self, result: TaskResult) {
        self.end(Event::Completed(result), Outcome::Success);
    }
}
