//! Pacing: the rate limiter, with a pause the provider can ask for (slow down).
//!
//! The schedule is pure ([`Pacer::book`] takes `now`); [`Limiter`] only adds the sleeping. Slots
//! are booked on a fixed grid (`next = start + interval`), not from the moment a sender woke,
//! so timer lateness does not accumulate into a lower rate; after a stall (a slow fsync, a slow
//! provider answer) the grid catches up on slots missed within the last ten intervals (at most
//! one second), a short burst the provider's queue absorbs, so the achieved rate stays at the
//! configured one.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::journal::RateLimit;

/// The pure schedule.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// Time one unit (message or segment) occupies; `None` when unlimited.
    per_unit: Option<Duration>,
    /// How far behind the grid may fall before missed slots are given up.
    catch_up: Duration,
    next: Option<Instant>,
    paused_until: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new(rate: RateLimit) -> Pacer {
        let per_second = match rate {
            RateLimit::Unlimited => None,
            RateLimit::MessagesPerSecond { per_second }
            | RateLimit::SegmentsPerSecond { per_second } => Some(per_second),
        };
        let per_unit = per_second.map(|r| Duration::from_secs_f64(1.0 / r));
        Pacer {
            per_unit,
            catch_up: per_unit.map_or(Duration::ZERO, |p| (p * 10).min(Duration::from_secs(1))),
            next: None,
            paused_until: None,
        }
    }

    /// Books a slot for a send of `cost` units and returns when it may start.
    pub(crate) fn book(&mut self, now: Instant, cost: u32) -> Instant {
        // The grid point this send takes: the next free slot, but never further back than the
        // catch-up window, and never inside a pause.
        let floor = now.checked_sub(self.catch_up).unwrap_or(now);
        let mut slot = self.next.map_or(now, |next| next.max(floor));
        if let Some(until) = self.paused_until {
            slot = slot.max(until);
        }
        if let Some(per_unit) = self.per_unit {
            self.next = Some(slot + per_unit * cost.max(1));
        }
        slot.max(now)
    }

    /// No slot starts before `until` (the provider asked to slow down).
    pub(crate) fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }
}

/// The schedule shared by all senders of a run, with sleeping.
#[derive(Debug)]
pub(crate) struct Limiter {
    pacer: Mutex<Pacer>,
}

impl Limiter {
    pub(crate) fn new(rate: RateLimit) -> Limiter {
        Limiter {
            pacer: Mutex::new(Pacer::new(rate)),
        }
    }

    fn pacer(&self) -> std::sync::MutexGuard<'_, Pacer> {
        // The pacer's fields are updated without panicking, so a poisoned lock is still sound.
        self.pacer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a slot for `cost` units. Returns false when cancelled first.
    pub(crate) async fn acquire(&self, cost: u32, cancel: &CancellationToken) -> bool {
        let start = self.pacer().book(Instant::now(), cost);
        if start <= Instant::now() {
            return !cancel.is_cancelled();
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => false,
            () = tokio::time::sleep_until(start) => true,
        }
    }

    /// Holds every sender back for `wait`.
    pub(crate) fn pause(&self, wait: Duration) {
        self.pacer().pause_until(Instant::now() + wait);
    }
}

/// Sleeps for `wait` unless cancelled first; returns false when cancelled.
pub(crate) async fn sleep_or_cancel(wait: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn books_slots_on_a_fixed_grid_and_honours_pauses() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(RateLimit::MessagesPerSecond { per_second: 10.0 });
        let slots: Vec<Duration> = (0..5).map(|_| pacer.book(t0, 1) - t0).collect();
        assert_eq!(slots[4], Duration::from_millis(400));

        pacer.pause_until(t0 + Duration::from_secs(3));
        assert_eq!(pacer.book(t0, 1) - t0, Duration::from_secs(3));
        assert_eq!(pacer.book(t0, 1) - t0, Duration::from_millis(3100));

        let mut segments = Pacer::new(RateLimit::SegmentsPerSecond { per_second: 2.0 });
        segments.book(t0, 3);
        assert_eq!(segments.book(t0, 1) - t0, Duration::from_millis(1500));

        // After a stall the missed slots are caught up, then the grid goes on.
        let mut stalled = Pacer::new(RateLimit::MessagesPerSecond { per_second: 10.0 });
        stalled.book(t0, 1);
        stalled.book(t0, 1);
        let late = t0 + Duration::from_millis(450);
        let starts: Vec<Duration> = (0..4).map(|_| stalled.book(late, 1) - t0).collect();
        let ms = |m| Duration::from_millis(m);
        assert_eq!(starts, [ms(450), ms(450), ms(450), ms(500)]);

        let mut unlimited = Pacer::new(RateLimit::Unlimited);
        assert_eq!(unlimited.book(t0, 1000), t0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_limiter_sends_at_the_configured_rate() {
        let limiter = Limiter::new(RateLimit::MessagesPerSecond { per_second: 1.0 });
        let cancel = CancellationToken::new();
        let t0 = Instant::now();
        for _ in 0..4 {
            assert!(limiter.acquire(1, &cancel).await);
        }
        assert_eq!(Instant::now() - t0, Duration::from_secs(3));
        cancel.cancel();
        assert!(!limiter.acquire(1, &cancel).await);
    }
}
