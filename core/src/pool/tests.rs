use super::*;
use crate::error::{no_tokens_message, TokenWork};
use crate::secret::Secret;
use crate::Error;

const NOW: u64 = 1_700_000_000_000;
const IMAGE: LeaseRequest = LeaseRequest { work: Work::Image, pro: false, token: None };
const VIDEO: LeaseRequest = LeaseRequest { work: Work::Video, pro: false, token: None };
const PRO_VIDEO: LeaseRequest = LeaseRequest { work: Work::Video, pro: true, token: None };

const IMAGE_TEXT: &str = "No available tokens for image generation. All tokens are either disabled, cooling down, locked, or expired.";
const VIDEO_TEXT: &str = "No available tokens for video generation. All tokens are either disabled, cooling down, Sora2 quota exhausted, don't support Sora2, or expired.";
const PRO_TEXT: &str = "No available Pro tokens. Pro models require a ChatGPT Pro subscription.";

fn pool_with(strategy: Strategy) -> TokenPool {
    TokenPool::new(PoolConfig { strategy, ..PoolConfig::default() })
}

fn token(edit: impl FnOnce(&mut TokenRecord)) -> TokenRecord {
    let mut record = TokenRecord::new(Secret::new("eyJhbGciOi.at-payload.sig"));
    edit(&mut record);
    record
}

