//! Group commit (`writer`): writes queued while the writer is busy are committed together, in
//! one transaction, yet each is checked on its own: a refused write (an invalid transition, a
//! lost lease) leaves the others committed; a batch that cannot be committed answers every
//! waiter with an error and records nothing.
//!
//! To queue writes into one batch, a test holds a record locked from another session, so that
//! the writer's current batch waits on it; what is written meanwhile queues for the next
//! batch. Writes in one batch are one transaction: the rows they change carry one `xmin`.

use std::time::{Duration, Instant};

use sms_core::journal::{
    Campaign, CampaignId, CampaignSettings, FleetJournal, Journal, JournalError, RecordState,
    Transition, WorkerId,
};
use sms_core::optout::{OptOutAction, OptOutState, OptOutStore};
use sms_core::{Encoding, PreviewItem, PreviewOutcome, RecordId, Timestamp};
use tokio::task::JoinHandle;

use super::{change, fresh, number, open};
use crate::PgStore;
use crate::test_support::TestDatabase;

/// `records` records, record `i` to the `i`-th test number.
pub(super) fn campaign(id: &str, records: u64) -> Campaign {
    let items = (0..records)
        .map(|i| PreviewItem {
            record_id: RecordId::new(format!("C-{i}")),
            kind: sms_core::RecordKind::Client,
            name: format!("Client {i}"),
            mobile: number(i).to_string(),
            time_zone: None,
            outcome: PreviewOutcome::Eligible {
                number: number(i),
                body: format!("Hello client {i}"),
                encoding: Encoding::Gsm7,
                segments: 1,
            },
        })
        .collect();
    Campaign {
        id: CampaignId::new(id).expect("not blank"),
        name: id.into(),
        created_at: Timestamp::now(),
        template: "x".into(),
        settings: CampaignSettings::default(),
        items,
    }
}

pub(super) fn sending(seq: u32) -> Transition {
    Transition {
        seq,
        state: RecordState::Sending {
            attempt: 1,
            at: Timestamp::from_unix_ms(1_000),
        },
    }
}

/// In doubt: refused for a planned record (only a record being sent can be in doubt).
fn in_doubt(seq: u32) -> Transition {
    Transition {
        seq,
        state: RecordState::Unknown {
            message: "the answer was lost".into(),
            sent_at: Timestamp::from_unix_ms(1_000),
            at: Timestamp::from_unix_ms(2_000),
        },
    }
}

/// A second attempt straight from `sending`: refused (a retry goes through `deferred`).
fn sending_again(seq: u32) -> Transition {
    Transition {
        seq,
        state: RecordState::Sending {
            attempt: 2,
            at: Timestamp::from_unix_ms(3_000),
        },
    }
}

/// A session outside the store holding record `seq` of `campaign` locked (`FOR UPDATE`) until
/// it is dropped or committed.
pub(super) struct Holder {
    client: tokio_postgres::Client,
}

impl Holder {
    pub(super) async fn lock(db: &TestDatabase, campaign: &str, seq: i64) -> Holder {
        let client = db.admin().await;
        client.batch_execute("BEGIN").await.expect("begin");
        let locked = client
            .execute(
                &format!(
                    "SELECT 1 FROM {}.sms_records WHERE campaign_id = $1 AND seq = $2 FOR UPDATE",
                    db.name()
                ),
                &[&campaign, &seq],
            )
            .await
            .expect("lock the record");
        assert_eq!(locked, 1);
        Holder { client }
    }

    pub(super) async fn release(self) {
        self.client.batch_execute("COMMIT").await.expect("commit");
    }
}

