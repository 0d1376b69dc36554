//! The one writer of a store's hot writes (group commit): a task that commits whatever
//! requests queued while its previous commit was being flushed, in one transaction, and answers
//! each caller only once that COMMIT has returned.
//!
//! Why: with `synchronous_commit=on` every commit waits for the WAL to reach the disk (a few
//! milliseconds here). A fleet worker writes two records per text (`sending`, then the
//! provider's answer); committed one by one on pooled connections, each write pays for a flush
//! of its own and a round trip per statement. Here the requests that arrived during one flush
//! share the next one, and a batch costs two round trips to the server whatever its size:
//!
//! 1. `BEGIN` (planned for lookups by key: see the constant `BEGIN`); the opt-out changes'
//!    advisory locks (in key order) and their rows (in arrival order); every record the batch
//!    writes, locked `FOR UPDATE` in one statement in (organisation, campaign, `seq`) order;
//!    the leases of the records a fleet worker is about to send, `FOR SHARE`, in (organisation,
//!    campaign, number) order: sent together, executed in that order.
//! 2. Each request checked in arrival order, in Rust, against the states as locked (and as the
//!    batch's earlier accepted requests left them): the core's [`check_transition`], and for
//!    `begin_sending` the worker's live lease on the database's clock. A refused request
//!    changes nothing (its own error goes back to its caller alone), as a request rolled back
//!    to its savepoint would; the accepted ones' final states are written by one `UPDATE`,
//!    sent together with `COMMIT`.
//!
//! If any statement or the COMMIT fails (the connection was lost, the server refused), every
//! request of the batch gets the same `Unavailable` error, and the connection goes back to the
//! pool only if it still answers a `ROLLBACK`; the next batch takes a connection from the pool
//! again. Every request carries its organisation, and each statement names it per row: the
//! task belongs to no organisation.
//!
//! Locks are always taken in one order (opt-out keys, then records, then leases, each sorted),
//! so two writers (two servers) never deadlock each other.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use deadpool_postgres::{Object, Pool};
use sms_core::journal::{
    CampaignId, JournalError, RecordState, Transition, WorkerId, check_transition,
};
use sms_core::optout::OptOutChange;
use sms_core::{Org, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::config::PgConfig;
use crate::optout::{action_code, number_key, source_code};
use crate::{db_text, pool_text};

/// Requests committed in one transaction at most.
const MAX_BATCH: usize = 1024;

/// A write.
pub(crate) enum Op {
    /// `Journal::apply` (no holder) or `FleetJournal::begin_sending` (the worker whose lease
    /// must be live on every record's number): all of the transitions or none.
    Records {
        id: CampaignId,
        transitions: Vec<Transition>,
        holder: Option<WorkerId>,
    },
    /// `OptOutStore::record`, with the advisory lock key of its (organisation, number).
    OptOut { change: OptOutChange, lock: i64 },
}

/// What a write answers.
pub(crate) type Reply = Result<(), JournalError>;

struct Request {
    org: Org,
    op: Op,
    reply: oneshot::Sender<Reply>,
}

/// The handle callers write through; the task is started by the first write (on the runtime
/// of that call) and again if its runtime has gone since.
pub(crate) struct Writer {
    pool: Pool,
    config: PgConfig,
    sender: Mutex<Option<mpsc::UnboundedSender<Request>>>,
}

fn stopped() -> JournalError {
    JournalError::Unavailable("the PostgreSQL writer has stopped".to_owned())
}

impl Writer {
    pub(crate) fn new(pool: Pool, config: PgConfig) -> Writer {
        Writer {
            pool,
            config,
            sender: Mutex::new(None),
        }
    }

    /// Writes `op` for `org` and waits until it is committed (or refused).
    pub(crate) async fn write(&self, org: &Org, op: Op) -> Reply {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            org: org.clone(),
            op,
            reply,
        };
        self.sender()?.send(request).map_err(|_| stopped())?;
        // A dropped answer: the task ended (its runtime shut down) before committing.
        answer.await.map_err(|_| stopped())?
    }

    fn sender(&self) -> Result<mpsc::UnboundedSender<Request>, JournalError> {
        let mut slot = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = slot.as_ref().filter(|sender| !sender.is_closed()) {
            return Ok(sender.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            JournalError::Unavailable("PostgreSQL writes need a tokio runtime".to_owned())
        })?;
        let (sender, receiver) = mpsc::unbounded_channel();
        runtime.spawn(run(self.pool.clone(), self.config.clone(), receiver));
        *slot = Some(sender.clone());
        Ok(sender)
    }
}