fn granted(decision: Decision) -> Lease {
    match decision {
        Decision::Granted(lease) => lease,
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn refused(decision: Decision) -> Error {
    match decision {
        Decision::Refused(error) => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// xorshift64: deterministic random bits for the tests.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

// === selection ===

#[test]
fn selection_honours_the_concurrency_limits() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|r| {
        r.image_concurrency = Some(1);
        r.video_concurrency = Some(3);
    }));
    // (request, granted?) in order; the two kinds are counted apart.
    let table = [
        (IMAGE, true),
        (IMAGE, false),
        (VIDEO, true),
        (VIDEO, true),
        (VIDEO, true),
        (VIDEO, false),
        (IMAGE, false),
    ];
    let mut leases = Vec::new();
    for (n, (req, expect_grant)) in table.into_iter().enumerate() {
        match pool.request(NOW, n as u64, req, n as u64) {
            Decision::Granted(lease) => {
                assert!(expect_grant, "step {n}: granted over the limit");
                leases.push(lease);
            }
            Decision::Queued { deadline_ms } => {
                assert!(!expect_grant, "step {n}: queued with a free slot");
                assert_eq!(deadline_ms, NOW + 60_000);
            }
            Decision::Refused(e) => panic!("step {n}: refused {e:?}"),
        }
    }
    assert_eq!(pool.in_flight(id), (1, 3));
    assert_eq!(pool.total_in_flight(), 4);
    assert_eq!(pool.waiting(), 3);
    for lease in leases {
        pool.release(NOW, lease, Outcome::Abandoned);
    }
    // The waiters got the freed slots in turn; still within the limits.
    let (image, video) = pool.in_flight(id);
    assert!(image <= 1 && video <= 3, "{image} {video}");
}

#[test]
fn pro_models_only_on_pro_tokens() {
    let mut pool = pool_with(Strategy::Random);
    let plain = pool.add(token(|_| {}));
    let pro = pool.add(token(|r| r.pro = true));
    let mut rng = 7;
    let mut plain_seen = false;
    for n in 0..200 {
        let pro_lease = granted(pool.request(NOW, n, PRO_VIDEO, xorshift(&mut rng)));
        assert_eq!(pro_lease.token, pro);
        let any = granted(pool.request(NOW, n, VIDEO, xorshift(&mut rng)));
        plain_seen |= any.token == plain;
        pool.release(NOW, pro_lease, Outcome::Success);
        pool.release(NOW, any, Outcome::Success);
    }
    assert!(plain_seen, "non-Pro requests may use every token");
}

#[test]
fn unusable_tokens_are_refused_with_the_exact_texts() {
    type Edit = fn(&mut TokenRecord);
    let table: [(&str, Edit, LeaseRequest, &str); 12] = [
        ("manual", |r| r.state = TokenState::Disabled(DisableReason::Manual), IMAGE, IMAGE_TEXT),
        (
            "error limit",
            |r| r.state = TokenState::Disabled(DisableReason::ErrorLimit),
            VIDEO,
            VIDEO_TEXT,
        ),
        ("invalid", |r| r.state = TokenState::Disabled(DisableReason::Invalid), VIDEO, VIDEO_TEXT),
        (
            "expired reason",
            |r| r.state = TokenState::Disabled(DisableReason::Expired),
            IMAGE,
            IMAGE_TEXT,
        ),
        ("country", |r| r.state = TokenState::Disabled(DisableReason::Country), VIDEO, VIDEO_TEXT),
        ("expired at now", |r| r.expires_at_ms = Some(NOW), IMAGE, IMAGE_TEXT),
        ("expired before", |r| r.expires_at_ms = Some(NOW - 1), VIDEO, VIDEO_TEXT),
        ("image off", |r| r.image_enabled = false, IMAGE, IMAGE_TEXT),
        ("video off", |r| r.video_enabled = false, VIDEO, VIDEO_TEXT),
        ("not pro", |_| {}, PRO_VIDEO, PRO_TEXT),
        ("no image slots", |r| r.image_concurrency = Some(0), IMAGE, IMAGE_TEXT),
        (
            "disabled pro",
            |r| {
                r.pro = true;
                r.state = TokenState::Disabled(DisableReason::Manual)
            },
            PRO_VIDEO,
            PRO_TEXT,
        ),
    ];
    for (name, edit, req, text) in table {
        let mut pool = pool_with(Strategy::Random);
        pool.add(token(edit));
        let error = refused(pool.request(NOW, 1, req, 0));
        assert_eq!(error.envelope().error.message, text, "{name}");
        assert_eq!(error.retry_after_secs(), Some(60), "{name}");
        assert_eq!(pool.waiting(), 0, "{name}");
    }
    // The texts are the ones of error.rs.
    assert_eq!(no_tokens_message(TokenWork::Image), IMAGE_TEXT);
    assert_eq!(no_tokens_message(TokenWork::Video), VIDEO_TEXT);
    assert_eq!(no_tokens_message(TokenWork::Pro), PRO_TEXT);
    // An empty pool answers the same.
    let mut empty = pool_with(Strategy::Random);
    assert_eq!(refused(empty.request(NOW, 1, VIDEO, 0)).envelope().error.message, VIDEO_TEXT);
}

#[test]
fn expiry_is_compared_in_utc_ms_and_unknown_expiry_is_usable() {
    let table = [(None, true), (Some(NOW + 1), true), (Some(NOW), false), (Some(0), false)];
    for (expires_at_ms, usable) in table {
        let mut pool = pool_with(Strategy::Random);
        pool.add(token(|r| r.expires_at_ms = expires_at_ms));
        let decision = pool.request(NOW, 1, IMAGE, 0);
        assert_eq!(matches!(decision, Decision::Granted(_)), usable, "{expires_at_ms:?}");
    }
}

#[test]
fn random_picks_are_roughly_uniform() {
    let mut pool = pool_with(Strategy::Random);
    let ids: Vec<TokenId> = (0..4).map(|_| pool.add(token(|_| {}))).collect();
    let mut counts = [0u32; 4];
    let mut rng = 0x1234_5678;
    for n in 0..40_000 {
        let lease = granted(pool.request(NOW, n, IMAGE, xorshift(&mut rng)));
        let index = ids.iter().position(|id| *id == lease.token).unwrap();
        counts[index] += 1;
        pool.release(NOW, lease, Outcome::Abandoned);
    }
    for count in counts {
        assert!((9_000..11_000).contains(&count), "{counts:?}");
    }
}

#[test]
fn round_robin_cycles_by_id_per_work_kind() {
    let mut pool = pool_with(Strategy::RoundRobin);
    let a = pool.add(token(|_| {}));
    let b = pool.add(token(|r| r.video_enabled = false));
    let c = pool.add(token(|_| {}));
    let mut pick = |req| {
        let lease = granted(pool.request(NOW, 0, req, 0));
        let id = lease.token;
        pool.release(NOW, lease, Outcome::Success);
        id
    };
    let images: Vec<TokenId> = (0..6).map(|_| pick(IMAGE)).collect();
    assert_eq!(images, [a, b, c, a, b, c]);
    // Video has its own cursor and skips the token that is not enabled for video.
    let videos: Vec<TokenId> = (0..4).map(|_| pick(VIDEO)).collect();
    assert_eq!(videos, [a, c, a, c]);
    assert_eq!(pick(IMAGE), a);
}

#[test]
fn round_robin_skips_busy_tokens() {
    let mut pool = pool_with(Strategy::RoundRobin);
    let a = pool.add(token(|r| r.image_concurrency = Some(1)));
    let b = pool.add(token(|r| r.image_concurrency = Some(1)));
    let first = granted(pool.request(NOW, 1, IMAGE, 0));
    assert_eq!(first.token, a);
    let second = granted(pool.request(NOW, 2, IMAGE, 0));
    assert_eq!(second.token, b);
    pool.release(NOW, first, Outcome::Success);
    let third = granted(pool.request(NOW, 3, IMAGE, 0));
    assert_eq!(third.token, a, "the only free one");
}

// === outcomes ===

#[test]
fn every_outcome_has_its_effect() {
    struct Case {
        outcome: Outcome,
        state: TokenState,
        errors: u64,
        streak: u32,
        successes: u64,
    }
    let cooling = |ms: u64| TokenState::CoolingDown { until_ms: NOW + ms };
    let table = [
        Case {
            outcome: Outcome::Success,
            state: TokenState::Active,
            errors: 0,
            streak: 0,
            successes: 1,
        },
        Case {
            outcome: Outcome::ContentViolation,
            state: TokenState::Active,
            errors: 0,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::RateLimited { retry_after_ms: 30_000 },
            state: cooling(30_000),
            errors: 1,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::RateLimited { retry_after_ms: 0 },
            state: cooling(60_000),
            errors: 1,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::QuotaExhausted { resets_at_ms: NOW + 3_600_000 },
            state: TokenState::QuotaWait { until_ms: NOW + 3_600_000 },
            errors: 0,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::QuotaExhausted { resets_at_ms: NOW - 5 },
            state: TokenState::QuotaWait { until_ms: NOW + 60_000 },
            errors: 0,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::HeavyLoad,
            state: TokenState::Active,
            errors: 1,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::Cloudflare { cooldown_ms: 120_000 },
            state: cooling(120_000),
            errors: 1,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::Cloudflare { cooldown_ms: 0 },
            state: cooling(60_000),
            errors: 1,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::CountryUnsupported,
            state: TokenState::Disabled(DisableReason::Country),
            errors: 1,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::TokenInvalid,
            state: TokenState::Disabled(DisableReason::Invalid),
            errors: 1,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::TokenExpired,
            state: TokenState::Disabled(DisableReason::Expired),
            errors: 1,
            streak: 1,
            successes: 0,
        },
        Case {
            outcome: Outcome::Failure,
            state: TokenState::Active,
            errors: 1,
            streak: 2,
            successes: 0,
        },
        Case {
            outcome: Outcome::Abandoned,
            state: TokenState::Active,
            errors: 0,
            streak: 1,
            successes: 0,
        },
    ];
    for case in table {
        let mut pool = pool_with(Strategy::Random);
        // Every token starts with a streak of one failure.
        let id = pool.add(token(|r| r.stats.consecutive_errors = 1));
        let lease = granted(pool.request(NOW, 1, VIDEO, 0));
        assert!(pool.release(NOW, lease, case.outcome).is_empty());
        let record = pool.get(id).unwrap();
        let name = format!("{:?}", case.outcome);
        assert_eq!(record.state, case.state, "{name}");
        assert_eq!(record.stats.error_count, case.errors, "{name}");
        assert_eq!(record.stats.today_error_count, case.errors, "{name}");
        assert_eq!(record.stats.consecutive_errors, case.streak, "{name}");
        assert_eq!(record.stats.video_count, case.successes, "{name}");
        assert_eq!(record.stats.use_count, 1, "{name}");
        assert_eq!(record.stats.last_used_ms, Some(NOW), "{name}");
        assert_eq!(pool.in_flight(id), (0, 0), "{name}");
    }
}

#[test]
fn failure_streak_disables_at_the_threshold_and_only_failures_count() {
    // Outcomes in order, and whether the token is still active after each.
    let table = [
        (Outcome::Failure, true),
        (Outcome::HeavyLoad, true),
        (Outcome::ContentViolation, true),
        (Outcome::Failure, true),
        (Outcome::Success, true), // resets the streak
        (Outcome::Failure, true),
        (Outcome::Failure, true),
        (Outcome::HeavyLoad, true),
        (Outcome::Failure, false), // third in a row: disabled
    ];
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|_| {}));
    for (n, (outcome, active)) in table.into_iter().enumerate() {
        let lease = granted(pool.request(NOW, 1, IMAGE, 0));
        pool.release(NOW, lease, outcome);
        let state = pool.get(id).unwrap().state;
        assert_eq!(state == TokenState::Active, active, "step {n}: {state:?}");
    }
    assert_eq!(pool.get(id).unwrap().state, TokenState::Disabled(DisableReason::ErrorLimit));
    assert_eq!(refused(pool.request(NOW, 1, IMAGE, 0)).envelope().error.message, IMAGE_TEXT);
    // enable() resets the streak: one more failure does not disable it again.
    assert!(pool.enable(id));
    assert_eq!(pool.get(id).unwrap().stats.consecutive_errors, 0);
    let lease = granted(pool.request(NOW, 1, IMAGE, 0));
    pool.release(NOW, lease, Outcome::Failure);
    assert_eq!(pool.get(id).unwrap().state, TokenState::Active);
}