/// The pids of this test's sessions waiting for a lock (but `cut` ones), once there is one.
pub(super) async fn waiting_on_a_lock(db: &TestDatabase, cut: &[i32]) -> Vec<i32> {
    let admin = db.admin().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pids: Vec<i32> = admin
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&db.name()],
            )
            .await
            .expect("sessions")
            .iter()
            .map(|row| row.get(0))
            .filter(|pid| !cut.contains(pid))
            .collect();
        if !pids.is_empty() {
            return pids;
        }
        assert!(Instant::now() < deadline, "the writer never waited");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lets the tasks spawned so far run up to their first wait (on this current-thread runtime,
/// each has then handed its write to the writer).
pub(super) async fn let_them_queue() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// The transaction ids that wrote records `seqs` of `campaign`.
async fn writers_of(db: &TestDatabase, campaign: &str, seqs: &[i64]) -> Vec<String> {
    let rows = db
        .admin()
        .await
        .query(
            &format!(
                "SELECT DISTINCT xmin::text FROM {}.sms_records
                 WHERE campaign_id = $1 AND seq = ANY($2)",
                db.name()
            ),
            &[&campaign, &seqs],
        )
        .await
        .expect("xmin");
    rows.iter().map(|row| row.get(0)).collect()
}

fn apply(store: &PgStore, id: &CampaignId, t: Transition) -> JoinHandle<Result<(), JournalError>> {
    let (store, id) = (store.clone(), id.clone());
    tokio::spawn(async move { store.apply(id, vec![t]).await })
}

fn begin(
    store: &PgStore,
    id: &CampaignId,
    worker: &WorkerId,
    t: Transition,
) -> JoinHandle<Result<(), JournalError>> {
    let (store, id, worker) = (store.clone(), id.clone(), worker.clone());
    tokio::spawn(async move { store.begin_sending(&id, &worker, vec![t]).await })
}

#[tokio::test]
async fn a_refused_write_in_a_batch_leaves_the_others_committed() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let c = campaign("batch", 6);
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");

    // The writer's batch waits on record 5.
    let holder = Holder::lock(&db, "batch", 5).await;
    let first = apply(&store, &id, sending(5));
    waiting_on_a_lock(&db, &[]).await;
    // Queued meanwhile, all for the next batch: two good transitions, refused ones between
    // them (one refused because of the write just before it in the batch), an opt-out, and a
    // transition naming a record the campaign does not have.
    let good = apply(&store, &id, sending(0));
    let again = apply(&store, &id, sending_again(0));
    let refused = apply(&store, &id, in_doubt(1));
    let also_good = apply(&store, &id, sending(2));
    let stop = {
        let store = store.clone();
        tokio::spawn(async move { store.record(change(40, OptOutAction::Stop, 10)).await })
    };
    let unknown = apply(&store, &id, sending(99));
    let_them_queue().await;
    holder.release().await;

    first.await.expect("task").expect("the first batch");
    good.await.expect("task").expect("record 0");
    also_good.await.expect("task").expect("record 2");
    stop.await.expect("task").expect("the opt-out");
    assert!(matches!(
        refused.await.expect("task"),
        Err(JournalError::InvalidTransition { seq: 1, .. })
    ));
    assert!(matches!(
        again.await.expect("task"),
        Err(JournalError::InvalidTransition { seq: 0, .. })
    ));
    assert!(matches!(
        unknown.await.expect("task"),
        Err(JournalError::UnknownRecord { seq: 99, .. })
    ));

    let records = store.records(id.clone()).await.expect("records");
    assert_eq!(
        records[0].state,
        sending(0).state,
        "the refused second attempt: unchanged"
    );
    assert_eq!(records[1].state, RecordState::Planned, "refused: unchanged");
    assert!(matches!(records[2].state, RecordState::Sending { .. }));
    assert!(matches!(records[5].state, RecordState::Sending { .. }));
    assert!(matches!(
        store.state(number(40)).await.expect("state"),
        OptOutState::OptedOut { .. }
    ));
    // Records 0 and 2 were written by one transaction, another than record 5's.
    assert_eq!(writers_of(&db, "batch", &[0, 2]).await.len(), 1);
    assert_eq!(writers_of(&db, "batch", &[0, 2, 5]).await.len(), 2);
}

