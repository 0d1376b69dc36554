//! Fleet runs: several workers (processes, hosts) sending one campaign at once through a shared
//! journal, each holding leases on the numbers it works on.
//!
//! The unit of a lease is a number, not a record: every record of one number (a family phone)
//! is sent and reconciled by one worker at a time, so reconciliation, which reads the provider's
//! history by number, never sees another worker's text in flight and takes it for its own.
//!
//! The rules a fleet journal must keep:
//! - a number is leased by at most one live worker; a lease lives until its expiry, which the
//!   worker renews while it works, measured on the journal's clock (one clock for the fleet);
//! - only a number with work is leased: a record `planned`, `deferred`, `sending` or `unknown`;
//! - a record becomes `sending` only through [`FleetJournal::begin_sending`], which refuses when
//!   the worker no longer holds the number's lease: a worker that stalled past its lease cannot
//!   call the provider for a number another worker has taken over;
//! - a worker that dies leaves leases that expire; the next worker to lease the number finds
//!   its records `sending` and reconciles them with the provider, never a blind resend;
//! - the campaign's rate is booked in the journal ([`FleetJournal::book`]), so it is the total
//!   of all workers.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::{CampaignId, JournalError, RateLimit, RecordEntry, Transition};
use crate::phone::PhoneNumber;

/// A worker of a fleet run: unique for the life of one run (host, process, a random part).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerId(String);

impl WorkerId {
    /// Wraps a name chosen by the caller (unique per run; at most 200 characters kept).
    pub fn new(name: impl Into<String>) -> WorkerId {
        let name: String = name.into();
        WorkerId(name.chars().take(200).collect())
    }

    /// A name for this process: host name, process id and the time, which two runs on one host
    /// never share.
    pub fn for_this_process(host: &str, now: crate::Timestamp) -> WorkerId {
        WorkerId::new(format!("{host}:{}:{}", std::process::id(), now.unix_ms()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is left of a campaign for a fleet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outstanding {
    /// Numbers with a record `planned` or `sending`, leased or not: while any is
    /// left, workers stay (a worker holding one may die, and its numbers must be taken over).
    pub active: u64,
    /// Of those, numbers a live worker holds now.
    pub leased: u64,
}

/// A journal that lets several workers send one campaign at once. See the module docs for the
/// rules an implementation keeps.
#[async_trait]
pub trait FleetJournal: Send + Sync {
    /// Leases up to `max_numbers` of the campaign's numbers that have work, no live lease and
    /// no hold ([`FleetJournal::release`]), for `lease`; returns every record of those numbers.
    /// Empty when there is nothing to take now.
    async fn lease(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        max_numbers: u32,
        lease: Duration,
    ) -> Result<Vec<RecordEntry>, JournalError>;

    /// The current entries of every record of the numbers `worker` holds.
    async fn leased_records(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
    ) -> Result<Vec<RecordEntry>, JournalError>;

    /// Extends every lease `worker` holds on the campaign to `lease` from now; returns how many
    /// numbers it still holds (a lease that expired is not renewed).
    async fn renew(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        lease: Duration,
    ) -> Result<u64, JournalError>;

    /// Gives up `worker`'s leases on `numbers`. A number that still has work is not leased
    /// again for `hold` (records in doubt wait before another look; zero: at once).
    async fn release(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        numbers: Vec<PhoneNumber>,
        hold: Duration,
    ) -> Result<(), JournalError>;

    /// Applies `transitions` (each to `sending`) only if `worker` holds a live lease on the
    /// number of every record, atomically with that check; otherwise
    /// [`JournalError::LeaseLost`] and nothing is recorded.
    async fn begin_sending(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        transitions: Vec<Transition>,
    ) -> Result<(), JournalError>;

    /// Books `cost` units of the campaign's rate, shared by every worker, on the journal's
    /// clock; returns how long to wait before using them. The schedule is
    /// [`crate::dispatch::book_slot`]'s: a fixed grid that catches up at most a second.
    async fn book(
        &self,
        id: &CampaignId,
        rate: RateLimit,
        cost: u32,
    ) -> Result<Duration, JournalError>;

    /// What is left for the fleet.
    async fn outstanding(&self, id: &CampaignId) -> Result<Outstanding, JournalError>;
}