#[test]
fn a_zero_threshold_never_disables() {
    let mut pool = TokenPool::new(PoolConfig { error_threshold: 0, ..PoolConfig::default() });
    let id = pool.add(token(|_| {}));
    for _ in 0..10 {
        let lease = granted(pool.request(NOW, 1, IMAGE, 0));
        pool.release(NOW, lease, Outcome::Failure);
    }
    assert_eq!(pool.get(id).unwrap().state, TokenState::Active);
    assert_eq!(pool.get(id).unwrap().stats.consecutive_errors, 10);
}

#[test]
fn quota_wait_ends_by_itself_at_the_reset_time() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|_| {}));
    let reset = NOW + 30_000;
    let lease = granted(pool.request(NOW, 1, VIDEO, 0));
    pool.release(NOW, lease, Outcome::QuotaExhausted { resets_at_ms: reset });
    // Before the reset: waits (the reset is within the 60 s wait).
    assert_eq!(pool.request(NOW + 1, 2, VIDEO, 0), Decision::Queued { deadline_ms: NOW + 60_001 });
    assert_eq!(pool.next_wakeup(), Some(reset));
    assert!(pool.poll(reset - 1).is_empty());
    let mut events = pool.poll(reset);
    assert!(matches!(events.pop(), Some(PoolEvent::Granted { waiter: 2, .. })));
    assert_eq!(pool.get(id).unwrap().state, TokenState::Active);
    // Without waiters the transition is lazy: a request after the reset is granted at once.
    let mut pool = pool_with(Strategy::Random);
    pool.add(token(|r| r.state = TokenState::QuotaWait { until_ms: reset }));
    let _lease = granted(pool.request(reset, 1, VIDEO, 0));
}