/// Commits batch after batch until every handle is gone (the channel closes once the store's
/// last clone is dropped, after what is queued is committed).
async fn run(pool: Pool, config: PgConfig, mut receiver: mpsc::UnboundedReceiver<Request>) {
    let mut batch = Vec::new();
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let replies = commit(&pool, &config, &batch).await;
        for (request, reply) in batch.drain(..).zip(replies) {
            // A caller that stopped waiting (its future was dropped) still had its write done.
            let _ = request.reply.send(reply);
        }
    }
}

async fn commit(pool: &Pool, config: &PgConfig, batch: &[Request]) -> Vec<Reply> {
    let failed = match try_commit(pool, config, batch).await {
        Ok(replies) => return replies,
        Err(text) => JournalError::Unavailable(text),
    };
    batch.iter().map(|_| Err(failed.clone())).collect()
}

async fn try_commit(
    pool: &Pool,
    config: &PgConfig,
    batch: &[Request],
) -> Result<Vec<Reply>, String> {
    let client = pool
        .get()
        .await
        .map_err(|e| config.scrub(format!("no database connection: {}", pool_text(&e))))?;
    let db = |e: tokio_postgres::Error| config.scrub(db_text(&e));
    let result = transaction(&client, batch).await.map_err(db);
    if result.is_err() && client.batch_execute("ROLLBACK").await.is_err() {
        // It cannot even say so: not given back to the pool.
        drop(Object::take(client));
    }
    result
}

/// A record of a request: (organisation, campaign, seq).
type Key = (String, String, u32);

fn key(org: &Org, id: &CampaignId, seq: u32) -> Key {
    (org.as_str().to_owned(), id.as_str().to_owned(), seq)
}

/// The batch's statement parameters, one array per column.
#[derive(Default)]
struct Columns {
    // Opt-outs.
    locks: Vec<i64>,
    opt_orgs: Vec<String>,
    opt_numbers: Vec<i64>,
    opt_actions: Vec<&'static str>,
    opt_at: Vec<i64>,
    opt_sources: Vec<&'static str>,
    opt_sids: Vec<Option<String>>,
    opt_bodies: Vec<Option<String>>,
    // The records written.
    orgs: Vec<String>,
    campaigns: Vec<String>,
    seqs: Vec<i64>,
    // The records a worker is about to send, and the worker.
    held_orgs: Vec<String>,
    held_campaigns: Vec<String>,
    held_seqs: Vec<i64>,
    held_workers: Vec<String>,
}

impl Columns {
    fn of(batch: &[Request]) -> Columns {
        let mut c = Columns::default();
        for request in batch {
            let org = request.org.as_str();
            match &request.op {
                Op::OptOut { change, lock } => {
                    c.locks.push(*lock);
                    c.opt_orgs.push(org.to_owned());
                    c.opt_numbers.push(number_key(change.number));
                    c.opt_actions.push(action_code(change.action));
                    c.opt_at.push(change.at.unix_ms());
                    c.opt_sources.push(source_code(change.source));
                    c.opt_sids.push(change.message_sid.as_deref().map(text));
                    c.opt_bodies.push(change.body.as_deref().map(text));
                }
                Op::Records {
                    id,
                    transitions,
                    holder,
                } => {
                    for t in transitions {
                        c.orgs.push(org.to_owned());
                        c.campaigns.push(id.as_str().to_owned());
                        c.seqs.push(i64::from(t.seq));
                        if let Some(worker) = holder {
                            c.held_orgs.push(org.to_owned());
                            c.held_campaigns.push(id.as_str().to_owned());
                            c.held_seqs.push(i64::from(t.seq));
                            c.held_workers.push(worker.as_str().to_owned());
                        }
                    }
                }
            }
        }
        c
    }
}

