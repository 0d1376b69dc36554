//! Helpers shared by the integration tests in `tests/tests/`.

#![warn(missing_docs)]

use std::path::PathBuf;

/// A reference file in `tests/data/` (where each came from: `tests/data/README.md`).
pub fn data_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(relative)
}

pub mod campaigns;
pub mod conformance;
pub mod fake_twilio;
pub mod faults;

/// Settings for fast tests: no pacing.
pub fn unpaced(concurrency: u32) -> sms_core::CampaignSettings {
    sms_core::CampaignSettings {
        provider: None,
        rate: sms_core::RateLimit::Unlimited,
        concurrency,
        ..sms_core::CampaignSettings::default()
    }
}

/// Dispatch options for tests on real time: tiny backoffs, no wait before reconciling.
pub fn quick_options() -> sms_core::DispatchOptions {
    sms_core::DispatchOptions {
        backoff_base_ms: 1,
        backoff_max_ms: 4,
        reconcile_delay_ms: 0,
        // The fault providers' histories are exact at once: no need to wait for silence.
        reconcile_settle_ms: 0,
        ..sms_core::DispatchOptions::default()
    }
}

/// A random sequence reproducible from its seed (xorshift64): the crash tests print the seed of
/// their kill points, and `CRASH_SEED` replays them.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The sequence of `seed` (any value: xorshift needs a state that is not zero).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next value.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The next value below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