#[test]
fn a_wait_longer_than_the_queue_allows_is_refused_at_once() {
    let mut pool = pool_with(Strategy::Random);
    pool.add(token(|r| r.state = TokenState::QuotaWait { until_ms: NOW + 3_600_000 }));
    let error = refused(pool.request(NOW, 1, VIDEO, 0));
    assert_eq!(error, Error::NoAvailableTokens { work: TokenWork::Video, retry_after_secs: 3600 });
    assert_eq!(pool.waiting(), 0);
    // A token that would expire before its cooldown ends cannot serve either.
    let mut pool = pool_with(Strategy::Random);
    pool.add(token(|r| {
        r.state = TokenState::CoolingDown { until_ms: NOW + 10_000 };
        r.expires_at_ms = Some(NOW + 5_000);
    }));
    assert_eq!(refused(pool.request(NOW, 1, IMAGE, 0)).retry_after_secs(), Some(60));
}

#[test]
fn cloudflare_cools_down_every_token_on_the_same_egress() {
    let mut pool = pool_with(Strategy::RoundRobin);
    let a = pool.add(token(|r| r.proxy_url = Some("http://p1:8080".into())));
    let b = pool.add(token(|r| r.proxy_url = Some("http://p1:8080".into())));
    let c = pool.add(token(|r| r.proxy_url = Some("http://p2:8080".into())));
    let d = pool.add(token(|r| {
        r.proxy_url = Some("http://p1:8080".into());
        r.state = TokenState::Disabled(DisableReason::Manual);
    }));
    let lease = granted(pool.request(NOW, 1, IMAGE, 0));
    assert_eq!(lease.token, a);
    assert_eq!(lease.credentials.proxy.as_deref(), Some("http://p1:8080"));
    pool.release(NOW, lease, Outcome::Cloudflare { cooldown_ms: 5_000 });
    let cooling = TokenState::CoolingDown { until_ms: NOW + 5_000 };
    assert_eq!(pool.get(a).unwrap().state, cooling);
    assert_eq!(pool.get(b).unwrap().state, cooling);
    assert_eq!(pool.get(c).unwrap().state, TokenState::Active);
    assert_eq!(pool.get(d).unwrap().state, TokenState::Disabled(DisableReason::Manual));
    assert_eq!(pool.get(b).unwrap().stats.error_count, 0, "only the leased token counts it");
}

