//! Where alerts live: sign-ups with their history, events, scheduled alerts, the batches they
//! are sent in, and their outcomes.
//!
//! | implementation | for |
//! |---|---|
//! | [`InMemoryAlertStore`] | tests and hosts that keep state elsewhere |
//! | `sms_sqlite::SqliteStore` | the embedded durable default |
//! | `sms_postgres::PgStore` | the shared store: many organisations, several servers |

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{AlertEvent, AlertReason, EventId, RecentSend, ScheduledAlert, SubscriptionChange};
use crate::consent::AlertKind;
use crate::journal::{CampaignId, SendFailure};
use crate::phone::PhoneNumber;
use crate::preview::{PreviewItem, PreviewOutcome};
use crate::recipient::RecordId;
use crate::time::Timestamp;

/// Failure of an alert store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertStoreError {
    /// The store could not be read or written; nothing of the failed call was recorded.
    #[error("alert store unavailable: {0}")]
    Unavailable(String),
    /// The write would break a rule (claiming an alert that is not pending); nothing of the
    /// call was recorded.
    #[error("alert store refused: {0}")]
    Conflict(String),
}

/// Where an alert stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum AlertStatus {
    /// Scheduled, not decided for good yet (not due, waiting, or due).
    Pending,
    /// Taken into a batch that is being sent: the journal's record decides its outcome.
    Claimed {
        /// The batch's campaign.
        campaign_id: CampaignId,
        /// Its record's position in that campaign.
        seq: u32,
    },
    /// Final.
    Done {
        /// What happened.
        outcome: AlertOutcome,
        /// When it was decided.
        at: Timestamp,
    },
}

/// How an alert ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AlertOutcome {
    /// The provider took it.
    Sent {
        /// To this number.
        number: PhoneNumber,
        /// The provider's message id.
        provider_id: String,
        /// In this batch.
        campaign_id: CampaignId,
    },
    /// It was not sent and never will be.
    Never {
        /// Why.
        reason: AlertReason,
    },
    /// The provider refused it for good.
    Failed {
        /// Why.
        failure: SendFailure,
    },
}

impl AlertOutcome {
    /// `sent`, the reason's code, or `failed`.
    pub fn code(&self) -> &'static str {
        match self {
            AlertOutcome::Sent { .. } => "sent",
            AlertOutcome::Never { reason } => reason.code(),
            AlertOutcome::Failed { .. } => "failed",
        }
    }
}

/// A scheduled alert as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// The store's id of the alert.
    pub id: u64,
    /// The alert.
    pub alert: ScheduledAlert,
    /// Where it stands.
    pub status: AlertStatus,
}

/// Alerts claimed together for one send: the campaign the journal sends them as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertBatch {
    /// The campaign the batch is sent as (created in the journal after the claim).
    pub campaign_id: CampaignId,
    /// The rule time of the run that claimed it: what the cap counts these sends at.
    pub claimed_at: Timestamp,
    /// The alerts, by position (`seq`) in the campaign.
    pub alerts: Vec<u64>,
    /// The campaign's records, rendered when claimed, by the same position.
    pub items: Vec<PreviewItem>,
}

/// What recording an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInsert {
    /// Whether the event id was new (false: reported before; its first report stands).
    pub new_event: bool,
    /// Alerts scheduled by this call.
    pub scheduled: usize,
    /// (event, record) pairs already scheduled, left as they were.
    pub duplicates: usize,
}

