//! [`TokenPool`]: selection that reserves, the waiter queue, outcomes, admin changes.

use std::collections::{BTreeMap, VecDeque};

use super::record::{mask_proxy, DisableReason, TokenRecord, TokenState, TokenSummary};
use super::types::{
    Credentials, Decision, Lease, LeaseId, LeaseRequest, Outcome, PoolConfig, PoolEvent, Strategy,
    TokenId, Work,
};
use crate::secret::Secret;
use crate::Error;

/// `Retry-After` when no token can ever take the work (all disabled, expired or unfit).
const RETRY_AFTER_NEVER_SECS: u32 = 60;
/// `Retry-After` when tokens exist but all their slots are busy.
const RETRY_AFTER_BUSY_SECS: u32 = 5;
/// `Retry-After` when the waiter queue is full.
const RETRY_AFTER_OVERLOADED_SECS: u32 = 5;

/// One token and its reserved slots.
#[derive(Debug)]
struct Slot {
    record: TokenRecord,
    /// Leases in flight, indexed by [`Work::index`]; always equal to the outstanding leases on
    /// this token of that kind.
    in_flight: [u32; 2],
}

/// A request waiting for a slot.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    key: u64,
    req: LeaseRequest,
    deadline_ms: u64,
}

/// The token pool policy: which token takes which work, when, and what an outcome does to it.
///
/// Sans-IO: every call takes the time (`now_ms`, unix ms) and, for selection, random bits; it
/// holds no lock and reads no clock. The shell keeps one pool behind one lock (or in one
/// actor) and feeds it. See the [module docs](super) for the call order.
#[derive(Debug)]
pub struct TokenPool {
    config: PoolConfig,
    tokens: BTreeMap<TokenId, Slot>,
    /// Every lease handed out and not yet released: a second release of the same lease (or a
    /// forged one) finds nothing and has no effect (B3).
    leases: BTreeMap<LeaseId, (TokenId, Work)>,
    waiters: VecDeque<Waiter>,
    next_token_id: u64,
    next_lease_id: u64,
    /// The last token picked per work kind, for round robin.
    rr_last: [Option<TokenId>; 2],
    /// Pseudo-random state for picks outside `request` (grants to waiters), mixed with every
    /// caller-given random value. Deterministic: no RNG is read.
    rng: u64,
    /// An admin change or a fairness hold happened: waiters may be servable now.
    rescan: bool,
}

/// splitmix64: one step of a deterministic mixer for the internal pick state.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `Retry-After` seconds for a request whose earliest possible start is `earliest`.
fn retry_after_secs(now_ms: u64, earliest: Option<u64>) -> u32 {
    match earliest {
        None => RETRY_AFTER_NEVER_SECS,
        Some(at) if at <= now_ms => RETRY_AFTER_BUSY_SECS,
        Some(at) => {
            let secs = at.saturating_sub(now_ms).div_ceil(1000).max(1);
            u32::try_from(secs).unwrap_or(u32::MAX)
        }
    }
}

/// The "No available tokens ..." error for `req`.
fn no_tokens(req: LeaseRequest, now_ms: u64, earliest: Option<u64>) -> Error {
    Error::NoAvailableTokens {
        work: req.token_work(),
        retry_after_secs: retry_after_secs(now_ms, earliest),
    }
}

/// The later of the current wait and a new one; `quota` says the new one is a quota wait.
fn extend_wait(current: TokenState, until_ms: u64, quota: bool) -> TokenState {
    let new = if quota {
        TokenState::QuotaWait { until_ms }
    } else {
        TokenState::CoolingDown { until_ms }
    };
    match current {
        TokenState::Disabled(_) => current,
        TokenState::Active => new,
        TokenState::CoolingDown { until_ms: old } | TokenState::QuotaWait { until_ms: old } => {
            if until_ms > old || (quota && until_ms == old) {
                new
            } else {
                current
            }
        }
    }
}

// === impl Slot ===