#[test]
fn a_shorter_cooldown_does_not_cut_a_longer_wait() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|_| {}));
    let first = granted(pool.request(NOW, 1, VIDEO, 0));
    let second = granted(pool.request(NOW, 2, VIDEO, 0));
    pool.release(NOW, first, Outcome::QuotaExhausted { resets_at_ms: NOW + 50_000 });
    pool.release(NOW, second, Outcome::RateLimited { retry_after_ms: 10_000 });
    assert_eq!(pool.get(id).unwrap().state, TokenState::QuotaWait { until_ms: NOW + 50_000 });
}

// === waiters ===

#[test]
fn waiters_are_granted_fifo_on_release() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|r| r.video_concurrency = Some(1)));
    let lease = granted(pool.request(NOW, 100, VIDEO, 0));
    for key in 1..=3 {
        assert!(matches!(pool.request(NOW + key, key, VIDEO, 0), Decision::Queued { .. }));
    }
    let mut order = Vec::new();
    let mut lease = lease;
    for step in 0..3 {
        let mut events = pool.release(NOW + 10 + step, lease, Outcome::Success);
        assert_eq!(events.len(), 1, "exactly one slot freed");
        match events.pop() {
            Some(PoolEvent::Granted { waiter, lease: next }) => {
                order.push(waiter);
                assert_eq!(next.token, id);
                lease = next;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(order, [1, 2, 3]);
    pool.release(NOW + 20, lease, Outcome::Success);
    assert_eq!(pool.total_in_flight(), 0);
    assert_eq!(pool.in_flight(id), (0, 0));
    assert_eq!(pool.get(id).unwrap().stats.video_count, 4);
}

#[test]
fn a_waiter_that_cannot_run_does_not_block_another_kind() {
    let mut pool = pool_with(Strategy::Random);
    pool.add(token(|r| {
        r.image_concurrency = Some(1);
        r.video_concurrency = Some(1);
    }));
    let image = granted(pool.request(NOW, 1, IMAGE, 0));
    let video = granted(pool.request(NOW, 2, VIDEO, 0));
    assert!(matches!(pool.request(NOW, 3, VIDEO, 0), Decision::Queued { .. }));
    assert!(matches!(pool.request(NOW, 4, IMAGE, 0), Decision::Queued { .. }));
    // The image slot frees: the image waiter (behind a video waiter) gets it.
    let events = pool.release(NOW, image, Outcome::Success);
    assert!(matches!(events.as_slice(), [PoolEvent::Granted { waiter: 4, .. }]), "{events:?}");
    let events = pool.release(NOW, video, Outcome::Success);
    assert!(matches!(events.as_slice(), [PoolEvent::Granted { waiter: 3, .. }]), "{events:?}");
}

#[test]
fn waiters_are_granted_when_a_cooldown_ends() {
    let mut pool = pool_with(Strategy::Random);
    pool.add(token(|r| r.state = TokenState::CoolingDown { until_ms: NOW + 20_000 }));
    assert!(matches!(pool.request(NOW, 1, IMAGE, 0), Decision::Queued { .. }));
    assert!(matches!(pool.request(NOW, 2, IMAGE, 0), Decision::Queued { .. }));
    assert_eq!(pool.next_wakeup(), Some(NOW + 20_000));
    let events = pool.poll(NOW + 20_000);
    let waiters: Vec<u64> = events
        .iter()
        .map(|e| match e {
            PoolEvent::Granted { waiter, .. } => *waiter,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(waiters, [1, 2], "unlimited token: both, in order");
}

#[test]
fn a_new_request_does_not_jump_a_waiter_whose_token_came_back() {
    let mut pool = pool_with(Strategy::Random);
    pool.add(token(|r| {
        r.image_concurrency = Some(1);
        r.state = TokenState::CoolingDown { until_ms: NOW + 1_000 };
    }));
    assert!(matches!(pool.request(NOW, 1, IMAGE, 0), Decision::Queued { .. }));
    // The cooldown ended but nobody polled yet: the newcomer queues behind waiter 1.
    assert!(matches!(pool.request(NOW + 2_000, 2, IMAGE, 0), Decision::Queued { .. }));
    assert_eq!(pool.next_wakeup(), Some(0), "poll at once");
    let events = pool.poll(NOW + 2_000);
    assert!(matches!(events.as_slice(), [PoolEvent::Granted { waiter: 1, .. }]), "{events:?}");
}

#[test]
fn waiters_time_out_with_the_exact_error() {
    let mut pool = pool_with(Strategy::Random);
    pool.add(token(|r| {
        r.pro = true;
        r.video_concurrency = Some(1);
    }));
    let held = granted(pool.request(NOW, 1, PRO_VIDEO, 0));
    assert_eq!(pool.request(NOW, 2, PRO_VIDEO, 0), Decision::Queued { deadline_ms: NOW + 60_000 });
    assert_eq!(pool.request(NOW + 5, 3, VIDEO, 0), Decision::Queued { deadline_ms: NOW + 60_005 });
    assert!(pool.poll(NOW + 59_999).is_empty());
    let events = pool.poll(NOW + 60_000);
    match events.as_slice() {
        [PoolEvent::TimedOut { waiter: 2, error }] => {
            assert_eq!(error.envelope().error.message, PRO_TEXT);
            assert_eq!(error.status(), 503);
            assert_eq!(error.retry_after_secs(), Some(5), "slots busy: retry soon");
        }
        other => panic!("{other:?}"),
    }
    let events = pool.poll(NOW + 60_005);
    match events.as_slice() {
        [PoolEvent::TimedOut { waiter: 3, error }] => {
            assert_eq!(error.envelope().error.message, VIDEO_TEXT);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.next_wakeup(), None);
    pool.release(NOW + 70_000, held, Outcome::Success);
}

#[test]
fn waiters_fail_early_when_no_token_can_serve_them_any_more() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|r| r.image_concurrency = Some(1)));
    let held = granted(pool.request(NOW, 1, IMAGE, 0));
    assert!(matches!(pool.request(NOW, 2, IMAGE, 0), Decision::Queued { .. }));
    let events = pool.release(NOW + 1, held, Outcome::TokenInvalid);
    match events.as_slice() {
        [PoolEvent::TimedOut { waiter: 2, error }] => {
            assert_eq!(error.envelope().error.message, IMAGE_TEXT);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.get(id).unwrap().state, TokenState::Disabled(DisableReason::Invalid));
}

#[test]
fn a_full_queue_is_overloaded() {
    let mut pool = TokenPool::new(PoolConfig { max_waiters: 2, ..PoolConfig::default() });
    pool.add(token(|r| r.image_concurrency = Some(1)));
    let _held = granted(pool.request(NOW, 1, IMAGE, 0));
    assert!(matches!(pool.request(NOW, 2, IMAGE, 0), Decision::Queued { .. }));
    assert!(matches!(pool.request(NOW, 3, IMAGE, 0), Decision::Queued { .. }));
    let error = refused(pool.request(NOW, 4, IMAGE, 0));
    assert!(matches!(error, Error::Overloaded { .. }), "{error:?}");
    assert_eq!(error.status(), 503);
    assert_eq!(pool.waiting(), 2);
}

#[test]
fn no_queue_when_max_wait_is_zero() {
    let mut pool = TokenPool::new(PoolConfig { max_wait_ms: 0, ..PoolConfig::default() });
    pool.add(token(|r| r.image_concurrency = Some(1)));
    let _held = granted(pool.request(NOW, 1, IMAGE, 0));
    let error = refused(pool.request(NOW, 2, IMAGE, 0));
    assert_eq!(error, Error::NoAvailableTokens { work: TokenWork::Image, retry_after_secs: 5 });
}

#[test]
fn cancel_waiter_withdraws_the_request() {
    let mut pool = pool_with(Strategy::Random);
    pool.add(token(|r| r.image_concurrency = Some(1)));
    let held = granted(pool.request(NOW, 1, IMAGE, 0));
    assert!(matches!(pool.request(NOW, 2, IMAGE, 0), Decision::Queued { .. }));
    assert!(matches!(pool.request(NOW, 3, IMAGE, 0), Decision::Queued { .. }));
    assert!(pool.cancel_waiter(2));
    assert!(!pool.cancel_waiter(2), "only once");
    assert!(!pool.cancel_waiter(99));
    let events = pool.release(NOW, held, Outcome::Success);
    assert!(matches!(events.as_slice(), [PoolEvent::Granted { waiter: 3, .. }]), "{events:?}");
}

#[test]
fn asking_again_with_the_same_key_replaces_the_wait() {
    let mut pool = pool_with(Strategy::Random);
    pool.add(token(|r| r.image_concurrency = Some(1)));
    let held = granted(pool.request(NOW, 1, IMAGE, 0));
    assert!(matches!(pool.request(NOW, 2, IMAGE, 0), Decision::Queued { .. }));
    assert!(matches!(pool.request(NOW + 1, 2, IMAGE, 0), Decision::Queued { .. }));
    assert_eq!(pool.waiting(), 1);
    pool.release(NOW, held, Outcome::Success);
}

// === leases and lifecycle ===

#[test]
fn a_second_release_of_a_lease_has_no_effect() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|r| r.image_concurrency = Some(2)));
    let lease = granted(pool.request(NOW, 1, IMAGE, 0));
    let _other = granted(pool.request(NOW, 2, IMAGE, 0));
    // Forge a copy (the fields are public; Lease itself is not Clone).
    let copy = Lease {
        id: lease.id,
        token: lease.token,
        work: lease.work,
        credentials: lease.credentials.clone(),
    };
    pool.release(NOW, lease, Outcome::Failure);
    assert_eq!(pool.in_flight(id), (1, 0));
    pool.release(NOW, copy, Outcome::Failure);
    assert_eq!(pool.in_flight(id), (1, 0), "no double release (B3)");
    assert_eq!(pool.get(id).unwrap().stats.consecutive_errors, 1, "no second outcome");
}

