//! What a person decides: the estimate before sending, and the outcome of a record whose
//! send could not be reconciled.

use serde::{Deserialize, Serialize};

use super::plan::{Estimate, hold_jobs, pending_jobs, queue_warning};
use super::{DispatchError, DispatchOptions, DispatchWarning, Dispatcher, plan::eligible};
use crate::journal::{
    Campaign, CampaignId, Journal, JournalError, RecordEntry, RecordState, Transition,
};
use crate::optout::OptOutStore;
use crate::provider::Provider;
use crate::quiet::ZoneCache;
use crate::time::Timestamp;

/// The estimate and warnings for a campaign not stored yet (every eligible record pending),
/// as if it started at its `created_at`: what staff see before confirming a send. Records
/// quiet hours would hold are not in the figures but in [`Estimate::held`].
pub fn estimate_campaign(
    campaign: &Campaign,
    options: &DispatchOptions,
) -> (Estimate, Vec<DispatchWarning>) {
    let entries: Vec<RecordEntry> = (0u32..)
        .zip(&campaign.items)
        .map(|(seq, item)| RecordEntry {
            seq,
            state: Campaign::initial_state(item),
            delivery: None,
        })
        .collect();
    let (jobs, _) = pending_jobs(campaign, &entries, true, campaign.created_at);
    // Quiet hours at the campaign's creation: what would be held if it started now.
    let (jobs, holds) = hold_jobs(campaign, jobs, campaign.created_at, &mut ZoneCache::new());
    let mut settings = campaign.settings.clone();
    if let Some(rate) = options.rate {
        settings.rate = rate;
    }
    let estimate = Estimate::of(&jobs, &settings).with_holds(&holds);
    let warnings = queue_warning(&estimate, options.queue_window_seconds)
        .into_iter()
        .collect();
    (estimate, warnings)
}

/// A person's decision about a record whose outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resolution", rename_all = "snake_case")]
pub enum Resolution {
    /// The text went out (checked in the provider's console, say): log it as accepted.
    Sent {
        /// The provider's message id (from its console). Required: it marks that message as
        /// used, so it can never be taken as proof for another record on the same number.
        provider_id: String,
    },
    /// The text did not go out: the next run sends it.
    NotSent,
}

impl<P, S, J> Dispatcher<P, S, J>
where
    P: Provider + ?Sized,
    S: OptOutStore + ?Sized,
    J: Journal + ?Sized,
{
    /// Records a person's decision about record `seq`, which must be in the `unknown` state.
    /// Refused with [`JournalError::CampaignBusy`] while a run of the campaign is going.
    pub async fn resolve(
        &self,
        id: CampaignId,
        seq: u32,
        resolution: Resolution,
        now: Timestamp,
    ) -> Result<(), DispatchError> {
        let campaign = self.journal.campaign(id.clone()).await?;
        // Not while a run reconciles the same records.
        let _claim = self.journal.claim(id.clone()).await?;
        let entries = self.journal.records(id.clone()).await?;
        let entry =
            entries
                .iter()
                .find(|e| e.seq == seq)
                .ok_or_else(|| JournalError::UnknownRecord {
                    campaign: id.clone(),
                    seq,
                })?;
        let state = match resolution {
            Resolution::Sent { provider_id } => RecordState::Accepted {
                provider_id,
                segments: eligible(&campaign, seq).map_or(0, |(_, _, segments)| segments),
                at: now,
            },
            Resolution::NotSent => RecordState::Planned,
        };
        if !matches!(entry.state, RecordState::Unknown { .. }) {
            return Err(JournalError::InvalidTransition {
                campaign: id,
                seq,
                from: entry.state.code().to_owned(),
                to: state.code().to_owned(),
            }
            .into());
        }
        self.journal
            .apply(id, vec![Transition { seq, state }])
            .await?;
        Ok(())
    }
}
