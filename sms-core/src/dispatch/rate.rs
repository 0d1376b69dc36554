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

/// Books one slot on a rate's grid, on any clock counted in microseconds: `next` is the grid's
/// next free slot (`None` before the first booking), `now` the time, `not_before` a pause the
/// provider asked for. Returns when the send may start and the grid's new next slot.
///
/// Slots follow a fixed grid (`next = slot + interval * cost`), not the moment a sender woke,
/// so timer lateness does not add up into a lower rate; after a stall the grid catches up on
/// slots missed within the last ten intervals (at most one second). The one schedule of a
/// run, whether booked in memory by one process or in a shared journal by a fleet
/// ([`crate::journal::FleetJournal::book`]).
pub fn book_slot(
    next: Option<i64>,
    now: i64,
    not_before: Option<i64>,
    rate: RateLimit,
    cost: u32,
) -> (i64, Option<i64>) {
    let per_unit = match rate {
        RateLimit::Unlimited => None,
        RateLimit::MessagesPerSecond { per_second }
        | RateLimit::SegmentsPerSecond { per_second } => {
            Some(((1_000_000.0 / per_second).round() as i64).max(1))
        }
    };
    let catch_up = per_unit.map_or(0, |p| (p.saturating_mul(10)).min(1_000_000));
    let floor = now.saturating_sub(catch_up);
    let mut slot = next.map_or(now, |next| next.max(floor));
    if let Some(until) = not_before {
        slot = slot.max(until);
    }
    let next = per_unit.map(|p| slot.saturating_add(p.saturating_mul(i64::from(cost.max(1)))));
    (slot.max(now), next)
}

/// The pure schedule of one process, on the monotonic clock.
#[derive(Debug)]
pub(crate) struct Pacer {
    rate: RateLimit,
    /// The origin the grid's microseconds count from.
    base: Instant,
    next: Option<i64>,
    paused_until: Option<i64>,
}

impl Pacer {
    pub(crate) fn new(rate: RateLimit) -> Pacer {
        Pacer {
            rate,
            base: Instant::now(),
            next: None,
            paused_until: None,
        }
    }

    fn micros(&self, at: Instant) -> i64 {
        if at >= self.base {
            i64::try_from(at.duration_since(self.base).as_micros()).unwrap_or(i64::MAX)
        } else {
            -i64::try_from(self.base.duration_since(at).as_micros()).unwrap_or(i64::MAX)
        }
    }

    fn instant(&self, micros: i64) -> Instant {
        let offset = Duration::from_micros(micros.unsigned_abs());
        if micros >= 0 {
            self.base + offset
        } else {
            self.base.checked_sub(offset).unwrap_or(self.base)
        }
    }

    /// Books a slot for a send of `cost` units and returns when it may start.
    pub(crate) fn book(&mut self, now: Instant, cost: u32) -> Instant {
        let now_us = self.micros(now);
        let (start, next) = book_slot(self.next, now_us, self.paused_until, self.rate, cost);
        if next.is_some() {
            self.next = next;
        }
        self.instant(start).max(now)
    }

    /// No slot starts before `until` (the provider asked to slow down).
    pub(crate) fn pause_until(&mut self, until: Instant) {
        let until = self.micros(until);
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
