//! The driver: the only loop. One per task, on its own Tokio task; it feeds the machine's
//! outputs to the IO seams and their answers back as inputs, one at a time. The table of
//! what each output becomes, and the mapping decisions, are in the engine's module docs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sora2api_core::machine::{Generation, Input, Output, PowJob, SentinelNote};
use sora2api_core::pow::{PowAnswer, Solver, Step};
use sora2api_core::record::TaskRecord;
use sora2api_core::task::Event;
use sora2api_core::upstream::{SentinelToken, UpstreamReply, UpstreamRequest};
use tokio::sync::{broadcast, watch};

use super::{lock, pow_service, Inner};
use crate::clock;
use crate::upstream::Upstream;

/// Resolves once the task is cancelled (never, if the engine forgot the task).
pub(super) async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How often a `Persist` write is tried (with a pause doubling from 1 s) before the task goes
/// on without it: a store that stays down degrades that transition to at-least-once (a crash
/// then resumes from the previous durable state), it does not stop the task.
const PERSIST_TRIES: u32 = 4;

/// The longest pause between tries of the final write, which is retried until it lands.
const FINAL_WRITE_MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// One task's driver.
pub(super) struct Driver {
    inner: Arc<Inner>,
    /// Shared with the live map until the next change copies it (one copy per task at rest).
    record: Arc<TaskRecord>,
    events: broadcast::Sender<Event>,
    cancel: watch::Receiver<bool>,
    cancelled: bool,
    /// The record changed since it was last written.
    dirty: bool,
    last_write_ms: u64,
}

impl Driver {
    pub(super) fn new(
        inner: Arc<Inner>,
        record: Arc<TaskRecord>,
        events: broadcast::Sender<Event>,
        cancel: watch::Receiver<bool>,
    ) -> Self {
        Driver {
            inner,
            record,
            events,
            cancel,
            cancelled: false,
            dirty: false,
            last_write_ms: clock::now_ms(),
        }
    }

    /// Drives `g` to its end, writes the final record and leaves the live map.
    pub(super) async fn run(mut self, mut g: Generation) {
        loop {
            if !self.cancelled && *self.cancel.borrow() {
                self.cancelled = true;
                g.cancel(clock::now_ms());
            }
            let input = match g.poll_output(clock::now_ms()) {
                Output::Lease(req) => {
                    let inner = self.inner.clone();
                    // Rare awaits are boxed: the driver future of every live task is only as
                    // large as its common waits (a send, a sleep, a store write).
                    match Box::pin(inner.lease(req, &mut self.cancel)).await {
                        Some(Input::Leased(lease)) => {
                            let key = (lease.token, lease.credentials.proxy.clone());
                            let pow = self.inner.pow_service().request(&lease.credentials);
                            self.feed(&mut g, Input::Leased(lease));
                            let cached = lock(&self.inner.sentinels).get(clock::now_ms(), &key);
                            match (cached, pow) {
                                (Some(cached), _) => Some(Input::CachedSentinel(cached)),
                                // An accepted task only polls: it needs no sentinel.
                                (None, Some(req)) if !g.is_accepted() => {
                                    let upstream = self.inner.upstream.clone();
                                    let fetched = self
                                        .until_cancel(Box::pin(external_sentinel(upstream, req)))
                                        .await;
                                    fetched.flatten().map(|sentinel| {
                                        lock(&self.inner.sentinels).put(
                                            clock::now_ms(),
                                            key,
                                            sentinel.clone(),
                                        );
                                        Input::CachedSentinel(sentinel)
                                    })
                                }
                                (None, _) => None,
                            }
                        }
                        other => other,
                    }
                }
                Output::Send(id, request) => {
                    // The path only: no query, no headers (they carry the token).
                    let path = request.path_and_query().split('?').next().unwrap_or_default();
                    tracing::debug!(method = request.method.as_str(), path, "upstream request");
                    let upstream = self.inner.upstream.clone();
                    self.until_cancel(upstream.send(request)).await.map(|r| match r {
                        Ok(reply) => Input::Reply(id, reply),
                        Err(error) => Input::Transport(id, error),
                    })
                }
                Output::Fetch(id, url) => {
                    let upstream = self.inner.upstream.clone();
                    self.until_cancel(upstream.fetch(url)).await.map(|r| match r {
                        Ok(body) => {
                            Input::Reply(id, UpstreamReply { status: 200, headers: vec![], body })
                        }
                        // The fetch policy's refusal or failure, in words fit for the client.
                        Err(error) => Input::FetchFailed(id, error.to_string()),
                    })
                }
                Output::Solve(id, job) => {
                    let slice = self.inner.cfg.pow_slice.max(1);
                    self.until_cancel(Box::pin(solve(job, slice)))
                        .await
                        .map(|a| Input::Solved(id, a))
                }
                Output::Refresh(token) => {
                    let inner = self.inner.clone();
                    let fresh = self.until_cancel(Box::pin(inner.refresh(token))).await;
                    fresh.map(|result| Input::Refreshed(result.ok()))
                }
                Output::Release(lease, outcome) => {
                    tracing::debug!(token = lease.token.0, ?outcome, "lease released");
                    self.inner.release(lease, outcome);
                    None
                }
                Output::Event(event) => {
                    if let Event::Failed(error) = &event {
                        tracing::info!(code = error.code(), status = error.status(), "task failed");
                    } else if event.is_terminal() {
                        tracing::info!(
                            completed = matches!(event, Event::Completed(_)),
                            "task ended"
                        );
                    }
                    self.event(event).await;
                    None
                }
                Output::Persist => {
                    self.persist(&g).await;
                    None
                }
                Output::Sentinel(note) => {
                    let mut cache = lock(&self.inner.sentinels);
                    match note {
                        SentinelNote::Fresh { key, sentinel } => {
                            cache.put(clock::now_ms(), key, sentinel)
                        }
                        SentinelNote::Stale { key } => cache.invalidate(&key),
                    }
                    None
                }
                Output::Wait(Some(at)) => {
                    let sleep = tokio::time::sleep_until(clock::instant_at(at));
                    self.until_cancel(sleep).await.map(|()| Input::Timeout)
                }
                Output::Wait(None) => break,
            };
            if let Some(input) = input {
                self.feed(&mut g, input);
            }
        }
        self.finish().await;
    }

