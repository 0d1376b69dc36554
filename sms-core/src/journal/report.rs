//! The campaign report: per-record outcome, units used, totals by outcome.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{Campaign, CampaignId, Delivery, Journal, JournalError, RecordEntry, RecordState};
use crate::phone::PhoneNumber;
use crate::preview::PreviewOutcome;
use crate::provider::DeliveryStatus;
use crate::quiet::HeldSummary;
use crate::recipient::{RecordId, RecordKind};
use crate::time::Timestamp;

/// One record in a report: who, and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordReport {
    /// Its position in the campaign.
    pub seq: u32,
    /// The host's record id (what a case note is filed against).
    pub record_id: RecordId,
    /// `"client"` or `"staff"`.
    pub kind: RecordKind,
    /// First and last name.
    pub name: String,
    /// The number texted, when the record was eligible.
    pub number: Option<PhoneNumber>,
    /// Where it stands.
    pub state: RecordState,
    /// The latest delivery status.
    pub delivery: Option<Delivery>,
}

impl RecordReport {
    /// The word staff see in the product's list (and a case note): `Sent`, `Delivered`,
    /// `Undelivered`, `Failed`, `Not sent` (blocked), `Pending`, `Held` (quiet hours: goes when
    /// they open), or `Check` (outcome unknown, a person decides).
    pub fn status_label(&self) -> &'static str {
        match &self.state {
            RecordState::Accepted { .. } => match self.delivery.as_ref().map(|d| &d.status) {
                Some(DeliveryStatus::Delivered) => "Delivered",
                Some(DeliveryStatus::Undelivered) => "Undelivered",
                Some(DeliveryStatus::Failed) => "Failed",
                _ => "Sent",
            },
            RecordState::Failed { .. } => "Failed",
            RecordState::Blocked { .. } => "Not sent",
            RecordState::Planned | RecordState::Sending { .. } | RecordState::Deferred { .. } => {
                "Pending"
            }
            RecordState::Held { .. } => "Held",
            RecordState::Unknown { .. } => "Check",
        }
    }
}

/// Counts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTotals {
    /// Records in the campaign.
    pub records: u64,
    /// Not sent yet.
    pub planned: u64,
    /// Never to be texted (consent, opt-out, bad number).
    pub blocked: u64,
    /// A call in flight, or interrupted by a crash and not reconciled yet.
    pub sending: u64,
    /// Accepted by the provider.
    pub accepted: u64,
    /// Refused for good.
    pub failed: u64,
    /// Not sent for a passing reason; a resume retries them.
    pub deferred: u64,
    /// Outcome unknown: a person decides.
    pub unknown: u64,
    /// Held by quiet hours: they go when the hours open (a resume, or `sms serve`).
    #[serde(default)]
    pub held: u64,
    /// Accepted records whose text was reported delivered.
    pub delivered: u64,
    /// Accepted records whose text was reported undelivered or failed by the carrier.
    pub undelivered: u64,
    /// Texts the provider accepted (fewer than `accepted` under `once_per_number`).
    pub texts_sent: u64,
    /// Message units (segments) those texts use.
    pub units_used: u64,
    /// Blocked records by reason code.
    pub blocked_by_reason: BTreeMap<String, u64>,
    /// Failed records by error class.
    pub failed_by_class: BTreeMap<String, u64>,
}

/// What happened to a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignReport {
    /// The campaign.
    pub campaign_id: CampaignId,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// The message as written.
    pub template: String,
    /// One entry per record, by `seq`.
    pub records: Vec<RecordReport>,
    /// The counts.
    pub totals: ReportTotals,
    /// The records held by quiet hours and when they may go (`None`: none held).
    #[serde(default)]
    pub held: Option<HeldSummary>,
}

impl CampaignReport {
    /// Builds the report from a campaign and its journal entries.
    pub fn build(campaign: &Campaign, entries: &[RecordEntry]) -> CampaignReport {
        let mut totals = ReportTotals {
            records: campaign.items.len() as u64,
            ..ReportTotals::default()
        };
        let mut texts: HashSet<&str> = HashSet::new();
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            let Some(item) = campaign.items.get(entry.seq as usize) else {
                continue;
            };
            match &entry.state {
                RecordState::Planned => totals.planned += 1,
                RecordState::Blocked { reason } => {
                    totals.blocked += 1;
                    *totals
                        .blocked_by_reason
                        .entry(reason.code().to_owned())
                        .or_default() += 1;
                }
                RecordState::Sending { .. } => totals.sending += 1,
                RecordState::Accepted {
                    provider_id,
                    segments,
                    ..
                } => {
                    totals.accepted += 1;
                    if texts.insert(provider_id) {
                        totals.texts_sent += 1;
                        totals.units_used += u64::from(*segments);
                    }
                    match entry.delivery.as_ref().map(|d| &d.status) {
                        Some(DeliveryStatus::Delivered) => totals.delivered += 1,
                        Some(DeliveryStatus::Undelivered | DeliveryStatus::Failed) => {
                            totals.undelivered += 1
                        }
                        _ => {}
                    }
                }
                RecordState::Failed { failure, .. } => {
                    totals.failed += 1;
                    *totals
                        .failed_by_class
                        .entry(failure.class.clone())
                        .or_default() += 1;
                }
                RecordState::Deferred { .. } => totals.deferred += 1,
                RecordState::Unknown { .. } => totals.unknown += 1,
                RecordState::Held { .. } => totals.held += 1,
            }
            let number = match &item.outcome {
                PreviewOutcome::Eligible { number, .. } => Some(*number),
                PreviewOutcome::Blocked { .. } => None,
            };
            records.push(RecordReport {
                seq: entry.seq,
                record_id: item.record_id.clone(),
                kind: item.kind,
                name: item.name.clone(),
                number,
                state: entry.state.clone(),
                delivery: entry.delivery.clone(),
            });
        }
        let held = HeldSummary::of(records.iter().filter_map(|r| match &r.state {
            RecordState::Held {
                until, time_zone, ..
            } => Some((*until, time_zone.as_str())),
            _ => None,
        }));
        CampaignReport {
            campaign_id: campaign.id.clone(),
            name: campaign.name.clone(),
            created_at: campaign.created_at,
            template: campaign.template.clone(),
            records,
            totals,
            held,
        }
    }

    /// Whether every record has a final outcome (accepted, blocked or failed): what the CLI's
    /// exit status reports.
    pub fn is_complete(&self) -> bool {
        self.records.iter().all(|r| r.state.is_final())
    }

    /// Whether every record is final except some held by quiet hours: nothing is in doubt or
    /// left by a stop, and the held ones go when the hours open. What the CLI's exit status 4
    /// reports.
    pub fn only_held_left(&self) -> bool {
        self.totals.held > 0
            && self
                .records
                .iter()
                .all(|r| r.state.is_final() || matches!(r.state, RecordState::Held { .. }))
    }

    /// Records a person must look at: outcome unknown.
    pub fn needs_attention(&self) -> impl Iterator<Item = &RecordReport> {
        self.records
            .iter()
            .filter(|r| matches!(r.state, RecordState::Unknown { .. }))
    }
}

/// Reads a campaign and its records from `journal` and builds the report.
pub async fn load_report<J: Journal + ?Sized>(
    journal: &J,
    id: CampaignId,
) -> Result<CampaignReport, JournalError> {
    let campaign = journal.campaign(id.clone()).await?;
    let entries = journal.records(id).await?;
    Ok(CampaignReport::build(&campaign, &entries))
}
