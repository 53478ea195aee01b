//! Leases: the shared token pool, queued requests and the pool service that answers them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};

use sora2api_core::machine::Input;
use sora2api_core::pool::{Decision, Lease, LeaseRequest, Outcome, PoolEvent, TokenPool};
use sora2api_core::Error;
use tokio::sync::{oneshot, watch, Notify};

use super::{driver::cancelled, lock, random_u64, Inner};
use crate::clock;

/// The pool and who waits for it, behind one lock so no grant can slip between them.
pub(super) struct PoolState {
    pub(super) pool: TokenPool,
    /// Queued requests by waiter key.
    waiters: HashMap<u64, oneshot::Sender<PoolEvent>>,
}

impl PoolState {
    pub(super) fn new(pool: TokenPool) -> Self {
        PoolState { pool, waiters: HashMap::new() }
    }

    /// Hands pool events to their waiters. A grant nobody takes any more (the waiter was
    /// aborted) is released at once, which may grant the next waiter.
    fn route(&mut self, events: Vec<PoolEvent>) {
        let mut queue = VecDeque::from(events);
        while let Some(event) = queue.pop_front() {
            let key = match &event {
                PoolEvent::Granted { waiter, .. } | PoolEvent::TimedOut { waiter, .. } => *waiter,
            };
            let unsent = match self.waiters.remove(&key) {
                Some(tx) => tx.send(event).err(),
                None => Some(event),
            };
            if let Some(PoolEvent::Granted { lease, .. }) = unsent {
                queue.extend(self.pool.release(clock::now_ms(), lease, Outcome::Abandoned));
            }
        }
    }
}

// === impl Inner (leases) ===

impl Inner {
    /// Asks the pool for a lease and, when queued, waits for the answer. `None`: the task was
    /// cancelled while waiting (it holds nothing).
    pub(super) async fn lease(
        self: &Arc<Self>,
        req: LeaseRequest,
        cancel: &mut watch::Receiver<bool>,
    ) -> Option<Input> {
        let key = self.next_waiter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, mut rx) = oneshot::channel();
        let decision = {
            let mut state = lock(&self.pool);
            let decision = state.pool.request(clock::now_ms(), key, req, random_u64());
            if matches!(decision, Decision::Queued { .. }) {
                state.waiters.insert(key, tx);
            }
            decision
        };
        match decision {
            Decision::Granted(lease) => Some(Input::Leased(lease)),
            Decision::Refused(error) => Some(Input::NoToken(error)),
            Decision::Queued { .. } => {
                self.ensure_service();
                self.wake.notify_one();
                tokio::select! {
                    event = &mut rx => Some(match event {
                        Ok(PoolEvent::Granted { lease, .. }) => Input::Leased(lease),
                        Ok(PoolEvent::TimedOut { error, .. }) => Input::NoToken(error),
                        // The sender is only dropped with the engine.
                        Err(_) => Input::NoToken(Error::Internal),
                    }),
                    () = cancelled(cancel) => {
                        {
                            let mut state = lock(&self.pool);
                            state.pool.cancel_waiter(key);
                            state.waiters.remove(&key);
                        }
                        // A grant routed before the withdrawal goes straight back.
                        if let Ok(PoolEvent::Granted { lease, .. }) = rx.try_recv() {
                            self.release(lease, Outcome::Abandoned);
                        }
                        None
                    }
                }
            }
        }
    }

    /// Gives a lease back (exactly once: it is moved in) and routes the grants it frees.
    pub(super) fn release(&self, lease: Lease, outcome: Outcome) {
        let mut state = lock(&self.pool);
        let events = state.pool.release(clock::now_ms(), lease, outcome);
        state.route(events);
        drop(state);
        // A cooldown may have started: the service's next wakeup changed.
        self.wake.notify_one();
    }

    /// Starts the pool service once.
    fn ensure_service(self: &Arc<Self>) {
        let mut service = lock(&self.service);
        if service.is_none() {
            let task = tokio::spawn(serve_pool(Arc::downgrade(self), self.wake.clone()));
            *service = Some(task.abort_handle());
        }
    }
}

/// The pool service: polls the pool at its next wakeup (and whenever woken) and routes what
/// it says to the waiting tasks. Ends with the engine.
async fn serve_pool(engine: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(inner) = engine.upgrade() else { return };
            let mut state = lock(&inner.pool);
            let events = state.pool.poll(clock::now_ms());
            state.route(events);
            state.pool.next_wakeup()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep_until(clock::instant_at(at)) => {}
                }
            }
            None => wake.notified().await,
        }
    }
}