/// A text as PostgreSQL can keep it: a `text` value cannot hold NUL, so one is kept as U+FFFD.
/// Without this a STOP whose body held a NUL (its keyword read all the same) was refused, and
/// failed every write batched with it.
pub(crate) fn text(value: &str) -> String {
    if value.contains('\0') {
        value.replace('\0', "\u{FFFD}")
    } else {
        value.to_owned()
    }
}

/// The transaction, planned for what its statements do: look rows up by key, from lists of
/// at most a few thousand keys. On a small table the planner may prefer reading all of it (a
/// hash join over a sequential scan), whose cost grows with the table's dead rows (every
/// record sent is updated twice): in the bench that took the batch's first flight from a few
/// milliseconds to over 100. An index lookup per key is never far from the best plan here.
///
/// A lock waited for longer than `lock_timeout` fails the batch (`Unavailable`: nothing is
/// written, the callers see a store error) rather than holding every later write of the store,
/// a STOP included, behind a session that stalled with a record locked.
const BEGIN: &str = "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
                     SET LOCAL enable_mergejoin = off; SET LOCAL lock_timeout = '10s'";

const LOCK_OPT_OUTS: &str =
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT k FROM unnest($1::bigint[]) AS k ORDER BY k) s";

const INSERT_OPT_OUTS: &str = "INSERT INTO sms_opt_out_changes
         (org, number, action, at_ms, source, message_sid, body)
     SELECT u.org, u.number, u.action, u.at_ms, u.source, u.message_sid, u.body
     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                 $7::text[]) WITH ORDINALITY
         AS u(org, number, action, at_ms, source, message_sid, body, arrival)
     ORDER BY u.arrival";

const LOCK_RECORDS: &str = "SELECT r.org, r.campaign_id, r.seq, r.detail
     FROM sms_records r
     JOIN (SELECT DISTINCT org, campaign_id, seq
           FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(org, campaign_id, seq)) u
         ON r.org = u.org AND r.campaign_id = u.campaign_id AND r.seq = u.seq
     ORDER BY r.org, r.campaign_id, r.seq
     FOR UPDATE OF r";

const CHECK_LEASES: &str = "SELECT r.org, r.campaign_id, r.seq, u.worker
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
         AS u(org, campaign_id, seq, worker)
     JOIN sms_records r ON r.org = u.org AND r.campaign_id = u.campaign_id AND r.seq = u.seq
     JOIN sms_number_leases l ON l.org = r.org AND l.campaign_id = r.campaign_id
         AND l.number = r.number
     WHERE COALESCE(l.owner = u.worker AND l.until > clock_timestamp(), false)
     ORDER BY l.org, l.campaign_id, l.number
     FOR SHARE OF l";

const UPDATE_RECORDS: &str = "UPDATE sms_records r
     SET state = u.state, detail = u.detail, provider_id = u.provider_id, updated_at_ms = $1
     FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])
         AS u(org, campaign_id, seq, state, detail, provider_id)
     WHERE r.org = u.org AND r.campaign_id = u.campaign_id AND r.seq = u.seq";