impl Slot {
    /// Whether the token could ever take `req` (without an admin change or a refresh).
    fn fits(&self, req: LeaseRequest, now_ms: u64) -> bool {
        let r = &self.record;
        let state_ok = match req.token {
            // Polling an accepted task is not new work: only a dead token stops it.
            Some(token) => {
                r.id == token
                    && !matches!(
                        r.state,
                        TokenState::Disabled(DisableReason::Invalid | DisableReason::Expired)
                    )
            }
            None => !r.state.is_disabled(),
        };
        state_ok
            && !r.is_expired(now_ms)
            && r.enabled_for(req.work)
            && (r.pro || !req.pro)
            && r.limit(req.work) != Some(0)
    }

    /// Whether the token can take `req` right now.
    fn can_take(&self, req: LeaseRequest, now_ms: u64) -> bool {
        let usable = req.token.is_some() || self.record.state.at(now_ms) == TokenState::Active;
        self.fits(req, now_ms)
            && usable
            && self.record.limit(req.work).is_none_or(|limit| self.in_flight_of(req.work) < limit)
    }

    /// The earliest time the token could take `req` (`now_ms` when only busy), if ever.
    fn earliest(&self, req: LeaseRequest, now_ms: u64) -> Option<u64> {
        if !self.fits(req, now_ms) {
            return None;
        }
        let at = self.record.state.at(now_ms).until_ms().unwrap_or(now_ms).max(now_ms);
        match self.record.expires_at_ms {
            Some(expiry) if expiry <= at => None,
            _ => Some(at),
        }
    }

    fn in_flight_of(&self, work: Work) -> u32 {
        self.in_flight.get(work.index()).copied().unwrap_or(0)
    }
}

// === impl TokenPool ===

impl TokenPool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        TokenPool {
            config,
            tokens: BTreeMap::new(),
            leases: BTreeMap::new(),
            waiters: VecDeque::new(),
            next_token_id: 1,
            next_lease_id: 1,
            rr_last: [None; 2],
            rng: 0x853c_49e6_748f_ea9b,
            rescan: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Replaces the settings (for example the strategy, from the admin API). Waiting requests
    /// keep their deadlines.
    pub fn set_config(&mut self, config: PoolConfig) {
        self.config = config;
        self.touched();
    }

    // --- selection ---

    /// Asks for a slot for `req` on behalf of `waiter` (the caller's key, for example a hash
    /// of the task id; one wait per key: asking again replaces the earlier wait).
    ///
    /// - [`Decision::Granted`]: a token had a spare slot; it is reserved now (B4).
    /// - [`Decision::Queued`]: some token could take it later (busy slots, a cooldown or a
    ///   quota wait ending before the deadline): wait for the [`PoolEvent`] with this key from
    ///   [`release`](Self::release) or [`poll`](Self::poll). Waiters are served first come,
    ///   first served, so a new request queues behind a waiter that could run.
    /// - [`Decision::Refused`]: no token can take it before the wait would end (all
    ///   disabled, expired, not enabled for the work, not Pro, or waiting too long):
    ///   [`Error::NoAvailableTokens`] with the 6.6 text; or the queue is full:
    ///   [`Error::Overloaded`].
    ///
    /// `random` picks the token under [`Strategy::Random`] (uniform over the tokens that can
    /// take the work now).
    pub fn request(
        &mut self,
        now_ms: u64,
        waiter: u64,
        req: LeaseRequest,
        random: u64,
    ) -> Decision {
        self.settle(now_ms);
        self.rng ^= random;
        self.waiters.retain(|w| w.key != waiter);
        self.rescan &= !self.waiters.is_empty();
        let hold = self.servable_waiter(now_ms);
        if hold {
            // Earlier waiters could run (a cooldown ended, an admin change): they go first at
            // the next poll, which next_wakeup asks for at once.
            self.rescan = true;
        } else if let Some(lease) =
            self.pick(req, now_ms, random).and_then(|id| self.grant(id, req, now_ms))
        {
            return Decision::Granted(lease);
        }
        let earliest = self.earliest(req, now_ms);
        let deadline_ms = now_ms.saturating_add(self.config.max_wait_ms);
        let behind_fifo = hold && self.can_serve_now(req, now_ms);
        let could_wait =
            self.config.max_wait_ms > 0 && earliest.is_some_and(|at| at <= deadline_ms);
        if !behind_fifo && !could_wait {
            return Decision::Refused(no_tokens(req, now_ms, earliest));
        }
        if self.waiters.len() >= self.config.max_waiters {
            return Decision::Refused(Error::Overloaded {
                what: "requests waiting for a token",
                retry_after_secs: RETRY_AFTER_OVERLOADED_SECS,
            });
        }
        self.waiters.push_back(Waiter { key: waiter, req, deadline_ms });
        Decision::Queued { deadline_ms }
    }