#[tokio::test]
async fn of_two_workers_sending_one_record_the_one_that_lost_its_lease_is_refused() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let other = open(&db, "default").await;
    let c = campaign("lost", 3);
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");
    let (slow, quick) = (WorkerId::new("slow"), WorkerId::new("quick"));

    // `slow` leases number 0 briefly and lets the lease pass; `quick` takes it over; `slow`
    // then leases number 1 for long.
    let leased = store
        .lease(&id, &slow, 1, Duration::from_millis(1))
        .await
        .expect("lease");
    assert_eq!(leased.len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let taken = other
        .lease(&id, &quick, 1, Duration::from_secs(60))
        .await
        .expect("take over");
    assert_eq!(taken[0].seq, 0, "the lapsed number is taken over");
    let kept = store
        .lease(&id, &slow, 1, Duration::from_secs(60))
        .await
        .expect("lease");
    assert_eq!(kept[0].seq, 1);

    // Both workers' writes queue behind a batch waiting on record 2, so that `slow`'s two
    // writes and `quick`'s share one batch.
    let holder = Holder::lock(&db, "lost", 2).await;
    let first = apply(&store, &id, sending(2));
    waiting_on_a_lock(&db, &[]).await;
    let lost = begin(&store, &id, &slow, sending(0));
    let held = begin(&store, &id, &slow, sending(1));
    let taken_over = begin(&store, &id, &quick, sending(0));
    let_them_queue().await;
    holder.release().await;

    first.await.expect("task").expect("the first batch");
    match lost.await.expect("task") {
        Err(JournalError::LeaseLost { worker, seq: 0, .. }) => assert_eq!(worker, "slow"),
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    held.await
        .expect("task")
        .expect("slow still holds number 1");
    taken_over
        .await
        .expect("task")
        .expect("quick holds number 0");
    let records = store.records(id.clone()).await.expect("records");
    assert!(matches!(records[0].state, RecordState::Sending { .. }));
    assert!(matches!(records[1].state, RecordState::Sending { .. }));
    assert_eq!(writers_of(&db, "lost", &[0, 1]).await.len(), 1, "one batch");
}

#[tokio::test]
async fn a_connection_lost_mid_batch_fails_every_write_of_it_and_records_nothing() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let c = campaign("cut", 4);
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");

    // Records 2 and 3 held: the first batch waits on record 3; the next one will wait on 2.
    let holder_3 = Holder::lock(&db, "cut", 3).await;
    let holder_2 = Holder::lock(&db, "cut", 2).await;
    let first = apply(&store, &id, sending(3));
    let waiting = waiting_on_a_lock(&db, &[]).await;
    let queued = [
        apply(&store, &id, sending(2)),
        apply(&store, &id, sending(0)),
        apply(&store, &id, in_doubt(1)),
    ];
    let stop = {
        let store = store.clone();
        tokio::spawn(async move { store.record(change(41, OptOutAction::Stop, 10)).await })
    };
    let_them_queue().await;
    // The first batch's connection is cut; then the second batch's, while it waits on 2.
    cut(&db, &waiting).await;
    assert!(matches!(
        first.await.expect("task"),
        Err(JournalError::Unavailable(_))
    ));
    let second = waiting_on_a_lock(&db, &waiting).await;
    cut(&db, &second).await;

    let mut texts = Vec::new();
    for write in queued {
        match write.await.expect("task") {
            Err(JournalError::Unavailable(text)) => texts.push(text),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    match stop.await.expect("task") {
        Err(sms_core::optout::StoreError::Unavailable(text)) => texts.push(text),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // One error for the whole batch, the same for every waiter (the refused transition too:
    // the batch was never committed, so nothing of it can be said to be recorded).
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "{texts:?}");
    holder_2.release().await;
    holder_3.release().await;

    // Nothing of either batch was recorded; the writer works again on a new connection.
    let records = store.records(id.clone()).await.expect("records");
    assert!(records.iter().all(|r| r.state == RecordState::Planned));
    assert_eq!(
        store.state(number(41)).await.expect("state"),
        OptOutState::OptedIn
    );
    store
        .apply(id.clone(), vec![sending(0)])
        .await
        .expect("apply");
    store
        .record(change(41, OptOutAction::Stop, 20))
        .await
        .expect("record");
    assert_eq!(store.history(number(41)).await.expect("history").len(), 1);
}

/// Ends the sessions `pids` (as a network cut or a server restart would).
async fn cut(db: &TestDatabase, pids: &[i32]) {
    let admin = db.admin().await;
    for pid in pids {
        admin
            .execute("SELECT pg_terminate_backend($1)", &[pid])
            .await
            .expect("terminate");
    }
}