/// Where alerts are kept. Every write is durable and atomic when it returns.
///
/// The states only move forward: `pending` to `claimed` (in [`AlertStore::claim_batch`], all of a
/// batch or none) or to `done` ([`AlertStore::finish`]); `claimed` to `done`
/// ([`AlertStore::settle`]); `done` never changes (a replay is ignored). So a batch claimed once is sent once: its journal
/// campaign holds the truth about each record, and an alert in it is never claimed again.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Records one sign-up change (the history is kept: nothing is ever deleted).
    async fn record_subscription(&self, change: SubscriptionChange) -> Result<(), AlertStoreError>;

    /// The sign-up history, in the order received; of one record, or of all.
    async fn subscription_history(
        &self,
        record: Option<RecordId>,
    ) -> Result<Vec<SubscriptionChange>, AlertStoreError>;

    /// Records `event` and its `alerts` atomically. An event id seen before keeps its first
    /// report; an (event, record) pair already scheduled is left as it was.
    async fn record_event(
        &self,
        event: AlertEvent,
        alerts: Vec<ScheduledAlert>,
    ) -> Result<EventInsert, AlertStoreError>;

    /// Every event, in the order received.
    async fn events(&self) -> Result<Vec<AlertEvent>, AlertStoreError>;

    /// The alerts still pending.
    async fn pending(&self) -> Result<Vec<StoredAlert>, AlertStoreError>;

    /// Every alert (pending, claimed and done), by id.
    async fn all_alerts(&self) -> Result<Vec<StoredAlert>, AlertStoreError>;

    /// Finishes pending alerts the rules decided will never go, decided at `at`. An alert no
    /// longer pending (claimed by another run meanwhile, or done) is left as it was: its batch
    /// decides it.
    async fn finish(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError>;

    /// Settles claimed alerts from their journal records, at `at`. An alert not claimed (done
    /// already: a replay) is left as it was.
    async fn settle(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError>;

    /// Claims pending alerts into a new batch, atomically: every one must still be pending
    /// ([`AlertStoreError::Conflict`] otherwise, and nothing is claimed). The store names the
    /// batch's campaign (unique in the store).
    async fn claim_batch(
        &self,
        claimed_at: Timestamp,
        claims: Vec<(u64, PreviewItem)>,
    ) -> Result<AlertBatch, AlertStoreError>;

    /// Batches with an alert still claimed (being sent, or interrupted).
    async fn open_batches(&self) -> Result<Vec<AlertBatch>, AlertStoreError>;

    /// Alerts sent, or claimed and not settled, since `since`: what the cap counts.
    async fn recent_sends(&self, since: Timestamp) -> Result<Vec<RecentSend>, AlertStoreError>;

    /// The stored wordings (kinds without one use the embedded default).
    async fn templates(&self) -> Result<Vec<(AlertKind, String)>, AlertStoreError>;

    /// Stores the wording of `kind`.
    async fn set_template(&self, kind: AlertKind, text: String) -> Result<(), AlertStoreError>;
}

/// The number a claimed item goes to.
pub(crate) fn item_number(item: &PreviewItem) -> Option<PhoneNumber> {
    match &item.outcome {
        PreviewOutcome::Eligible { number, .. } => Some(*number),
        PreviewOutcome::Blocked { .. } => None,
    }
}

/// An alert store in memory: nothing survives the process.
#[derive(Debug, Default)]
pub struct InMemoryAlertStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    subscriptions: Vec<SubscriptionChange>,
    events: Vec<AlertEvent>,
    event_ids: HashSet<EventId>,
    alerts: Vec<StoredAlert>,
    keys: HashSet<(EventId, RecordId)>,
    batches: Vec<AlertBatch>,
    templates: BTreeMap<AlertKind, String>,
}

impl Inner {
    /// Marks done the alerts of `outcomes` whose status `from` accepts; others are left.
    fn close(
        &mut self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
        from: impl Fn(&AlertStatus) -> bool,
    ) -> Result<(), AlertStoreError> {
        for (id, _) in &outcomes {
            if !self.alerts.iter().any(|a| a.id == *id) {
                return Err(AlertStoreError::Conflict(format!("no alert {id}")));
            }
        }
        for (id, outcome) in outcomes {
            if let Some(stored) = self.alerts.iter_mut().find(|a| a.id == id)
                && from(&stored.status)
            {
                stored.status = AlertStatus::Done { outcome, at };
            }
        }
        Ok(())
    }
}