    /// Gives a lease back, exactly once (B3): frees its slot, applies `outcome` to the token
    /// (see [`Outcome`]), and grants waiting requests that can run now, first come first
    /// served among those that fit (a waiter that cannot be served does not block later ones
    /// of another kind). A lease this pool does not know (already released, or forged) has no
    /// effect.
    pub fn release(&mut self, now_ms: u64, lease: Lease, outcome: Outcome) -> Vec<PoolEvent> {
        self.settle(now_ms);
        if let Some((token, work)) = self.leases.remove(&lease.id) {
            if let Some(slot) = self.tokens.get_mut(&token) {
                if let Some(n) = slot.in_flight.get_mut(work.index()) {
                    *n = n.saturating_sub(1);
                }
            }
            self.apply(now_ms, token, work, outcome);
        }
        self.serve(now_ms)
    }

    /// Withdraws a waiting request; `true` if it was waiting. It gets no event afterwards.
    pub fn cancel_waiter(&mut self, waiter: u64) -> bool {
        let before = self.waiters.len();
        self.waiters.retain(|w| w.key != waiter);
        self.waiters.len() != before
    }

    /// Advances time: cooldowns and quota waits that ended make their tokens active again;
    /// waiters that can run now are granted; waiters past their deadline, or that no token can
    /// serve before it, get [`PoolEvent::TimedOut`] with the [`Error::NoAvailableTokens`]
    /// error. Call it at [`next_wakeup`](Self::next_wakeup) and after admin changes.
    pub fn poll(&mut self, now_ms: u64) -> Vec<PoolEvent> {
        self.settle(now_ms);
        self.serve(now_ms)
    }

