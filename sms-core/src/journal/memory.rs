//! A journal in memory, for tests and demos.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{
    Campaign, CampaignId, CampaignSummary, Delivery, DeliveryUpdate, Journal, JournalError,
    RecordEntry, RecordState, RunClaim, Transition, check_transition,
};

/// A journal that keeps everything in memory: nothing survives the process.
#[derive(Debug, Default)]
pub struct InMemoryJournal {
    inner: Mutex<Inner>,
    running: Arc<Mutex<HashSet<CampaignId>>>,
}

/// Removes the campaign from the running set when the run ends.
struct Running {
    set: Arc<Mutex<HashSet<CampaignId>>>,
    id: CampaignId,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

#[derive(Debug, Default)]
struct Inner {
    campaigns: HashMap<CampaignId, (Campaign, Vec<RecordEntry>)>,
}

impl InMemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every write validates first and then mutates without panicking, so a poisoned lock
        // still guards consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Journal for InMemoryJournal {
    async fn logged_provider_ids(
        &self,
        provider_ids: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, JournalError> {
        let inner = self.lock();
        Ok(provider_ids
            .into_iter()
            .filter(|id| {
                inner.campaigns.values().any(|(_, entries)| {
                    entries
                        .iter()
                        .any(|e| e.state.provider_id() == Some(id.as_str()))
                })
            })
            .collect())
    }

    async fn create_campaign(&self, campaign: Campaign) -> Result<(), JournalError> {
        let mut inner = self.lock();
        if inner.campaigns.contains_key(&campaign.id) {
            return Err(JournalError::CampaignExists(campaign.id));
        }
        let records = (0u32..)
            .zip(&campaign.items)
            .map(|(seq, item)| RecordEntry {
                seq,
                state: Campaign::initial_state(item),
                delivery: None,
            })
            .collect();
        inner
            .campaigns
            .insert(campaign.id.clone(), (campaign, records));
        Ok(())
    }

    async fn campaign(&self, id: CampaignId) -> Result<Campaign, JournalError> {
        self.lock()
            .campaigns
            .get(&id)
            .map(|(c, _)| c.clone())
            .ok_or(JournalError::UnknownCampaign(id))
    }

    async fn campaigns(&self) -> Result<Vec<CampaignSummary>, JournalError> {
        let inner = self.lock();
        let mut list: Vec<CampaignSummary> = inner
            .campaigns
            .values()
            .map(|(c, records)| CampaignSummary {
                id: c.id.clone(),
                name: c.name.clone(),
                created_at: c.created_at,
                records: records.len() as u64,
            })
            .collect();
        // Oldest first by creation time, then id, as every store lists them (a campaign may be
        // stored after a younger one).
        list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(list)
    }

    async fn records(&self, id: CampaignId) -> Result<Vec<RecordEntry>, JournalError> {
        self.lock()
            .campaigns
            .get(&id)
            .map(|(_, r)| r.clone())
            .ok_or(JournalError::UnknownCampaign(id))
    }

    async fn apply(
        &self,
        id: CampaignId,
        transitions: Vec<Transition>,
    ) -> Result<(), JournalError> {
        let mut inner = self.lock();
        let Some((_, records)) = inner.campaigns.get_mut(&id) else {
            return Err(JournalError::UnknownCampaign(id));
        };
        // Validate the whole batch against the states it would see before changing anything,
        // so the call is all-or-nothing.
        let mut staged: HashMap<u32, RecordState> = HashMap::new();
        for t in &transitions {
            let current = match staged.get(&t.seq) {
                Some(state) => state,
                None => match records.get(t.seq as usize) {
                    Some(entry) => &entry.state,
                    None => {
                        return Err(JournalError::UnknownRecord {
                            campaign: id,
                            seq: t.seq,
                        });
                    }
                },
            };
            check_transition(&id, t.seq, current, &t.state)?;
            staged.insert(t.seq, t.state.clone());
        }
        for (seq, state) in staged {
            records[seq as usize].state = state;
        }
        Ok(())
    }

    async fn claim(&self, id: CampaignId) -> Result<RunClaim, JournalError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if !running.insert(id.clone()) {
            return Err(JournalError::CampaignBusy(id));
        }
        Ok(RunClaim::new(Running {
            set: self.running.clone(),
            id,
        }))
    }

    async fn record_delivery(&self, update: DeliveryUpdate) -> Result<bool, JournalError> {
        let mut inner = self.lock();
        let mut found = false;
        for (_, records) in inner.campaigns.values_mut() {
            for entry in records.iter_mut() {
                if entry.state.provider_id() != Some(update.provider_id.as_str()) {
                    continue;
                }
                found = true;
                if let (Some(segments), RecordState::Accepted { segments: s, .. }) =
                    (update.segments, &mut entry.state)
                {
                    *s = segments;
                }
                if Delivery::should_replace(entry.delivery.as_ref(), &update.status) {
                    entry.delivery = Some(Delivery {
                        status: update.status.clone(),
                        error_code: update.error_code,
                        at: update.at,
                    });
                }
            }
        }
        Ok(found)
    }
}
