//! The one place the shell reads the clock.
//!
//! The core takes time as unix milliseconds. The shell's time is the wall clock read once,
//! plus the time Tokio's clock has advanced since: so `now_ms` and [`instant_at`] agree, and
//! under `tokio::time::pause()` the machine's time is virtual too.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The wall clock (unix ms) and Tokio's clock at the first read.
struct Base {
    wall_ms: u64,
    at: Instant,
}

static BASE: OnceLock<Base> = OnceLock::new();

#[expect(
    clippy::disallowed_methods,
    reason = "the shell's single wall-clock read: everything else derives from it and Tokio's clock"
)]
fn base() -> &'static Base {
    BASE.get_or_init(|| {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Base { wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX), at: Instant::now() }
    })
}

/// Now, in unix milliseconds (never decreasing within one Tokio runtime).
pub fn now_ms() -> u64 {
    let base = base();
    let elapsed = Instant::now().saturating_duration_since(base.at);
    base.wall_ms.saturating_add(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// The Tokio instant at unix time `ms` (for `sleep_until` on a machine deadline).
pub fn instant_at(ms: u64) -> Instant {
    let base = base();
    /// Deadlines further out are clamped (no Instant overflow): about 30 years.
    const FAR_MS: u64 = 30 * 365 * 86_400_000;
    base.at + Duration::from_millis(ms.saturating_sub(base.wall_ms).min(FAR_MS))
}