    /// When to call [`poll`](Self::poll) next (unix ms), if anything waits: the earliest
    /// waiter deadline or cooldown/quota-wait end. `Some(0)` means "now" (an admin change or
    /// an ended cooldown may let waiters run). `None` when nobody waits.
    pub fn next_wakeup(&self) -> Option<u64> {
        if self.waiters.is_empty() {
            return None;
        }
        if self.rescan {
            return Some(0);
        }
        let deadline = self.waiters.iter().map(|w| w.deadline_ms).min();
        let wait_end = self.tokens.values().filter_map(|s| s.record.state.until_ms()).min();
        match (deadline, wait_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Requests waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// In-flight leases on token `id`: `(image, video)`; `(0, 0)` for an unknown id.
    pub fn in_flight(&self, id: TokenId) -> (u32, u32) {
        self.tokens
            .get(&id)
            .map_or((0, 0), |s| (s.in_flight_of(Work::Image), s.in_flight_of(Work::Video)))
    }

    /// Every lease not yet released (leases on removed tokens included).
    pub fn total_in_flight(&self) -> u32 {
        u32::try_from(self.leases.len()).unwrap_or(u32::MAX)
    }

    // --- admin and lifecycle ---

    /// Adds a token under the next id (ids increase; `record.id` is overwritten).
    pub fn add(&mut self, mut record: TokenRecord) -> TokenId {
        let id = TokenId(self.next_token_id);
        record.id = id;
        self.insert_with_id(record);
        id
    }

    /// Adds or replaces a token under `record.id` (for reloading persisted records); returns
    /// the replaced record. Leases already out on that id stay counted.
    pub fn insert_with_id(&mut self, record: TokenRecord) -> Option<TokenRecord> {
        let id = record.id;
        self.next_token_id = self.next_token_id.max(id.0.saturating_add(1));
        let mut in_flight = [0u32; 2];
        for (token, work) in self.leases.values() {
            if *token == id {
                if let Some(n) = in_flight.get_mut(work.index()) {
                    *n = n.saturating_add(1);
                }
            }
        }
        self.touched();
        self.tokens.insert(id, Slot { record, in_flight }).map(|old| old.record)
    }

    /// The token `id`, as stored (a cooldown that ended shows until the next call with a
    /// time; use [`TokenState::at`] or [`snapshot`](Self::snapshot)).
    pub fn get(&self, id: TokenId) -> Option<&TokenRecord> {
        self.tokens.get(&id).map(|s| &s.record)
    }

    /// Every token, by id.
    pub fn records(&self) -> impl Iterator<Item = &TokenRecord> + '_ {
        self.tokens.values().map(|s| &s.record)
    }

    /// Changes token `id` with `edit` (its id cannot change); `false` if there is no such
    /// token. Lowering a limit below the leases in flight takes effect as they are released.
    pub fn update(&mut self, id: TokenId, edit: impl FnOnce(&mut TokenRecord)) -> bool {
        let Some(slot) = self.tokens.get_mut(&id) else { return false };
        edit(&mut slot.record);
        slot.record.id = id;
        self.touched();
        true
    }

    /// Removes token `id`. Its leases in flight stay valid until released.
    pub fn remove(&mut self, id: TokenId) -> Option<TokenRecord> {
        self.touched();
        self.tokens.remove(&id).map(|s| s.record)
    }

    /// Puts token `id` back in service: state active, error streak reset.
    pub fn enable(&mut self, id: TokenId) -> bool {
        self.update(id, |r| {
            r.state = TokenState::Active;
            r.stats.consecutive_errors = 0;
        })
    }

    /// Takes token `id` out of service with `reason`.
    pub fn disable(&mut self, id: TokenId, reason: DisableReason) -> bool {
        self.update(id, |r| r.state = TokenState::Disabled(reason))
    }

    /// Stores a refreshed access token and its expiry (and the refresh token if the refresh
    /// rotated it; `None` keeps the current one). A token disabled as invalid or expired is
    /// active again; other disables stay.
    pub fn set_credentials(
        &mut self,
        id: TokenId,
        access_token: Secret,
        expires_at_ms: Option<u64>,
        rotated_refresh_token: Option<Secret>,
    ) -> bool {
        self.update(id, |r| {
            r.access_token = access_token;
            r.expires_at_ms = expires_at_ms;
            if let Some(rt) = rotated_refresh_token {
                r.refresh_token = Some(rt);
            }
            if matches!(
                r.state,
                TokenState::Disabled(DisableReason::Invalid | DisableReason::Expired)
            ) {
                r.state = TokenState::Active;
            }
        })
    }

    /// Every token for the admin API, secrets masked, state as of `now_ms`, with in-flight
    /// counts.
    pub fn snapshot(&self, now_ms: u64) -> Vec<TokenSummary> {
        self.tokens
            .values()
            .map(|s| {
                let r = &s.record;
                TokenSummary {
                    id: r.id,
                    access_token: r.access_token.masked(),
                    session_token: r.session_token.as_ref().map(Secret::masked),
                    refresh_token: r.refresh_token.as_ref().map(Secret::masked),
                    client_id: r.client_id.clone(),
                    proxy_url: r.proxy_url.as_deref().map(mask_proxy),
                    email: r.email.clone(),
                    plan_type: r.plan_type.clone(),
                    pro: r.pro,
                    image_enabled: r.image_enabled,
                    video_enabled: r.video_enabled,
                    image_concurrency: r.image_concurrency,
                    video_concurrency: r.video_concurrency,
                    state: r.state.at(now_ms),
                    expired: r.is_expired(now_ms),
                    expires_at_ms: r.expires_at_ms,
                    remark: r.remark.clone(),
                    in_flight_image: s.in_flight_of(Work::Image),
                    in_flight_video: s.in_flight_of(Work::Video),
                    stats: r.stats,
                }
            })
            .collect()
    }

    // --- internals ---

    /// An admin change: waiting requests may be servable (or unservable) now.
    fn touched(&mut self) {
        self.rescan |= !self.waiters.is_empty();
    }

    /// Ended cooldowns and quota waits become `Active` (the lazy transition).
    fn settle(&mut self, now_ms: u64) {
        for slot in self.tokens.values_mut() {
            slot.record.state = slot.record.state.at(now_ms);
        }
    }

    /// Whether some token can take `req` right now.
    pub(crate) fn can_serve_now(&self, req: LeaseRequest, now_ms: u64) -> bool {
        self.tokens.values().any(|s| s.can_take(req, now_ms))
    }

    /// Whether some waiting request could be granted right now (checked once per class).
    fn servable_waiter(&self, now_ms: u64) -> bool {
        let mut seen = [false; 4];
        for w in &self.waiters {
            let first_of_class = match w.req.class().and_then(|c| seen.get_mut(c)) {
                Some(s) => !std::mem::replace(s, true),
                None => true,
            };
            if first_of_class && self.can_serve_now(w.req, now_ms) {
                return true;
            }
        }
        false
    }

    /// The earliest time some token could take `req`, if any ever can.
    fn earliest(&self, req: LeaseRequest, now_ms: u64) -> Option<u64> {
        self.tokens.values().filter_map(|s| s.earliest(req, now_ms)).min()
    }

    /// Picks a token that can take `req` now, by the configured strategy.
    fn pick(&mut self, req: LeaseRequest, now_ms: u64, random: u64) -> Option<TokenId> {
        let candidates = self.tokens.values().filter(|s| s.can_take(req, now_ms));
        let chosen = match self.config.strategy {
            Strategy::Random => {
                let ids: Vec<TokenId> = candidates.map(|s| s.record.id).collect();
                // Multiply-shift: uniform over the candidates for uniform `random`.
                let len = u128::try_from(ids.len()).unwrap_or(0);
                let index = (u128::from(random).saturating_mul(len) >> 64) as usize;
                ids.get(index).copied()
            }
            Strategy::RoundRobin => {
                let last = self.rr_last.get(req.work.index()).copied().flatten();
                let mut first = None;
                let mut next = None;
                for slot in candidates {
                    let id = slot.record.id;
                    first = first.or(Some(id));
                    if last.is_none_or(|last| id > last) {
                        next = Some(id);
                        break;
                    }
                }
                next.or(first)
            }
        };
        if let (Some(id), Some(last)) = (chosen, self.rr_last.get_mut(req.work.index())) {
            *last = Some(id);
        }
        chosen
    }

    /// Reserves a slot of `req.work` on token `id` and hands out the lease.
    fn grant(&mut self, id: TokenId, req: LeaseRequest, now_ms: u64) -> Option<Lease> {
        let slot = self.tokens.get_mut(&id)?;
        let n = slot.in_flight.get_mut(req.work.index())?;
        *n = n.saturating_add(1);
        slot.record.stats.use_count = slot.record.stats.use_count.saturating_add(1);
        slot.record.stats.last_used_ms = Some(now_ms);
        let lease_id = LeaseId(self.next_lease_id);
        self.next_lease_id = self.next_lease_id.saturating_add(1);
        self.leases.insert(lease_id, (id, req.work));
        Some(Lease {
            id: lease_id,
            token: id,
            work: req.work,
            credentials: Credentials {
                access_token: slot.record.access_token.clone(),
                session_token: slot.record.session_token.clone(),
                proxy: slot.record.proxy_url.clone(),
            },
        })
    }

    /// What `outcome` of a `work` lease does to token `id` (gone: nothing).
    fn apply(&mut self, now_ms: u64, id: TokenId, work: Work, outcome: Outcome) {
        let default_cooldown = self.config.default_cooldown_ms;
        let threshold = self.config.error_threshold;
        let or_default = |ms: u64| if ms == 0 { default_cooldown } else { ms };
        if let Outcome::Cloudflare { cooldown_ms } = outcome {
            // The egress (the proxy, or the direct route) is challenged: every token on it
            // cools down, not only this one.
            let until = now_ms.saturating_add(or_default(cooldown_ms));
            let egress = self.tokens.get(&id).map(|s| s.record.proxy_url.clone());
            if let Some(egress) = egress {
                for slot in self.tokens.values_mut() {
                    if slot.record.proxy_url == egress {
                        slot.record.state = extend_wait(slot.record.state, until, false);
                    }
                }
            }
        }
        let Some(record) = self.tokens.get_mut(&id).map(|s| &mut s.record) else { return };
        let disable = |record: &mut TokenRecord, reason| {
            if !record.state.is_disabled() {
                record.state = TokenState::Disabled(reason);
            }
        };
        match outcome {
            Outcome::Success => record.stats.success(now_ms, work),
            Outcome::ContentViolation | Outcome::Abandoned => {}
            Outcome::RateLimited { retry_after_ms } => {
                record.stats.error(now_ms, false);
                let until = now_ms.saturating_add(or_default(retry_after_ms));
                record.state = extend_wait(record.state, until, false);
            }
            Outcome::QuotaExhausted { resets_at_ms } => {
                let until = if resets_at_ms > now_ms {
                    resets_at_ms
                } else {
                    now_ms.saturating_add(default_cooldown)
                };
                record.state = extend_wait(record.state, until, true);
            }
            Outcome::HeavyLoad | Outcome::Cloudflare { .. } => record.stats.error(now_ms, false),
            Outcome::CountryUnsupported => {
                record.stats.error(now_ms, false);
                disable(record, DisableReason::Country);
            }
            Outcome::TokenInvalid => {
                record.stats.error(now_ms, false);
                disable(record, DisableReason::Invalid);
            }
            Outcome::TokenExpired => {
                record.stats.error(now_ms, false);
                disable(record, DisableReason::Expired);
            }
            Outcome::Failure => {
                record.stats.error(now_ms, true);
                if threshold > 0 && record.stats.consecutive_errors >= threshold {
                    disable(record, DisableReason::ErrorLimit);
                }
            }
        }
    }

    /// Grants waiters that can run now (FIFO among those that fit) and ends the waits that
    /// can no longer succeed.
    fn serve(&mut self, now_ms: u64) -> Vec<PoolEvent> {
        self.rescan = false;
        let mut events = Vec::new();
        if self.waiters.is_empty() {
            return events;
        }
        // Per request class (work x pro): whether a pick already failed (capacity only shrinks
        // during this pass), and the earliest time a token could serve it.
        let mut exhausted = [false; 4];
        let mut earliest: [Option<Option<u64>>; 4] = [None; 4];
        let queue = std::mem::take(&mut self.waiters);
        let mut kept = VecDeque::with_capacity(queue.len());
        for w in queue {
            let class = w.req.class();
            if !class.and_then(|c| exhausted.get(c).copied()).unwrap_or(false) {
                let random = splitmix(&mut self.rng);
                match self.pick(w.req, now_ms, random).and_then(|id| self.grant(id, w.req, now_ms))
                {
                    Some(lease) => {
                        events.push(PoolEvent::Granted { waiter: w.key, lease });
                        continue;
                    }
                    None => {
                        if let Some(e) = class.and_then(|c| exhausted.get_mut(c)) {
                            *e = true;
                        }
                    }
                }
            }
            let at = match class.and_then(|c| earliest.get(c).copied().flatten()) {
                Some(at) => at,
                None => {
                    let at = self.earliest(w.req, now_ms);
                    if let Some(slot) = class.and_then(|c| earliest.get_mut(c)) {
                        *slot = Some(at);
                    }
                    at
                }
            };
            if w.deadline_ms <= now_ms || at.is_none_or(|at| at > w.deadline_ms) {
                events.push(PoolEvent::TimedOut {
                    waiter: w.key,
                    error: no_tokens(w.req, now_ms, at),
                });
            } else {
                kept.push_back(w);
            }
        }
        self.waiters = kept;
        events
    }
}
