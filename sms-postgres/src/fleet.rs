//! Fleet runs ([`FleetJournal`]): several servers sending one campaign, each number leased by
//! one worker at a time, the campaign's rate booked on one grid for all of them.
//!
//! - **Leases** are rows of `sms_number_leases`, one per (campaign, number), made with the
//!   campaign; `owner` and `until` say who holds it and until when, `hold_until` keeps a
//!   number released with records in doubt from being leased again at once. Every time is the
//!   database's clock (`clock_timestamp()`): one clock for the whole fleet, whatever the
//!   servers' clocks say.
//! - **Leasing** is one statement: the free numbers with work, `FOR UPDATE SKIP LOCKED` (two
//!   workers leasing at once take different numbers, neither waits), updated to the worker,
//!   and the records of every number it holds read in the same statement. It runs under the
//!   shared form of the campaign's claim lock, so a whole-campaign run (which holds it
//!   exclusively) and a fleet exclude each other.
//! - **`begin_sending`** checks the lease in the transaction that writes `sending`, with the
//!   lease rows locked `FOR SHARE` (`PgStore::write`).
//! - **Renewing and releasing** lock the worker's rows in number order (`FOR UPDATE` in a
//!   subquery, `ORDER BY number`), the order every writer of several lease rows takes, so two
//!   of them never deadlock.
//! - **The rate** is `sms_campaign_rates` (unlogged: pacing, not a record of sending): one
//!   statement books a slot on [`sms_core::dispatch::book_slot`]'s grid, in microseconds of the
//!   database's clock.
//!
//! Which records give a number work is the core's rule (`InMemoryJournal`'s): `planned`,
//! `deferred`, `sending` and `unknown` records, and those held by quiet hours once their
//! opening has passed; only `planned` and `sending` keep workers waiting.

use std::time::Duration;

use async_trait::async_trait;
use sms_core::PhoneNumber;
use sms_core::journal::{
    CampaignId, FleetJournal, JournalError, Outstanding, RateLimit, RecordEntry, Transition,
    WorkerId,
};

use crate::PgStore;
use crate::optout::number_key;

/// A duration as the microseconds a statement adds to `clock_timestamp()`.
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The records of the numbers the worker `$3` holds with a live lease, as read for
/// [`PgStore::entry_from_row`], by `seq`; and those of the numbers in `taken`, a relation of
/// numbers leased in the same statement (its writes are not visible to its own reads).
fn held_records(taken: Option<&str>) -> String {
    let taken = taken
        .map(|taken| format!("r.number IN ({taken}) OR "))
        .unwrap_or_default();
    format!(
        "SELECT r.seq, r.detail, d.status, d.error_code, d.at_ms
         FROM sms_records r
         LEFT JOIN sms_deliveries d ON d.org = r.org AND d.provider_id = r.provider_id
         WHERE r.org = $1 AND r.campaign_id = $2
           AND ({taken}r.number IN (SELECT number FROM sms_number_leases
                                   WHERE org = $1 AND campaign_id = $2 AND owner = $3
                                     AND until > clock_timestamp()))
         ORDER BY r.seq"
    )
}

/// Whether the record `w` gives its number work (`InMemoryJournal`'s rule): `planned`,
/// `deferred`, `sending` or `unknown`, or held by quiet hours whose opening has passed on the
/// database's clock (`held_until_ms`, schema 3).
const WORK: &str = "(w.state IN ('planned', 'deferred', 'sending', 'unknown')
     OR (w.state = 'held'
         AND w.held_until_ms <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint))";

/// Plans a transaction's statements for lookups by key, as the writer does: on a new
/// campaign's tables (no statistics yet) or ones full of the dead rows of records sent, the
/// planner's whole-table plans made a lease take seconds instead of milliseconds.
const BY_KEY: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off";

/// The states of the partial index `sms_records_with_work` (schema 3): a query that names them
/// reads only the records with work left, which the index holds, not every record sent.
const INDEXED_WORK: &str = "('planned', 'deferred', 'sending', 'unknown', 'held')";

