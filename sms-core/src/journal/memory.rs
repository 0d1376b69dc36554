//! A journal in memory, for tests and demos.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use std::time::Duration;

use tokio::time::Instant;

use super::fleet::{FleetJournal, Outstanding, WorkerId};
use super::{
    Campaign, CampaignId, CampaignSummary, Delivery, DeliveryUpdate, Journal, JournalError,
    RateLimit, RecordEntry, RecordState, RunClaim, Transition, check_transition,
};
use crate::phone::PhoneNumber;
use crate::preview::PreviewOutcome;

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
    /// Fleet leases by campaign and number.
    leases: HashMap<(CampaignId, PhoneNumber), Lease>,
    /// Each campaign's shared rate grid: its next slot, in microseconds since `epoch`.
    grids: HashMap<CampaignId, Option<i64>>,
    /// The origin of the grids' clock (set at the first booking).
    epoch: Option<Instant>,
}

/// One number's lease in a fleet run (on the monotonic clock, the journal's own).
#[derive(Debug, Clone)]
struct Lease {
    worker: Option<WorkerId>,
    until: Instant,
    hold_until: Option<Instant>,
}

/// Whether a record in this state gives its number work for a fleet, and whether that work
/// keeps the fleet's workers waiting (`deferred` and `unknown` records wait for a later run; a
/// record held by quiet hours is work once its opening has passed, and never keeps workers up
/// all night).
fn work(state: &RecordState) -> (bool, bool) {
    match state {
        RecordState::Planned | RecordState::Sending { .. } => (true, true),
        // A deferred record was refused "try later" as often as a run tries (a worker that
        // leases it tries again), and an unknown one waits for its silence: work, but neither
        // keeps the fleet up, or a long outage would keep every worker polling for ever where
        // a run ends (and a later resume retries them).
        RecordState::Deferred { .. } | RecordState::Unknown { .. } => (true, false),
        RecordState::Held { until, .. } => (*until <= crate::Timestamp::now(), false),
        _ => (false, false),
    }
}

/// The number of an eligible record.
fn number_of(campaign: &Campaign, seq: u32) -> Option<PhoneNumber> {
    match &campaign.items.get(seq as usize)?.outcome {
        PreviewOutcome::Eligible { number, .. } => Some(*number),
        PreviewOutcome::Blocked { .. } => None,
    }
}