/// One batch in one transaction; `Err` when any statement failed (the caller rolls back).
async fn transaction(
    client: &Object,
    batch: &[Request],
) -> Result<Vec<Reply>, tokio_postgres::Error> {
    let c = Columns::of(batch);
    // Prepared once per connection; only the statements this batch runs.
    let lock_opt_outs = client.prepare_cached(LOCK_OPT_OUTS).await?;
    let insert_opt_outs = client.prepare_cached(INSERT_OPT_OUTS).await?;
    let lock_records = client.prepare_cached(LOCK_RECORDS).await?;
    let check_leases = client.prepare_cached(CHECK_LEASES).await?;

    // One flight: sent together, executed in this order, each waited for below.
    let (_, _, _, locked, held) = tokio::try_join!(
        client.batch_execute(BEGIN),
        async {
            if c.locks.is_empty() {
                return Ok(0);
            }
            client.execute(&lock_opt_outs, &[&c.locks]).await
        },
        async {
            if c.locks.is_empty() {
                return Ok(0);
            }
            client
                .execute(
                    &insert_opt_outs,
                    &[
                        &c.opt_orgs,
                        &c.opt_numbers,
                        &c.opt_actions,
                        &c.opt_at,
                        &c.opt_sources,
                        &c.opt_sids,
                        &c.opt_bodies,
                    ],
                )
                .await
        },
        async {
            if c.seqs.is_empty() {
                return Ok(Vec::new());
            }
            client
                .query(&lock_records, &[&c.orgs, &c.campaigns, &c.seqs])
                .await
        },
        async {
            if c.held_seqs.is_empty() {
                return Ok(Vec::new());
            }
            client
                .query(
                    &check_leases,
                    &[
                        &c.held_orgs,
                        &c.held_campaigns,
                        &c.held_seqs,
                        &c.held_workers,
                    ],
                )
                .await
        },
    )?;

    let mut current: HashMap<Key, Result<RecordState, String>> = HashMap::new();
    for row in &locked {
        let seq: i64 = row.try_get(2)?;
        let detail: &str = row.try_get(3)?;
        let state = serde_json::from_str::<RecordState>(detail)
            .map_err(|e| format!("unreadable record state in the journal: {e}"));
        current.insert(
            (
                row.try_get(0)?,
                row.try_get(1)?,
                u32::try_from(seq).unwrap_or(u32::MAX),
            ),
            state,
        );
    }
    // (organisation, campaign, seq, worker) of every live lease of the worker asking.
    let mut leased: HashSet<(Key, String)> = HashSet::new();
    for row in &held {
        let seq: i64 = row.try_get(2)?;
        leased.insert((
            (
                row.try_get(0)?,
                row.try_get(1)?,
                u32::try_from(seq).unwrap_or(u32::MAX),
            ),
            row.try_get(3)?,
        ));
    }

    let mut replies = Vec::with_capacity(batch.len());
    // The records written, in the order first accepted, and whether each campaign exists
    // (asked only for a record that is missing).
    let mut written: Vec<Key> = Vec::new();
    let mut seen: HashSet<Key> = HashSet::new();
    let mut campaigns: HashMap<(String, String), bool> = HashMap::new();
    for request in batch {
        let Op::Records {
            id,
            transitions,
            holder,
        } = &request.op
        else {
            replies.push(Ok(()));
            continue;
        };
        let reply = check(
            client,
            &request.org,
            id,
            transitions,
            holder.as_ref(),
            &current,
            &leased,
            &mut campaigns,
        )
        .await?;
        match reply {
            Ok(states) => {
                for (seq, state) in states {
                    let key = key(&request.org, id, seq);
                    if seen.insert(key.clone()) {
                        written.push(key.clone());
                    }
                    current.insert(key, Ok(state));
                }
                replies.push(Ok(()));
            }
            Err(refused) => replies.push(Err(refused)),
        }
    }

    let mut u = Columns::default();
    let mut states = Vec::with_capacity(written.len());
    let mut details = Vec::with_capacity(written.len());
    let mut provider_ids = Vec::with_capacity(written.len());
    for key in &written {
        let Some(Ok(state)) = current.get(key) else {
            continue;
        };
        u.orgs.push(key.0.clone());
        u.campaigns.push(key.1.clone());
        u.seqs.push(i64::from(key.2));
        states.push(state.code());
        // A state that cannot be written as JSON cannot happen (plain data); it was refused
        // when checked, so this never drops an accepted write.
        details.push(serde_json::to_string(state).unwrap_or_default());
        provider_ids.push(state.provider_id().map(text));
    }
    let update = client.prepare_cached(UPDATE_RECORDS).await?;
    let now = Timestamp::now().unix_ms();
    tokio::try_join!(
        async {
            if u.seqs.is_empty() {
                return Ok(0);
            }
            client
                .execute(
                    &update,
                    &[
                        &now,
                        &u.orgs,
                        &u.campaigns,
                        &u.seqs,
                        &states,
                        &details,
                        &provider_ids,
                    ],
                )
                .await
        },
        client.batch_execute("COMMIT"),
    )?;
    Ok(replies)
}

