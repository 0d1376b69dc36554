//! [`Store`]: the SQLite file or the PostgreSQL database, forwarding each call of the core's
//! traits (and the few inherent methods both stores have) to the one opened.

use std::collections::HashSet;

use async_trait::async_trait;
use sms_core::alerts::{
    AlertBatch, AlertEvent, AlertOutcome, AlertStore, AlertStoreError, EventInsert, RecentSend,
    ScheduledAlert, StoredAlert, SubscriptionChange,
};
use sms_core::journal::{
    Campaign, CampaignId, CampaignSummary, DeliveryUpdate, FleetJournal, Journal, JournalError,
    RecordEntry, RunClaim, Transition,
};
use sms_core::optout::{OptOutChange, OptOutSnapshot, OptOutState, OptOutStore, StoreError};
use sms_core::{AlertKind, PhoneNumber, PreviewItem, RecordId, StoredReply, Timestamp};
use sms_postgres::PgStore;
use sms_sqlite::SqliteStore;

/// Opt-outs, the journal, replies and alerts of one organisation, in SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub enum Store {
    /// The embedded file: one run per campaign at a time (the file's lock).
    Sqlite(SqliteStore),
    /// The shared database: several servers, fleet runs.
    Postgres(PgStore),
}

/// The same call on whichever store this is.
macro_rules! each {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

impl Store {
    /// Whether several servers share this store: a campaign is then sent by fleet workers
    /// ([`sms_core::Dispatcher::run_fleet`]), any number of them at once.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Stores an inbound message; `Ok(false)` when its `MessageSid` is stored already.
    pub async fn record_reply(&self, reply: StoredReply) -> Result<bool, StoreError> {
        each!(self, s => s.record_reply(reply).await)
    }

    /// The inbound messages received at or after `since`, oldest first.
    pub async fn replies(&self, since: Timestamp) -> Result<Vec<StoredReply>, StoreError> {
        each!(self, s => s.replies(since).await)
    }

    /// Whether the store answers and takes writes.
    pub async fn check(&self) -> Result<(), StoreError> {
        each!(self, s => s.check().await)
    }
}

#[async_trait]
impl OptOutStore for Store {
    async fn record(&self, change: OptOutChange) -> Result<(), StoreError> {
        each!(self, s => s.record(change).await)
    }

    async fn state(&self, number: PhoneNumber) -> Result<OptOutState, StoreError> {
        each!(self, s => s.state(number).await)
    }

    async fn history(&self, number: PhoneNumber) -> Result<Vec<OptOutChange>, StoreError> {
        each!(self, s => s.history(number).await)
    }

    async fn snapshot(&self) -> Result<OptOutSnapshot, StoreError> {
        each!(self, s => s.snapshot().await)
    }
}

#[async_trait]
impl Journal for Store {
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), JournalError> {
        each!(self, s => s.create_campaign(campaign).await)
    }

    async fn campaign(&self, id: CampaignId) -> Result<Campaign, JournalError> {
        each!(self, s => s.campaign(id).await)
    }

    async fn campaigns(&self) -> Result<Vec<CampaignSummary>, JournalError> {
        each!(self, s => s.campaigns().await)
    }

    async fn records(&self, id: CampaignId) -> Result<Vec<RecordEntry>, JournalError> {
        each!(self, s => s.records(id).await)
    }

    async fn apply(
        &self,
        id: CampaignId,
        transitions: Vec<Transition>,
    ) -> Result<(), JournalError> {
        each!(self, s => s.apply(id, transitions).await)
    }

    async fn record_delivery(&self, update: DeliveryUpdate) -> Result<bool, JournalError> {
        each!(self, s => s.record_delivery(update).await)
    }

    async fn logged_provider_ids(
        &self,
        provider_ids: Vec<String>,
    ) -> Result<HashSet<String>, JournalError> {
        each!(self, s => s.logged_provider_ids(provider_ids).await)
    }

    async fn claim(&self, id: CampaignId) -> Result<RunClaim, JournalError> {
        each!(self, s => s.claim(id).await)
    }

    fn fleet(&self) -> Option<&dyn FleetJournal> {
        each!(self, s => s.fleet())
    }
}

#[async_trait]
impl AlertStore for Store {
    async fn record_subscription(&self, change: SubscriptionChange) -> Result<(), AlertStoreError> {
        each!(self, s => s.record_subscription(change).await)
    }

    async fn subscription_history(
        &self,
        record: Option<RecordId>,
    ) -> Result<Vec<SubscriptionChange>, AlertStoreError> {
        each!(self, s => s.subscription_history(record).await)
    }

    async fn record_event(
        &self,
        event: AlertEvent,
        alerts: Vec<ScheduledAlert>,
    ) -> Result<EventInsert, AlertStoreError> {
        each!(self, s => s.record_event(event, alerts).await)
    }

    async fn events(&self) -> Result<Vec<AlertEvent>, AlertStoreError> {
        each!(self, s => s.events().await)
    }

    async fn pending(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        each!(self, s => s.pending().await)
    }

    async fn all_alerts(&self) -> Result<Vec<StoredAlert>, AlertStoreError> {
        each!(self, s => s.all_alerts().await)
    }

    async fn finish(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError> {
        each!(self, s => s.finish(outcomes, at).await)
    }

    async fn settle(
        &self,
        outcomes: Vec<(u64, AlertOutcome)>,
        at: Timestamp,
    ) -> Result<(), AlertStoreError> {
        each!(self, s => s.settle(outcomes, at).await)
    }

    async fn claim_batch(
        &self,
        claimed_at: Timestamp,
        claims: Vec<(u64, PreviewItem)>,
    ) -> Result<AlertBatch, AlertStoreError> {
        each!(self, s => s.claim_batch(claimed_at, claims).await)
    }

    async fn open_batches(&self) -> Result<Vec<AlertBatch>, AlertStoreError> {
        each!(self, s => s.open_batches().await)
    }

    async fn recent_sends(&self, since: Timestamp) -> Result<Vec<RecentSend>, AlertStoreError> {
        each!(self, s => s.recent_sends(since).await)
    }

    async fn templates(&self) -> Result<Vec<(AlertKind, String)>, AlertStoreError> {
        each!(self, s => s.templates().await)
    }

    async fn set_template(&self, kind: AlertKind, text: String) -> Result<(), AlertStoreError> {
        each!(self, s => s.set_template(kind, text).await)
    }
}
