//! The pool's invariants under any sequence of operations, checked by the fuzz entry point
//! (`crate::fuzzing::pool_ops`) and by the deterministic pseudo-random tests.
//!
//! [`check_ops`] decodes bytes into operations (add tokens, request, release with an outcome,
//! advance time, poll, cancel, admin changes), runs them against a [`TokenPool`] and a small
//! model of what the caller holds, and asserts after every step:
//!
//! - every grant is on a token that may take the work, with its limit not exceeded;
//! - every lease id is new, and every lease is released exactly once;
//! - per-token in-flight counts equal the leases held, and the total equals all of them;
//! - every waiter gets at most one event, only while waiting; after `poll`/`release` no waiter
//!   is left that could run now or whose deadline has passed;
//! - a new request is never granted ahead of a waiter that could run (FIFO);
//! - refusals and timeouts carry the 6.6 error for the request;
//! - at the end, releasing everything and polling far ahead leaves nothing in flight and
//!   nobody waiting.
#![allow(clippy::panic, reason = "a broken invariant is the crash the fuzzer reports")]

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Decision, DisableReason, Lease, LeaseId, LeaseRequest, Outcome, PoolConfig, PoolEvent,
    Strategy, TokenId, TokenPool, TokenRecord, TokenState, Work,
};
use crate::secret::Secret;
use crate::Error;

/// Reads bytes from the input, then zeros.
struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The caller side: held leases and waiting requests.
struct Harness {
    pool: TokenPool,
    now: u64,
    held: Vec<Lease>,
    /// Waiter key -> (request, deadline).
    waiting: BTreeMap<u64, (LeaseRequest, u64)>,
    seen_leases: BTreeSet<LeaseId>,
    next_key: u64,
}

fn limit(b: u8) -> Option<u32> {
    match b % 5 {
        0 => None,
        n => Some(u32::from(n) - 1),
    }
}

fn outcome(b: u8, x: u8) -> Outcome {
    let ms = u64::from(x) * 500;
    // Benign outcomes weigh more, so tokens stay in service long enough to fill up.
    match b % 16 {
        0 | 11 | 12 => Outcome::Success,
        1 => Outcome::ContentViolation,
        2 => Outcome::RateLimited { retry_after_ms: ms },
        3 => Outcome::QuotaExhausted { resets_at_ms: ms * 4 },
        4 => Outcome::HeavyLoad,
        5 => Outcome::Cloudflare { cooldown_ms: ms },
        6 => Outcome::CountryUnsupported,
        7 => Outcome::TokenInvalid,
        8 => Outcome::TokenExpired,
        9 => Outcome::Failure,
        _ => Outcome::Abandoned,
    }
}

impl Harness {
    /// Checks a lease the pool just handed out.
    fn granted(&mut self, lease: Lease, req: LeaseRequest) {
        assert_eq!(lease.work, req.work, "lease of the wrong kind");
        assert!(self.seen_leases.insert(lease.id), "lease id {:?} handed out twice", lease.id);
        let record = self.pool.get(lease.token);
        let Some(record) = record else { panic!("lease on unknown token {}", lease.token) };
        match req.token {
            // A pinned request (an accepted task polling again) may use a cooling or
            // non-fatally disabled token, but only the one it names.
            Some(token) => {
                assert_eq!(lease.token, token, "pinned lease on another token");
                assert!(
                    !matches!(
                        record.state,
                        TokenState::Disabled(DisableReason::Invalid | DisableReason::Expired)
                    ),
                    "pinned lease on a dead token"
                );
            }
            None => {
                assert!(!record.state.is_disabled(), "lease on a disabled token");
                assert_eq!(
                    record.state.at(self.now),
                    TokenState::Active,
                    "lease on a waiting token"
                );
            }
        }
        assert!(!record.is_expired(self.now), "lease on an expired token");
        assert!(record.enabled_for(req.work), "lease on a token not enabled for the work");
        assert!(record.pro || !req.pro, "Pro lease on a non-Pro token");
        let (image, video) = self.pool.in_flight(lease.token);
        let used = if req.work == Work::Image { image } else { video };
        if let Some(max) = record.limit(req.work) {
            assert!(used <= max, "limit exceeded on {}: {used} > {max}", lease.token);
        }
        assert_eq!(lease.credentials.access_token, record.access_token);
        self.held.push(lease);
    }

