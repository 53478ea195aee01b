//! The token pool policy (sora-backend.md 5, 4.4; decisions 15-17): which token takes which
//! work, when, and what happened on it afterwards.
//!
//! Sans-IO: the time comes in as `now_ms` (unix ms, UTC), random bits come in as an argument,
//! and nothing here locks; the shell keeps one [`TokenPool`] behind one lock (or in one
//! actor). What it fixes over the reference:
//!
//! - a slot is **reserved when the token is picked** (B4) and handed out as a [`Lease`] that is
//!   released exactly once, by value (B3); a second release has no effect;
//! - every video-like operation takes a [`Work::Video`] slot (B9);
//! - a used-up quota is [`TokenState::QuotaWait`], which ends by itself (B6); every disable has
//!   its own [`DisableReason`] (B16);
//! - a token without a known expiry is usable, and expiry is compared in UTC ms (B17);
//! - a request waits in a bounded FIFO queue (default 60 s) instead of failing at once, and
//!   then fails with the exact "No available tokens ..." texts of 6.6.
//!
//! ## Call order
//!
//! 1. [`TokenPool::request`] -> [`Decision::Granted`] (use the lease), [`Decision::Queued`]
//!    (wait for a [`PoolEvent`] with the same waiter key) or [`Decision::Refused`] (answer the
//!    client with the error).
//! 2. [`TokenPool::release`] with the lease and its [`Outcome`], exactly once per lease. It
//!    returns events for waiters that got a slot.
//! 3. [`TokenPool::poll`] at [`TokenPool::next_wakeup`] (and after admin changes): grants after
//!    cooldowns end, and [`PoolEvent::TimedOut`] for waits that ended without a token.
//!
//! Prompt enhancement leases [`Work::Video`]; a caller that needs the enhancement text of 6.6
//! turns a refusal's [`crate::error::TokenWork::Video`] into
//! [`crate::error::TokenWork::PromptEnhance`].
//!
//! ```
//! use sora2api_core::pool::{
//!     Decision, LeaseRequest, Outcome, PoolConfig, PoolEvent, TokenPool, TokenRecord,
//!     TokenState, Work,
//! };
//! use sora2api_core::secret::Secret;
//!
//! let mut pool = TokenPool::new(PoolConfig::default());
//! let mut record = TokenRecord::new(Secret::new("eyJ...access"));
//! record.video_concurrency = Some(1);
//! let id = pool.add(record);
//!
//! let video = LeaseRequest { work: Work::Video, pro: false, token: None };
//! let now = 1_700_000_000_000;
//! let Decision::Granted(lease) = pool.request(now, 1, video, 42) else { unreachable!() };
//! assert_eq!(lease.token, id);
//! assert_eq!(pool.in_flight(id), (0, 1));
//!
//! // The only slot is taken: the second task waits (FIFO, at most 60 s).
//! assert_eq!(pool.request(now, 2, video, 7), Decision::Queued { deadline_ms: now + 60_000 });
//! assert_eq!(pool.next_wakeup(), Some(now + 60_000));
//!
//! // The first task hits a 429: the token cools down 30 s, and the waiter gets it afterwards.
//! let events = pool.release(now + 1_000, lease, Outcome::RateLimited { retry_after_ms: 30_000 });
//! assert!(events.is_empty());
//! assert_eq!(pool.get(id).map(|r| r.state), Some(TokenState::CoolingDown { until_ms: now + 31_000 }));
//! assert_eq!(pool.next_wakeup(), Some(now + 31_000));
//!
//! let mut events = pool.poll(now + 31_000);
//! let Some(PoolEvent::Granted { waiter: 2, lease }) = events.pop() else { unreachable!() };
//! assert!(pool.release(now + 90_000, lease, Outcome::Success).is_empty());
//! assert_eq!(pool.total_in_flight(), 0);
//! assert_eq!(pool.next_wakeup(), None);
//! ```

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod invariants;
mod record;
mod repr;
mod token_pool;
mod types;

pub use record::{
    mask_proxy, DisableReason, TokenRecord, TokenRecordError, TokenState, TokenStats, TokenSummary,
    DAY_MS,
};
pub use token_pool::TokenPool;
pub use types::{
    Credentials, Decision, Lease, LeaseId, LeaseRequest, Outcome, PoolConfig, PoolEvent, Strategy,
    TokenId, Work,
};

#[cfg(test)]
mod tests;