impl InMemoryAlertStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Writes check first and then mutate without panicking: a poisoned lock still guards
        // consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl AlertStore for InMemoryAlertStore {
    async fn record_subscription(&self, change: SubscriptionChange) -> Result<(), AlertStoreError> {
        self.lock().subscriptions.push(change);
        Ok(())
    }

    async fn subscription_history(
        &self,
        record: Option<RecordId>,
    ) -> Result<Vec<SubscriptionChange>, AlertStoreError> {
        Ok(self
            .lock()
            .subscriptions
            .iter()
            .filter(|c| record.as_ref().is_none_or(|r| *r == c.record_id))
            .cloned()
            .collect())
    }

    async fn record_event(
        &self,
        event: AlertEvent,
        alerts: Vec<ScheduledAlert>,
    ) -> Result<EventInsert, AlertStoreError> {
        let mut inner = self.lock();
        let new_event = inner.event_ids.insert(event.id.clone());
        if new_event {
            inner.events.push(event);
        }
        let (mut scheduled, mut duplicates) = (0, 0);
        for alert in alerts {
            let key = (alert.event_id.clone(), alert.record_id().clone());
            if !inner.keys.insert(key) {
                duplicates += 1;
                continue;
            }
            let id = inner.alerts.len() as u64 + 1;
            inner.alerts.push(StoredAlert {
                id,
                alert,
                status: AlertStatus::Pending,
            });
            scheduled += 1;
        }
        Ok(EventInsert {
            new_event,
            scheduled,
            duplicates,
        })
    }

    async fn events(&self) -> Result<Vec<AlertEvent>, AlertStoreError> {
        Ok(self.lock().events.clone())
    }

    async fn pending(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        Ok(self
            .lock()
            .alerts
            .iter()
            .filter(|a| a.status == AlertStatus::Pending)
            .cloned()
            .collect())
    }

    async fn all_alerts(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        Ok(self.lock().alerts.clone())
    }

    async fn finish(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError> {
        self.lock()
            .close(outcomes, at, |s| matches!(s, AlertStatus::Pending))
    }

    async fn settle(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError> {
        self.lock()
            .close(outcomes, at, |s| matches!(s, AlertStatus::Claimed { .. }))
    }

    async fn claim_batch(
        &self,
        claimed_at: Timestamp,
        claims: Vec<(u64, PreviewItem)>,
    ) -> Result<AlertBatch, AlertStoreError> {
        let mut inner = self.lock();
        for (id, _) in &claims {
            let pending = inner
                .alerts
                .iter()
                .any(|a| a.id == *id && a.status == AlertStatus::Pending);
            if !pending {
                return Err(AlertStoreError::Conflict(format!(
                    "alert {id} is not pending (claimed by another run?)"
                )));
            }
        }
        let campaign_id = CampaignId::new(format!("alerts-batch-{}", inner.batches.len() + 1))
            .ok_or_else(|| AlertStoreError::Unavailable("bad batch id".to_owned()))?;
        let (alerts, items): (Vec<u64>, Vec<PreviewItem>) = claims.into_iter().unzip();
        for (seq, id) in (0u32..).zip(&alerts) {
            if let Some(stored) = inner.alerts.iter_mut().find(|a| a.id == *id) {
                stored.status = AlertStatus::Claimed {
                    campaign_id: campaign_id.clone(),
                    seq,
                };
            }
        }
        let batch = AlertBatch {
            campaign_id,
            claimed_at,
            alerts,
            items,
        };
        inner.batches.push(batch.clone());
        Ok(batch)
    }

    async fn open_batches(&self) -> Result<Vec<AlertBatch>, AlertStoreError> {
        let inner = self.lock();
        Ok(inner
            .batches
            .iter()
            .filter(|b| {
                b.alerts.iter().any(|id| {
                    inner
                        .alerts
                        .iter()
                        .any(|a| a.id == *id && matches!(a.status, AlertStatus::Claimed { .. }))
                })
            })
            .cloned()
            .collect())
    }

    async fn recent_sends(&self, since: Timestamp) -> Result<Vec<RecentSend>, AlertStoreError> {
        let inner = self.lock();
        let mut sends = Vec::new();
        for batch in inner.batches.iter().filter(|b| b.claimed_at >= since) {
            for (id, item) in batch.alerts.iter().zip(&batch.items) {
                let Some(stored) = inner.alerts.iter().find(|a| a.id == *id) else {
                    continue;
                };
                let counts = match &stored.status {
                    AlertStatus::Claimed { .. } => true,
                    AlertStatus::Done { outcome, .. } => {
                        matches!(outcome, AlertOutcome::Sent { .. })
                    }
                    AlertStatus::Pending => false,
                };
                if let (true, Some(number)) = (counts, item_number(item)) {
                    sends.push(RecentSend {
                        number,
                        event_id: stored.alert.event_id.clone(),
                        at: batch.claimed_at,
                    });
                }
            }
        }
        Ok(sends)
    }

    async fn templates(&self) -> Result<Vec<(AlertKind, String)>, AlertStoreError> {
        Ok(self
            .lock()
            .templates
            .iter()
            .map(|(k, t)| (*k, t.clone()))
            .collect())
    }

    async fn set_template(&self, kind: AlertKind, text: String) -> Result<(), AlertStoreError> {
        self.lock().templates.insert(kind, text);
        Ok(())
    }
}