/// Of those, the ones that keep workers waiting (`deferred` and `unknown` records wait for a
/// later run, held ones for their hours: none keeps a worker up).
const ACTIVE: &str = "('planned', 'sending')";

impl PgStore {
    /// A transaction whose statements are planned for lookups by key ([`BY_KEY`]).
    async fn by_key<'c>(
        &self,
        client: &'c mut deadpool_postgres::Object,
    ) -> Result<deadpool_postgres::Transaction<'c>, JournalError> {
        let tx = client
            .transaction()
            .await
            .map_err(|e| self.journal_error(&e))?;
        tx.batch_execute(BY_KEY)
            .await
            .map_err(|e| self.journal_error(&e))?;
        Ok(tx)
    }

    /// The advisory lock of a campaign's run: held exclusively by a claim (a session lock),
    /// in shared form by a fleet worker while it leases (a transaction lock).
    pub(crate) fn claim_key(&self, id: &CampaignId) -> i64 {
        self.lock_key("claim", id.as_str())
    }

    /// An error for a campaign that answered nothing: unknown, or `ok` when it exists.
    async fn known<T>(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        id: &CampaignId,
        ok: T,
    ) -> Result<T, JournalError> {
        if self.campaign_exists(client, id).await? {
            Ok(ok)
        } else {
            Err(JournalError::UnknownCampaign(id.clone()))
        }
    }

    /// Books `units` of the grid at `per_unit` microseconds each, at `now_us` on the database's
    /// clock (`None`: `clock_timestamp()`; tests give it to compare with `book_slot`). Returns
    /// the slot's start and the clock it was booked at.
    pub(crate) async fn book_at(
        &self,
        id: &CampaignId,
        per_unit: i64,
        units: u32,
        now_us: Option<i64>,
    ) -> Result<(i64, i64), JournalError> {
        // book_slot's grid: the slot is the grid's next one, but no earlier than the catch-up
        // window (ten intervals, at most a second) before now; the next is the slot plus the
        // units' intervals; the start is no earlier than now. A first booking starts now.
        let step = per_unit.saturating_mul(i64::from(units.max(1)));
        let catch_up = per_unit.saturating_mul(10).min(1_000_000);
        let client = self.conn().await.map_err(JournalError::Unavailable)?;
        let book = client
            .prepare_cached(
                "WITH clock AS (
                     SELECT COALESCE($5::bigint,
                         (extract(epoch FROM clock_timestamp()) * 1000000)::bigint) AS us
                 )
                 INSERT INTO sms_campaign_rates AS g (org, campaign_id, next_us, booked_us)
                 SELECT c.org, c.id, clock.us + $3, clock.us
                 FROM clock, sms_campaigns c WHERE c.org = $1 AND c.id = $2
                 ON CONFLICT (org, campaign_id) DO UPDATE
                 SET next_us = GREATEST(g.next_us, EXCLUDED.booked_us - $4) + $3,
                     booked_us = EXCLUDED.booked_us
                 RETURNING next_us - $3, booked_us",
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        let row = client
            .query_opt(
                &book,
                &[&self.org_str(), &id.as_str(), &step, &catch_up, &now_us],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        let Some(row) = row else {
            return Err(JournalError::UnknownCampaign(id.clone()));
        };
        let slot: i64 = self.get(&row, 0)?;
        let booked: i64 = self.get(&row, 1)?;
        Ok((slot.max(booked), booked))
    }
}

