//! The knobs of a run, and the clock it reads.

use serde::{Deserialize, Serialize};

use crate::journal::RateLimit;
use crate::time::Timestamp;

/// Where the dispatcher reads wall-clock time for the journal (tests pass a fixed clock; pacing
/// uses tokio's clock, which tests can pause).
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Tuning of a run. The campaign's own settings apply unless overridden here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatchOptions {
    /// Overrides the campaign's rate (the CLI's `--rate`).
    pub rate: Option<RateLimit>,
    /// Overrides the campaign's concurrency.
    pub concurrency: Option<u32>,
    /// Overrides the campaign's budget in message units.
    pub budget_units: Option<u64>,
    /// Attempts per record while the provider says slow down or try later.
    pub max_attempts: u32,
    /// First backoff after a try-later (doubles per attempt), in milliseconds.
    pub backoff_base_ms: u64,
    /// Longest backoff, in milliseconds.
    pub backoff_max_ms: u64,
    /// Allowed difference between our clock and the provider's when matching its history.
    pub reconcile_skew_ms: u64,
    /// Wait before reconciling outcomes that became unknown during this run (the provider's
    /// history may lag a moment behind its answers).
    pub reconcile_delay_ms: u64,
    /// How long the provider's silence about an attempt in doubt must last before it proves
    /// the text was not sent. A provider may finish creating a message, or list it, some time
    /// after a call that timed out. Measured on the monotonic clock, never on the wall clock
    /// (which may jump): from the attempt when this process made it, otherwise from the first
    /// time this process found the history silent, so the silence is seen twice this far
    /// apart. Until then the record stays unknown (a later round or run settles it).
    #[serde(default = "default_settle_ms")]
    pub reconcile_settle_ms: u64,
    /// How far before an attempt (and before the campaign was created) reconciliation reads the
    /// provider's history. A message with the attempt's body that the provider dates earlier
    /// than the clock allowance is "cannot tell" (the provider's clock may be behind ours),
    /// never "not sent"; only a history silent over this whole window proves nothing went out.
    #[serde(default = "default_lookback_ms")]
    pub reconcile_lookback_ms: u64,
    /// Refuse to run a campaign created longer ago than this (`None`: any age). A resume
    /// re-checks only STOPs, not what the host's filter decided (program year, permissions),
    /// which may have changed since: an old campaign should be previewed again.
    #[serde(default = "default_max_age_ms")]
    pub max_campaign_age_ms: Option<u64>,
    /// How long a message may wait in Twilio's queue; longer campaigns get a warning.
    pub queue_window_seconds: u64,
    /// How many reconcile-and-send rounds one run makes when outcomes turn out unknown.
    pub max_rounds: u32,
    /// Least time between two progress events.
    pub progress_every_ms: u64,
}

fn default_settle_ms() -> u64 {
    30_000
}

fn default_lookback_ms() -> u64 {
    6 * 3_600_000
}

fn default_max_age_ms() -> Option<u64> {
    Some(24 * 3_600_000)
}

impl Default for DispatchOptions {
    fn default() -> Self {
        Self {
            rate: None,
            concurrency: None,
            budget_units: None,
            max_attempts: 8,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            reconcile_skew_ms: 120_000,
            // Round 2 comes when this run's unknown outcomes are old enough to settle.
            reconcile_delay_ms: default_settle_ms(),
            reconcile_settle_ms: default_settle_ms(),
            reconcile_lookback_ms: default_lookback_ms(),
            max_campaign_age_ms: default_max_age_ms(),
            queue_window_seconds: 10 * 3600,
            max_rounds: 3,
            progress_every_ms: 200,
        }
    }
}