#[test]
fn in_flight_returns_to_zero_and_survives_remove_and_reload() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|r| r.video_concurrency = Some(3)));
    let leases: Vec<Lease> = (0..3).map(|n| granted(pool.request(NOW, n, VIDEO, 0))).collect();
    assert_eq!(pool.in_flight(id), (0, 3));
    let record = pool.remove(id).unwrap();
    assert_eq!(pool.in_flight(id), (0, 0));
    assert_eq!(pool.total_in_flight(), 3, "leases on a removed token stay out");
    // Reloading the record under its id counts the leases still out.
    assert!(pool.insert_with_id(record).is_none());
    assert_eq!(pool.in_flight(id), (0, 3));
    assert!(matches!(pool.request(NOW, 9, VIDEO, 0), Decision::Queued { .. }));
    pool.cancel_waiter(9);
    for lease in leases {
        pool.release(NOW, lease, Outcome::Success);
    }
    assert_eq!(pool.in_flight(id), (0, 0));
    assert_eq!(pool.total_in_flight(), 0);
    // The next added token gets a new id.
    assert!(pool.add(token(|_| {})) > id);
}

#[test]
fn admin_changes_let_waiters_run_at_the_next_poll() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|r| r.image_concurrency = Some(1)));
    let _held = granted(pool.request(NOW, 1, IMAGE, 0));
    assert!(matches!(pool.request(NOW, 2, IMAGE, 0), Decision::Queued { .. }));
    assert!(pool.update(id, |r| r.image_concurrency = Some(2)));
    assert_eq!(pool.next_wakeup(), Some(0));
    let events = pool.poll(NOW + 1);
    assert!(matches!(events.as_slice(), [PoolEvent::Granted { waiter: 2, .. }]), "{events:?}");
    assert_eq!(pool.in_flight(id), (2, 0));
    assert!(!pool.update(TokenId(99), |_| {}));
}