#[async_trait]
impl FleetJournal for PgStore {
    async fn lease(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        max_numbers: u32,
        lease: Duration,
    ) -> Result<Vec<RecordEntry>, JournalError> {
        let mut client = self.conn().await.map_err(JournalError::Unavailable)?;
        let tx = self.by_key(&mut client).await?;
        // Refused while a whole-campaign run holds the claim; held to the commit, so a claim
        // made meanwhile waits to see these leases (and is refused).
        let open: bool = tx
            .query_one(
                "SELECT pg_try_advisory_xact_lock_shared($1)",
                &[&self.claim_key(id)],
            )
            .await
            .map_err(|e| self.journal_error(&e))
            .and_then(|row| self.get(&row, 0))?;
        if !open {
            let _ = tx.rollback().await;
            return Err(JournalError::CampaignBusy(id.clone()));
        }
        let statement = format!(
            "WITH with_work AS MATERIALIZED (
                 SELECT DISTINCT w.number FROM sms_records w
                 WHERE w.org = $1 AND w.campaign_id = $2 AND w.number IS NOT NULL
                   AND w.state IN {INDEXED_WORK} AND {WORK}
             ), free AS (
                 SELECT l.number FROM with_work
                 JOIN sms_number_leases l
                   ON l.org = $1 AND l.campaign_id = $2 AND l.number = with_work.number
                 WHERE (l.owner IS NULL OR l.until <= clock_timestamp())
                   AND (l.hold_until IS NULL OR l.hold_until <= clock_timestamp())
                 ORDER BY l.number
                 LIMIT $4
                 FOR UPDATE OF l SKIP LOCKED
             ), taken AS (
                 UPDATE sms_number_leases l
                 SET owner = $3,
                     until = clock_timestamp() + $5::bigint * interval '1 microsecond',
                     hold_until = NULL
                 FROM free
                 WHERE l.org = $1 AND l.campaign_id = $2 AND l.number = free.number
                 RETURNING l.number
             )
             {}",
            held_records(Some("SELECT number FROM taken"))
        );
        let leasing = tx
            .prepare_cached(&statement)
            .await
            .map_err(|e| self.journal_error(&e))?;
        let rows = tx
            .query(
                &leasing,
                &[
                    &self.org_str(),
                    &id.as_str(),
                    &worker.as_str(),
                    &i64::from(max_numbers),
                    &micros(lease),
                ],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        let entries = rows
            .iter()
            .map(|row| self.entry_from_row(row))
            .collect::<Result<Vec<_>, _>>()?;
        let entries = if entries.is_empty() {
            self.known(&tx, id, entries).await?
        } else {
            entries
        };
        tx.commit().await.map_err(|e| self.journal_error(&e))?;
        Ok(entries)
    }

    async fn leased_records(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
    ) -> Result<Vec<RecordEntry>, JournalError> {
        let mut client = self.conn().await.map_err(JournalError::Unavailable)?;
        let statement = held_records(None);
        let reading = client
            .prepare_cached(&statement)
            .await
            .map_err(|e| self.journal_error(&e))?;
        let tx = self.by_key(&mut client).await?;
        let rows = tx
            .query(&reading, &[&self.org_str(), &id.as_str(), &worker.as_str()])
            .await
            .map_err(|e| self.journal_error(&e))?;
        tx.commit().await.map_err(|e| self.journal_error(&e))?;
        let entries = rows
            .iter()
            .map(|row| self.entry_from_row(row))
            .collect::<Result<Vec<_>, _>>()?;
        if entries.is_empty() {
            return self.known(&client, id, entries).await;
        }
        Ok(entries)
    }

