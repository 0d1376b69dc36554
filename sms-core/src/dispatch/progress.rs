//! Progress events: what a host's progress bar shows while a campaign runs.

use serde::{Deserialize, Serialize};

use super::plan::DispatchWarning;
use crate::journal::{CampaignId, RecordState};

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// Records in the campaign.
    pub total: u64,
    /// Accepted by the provider (over the whole campaign, earlier runs included).
    pub sent: u64,
    /// Refused for good.
    pub failed: u64,
    /// Not texted (consent, opt-out).
    pub blocked: u64,
    /// Outcome unknown, waiting for reconciliation or a person.
    pub unknown: u64,
    /// Held by quiet hours (they go when the hours open: a resume, or `sms serve`).
    #[serde(default)]
    pub held: u64,
    /// Still to send in this run.
    pub remaining: u64,
    /// Records settled per second in this run so far.
    pub rate_per_second: f64,
    /// Estimated seconds until this run finishes, once a rate is known.
    pub eta_seconds: Option<u64>,
    /// Milliseconds since this run started.
    pub elapsed_ms: u64,
}

/// Receives progress. Called from the dispatching task: keep it quick (hand the snapshot to a
/// UI thread or a channel).
pub trait Progress: Send + Sync {
    /// The counts changed (at most every `DispatchOptions::progress_every_ms`, and at the end).
    fn on_progress(&self, snapshot: ProgressSnapshot) {
        let _ = snapshot;
    }

    /// Something staff should know; the run goes on.
    fn on_warning(&self, warning: DispatchWarning) {
        let _ = warning;
    }
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Counts kept during a run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    pub(crate) total: u64,
    pub(crate) sent: u64,
    pub(crate) failed: u64,
    pub(crate) blocked: u64,
    pub(crate) unknown: u64,
    pub(crate) held: u64,
    pub(crate) remaining: u64,
    pub(crate) settled_this_run: u64,
}

impl Counts {
    /// Counts one record reaching `state` in this run.
    pub(crate) fn settle(&mut self, state: &RecordState, records: u64) {
        match state {
            RecordState::Accepted { .. } => self.sent += records,
            RecordState::Failed { .. } => self.failed += records,
            RecordState::Blocked { .. } => self.blocked += records,
            RecordState::Unknown { .. } => self.unknown += records,
            RecordState::Held { .. } => self.held += records,
            _ => {}
        }
        self.remaining = self.remaining.saturating_sub(records);
        self.settled_this_run += records;
    }

    /// The snapshot after `elapsed_ms`, with the ETA at the achieved rate (or the configured one
    /// before the first record settles).
    pub(crate) fn snapshot(
        &self,
        campaign_id: &CampaignId,
        elapsed_ms: u64,
        configured_per_second: Option<f64>,
    ) -> ProgressSnapshot {
        let rate = if elapsed_ms > 0 {
            self.settled_this_run as f64 * 1000.0 / elapsed_ms as f64
        } else {
            0.0
        };
        let eta_rate = if rate > 0.0 {
            Some(rate)
        } else {
            configured_per_second
        };
        ProgressSnapshot {
            campaign_id: campaign_id.clone(),
            total: self.total,
            sent: self.sent,
            failed: self.failed,
            blocked: self.blocked,
            unknown: self.unknown,
            held: self.held,
            remaining: self.remaining,
            rate_per_second: rate,
            eta_seconds: eta_rate
                .filter(|r| *r > 0.0)
                .map(|r| (self.remaining as f64 / r).ceil() as u64),
            elapsed_ms,
        }
    }
}

impl Counts {
    /// The counts at the start of a round: the campaign's states, with `jobs` remaining (a
    /// held record among them, due now, is counted remaining, not held).
    pub(crate) fn new(
        entries: &[crate::journal::RecordEntry],
        jobs: &[super::plan::Job],
    ) -> Counts {
        let mut counts = Counts {
            total: entries.len() as u64,
            remaining: jobs.iter().map(|j| j.seqs.len() as u64).sum(),
            ..Counts::default()
        };
        let queued: std::collections::HashSet<u32> =
            jobs.iter().flat_map(|j| j.seqs.iter().copied()).collect();
        for entry in entries {
            match entry.state {
                RecordState::Accepted { .. } => counts.sent += 1,
                RecordState::Failed { .. } => counts.failed += 1,
                RecordState::Blocked { .. } => counts.blocked += 1,
                RecordState::Unknown { .. } => counts.unknown += 1,
                RecordState::Held { .. } if !queued.contains(&entry.seq) => counts.held += 1,
                _ => {}
            }
        }
        counts
    }
}