    /// Checks the events of a `release` or `poll`.
    fn events(&mut self, events: Vec<PoolEvent>) {
        for event in events {
            match event {
                PoolEvent::Granted { waiter, lease } => {
                    let Some((req, _)) = self.waiting.remove(&waiter) else {
                        panic!("grant for waiter {waiter}, who is not waiting")
                    };
                    self.granted(lease, req);
                }
                PoolEvent::TimedOut { waiter, error } => {
                    let Some((req, _)) = self.waiting.remove(&waiter) else {
                        panic!("timeout for waiter {waiter}, who is not waiting")
                    };
                    assert!(
                        matches!(error, Error::NoAvailableTokens { work, .. } if work == req.token_work()),
                        "timeout error {error:?} for {req:?}"
                    );
                }
            }
        }
        // Nobody left waiting who could run now, or whose deadline passed.
        for (key, (req, deadline)) in &self.waiting {
            assert!(!self.pool.can_serve_now(*req, self.now), "waiter {key} could run");
            assert!(*deadline > self.now, "waiter {key} past its deadline");
        }
    }

    fn request(&mut self, req: LeaseRequest, random: u64) {
        let key = self.next_key;
        self.next_key = self.next_key.wrapping_add(1);
        let ahead = self.waiting.values().any(|(w, _)| self.pool.can_serve_now(*w, self.now));
        let could_now = self.pool.can_serve_now(req, self.now);
        match self.pool.request(self.now, key, req, random) {
            Decision::Granted(lease) => {
                assert!(!ahead, "granted ahead of a waiter that could run");
                self.granted(lease, req);
            }
            Decision::Queued { deadline_ms } => {
                assert!(deadline_ms >= self.now);
                self.waiting.insert(key, (req, deadline_ms));
            }
            Decision::Refused(Error::NoAvailableTokens { work, .. }) => {
                assert_eq!(work, req.token_work());
                assert!(!could_now, "refused although a token could take it");
            }
            Decision::Refused(Error::Overloaded { .. }) => {
                assert!(self.pool.waiting() >= self.pool.config().max_waiters);
            }
            Decision::Refused(other) => panic!("unexpected refusal {other:?}"),
        }
    }

    fn release(&mut self, index: usize, outcome: Outcome) {
        if self.held.is_empty() {
            return;
        }
        let lease = self.held.swap_remove(index % self.held.len());
        let events = self.pool.release(self.now, lease, outcome);
        self.events(events);
    }

    /// Counters equal the model after every step.
    fn check_counts(&self) {
        assert_eq!(self.pool.total_in_flight() as usize, self.held.len());
        assert_eq!(self.pool.waiting(), self.waiting.len());
        for record in self.pool.records() {
            let count = |work| {
                self.held.iter().filter(|l| l.token == record.id && l.work == work).count() as u32
            };
            assert_eq!(
                self.pool.in_flight(record.id),
                (count(Work::Image), count(Work::Video)),
                "in-flight counts of {}",
                record.id
            );
        }
        if !self.waiting.is_empty() {
            assert!(self.pool.next_wakeup().is_some(), "waiters but no wakeup");
        }
    }

    fn admin(&mut self, b: &mut Bytes<'_>) {
        let ids: Vec<TokenId> = self.pool.records().map(|r| r.id).collect();
        let pick = b.byte();
        let Some(id) = ids.get(usize::from(pick) % ids.len().max(1)).copied() else { return };
        match b.byte() % 6 {
            0 => {
                self.pool.enable(id);
            }
            1 => {
                self.pool.disable(id, DisableReason::Manual);
            }
            2 => {
                self.pool.remove(id);
            }
            3 => {
                let (image, video) = (limit(b.byte()), limit(b.byte()));
                self.pool.update(id, |r| {
                    r.image_concurrency = image;
                    r.video_concurrency = video;
                });
            }
            4 => {
                let expiry = self.now.saturating_add(u64::from(b.byte()) * 1000);
                self.pool.set_credentials(
                    id,
                    Secret::new(format!("at-{pick}")),
                    Some(expiry),
                    None,
                );
            }
            _ => {
                let Some(record) = self.pool.get(id).cloned() else { return };
                // Reload the persisted record under the same id (leases stay counted).
                self.pool.insert_with_id(record);
            }
        }
        let events = self.pool.poll(self.now);
        self.events(events);
    }
}