#[test]
fn set_credentials_revives_invalid_tokens_and_keeps_the_refresh_token() {
    let table = [
        (DisableReason::Invalid, TokenState::Active),
        (DisableReason::Expired, TokenState::Active),
        (DisableReason::Manual, TokenState::Disabled(DisableReason::Manual)),
        (DisableReason::ErrorLimit, TokenState::Disabled(DisableReason::ErrorLimit)),
    ];
    for (reason, after) in table {
        let mut pool = pool_with(Strategy::Random);
        let id = pool.add(token(|r| r.refresh_token = Some(Secret::new("rt-old"))));
        assert!(pool.disable(id, reason));
        assert!(pool.set_credentials(id, Secret::new("at-new"), Some(NOW + 1_000), None));
        let record = pool.get(id).unwrap();
        assert_eq!(record.state, after, "{reason:?}");
        assert_eq!(record.access_token.expose(), "at-new");
        assert_eq!(record.expires_at_ms, Some(NOW + 1_000));
        assert_eq!(record.refresh_token.as_ref().map(Secret::expose), Some("rt-old"));
    }
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|_| {}));
    pool.set_credentials(id, Secret::new("at"), None, Some(Secret::new("rt-rotated")));
    assert_eq!(
        pool.get(id).unwrap().refresh_token.as_ref().map(Secret::expose),
        Some("rt-rotated")
    );
    let lease = granted(pool.request(NOW, 1, IMAGE, 0));
    assert_eq!(lease.credentials.access_token.expose(), "at");
}