/// One request's transitions checked in order against the states locked (a record named
/// twice: against its previous transition): the final state of each record, or why the
/// request is refused. `Err` only when a statement failed.
#[allow(clippy::too_many_arguments)]
async fn check(
    client: &Object,
    org: &Org,
    id: &CampaignId,
    transitions: &[Transition],
    holder: Option<&WorkerId>,
    current: &HashMap<Key, Result<RecordState, String>>,
    leased: &HashSet<(Key, String)>,
    campaigns: &mut HashMap<(String, String), bool>,
) -> Result<Result<Vec<(u32, RecordState)>, JournalError>, tokio_postgres::Error> {
    let mut states: Vec<(u32, RecordState)> = Vec::new();
    for t in transitions {
        let record = key(org, id, t.seq);
        let from = match states.iter().rev().find(|(seq, _)| *seq == t.seq) {
            Some((_, state)) => state,
            None => match current.get(&record) {
                Some(Ok(state)) => state,
                Some(Err(corrupt)) => {
                    return Ok(Err(JournalError::Unavailable(corrupt.clone())));
                }
                None => {
                    let campaign = (record.0.clone(), record.1.clone());
                    let exists = match campaigns.get(&campaign) {
                        Some(exists) => *exists,
                        None => {
                            let exists = client
                                .query_opt(
                                    "SELECT 1 FROM sms_campaigns WHERE org = $1 AND id = $2",
                                    &[&campaign.0, &campaign.1],
                                )
                                .await?
                                .is_some();
                            campaigns.insert(campaign, exists);
                            exists
                        }
                    };
                    return Ok(Err(if exists {
                        JournalError::UnknownRecord {
                            campaign: id.clone(),
                            seq: t.seq,
                        }
                    } else {
                        JournalError::UnknownCampaign(id.clone())
                    }));
                }
            },
        };
        if let Some(worker) = holder
            && !leased.contains(&(record, worker.as_str().to_owned()))
        {
            // Not this worker's live lease, or a record without a number (blocked): no
            // lease to hold.
            return Ok(Err(JournalError::LeaseLost {
                campaign: id.clone(),
                worker: worker.to_string(),
                seq: t.seq,
            }));
        }
        if let Err(refused) = check_transition(id, t.seq, from, &t.state) {
            return Ok(Err(refused));
        }
        if serde_json::to_string(&t.state).is_err() {
            return Ok(Err(JournalError::Unavailable(format!(
                "record #{} cannot be written as JSON",
                t.seq
            ))));
        }
        states.push((t.seq, t.state.clone()));
    }
    // The last state of each record.
    let mut last: Vec<(u32, RecordState)> = Vec::with_capacity(states.len());
    for (seq, state) in states {
        match last.iter_mut().find(|(s, _)| *s == seq) {
            Some(entry) => entry.1 = state,
            None => last.push((seq, state)),
        }
    }
    Ok(Ok(last))
}
