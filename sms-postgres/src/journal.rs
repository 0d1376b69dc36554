//! The journal: campaigns, records, delivery statuses, and the claim of a run.
//!
//! A transition is checked by the core's rule
//! ([`check_transition`](sms_core::journal::check_transition)) against the record as it is in
//! the database, read `FOR UPDATE` in the transaction that writes it: a second writer waits
//! for the first to commit, then sees its state, so two writers can never take an accepted
//! record back to `sending`.

use std::collections::{HashMap, HashSet};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use sms_core::journal::{
    Campaign, CampaignId, CampaignSettings, CampaignSummary, Delivery, DeliveryUpdate,
    FleetJournal, Journal, JournalError, RecordEntry, RecordState, RunClaim, Transition, WorkerId,
};
use sms_core::{DeliveryStatus, PreviewItem, PreviewOutcome, Timestamp};
use tokio::sync::watch;
use tokio_postgres::Row;

use crate::PgStore;
use crate::optout::number_key;
use crate::writer::Op;

/// Records inserted per statement when a campaign is created (bounded messages).
const INSERT_CHUNK: usize = 2_000;

fn json<T: serde::Serialize>(value: &T) -> Result<String, JournalError> {
    serde_json::to_string(value).map_err(|e| JournalError::Unavailable(e.to_string()))
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> JournalError {
    JournalError::Unavailable(format!("unreadable {what} in the journal: {error}"))
}

fn seq_column(seq: u32) -> i64 {
    i64::from(seq)
}

fn seq_from(column: i64) -> Result<u32, JournalError> {
    u32::try_from(column).map_err(|e| corrupt("record position", e))
}

impl PgStore {
    pub(crate) fn journal_error(&self, error: &tokio_postgres::Error) -> JournalError {
        JournalError::Unavailable(self.text(error))
    }

    pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        &self,
        row: &'a Row,
        index: usize,
    ) -> Result<T, JournalError> {
        row.try_get(index).map_err(|e| self.journal_error(&e))
    }

    /// A record read with the columns `seq, detail, status, error_code, at_ms` (the record
    /// joined with its delivery status).
    pub(crate) fn entry_from_row(&self, row: &Row) -> Result<RecordEntry, JournalError> {
        let detail: &str = self.get(row, 1)?;
        let status: Option<&str> = self.get(row, 2)?;
        let at: Option<i64> = self.get(row, 4)?;
        Ok(RecordEntry {
            seq: seq_from(self.get(row, 0)?)?,
            state: serde_json::from_str(detail).map_err(|e| corrupt("record state", e))?,
            delivery: match (status, at) {
                (Some(status), Some(at)) => Some(delivery_from_row(status, self.get(row, 3)?, at)?),
                _ => None,
            },
        })
    }

    /// All of `transitions` or none, committed by the store's writer (group commit, see
    /// `writer`) with whatever other writes are waiting: the records are locked `FOR UPDATE`
    /// (in (organisation, campaign, `seq`) order, so two writers lock them in one order), each
    /// transition is checked against the state before it (the previous transition's, for a
    /// record named twice), then the final states are written.
    ///
    /// With `holder` (a fleet worker's `begin_sending`), only if that worker holds a live lease
    /// on the number of every record, on the database's clock, checked in the transaction that
    /// writes, with the lease rows locked `FOR SHARE` until the commit: a worker taking the
    /// number over (`FOR UPDATE SKIP LOCKED`) passes it by, and cannot take it between the
    /// check and the write.
    pub(crate) async fn write(
        &self,
        id: &CampaignId,
        transitions: Vec<Transition>,
        holder: Option<&WorkerId>,
    ) -> Result<(), JournalError> {
        if transitions.is_empty() {
            return Ok(());
        }
        let op = Op::Records {
            id: id.clone(),
            transitions,
            holder: holder.cloned(),
        };
        self.writer().write(self.org(), op).await
    }

    pub(crate) async fn campaign_exists(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        id: &CampaignId,
    ) -> Result<bool, JournalError> {
        client
            .query_opt(
                "SELECT 1 FROM sms_campaigns WHERE org = $1 AND id = $2",
                &[&self.org_str(), &id.as_str()],
            )
            .await
            .map(|row| row.is_some())
            .map_err(|e| self.journal_error(&e))
    }
}