impl Inner {
    /// Applies a batch all-or-nothing.
    fn apply(&mut self, id: CampaignId, transitions: Vec<Transition>) -> Result<(), JournalError> {
        let Some((_, records)) = self.campaigns.get_mut(&id) else {
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

    fn entry(&self, id: &CampaignId) -> Result<&(Campaign, Vec<RecordEntry>), JournalError> {
        self.campaigns
            .get(id)
            .ok_or_else(|| JournalError::UnknownCampaign(id.clone()))
    }

    /// The campaign's numbers with work: (active, any) per number, in number order.
    fn numbers_with_work(
        &self,
        id: &CampaignId,
    ) -> Result<std::collections::BTreeMap<PhoneNumber, bool>, JournalError> {
        let (campaign, records) = self.entry(id)?;
        let mut numbers = std::collections::BTreeMap::new();
        for entry in records {
            let (any, active) = work(&entry.state);
            if let (true, Some(number)) = (any, number_of(campaign, entry.seq)) {
                *numbers.entry(number).or_insert(false) |= active;
            }
        }
        Ok(numbers)
    }

    fn holds(&self, id: &CampaignId, number: PhoneNumber, worker: &WorkerId, now: Instant) -> bool {
        self.leases
            .get(&(id.clone(), number))
            .is_some_and(|l| l.worker.as_ref() == Some(worker) && l.until > now)
    }

    fn records_of(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        now: Instant,
    ) -> Result<Vec<RecordEntry>, JournalError> {
        let (campaign, records) = self.entry(id)?;
        Ok(records
            .iter()
            .filter(|e| number_of(campaign, e.seq).is_some_and(|n| self.holds(id, n, worker, now)))
            .cloned()
            .collect())
    }
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
        self.lock().apply(id, transitions)
    }

    async fn claim(&self, id: CampaignId) -> Result<RunClaim, JournalError> {
        // A fleet working on the campaign is a run too: any live lease, whatever its records'
        // states (a worker reconciling a number in doubt is working on it), as PostgreSQL's
        // claim checks.
        {
            let now = Instant::now();
            let inner = self.lock();
            if inner
                .leases
                .iter()
                .any(|((campaign, _), l)| *campaign == id && l.worker.is_some() && l.until > now)
            {
                return Err(JournalError::CampaignBusy(id));
            }
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if !running.insert(id.clone()) {
            return Err(JournalError::CampaignBusy(id));
        }
        Ok(RunClaim::new(Running {
            set: self.running.clone(),
            id,
        }))
    }

    fn fleet(&self) -> Option<&dyn FleetJournal> {
        Some(self)
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

/// Fleet leases in memory: workers are tasks of one process sharing this journal (the tests of
/// the fleet rules use it; a real fleet shares a database).
#[async_trait]
impl FleetJournal for InMemoryJournal {
    async fn lease(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        max_numbers: u32,
        lease: Duration,
    ) -> Result<Vec<RecordEntry>, JournalError> {
        // A run of the whole campaign (under a claim) excludes a fleet.
        if self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
        {
            return Err(JournalError::CampaignBusy(id.clone()));
        }
        let now = Instant::now();
        let mut inner = self.lock();
        let free: Vec<PhoneNumber> = inner
            .numbers_with_work(id)?
            .into_keys()
            .filter(|n| {
                inner.leases.get(&(id.clone(), *n)).is_none_or(|l| {
                    (l.worker.is_none() || l.until <= now) && l.hold_until.is_none_or(|h| h <= now)
                })
            })
            .take(max_numbers as usize)
            .collect();
        for number in free {
            inner.leases.insert(
                (id.clone(), number),
                Lease {
                    worker: Some(worker.clone()),
                    until: now + lease,
                    hold_until: None,
                },
            );
        }
        inner.records_of(id, worker, now)
    }

    async fn leased_records(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
    ) -> Result<Vec<RecordEntry>, JournalError> {
        self.lock().records_of(id, worker, Instant::now())
    }

    async fn renew(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        lease: Duration,
    ) -> Result<u64, JournalError> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.entry(id)?;
        let mut held = 0;
        for ((campaign, _), l) in inner.leases.iter_mut() {
            if campaign == id && l.worker.as_ref() == Some(worker) && l.until > now {
                l.until = now + lease;
                held += 1;
            }
        }
        Ok(held)
    }

    async fn release(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        numbers: Vec<PhoneNumber>,
        hold: Duration,
    ) -> Result<(), JournalError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let with_work = inner.numbers_with_work(id)?;
        for number in numbers {
            let key = (id.clone(), number);
            if !inner.holds(id, number, worker, now) {
                continue;
            }
            if with_work.contains_key(&number) && !hold.is_zero() {
                inner.leases.insert(
                    key,
                    Lease {
                        worker: None,
                        until: now,
                        hold_until: Some(now + hold),
                    },
                );
            } else {
                inner.leases.remove(&key);
            }
        }
        Ok(())
    }

    async fn begin_sending(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        transitions: Vec<Transition>,
    ) -> Result<(), JournalError> {
        let now = Instant::now();
        let mut inner = self.lock();
        {
            let (campaign, _) = inner.entry(id)?;
            for t in &transitions {
                let held =
                    number_of(campaign, t.seq).is_some_and(|n| inner.holds(id, n, worker, now));
                if !held {
                    return Err(JournalError::LeaseLost {
                        campaign: id.clone(),
                        worker: worker.to_string(),
                        seq: t.seq,
                    });
                }
            }
        }
        // Checked and written under one lock, as a database does both in one transaction.
        inner.apply(id.clone(), transitions)
    }

    async fn book(
        &self,
        id: &CampaignId,
        rate: RateLimit,
        cost: u32,
    ) -> Result<Duration, JournalError> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.entry(id)?;
        let epoch = *inner.epoch.get_or_insert(now);
        let now_us = i64::try_from(now.duration_since(epoch).as_micros()).unwrap_or(i64::MAX);
        let next = inner.grids.get(id).copied().flatten();
        let (start, next) = crate::dispatch::book_slot(next, now_us, None, rate, cost);
        inner.grids.insert(id.clone(), next);
        Ok(Duration::from_micros(
            u64::try_from(start - now_us).unwrap_or(0),
        ))
    }

    async fn outstanding(&self, id: &CampaignId) -> Result<Outstanding, JournalError> {
        let now = Instant::now();
        let inner = self.lock();
        let mut out = Outstanding::default();
        for (number, active) in inner.numbers_with_work(id)? {
            if !active {
                continue;
            }
            out.active += 1;
            if inner
                .leases
                .get(&(id.clone(), number))
                .is_some_and(|l| l.worker.is_some() && l.until > now)
            {
                out.leased += 1;
            }
        }
        Ok(out)
    }
}
