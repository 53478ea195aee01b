//! A task's clock: virtual time since creation, shifted by how long `#queue=N` held it.

/// When a task started and how long a `#queue=N` hold delayed it.
#[derive(Debug, Clone)]
pub(super) struct Schedule {
    created_ms: u64,
    shift_ms: u64,
    /// Polls that must still see the task queued (`#queue=N`).
    hold_polls: u32,
}

impl Schedule {
    pub(super) fn new(created_ms: u64, hold_polls: u32) -> Self {
        Schedule { created_ms, shift_ms: 0, hold_polls }
    }

    /// Time on the task's own schedule: since creation, minus the hold.
    pub(super) fn elapsed(&self, now: u64) -> u64 {
        now.saturating_sub(self.created_ms.saturating_add(self.shift_ms))
    }

    /// When `elapsed` reaches `offset`, in virtual unix ms.
    pub(super) fn at(&self, offset: u64) -> u64 {
        self.created_ms.saturating_add(self.shift_ms).saturating_add(offset)
    }

    /// Whether the task is held queued: a hold is left and the queue phase (starting at
    /// elapsed `queue_start`) has begun.
    pub(super) fn held(&self, now: u64, queue_start: u64) -> bool {
        self.hold_polls > 0 && self.elapsed(now) >= queue_start
    }

    /// A poll saw the task queued at `now`. On the last held poll the schedule is shifted so
    /// that the queue phase (ending at elapsed `queue_end`) ends now, and the next poll sees
    /// the following phase.
    pub(super) fn observed_queued(&mut self, now: u64, queue_end: u64) {
        if self.hold_polls == 0 {
            return;
        }
        self.hold_polls -= 1;
        if self.hold_polls == 0 {
            let natural = now.saturating_sub(self.created_ms);
            self.shift_ms = self.shift_ms.max(natural.saturating_sub(queue_end));
        }
    }
}

impl Schedule {
    /// Whether a `#queue=N` hold is still pending.
    pub(super) fn holding(&self) -> bool {
        self.hold_polls > 0
    }
}