fn delivery_from_row(
    status: &str,
    error_code: Option<i64>,
    at: i64,
) -> Result<Delivery, JournalError> {
    Ok(Delivery {
        status: serde_json::from_str::<DeliveryStatus>(status)
            .map_err(|e| corrupt("delivery status", e))?,
        error_code: error_code.and_then(|code| u32::try_from(code).ok()),
        at: Timestamp::from_unix_ms(at),
    })
}

#[async_trait]
impl Journal for PgStore {
    async fn create_campaign(&self, campaign: Campaign) -> Result<(), JournalError> {
        let mut client = self.conn().await.map_err(JournalError::Unavailable)?;
        let settings = json(&campaign.settings)?;
        let mut seqs = Vec::with_capacity(campaign.items.len());
        let mut items = Vec::with_capacity(campaign.items.len());
        let mut states = Vec::with_capacity(campaign.items.len());
        let mut details = Vec::with_capacity(campaign.items.len());
        let mut numbers = Vec::with_capacity(campaign.items.len());
        for (seq, item) in (0u32..).zip(&campaign.items) {
            let state = Campaign::initial_state(item);
            numbers.push(match &item.outcome {
                PreviewOutcome::Eligible { number, .. } => Some(number_key(*number)),
                PreviewOutcome::Blocked { .. } => None,
            });
            seqs.push(seq_column(seq));
            items.push(json(item)?);
            states.push(state.code().to_owned());
            details.push(json(&state)?);
        }
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.journal_error(&e))?;
        let inserted = tx
            .execute(
                "INSERT INTO sms_campaigns (org, id, name, created_at_ms, template, settings)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org, id) DO NOTHING",
                &[
                    &self.org_str(),
                    &campaign.id.as_str(),
                    &campaign.name,
                    &campaign.created_at.unix_ms(),
                    &campaign.template,
                    &settings,
                ],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        if inserted == 0 {
            // Dropping the transaction rolls it back; nothing was written anyway.
            let _ = tx.rollback().await;
            return Err(JournalError::CampaignExists(campaign.id));
        }
        let insert = tx
            .prepare_cached(
                "INSERT INTO sms_records
                     (org, campaign_id, seq, number, item, state, detail, provider_id,
                      updated_at_ms)
                 SELECT $1, $2, u.seq, u.number, u.item, u.state, u.detail, NULL, $3
                 FROM unnest($4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[])
                     AS u(seq, number, item, state, detail)",
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        for start in (0..seqs.len()).step_by(INSERT_CHUNK) {
            let end = (start + INSERT_CHUNK).min(seqs.len());
            tx.execute(
                &insert,
                &[
                    &self.org_str(),
                    &campaign.id.as_str(),
                    &campaign.created_at.unix_ms(),
                    &&seqs[start..end],
                    &&numbers[start..end],
                    &&items[start..end],
                    &&states[start..end],
                    &&details[start..end],
                ],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        }
        // One lease row per number, free, so that a fleet leases with `FOR UPDATE SKIP
        // LOCKED` over rows that exist (see `fleet`).
        tx.execute(
            "INSERT INTO sms_number_leases (org, campaign_id, number)
             SELECT DISTINCT org, campaign_id, number FROM sms_records
             WHERE org = $1 AND campaign_id = $2 AND number IS NOT NULL",
            &[&self.org_str(), &campaign.id.as_str()],
        )
        .await
        .map_err(|e| self.journal_error(&e))?;
        tx.commit().await.map_err(|e| self.journal_error(&e))?;
        // Statistics for the planner now, not when autovacuum next comes: on a new database
        // (or a campaign much larger than what the tables held) the fleet's statements were
        // planned for empty tables, and one worker sent 175 texts/s instead of thousands
        // (fleet_throughput --cold-statistics). A role that may not analyze gets a warning
        // from the server, not an error; nothing depends on it.
        // The campaign is stored either way: a failure here changes only the plans.
        let _ = client
            .batch_execute("ANALYZE sms_records, sms_number_leases")
            .await;
        Ok(())
    }

    async fn campaign(&self, id: CampaignId) -> Result<Campaign, JournalError> {
        let client = self.conn().await.map_err(JournalError::Unavailable)?;
        let head = client
            .query_opt(
                "SELECT name, created_at_ms, template, settings FROM sms_campaigns
                 WHERE org = $1 AND id = $2",
                &[&self.org_str(), &id.as_str()],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        let Some(head) = head else {
            return Err(JournalError::UnknownCampaign(id));
        };
        let settings: String = self.get(&head, 3)?;
        let settings: CampaignSettings =
            serde_json::from_str(&settings).map_err(|e| corrupt("campaign settings", e))?;
        let rows = client
            .query(
                "SELECT item FROM sms_records WHERE org = $1 AND campaign_id = $2 ORDER BY seq",
                &[&self.org_str(), &id.as_str()],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        let items = rows
            .iter()
            .map(|row| {
                let item: &str = self.get(row, 0)?;
                serde_json::from_str::<PreviewItem>(item).map_err(|e| corrupt("campaign record", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Campaign {
            id,
            name: self.get(&head, 0)?,
            created_at: Timestamp::from_unix_ms(self.get(&head, 1)?),
            template: self.get(&head, 2)?,
            settings,
            items,
        })
    }

    async fn campaigns(&self) -> Result<Vec<CampaignSummary>, JournalError> {
        let client = self.conn().await.map_err(JournalError::Unavailable)?;
        let rows = client
            .query(
                "SELECT c.id, c.name, c.created_at_ms,
                        (SELECT COUNT(*) FROM sms_records r
                         WHERE r.org = c.org AND r.campaign_id = c.id)
                 FROM sms_campaigns c WHERE c.org = $1 ORDER BY c.created_at_ms, c.id COLLATE \"C\"",
                &[&self.org_str()],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        rows.iter()
            .map(|row| {
                let id: &str = self.get(row, 0)?;
                let records: i64 = self.get(row, 3)?;
                Ok(CampaignSummary {
                    id: CampaignId::new(id).ok_or_else(|| corrupt("campaign id", id))?,
                    name: self.get(row, 1)?,
                    created_at: Timestamp::from_unix_ms(self.get(row, 2)?),
                    records: u64::try_from(records).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn records(&self, id: CampaignId) -> Result<Vec<RecordEntry>, JournalError> {
        let client = self.conn().await.map_err(JournalError::Unavailable)?;
        let rows = client
            .query(
                "SELECT r.seq, r.detail, d.status, d.error_code, d.at_ms
                 FROM sms_records r
                 LEFT JOIN sms_deliveries d ON d.org = r.org AND d.provider_id = r.provider_id
                 WHERE r.org = $1 AND r.campaign_id = $2 ORDER BY r.seq",
                &[&self.org_str(), &id.as_str()],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        let entries = rows
            .iter()
            .map(|row| self.entry_from_row(row))
            .collect::<Result<Vec<_>, JournalError>>()?;
        if entries.is_empty() && !self.campaign_exists(&client, &id).await? {
            return Err(JournalError::UnknownCampaign(id));
        }
        Ok(entries)
    }

    /// All of `transitions` or none, in one transaction (see `PgStore::write`).
    async fn apply(
        &self,
        id: CampaignId,
        transitions: Vec<Transition>,
    ) -> Result<(), JournalError> {
        self.write(&id, transitions, None).await
    }

    async fn logged_provider_ids(
        &self,
        provider_ids: Vec<String>,
    ) -> Result<HashSet<String>, JournalError> {
        if provider_ids.is_empty() {
            return Ok(HashSet::new());
        }
        let client = self.conn().await.map_err(JournalError::Unavailable)?;
        let rows = client
            .query(
                "SELECT DISTINCT provider_id FROM sms_records
                 WHERE org = $1 AND provider_id = ANY($2)",
                &[&self.org_str(), &provider_ids],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        rows.iter().map(|row| self.get(row, 0)).collect()
    }

    async fn record_delivery(&self, update: DeliveryUpdate) -> Result<bool, JournalError> {
        let mut client = self.conn().await.map_err(JournalError::Unavailable)?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.journal_error(&e))?;
        let status = json(&update.status)?;
        let error_code = update.error_code.map(i64::from);
        let at = update.at.unix_ms();
        // The first status for a message is inserted; a later one locks the row, and replaces
        // it unless the stored one is final and the new one is not (a late `sent`).
        let inserted = tx
            .execute(
                "INSERT INTO sms_deliveries (org, provider_id, status, error_code, at_ms)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org, provider_id) DO NOTHING",
                &[
                    &self.org_str(),
                    &update.provider_id,
                    &status,
                    &error_code,
                    &at,
                ],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        if inserted == 0 {
            let row = tx
                .query_one(
                    "SELECT status, error_code, at_ms FROM sms_deliveries
                     WHERE org = $1 AND provider_id = $2 FOR UPDATE",
                    &[&self.org_str(), &update.provider_id],
                )
                .await
                .map_err(|e| self.journal_error(&e))?;
            let stored =
                delivery_from_row(self.get(&row, 0)?, self.get(&row, 1)?, self.get(&row, 2)?)?;
            if Delivery::should_replace(Some(&stored), &update.status) {
                tx.execute(
                    "UPDATE sms_deliveries SET status = $3, error_code = $4, at_ms = $5
                     WHERE org = $1 AND provider_id = $2",
                    &[
                        &self.org_str(),
                        &update.provider_id,
                        &status,
                        &error_code,
                        &at,
                    ],
                )
                .await
                .map_err(|e| self.journal_error(&e))?;
            }
        }
        let found = tx
            .query(
                "SELECT campaign_id, seq, detail FROM sms_records
                 WHERE org = $1 AND provider_id = $2 FOR UPDATE",
                &[&self.org_str(), &update.provider_id],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        if let Some(billed) = update.segments {
            // The callback's segment count is what was billed: it wins over the estimate.
            for row in &found {
                let detail: &str = self.get(row, 2)?;
                let mut state: RecordState =
                    serde_json::from_str(detail).map_err(|e| corrupt("record state", e))?;
                if let RecordState::Accepted { segments, .. } = &mut state {
                    *segments = billed;
                }
                let campaign: &str = self.get(row, 0)?;
                let seq: i64 = self.get(row, 1)?;
                tx.execute(
                    "UPDATE sms_records SET detail = $4
                     WHERE org = $1 AND campaign_id = $2 AND seq = $3",
                    &[&self.org_str(), &campaign, &seq, &json(&state)?],
                )
                .await
                .map_err(|e| self.journal_error(&e))?;
            }
        }
        tx.commit().await.map_err(|e| self.journal_error(&e))?;
        Ok(!found.is_empty())
    }

    fn fleet(&self) -> Option<&dyn FleetJournal> {
        Some(self)
    }

    /// A session advisory lock on (organisation, campaign), held by a connection of its own
    /// (taken out of the pool) for as long as the claim lives. Another server, or another
    /// handle or run in this process, is refused with [`JournalError::CampaignBusy`]. Dropping
    /// the claim unlocks it; a process that dies closes its connection, and the server releases
    /// the lock with the session, so a crash never blocks the resume.
    async fn claim(&self, id: CampaignId) -> Result<RunClaim, JournalError> {
        let key = self.claim_key(&id);
        // From here the key is ours in this process; the reservation gives it back on every
        // way out but success, a cancelled call included.
        let reserved = reserve((self.place(), key), &id).await?;
        let object = self.conn().await.map_err(JournalError::Unavailable)?;
        let client = deadpool_postgres::Object::take(object);
        let locked = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| self.journal_error(&e))
            .and_then(|row| self.get::<bool>(&row, 0))?;
        if !locked {
            return Err(JournalError::CampaignBusy(id));
        }
        // A fleet working on the campaign is a run too. A worker leases under the shared form
        // of this lock (see `fleet`), so once it is ours no lease can be taken, and the leases
        // live now are all there will be.
        let leased = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM sms_number_leases
                                WHERE org = $1 AND campaign_id = $2 AND owner IS NOT NULL
                                  AND until > clock_timestamp())",
                &[&self.org_str(), &id.as_str()],
            )
            .await
            .map_err(|e| self.journal_error(&e))
            .and_then(|row| self.get::<bool>(&row, 0));
        if !matches!(leased, Ok(false)) {
            // Unlocked now (closing the connection, which is not the pool's, would too, a
            // moment later); the reservation is given back as this returns.
            let _ = client
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .await;
            drop(client);
            leased?;
            return Err(JournalError::CampaignBusy(id));
        }
        Ok(RunClaim::new(Claim {
            client: Some(client),
            key,
            local: reserved.keep(),
        }))
    }
}

/// The claims of this process, by (database, key): held, or being released. A claim dropped
/// a moment ago is unlocked by a task on its connection; a new claim of the same campaign in
/// this process waits for that instead of finding the lock still held by its own past run.
static CLAIMS: LazyLock<Mutex<HashMap<(String, i64), Local>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The longest a claim waits for this process's previous claim of the same campaign to be
/// released (the unlock is one statement; after this, the lock decides).
const RELEASE_WAIT: Duration = Duration::from_secs(10);

enum Local {
    Held,
    /// The receiver is told (its sender dropped) when the unlock is done.
    Releasing(watch::Receiver<()>),
}

fn claims() -> std::sync::MutexGuard<'static, HashMap<(String, i64), Local>> {
    CLAIMS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A key this process holds while a claim is being made; given back when dropped, unless
/// [`Reserved::keep`] hands it to the claim.
struct Reserved(Option<(String, i64)>);

impl Reserved {
    fn keep(mut self) -> (String, i64) {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(local) = self.0.take() {
            claims().remove(&local);
        }
    }
}

/// Marks `local` held by this process, waiting first for a release in progress; refuses a
/// key another claim of this process holds.
async fn reserve(local: (String, i64), id: &CampaignId) -> Result<Reserved, JournalError> {
    loop {
        let mut waiting = {
            let mut map = claims();
            match map.get(&local) {
                None => {
                    map.insert(local.clone(), Local::Held);
                    return Ok(Reserved(Some(local)));
                }
                Some(Local::Held) => return Err(JournalError::CampaignBusy(id.clone())),
                Some(Local::Releasing(done)) if done.has_changed().is_err() => {
                    // Its sender is gone: released (or its task was dropped, which closed the
                    // connection and so the session lock).
                    map.insert(local.clone(), Local::Held);
                    return Ok(Reserved(Some(local)));
                }
                Some(Local::Releasing(done)) => done.clone(),
            }
        };
        if tokio::time::timeout(RELEASE_WAIT, waiting.changed())
            .await
            .is_err()
        {
            // Taking too long: let the database's lock decide.
            claims().insert(local.clone(), Local::Held);
            return Ok(Reserved(Some(local)));
        }
    }
}

/// A claim being held: its connection holds the session lock.
struct Claim {
    client: Option<deadpool_postgres::ClientWrapper>,
    key: i64,
    local: (String, i64),
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let (done, released) = watch::channel(());
        claims().insert(self.local.clone(), Local::Releasing(released));
        let key = self.key;
        let local = self.local.clone();
        let release = async move {
            // Unlocked at once rather than when the server notices the closed socket; closing
            // the connection (dropping the client) would release it too.
            let _ = client
                .execute("SELECT pg_advisory_unlock($1)", &[&key])
                .await;
            drop(client);
            let mut map = claims();
            if matches!(map.get(&local), Some(Local::Releasing(_))) {
                map.remove(&local);
            }
            drop(map);
            drop(done);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(release);
            }
            // No runtime (dropped at exit): closing the connection releases the lock.
            Err(_) => {
                drop(release);
            }
        }
    }
}