    async fn renew(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        lease: Duration,
    ) -> Result<u64, JournalError> {
        let client = self.conn().await.map_err(JournalError::Unavailable)?;
        let renewing = client
            .prepare_cached(
                "UPDATE sms_number_leases l
                 SET until = clock_timestamp() + $4::bigint * interval '1 microsecond'
                 FROM (SELECT number FROM sms_number_leases
                       WHERE org = $1 AND campaign_id = $2 AND owner = $3
                         AND until > clock_timestamp()
                       ORDER BY number FOR UPDATE) mine
                 WHERE l.org = $1 AND l.campaign_id = $2 AND l.number = mine.number",
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        let held = client
            .execute(
                &renewing,
                &[
                    &self.org_str(),
                    &id.as_str(),
                    &worker.as_str(),
                    &micros(lease),
                ],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        if held == 0 {
            return self.known(&client, id, 0).await;
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
        let numbers: Vec<i64> = numbers.into_iter().map(number_key).collect();
        let mut client = self.conn().await.map_err(JournalError::Unavailable)?;
        let statement = format!(
            "UPDATE sms_number_leases l
             SET owner = NULL, until = NULL,
                 hold_until = CASE
                     WHEN $5::bigint > 0 AND EXISTS (
                         SELECT 1 FROM sms_records w
                         WHERE w.org = l.org AND w.campaign_id = l.campaign_id
                           AND w.number = l.number AND {WORK})
                     THEN clock_timestamp() + $5::bigint * interval '1 microsecond'
                 END
             FROM (SELECT number FROM sms_number_leases
                   WHERE org = $1 AND campaign_id = $2 AND owner = $3 AND number = ANY($4)
                     AND until > clock_timestamp()
                   ORDER BY number FOR UPDATE) mine
             WHERE l.org = $1 AND l.campaign_id = $2 AND l.number = mine.number"
        );
        let releasing = client
            .prepare_cached(&statement)
            .await
            .map_err(|e| self.journal_error(&e))?;
        let tx = self.by_key(&mut client).await?;
        let released = tx
            .execute(
                &releasing,
                &[
                    &self.org_str(),
                    &id.as_str(),
                    &worker.as_str(),
                    &numbers,
                    &micros(hold),
                ],
            )
            .await
            .map_err(|e| self.journal_error(&e))?;
        tx.commit().await.map_err(|e| self.journal_error(&e))?;
        if released == 0 {
            return self.known(&client, id, ()).await;
        }
        Ok(())
    }

    async fn begin_sending(
        &self,
        id: &CampaignId,
        worker: &WorkerId,
        transitions: Vec<Transition>,
    ) -> Result<(), JournalError> {
        self.write(id, transitions, Some(worker)).await
    }

    async fn book(
        &self,
        id: &CampaignId,
        rate: RateLimit,
        cost: u32,
    ) -> Result<Duration, JournalError> {
        let per_second = match rate {
            RateLimit::Unlimited => return Ok(Duration::ZERO),
            RateLimit::MessagesPerSecond { per_second }
            | RateLimit::SegmentsPerSecond { per_second } => per_second,
        };
        // book_slot's interval, from the same rate.
        let per_unit = ((1_000_000.0 / per_second).round() as i64).max(1);
        let (start, now) = self.book_at(id, per_unit, cost, None).await?;
        Ok(Duration::from_micros(
            u64::try_from(start - now).unwrap_or(0),
        ))
    }

    async fn outstanding(&self, id: &CampaignId) -> Result<Outstanding, JournalError> {
        let client = self.conn().await.map_err(JournalError::Unavailable)?;
        let statement = format!(
            "SELECT EXISTS (SELECT 1 FROM sms_campaigns WHERE org = $1 AND id = $2),
                    COUNT(*),
                    COUNT(*) FILTER (WHERE l.owner IS NOT NULL AND l.until > clock_timestamp())
             FROM (SELECT DISTINCT number FROM sms_records
                   WHERE org = $1 AND campaign_id = $2 AND number IS NOT NULL
                     AND state IN {ACTIVE}) w
             LEFT JOIN sms_number_leases l
                 ON l.org = $1 AND l.campaign_id = $2 AND l.number = w.number"
        );
        let counting = client
            .prepare_cached(&statement)
            .await
            .map_err(|e| self.journal_error(&e))?;
        let row = client
            .query_one(&counting, &[&self.org_str(), &id.as_str()])
            .await
            .map_err(|e| self.journal_error(&e))?;
        if !self.get::<bool>(&row, 0)? {
            return Err(JournalError::UnknownCampaign(id.clone()));
        }
        let count = |index| {
            self.get::<i64>(&row, index)
                .map(|n| u64::try_from(n).unwrap_or(0))
        };
        Ok(Outstanding {
            active: count(1)?,
            leased: count(2)?,
        })
    }
}