    /// Feeds one input. A refusal means a late or stray answer; the machine stays
    /// consistent (a stray lease is released by it), so there is nothing more to do.
    fn feed(&mut self, g: &mut Generation, input: Input) {
        if let Err(refused) = g.handle_input(clock::now_ms(), input) {
            tracing::debug!(%refused, "input refused by the machine");
        }
    }

    /// Awaits `io` unless the task is cancelled first (`None`; the IO is dropped).
    async fn until_cancel<T>(&mut self, io: impl std::future::Future<Output = T>) -> Option<T> {
        if self.cancelled {
            return None;
        }
        tokio::select! {
            out = io => Some(out),
            () = cancelled(&mut self.cancel) => None,
        }
    }

    /// Applies an event to the record and tells subscribers. A terminal event is stored
    /// before anyone hears of it; progress is written at most every few seconds.
    async fn event(&mut self, event: Event) {
        let now = clock::now_ms();
        let durable = Arc::make_mut(&mut self.record).apply(now, &event);
        self.dirty = true;
        let interval = self.inner.cfg.progress_write_interval_ms;
        if durable || now.saturating_sub(self.last_write_ms) >= interval {
            self.write().await;
        }
        self.publish();
        // No subscriber is not an error; a lagging one misses events, never blocks us.
        let _ = self.events.send(event);
    }

    /// Stores the record with the machine's checkpoint. Once the upstream accepted the task
    /// the inline media are dropped: a resumed machine only polls.
    async fn persist(&mut self, g: &Generation) {
        let checkpoint = g.checkpoint();
        if checkpoint.accepted() && !self.record.media_dropped() {
            Arc::make_mut(&mut self.record).drop_media();
            self.dirty = true;
        }
        let json = Some(checkpoint.to_json());
        if self.record.checkpoint != json {
            Arc::make_mut(&mut self.record).checkpoint = json;
            self.dirty = true;
        }
        if self.dirty {
            self.publish();
            let mut pause = std::time::Duration::from_secs(1);
            for attempt in 1..=PERSIST_TRIES {
                if self.write().await {
                    return;
                }
                if attempt == PERSIST_TRIES || self.cancelled || *self.cancel.borrow() {
                    break;
                }
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            tracing::warn!("task store unavailable: a state transition was not stored");
        }
    }

    /// The live copy `get` answers from.
    fn publish(&self) {
        if let Some(live) = lock(&self.inner.live).get_mut(&self.record.id) {
            live.record = self.record.clone();
        }
    }

    /// Writes the record; a failure leaves it dirty for the next write.
    async fn write(&mut self) -> bool {
        let ok = self.inner.store.put(TaskRecord::clone(&self.record)).await.is_ok();
        if ok {
            self.dirty = false;
            self.last_write_ms = clock::now_ms();
        }
        ok
    }

    /// The final write, then the task leaves the live map. The write is retried (the pause
    /// doubling from 1 s up to 30 s) until the store takes it: until then the task stays live,
    /// so `get` answers with the ending from memory rather than the stored `processing`.
    async fn finish(mut self) {
        let mut pause = std::time::Duration::from_secs(1);
        let mut warned = false;
        while self.dirty && !self.write().await {
            if !warned {
                tracing::warn!(
                    "task store unavailable: the task's end is kept in memory until stored"
                );
                warned = true;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(FINAL_WRITE_MAX_PAUSE);
        }
        lock(&self.inner.live).remove(&self.record.id);
    }
}

/// A sentinel from the external PoW service; `None` on any failure (the machine then
/// solves locally). Logged at debug level, without the request (it carries secrets).
async fn external_sentinel(
    upstream: Arc<dyn Upstream>,
    req: UpstreamRequest,
) -> Option<SentinelToken> {
    match upstream.send(req).await {
        Ok(reply) => {
            let sentinel = pow_service::parse_reply(&reply);
            if sentinel.is_none() {
                tracing::debug!(
                    status = reply.status,
                    "PoW service reply unusable; solving locally"
                );
            }
            sentinel
        }
        Err(error) => {
            tracing::debug!(?error, "PoW service unreachable; solving locally");
            None
        }
    }
}

/// Solves a proof of work on the blocking pool, `slice` iterations at a time; stops early
/// (with the fallback answer) when the awaiting future is dropped.
async fn solve(job: Box<PowJob>, slice: u32) -> PowAnswer {
    /// Tells the blocking loop to stop when the driver stops waiting.
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = stop.0.clone();
    let seed = job.challenge.seed().to_owned();
    let fallback = PowAnswer::fallback(&seed);
    let work = tokio::task::spawn_blocking(move || {
        let mut solver =
            Solver::new(&job.challenge, &job.config).with_max_iterations(job.max_iterations);
        loop {
            if flag.load(Ordering::Relaxed) {
                return PowAnswer::fallback(job.challenge.seed());
            }
            match solver.step(slice) {
                Step::Pending => {}
                Step::Solved(answer) | Step::Exhausted(answer) => return answer,
            }
        }
    });
    let answer = work.await.unwrap_or(fallback);
    drop(stop);
    answer
}