/// Runs the operations encoded in `data` and asserts the pool's invariants (module docs).
pub(crate) fn check_ops(data: &[u8]) {
    let mut b = Bytes { data };
    let flags = b.byte();
    let config = PoolConfig {
        strategy: if flags & 1 == 0 { Strategy::Random } else { Strategy::RoundRobin },
        error_threshold: u32::from(flags >> 1 & 3),
        max_wait_ms: if flags & 8 == 0 { 60_000 } else { u64::from(b.byte()) * 100 },
        max_waiters: usize::from(b.byte() % 8),
        default_cooldown_ms: u64::from(b.byte()) * 100,
    };
    let mut h = Harness {
        pool: TokenPool::new(config),
        now: 1_700_000_000_000,
        held: Vec::new(),
        waiting: BTreeMap::new(),
        seen_leases: BTreeSet::new(),
        next_key: 0,
    };
    let mut steps = 0usize;
    while !b.is_empty() && steps < 512 {
        steps += 1;
        match b.byte() % 8 {
            0 => {
                let f = b.byte();
                let mut record = TokenRecord::new(Secret::new(format!("at-{steps}")));
                record.pro = f & 1 != 0;
                record.image_enabled = f & 2 == 0;
                record.video_enabled = f & 4 == 0;
                record.image_concurrency = limit(b.byte());
                record.video_concurrency = limit(b.byte());
                record.proxy_url = match f >> 3 & 3 {
                    0 => None,
                    n => Some(format!("http://proxy{n}:8080")),
                };
                record.expires_at_ms = match f >> 5 {
                    0 => Some(h.now.saturating_add(u64::from(b.byte()) * 1000)),
                    1 => Some(h.now.saturating_sub(1)),
                    _ => None,
                };
                let id = h.pool.add(record);
                assert_eq!(h.pool.in_flight(id), (0, 0));
                let events = h.pool.poll(h.now);
                h.events(events);
            }
            1 | 2 => {
                let f = b.byte();
                let work = if f & 1 == 0 { Work::Image } else { Work::Video };
                let random = b.u64();
                h.request(
                    LeaseRequest {
                        work,
                        pro: f & 2 != 0,
                        token: (f & 4 != 0).then_some(TokenId(u64::from(f >> 3) % 4)),
                    },
                    random,
                );
            }
            3 | 4 => {
                let index = usize::from(b.byte());
                let outcome = outcome(b.byte(), b.byte());
                h.release(index, outcome);
            }
            5 => {
                let step = u64::from(b.byte());
                h.now =
                    h.now.saturating_add(if step & 0x80 == 0 { step * 100 } else { step * 1000 });
                if let Some(at) = h.pool.next_wakeup() {
                    if at <= h.now {
                        let events = h.pool.poll(h.now);
                        h.events(events);
                    }
                }
            }
            6 => {
                let key = h.next_key.saturating_sub(u64::from(b.byte() % 8) + 1);
                let was = h.waiting.remove(&key).is_some();
                assert_eq!(h.pool.cancel_waiter(key), was, "cancel_waiter({key})");
            }
            _ => h.admin(&mut b),
        }
        h.check_counts();
    }
    // Wind down: release everything, then let every wait end.
    while !h.held.is_empty() || !h.waiting.is_empty() {
        if h.held.is_empty() {
            h.now = h.now.saturating_add(h.pool.config().max_wait_ms).saturating_add(1);
            let events = h.pool.poll(h.now);
            h.events(events);
        } else {
            h.release(0, Outcome::Abandoned);
        }
        h.check_counts();
    }
    assert_eq!(h.pool.total_in_flight(), 0);
    assert_eq!(h.pool.waiting(), 0);
    assert_eq!(h.pool.next_wakeup(), None);
    for record in h.pool.records() {
        assert_eq!(h.pool.in_flight(record.id), (0, 0));
    }
}