#[test]
fn snapshot_masks_secrets_and_proxy_credentials() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|r| {
        r.session_token = Some(Secret::new("st-very-secret-value"));
        r.proxy_url = Some("http://user:pa55@proxy.example:8080/x".into());
        r.state = TokenState::CoolingDown { until_ms: NOW + 10 };
    }));
    let summary = &pool.snapshot(NOW)[0];
    assert_eq!(summary.id, id);
    let shown = format!("{summary:?}");
    for secret in ["at-payload", "very-secret", "pa55"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert_eq!(summary.proxy_url.as_deref(), Some("http://***@proxy.example:8080/x"));
    assert!(matches!(summary.state, TokenState::CoolingDown { .. }));
    assert_eq!(pool.snapshot(NOW + 10)[0].state, TokenState::Active, "state as of the time");
    let lease = granted(pool.request(NOW + 10, 1, IMAGE, 0));
    assert!(!format!("{lease:?}").contains("at-payload"), "Lease Debug masks the token");
    assert_eq!(pool.snapshot(NOW)[0].in_flight_image, 1);
    assert_eq!(record::mask_proxy("socks5://h:1"), "socks5://h:1");
    assert_eq!(record::mask_proxy("h@x"), "***@x");
}

#[test]
fn today_counters_roll_over_at_utc_midnight() {
    let mut pool = pool_with(Strategy::Random);
    let id = pool.add(token(|_| {}));
    let midnight = (NOW / DAY_MS + 1) * DAY_MS;
    for (at, outcome) in [
        (midnight - 2, Outcome::Success),
        (midnight - 1, Outcome::HeavyLoad),
        (midnight, Outcome::Success),
    ] {
        let lease = granted(pool.request(at, 1, IMAGE, 0));
        pool.release(at, lease, outcome);
    }
    let stats = pool.get(id).unwrap().stats;
    assert_eq!(stats.today_day, midnight / DAY_MS);
    assert_eq!((stats.today_image_count, stats.today_error_count), (1, 0));
    assert_eq!((stats.image_count, stats.error_count, stats.use_count), (2, 1, 3));
}

#[test]
fn legacy_limits_and_pro_plan() {
    assert_eq!(TokenRecord::limit_from_legacy(-1), None);
    assert_eq!(TokenRecord::limit_from_legacy(0), None);
    assert_eq!(TokenRecord::limit_from_legacy(3), Some(3));
    assert_eq!(TokenRecord::limit_from_legacy(i64::MAX), Some(u32::MAX));
    assert!(TokenRecord::is_pro_plan(Some("chatgpt_pro")));
    assert!(!TokenRecord::is_pro_plan(Some("chatgpt_plus")));
    assert_eq!(TokenId(7).to_string(), "7");
    assert_eq!(DisableReason::Invalid.as_str(), "token_invalid");
}

// === property test ===

/// Deterministic xorshift byte strings through the fuzz harness (`invariants::check_ops`):
/// limits never exceeded, every lease released once, counters back to zero.
#[test]
fn random_operation_sequences_keep_the_invariants() {
    let mut rng = 0x2545_f491_4f6c_dd1d;
    for round in 0..2_000 {
        let len = 16 + (xorshift(&mut rng) % 600) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| xorshift(&mut rng) as u8).collect();
        // Every other round: no error threshold games, more tokens up front.
        if round % 2 == 0 {
            data[0] &= 0b1111_0001;
        }
        invariants::check_ops(&data);
    }
}
