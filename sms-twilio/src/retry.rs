//! When to try again: exponential backoff with jitter, and Twilio's `Retry-After`.

use std::time::Duration;

/// How the provider retries requests that are safe to repeat (a 429, a connection that never
/// carried the request, and for reads a 5xx or a timeout).
///
/// A request that may have created a message is never retried, whatever the policy.
///
/// ```
/// use std::time::Duration;
/// use sms_twilio::RetryPolicy;
/// let fast = RetryPolicy::new(3, Duration::from_millis(10));
/// assert_eq!(fast.max_attempts, 3);
/// assert!(RetryPolicy::none().max_attempts == 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff; each retry doubles it (1 s, 2 s, 4 s … as Twilio advises).
    pub base_delay: Duration,
    /// The longest wait between two attempts. A `Retry-After` longer than this is not waited
    /// out: the error (`SlowDown` with its `retry_after_ms`) goes back to the caller, whose
    /// scheduler can wait without holding a request open.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts, 1 s base, 16 s cap: within Twilio's "3–5 attempts" guidance.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(16),
        }
    }
}

impl RetryPolicy {
    /// `max_attempts` attempts starting at `base_delay`, capped at 16 s or 16 × base.
    pub fn new(max_attempts: u32, base_delay: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            base_delay,
            max_delay: Duration::from_secs(16).max(base_delay.saturating_mul(16)),
        }
    }

    /// One attempt, no retry.
    pub fn none() -> Self {
        Self::new(1, Duration::ZERO)
    }

    /// The wait before retry number `retry` (0 for the first retry), with `unit` in `[0, 1)`
    /// as the random draw: half the exponential step plus a random half ("equal jitter"), so
    /// concurrent senders spread out but never hammer at once.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        exp / 2 + exp.mul_f64(unit / 2.0)
    }

    /// The wait before retry `retry` when the server said `retry_after`: the server's word
    /// when it gave one, else the backoff. `None` when the wait exceeds `max_delay` (give up
    /// and report instead).
    pub fn delay_for(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(wait) if wait > self.max_delay => None,
            Some(wait) => Some(wait),
            None => Some(self.backoff(retry, fastrand::f64())),
        }
    }
}

/// Reads a `Retry-After` header: delta seconds (`"3"`) or an HTTP date, relative to `now`.
/// A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = at.duration_since(now);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_until_the_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
        };
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(4));
        assert_eq!(p.backoff(u32::MAX, 0.5), Duration::from_secs(3));
    }

    #[test]
    fn honours_retry_after_unless_too_long() {
        let p = RetryPolicy::new(3, Duration::from_millis(10));
        assert_eq!(
            p.delay_for(0, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(p.delay_for(0, Some(Duration::from_secs(3600))), None);
    }

    #[test]
    fn reads_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2015-10-21T07:28:00Z".parse().expect("valid");
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    proptest! {
        #[test]
        fn backoff_stays_within_half_and_full_step(retry in 0u32..40, unit in 0.0f64..1.0, base_ms in 0u64..5_000) {
            let p = RetryPolicy::new(5, Duration::from_millis(base_ms));
            let d = p.backoff(retry, unit);
            prop_assert!(d <= p.max_delay);
            let step = p.base_delay.saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX)).min(p.max_delay);
            prop_assert!(d >= step / 2);
        }
    }
}
