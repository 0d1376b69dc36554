//! The group-commit writer at its edges, from a hostile review: a NUL in a text, a write
//! blocked on another session's lock, a lease that lapses while a batch waits, a STOP read
//! at once by another server, one number changed twice in one batch.

use std::time::Duration;

use sms_core::Timestamp;
use sms_core::journal::{Journal, RecordState};
use sms_core::optout::{InMemoryOptOutStore, OptOutAction, OptOutState, OptOutStore};

use super::writer::{Holder, campaign, let_them_queue, sending, waiting_on_a_lock};
use super::{change, fresh, number};

/// One caller's write holding a NUL (which a PostgreSQL `text` cannot) batched with a STOP and
/// a transition of other callers: a review found all three answered `Unavailable` and none
/// recorded; the NUL is now kept as U+FFFD and every one of them commits.
#[tokio::test]
async fn a_nul_in_one_write_fails_the_stop_batched_with_it() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let c = campaign("poison", 6);
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");

    let holder = Holder::lock(&db, "poison", 5).await;
    let first = {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.apply(id, vec![sending(5)]).await })
    };
    waiting_on_a_lock(&db, &[]).await;
    // A texter's STOP whose body holds a NUL (text PostgreSQL cannot store).
    let bad = {
        let store = store.clone();
        let mut change = change(43, OptOutAction::Stop, 10);
        change.body = Some("STOP\0".into());
        tokio::spawn(async move { store.record(change).await })
    };
    let stop = {
        let store = store.clone();
        tokio::spawn(async move { store.record(change(40, OptOutAction::Stop, 10)).await })
    };
    let good = {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.apply(id, vec![sending(0)]).await })
    };
    let_them_queue().await;
    holder.release().await;
    first.await.expect("task").expect("first batch");
    let bad = bad.await.expect("task");
    let stop = stop.await.expect("task");
    let good = good.await.expect("task");
    eprintln!("bad: {bad:?}\nstop: {stop:?}\ngood: {good:?}");
    // The NUL is kept as U+FFFD (a `text` cannot hold it), so the STOP is recorded ...
    bad.expect("a STOP whose body holds a NUL");
    let history = store.history(number(43)).await.expect("history");
    assert_eq!(history[0].body.as_deref(), Some("STOP\u{FFFD}"));
    // ... and nothing batched with it is refused.
    assert!(
        stop.is_ok(),
        "the STOP, batched with another caller's write, was refused: {stop:?}"
    );
    good.expect("record 0, batched with another caller's write");
}

/// A STOP whose body holds a NUL (the texter's own text, URL-decoded from the webhook) is
/// recorded by the in-memory store (and SQLite) but never by PostgreSQL: the number stays
/// opted in.
#[tokio::test]
async fn a_stop_whose_body_holds_a_nul_is_recorded() {
    let Some((_db, store)) = fresh("default").await else {
        return;
    };
    let mut stop = change(41, OptOutAction::Stop, 10);
    stop.body = Some("STOP\0".into());
    let memory = InMemoryOptOutStore::default();
    memory
        .record(stop.clone())
        .await
        .expect("the in-memory store");
    assert!(matches!(
        memory.state(number(41)).await.expect("state"),
        OptOutState::OptedOut { .. }
    ));
    let recorded = store.record(stop).await;
    eprintln!("PostgreSQL: {recorded:?}");
    recorded.expect("the STOP recorded");
    assert!(matches!(
        store.state(number(41)).await.expect("state"),
        OptOutState::OptedOut { .. }
    ));
}

/// A journal write waiting on a record lock (another server's transaction that stalled, say)
/// holds up every later write of the store, a STOP to another number included: the STOP is
/// was not answered while the lock was held (a review found it). The writer's `lock_timeout`
/// now fails the blocked batch instead, and the STOP goes in the next.
#[tokio::test]
async fn a_stop_waits_behind_a_journal_write_blocked_on_a_lock() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let c = campaign("hol", 2);
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");
    let holder = Holder::lock(&db, "hol", 0).await;
    let blocked = {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.apply(id, vec![sending(0)]).await })
    };
    waiting_on_a_lock(&db, &[]).await;
    // A STOP to a number no one holds anything of: with a connection of its own, it would
    // commit at once.
    let stop = tokio::time::timeout(
        Duration::from_secs(20),
        store.record(change(42, OptOutAction::Stop, 10)),
    )
    .await;
    holder.release().await;
    // The blocked write gave up after the writer's lock_timeout: a store error, nothing
    // written (the caller, a dispatcher, stops; a resume finishes).
    assert!(
        matches!(
            blocked.await.expect("task"),
            Err(sms_core::journal::JournalError::Unavailable(_))
        ),
        "the write blocked on a lock fails with a store error"
    );
    let stop =
        stop.expect("the STOP was not answered within 20 s: it waits behind the blocked write");
    stop.expect("recorded");
}

/// Probe (passes): a STOP answered Ok is seen at once by another server's store, under load
/// of many batched writers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_a_stop_answered_ok_is_seen_by_another_server() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let other = super::open(&db, "default").await;
    let c = campaign("probe", 300);
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let (store, other, id) = (store.clone(), other.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let seq = u32::try_from(i).expect("small");
            // Two callers on one record in whatever batches they fall: two different
            // `sending` states (the second refused whatever the batching; an identical one
            // would be accepted as a repeat, by the core's rule).
            let a = store.apply(id.clone(), vec![sending(seq)]);
            let mut other_sending = sending(seq);
            other_sending.state = RecordState::Sending {
                attempt: 1,
                at: Timestamp::from_unix_ms(2_000),
            };
            let b = store.apply(id.clone(), vec![other_sending]);
            let (a, b) = tokio::join!(a, b);
            assert!(a.is_ok() != b.is_ok(), "exactly one: {a:?} {b:?}");
            store
                .record(change(i, OptOutAction::Stop, 10))
                .await
                .expect("stop");
            assert!(matches!(
                other.state(number(i)).await.expect("state"),
                OptOutState::OptedOut { .. }
            ));
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let records = other.records(id).await.expect("records");
    assert!(
        records
            .iter()
            .all(|r| matches!(r.state, RecordState::Sending { .. }))
    );
}

/// Probe (passes): STOP then START (and START then STOP) of one number by two callers in one
/// batch end as they would one after the other (the in-memory store's answer).
#[tokio::test]
async fn probe_one_number_changed_twice_in_one_batch_ends_as_in_sequence() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let c = campaign("twice", 2);
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");
    let holder = Holder::lock(&db, "twice", 1).await;
    let first = {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.apply(id, vec![sending(1)]).await })
    };
    waiting_on_a_lock(&db, &[]).await;
    let changes = [
        change(50, OptOutAction::Stop, 30),
        change(50, OptOutAction::Start, 20),
        change(51, OptOutAction::Start, 10),
        change(51, OptOutAction::Stop, 5),
    ];
    let mut tasks = Vec::new();
    for c in changes.clone() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.record(c).await }));
        let_them_queue().await;
    }
    holder.release().await;
    first.await.expect("task").expect("first");
    for t in tasks {
        t.await.expect("task").expect("recorded");
    }
    let batches = db
        .admin()
        .await
        .query(
            &format!(
                "SELECT DISTINCT xmin::text FROM {}.sms_opt_out_changes",
                db.name()
            ),
            &[],
        )
        .await
        .expect("xmin");
    assert_eq!(batches.len(), 1, "the four changes in one batch");
    let memory = InMemoryOptOutStore::default();
    for c in changes {
        memory.record(c).await.expect("memory");
    }
    for n in [50, 51] {
        assert_eq!(
            store.state(number(n)).await.expect("pg"),
            memory.state(number(n)).await.expect("memory"),
            "number {n}"
        );
        assert_eq!(
            store.history(number(n)).await.expect("pg"),
            memory.history(number(n)).await.expect("memory"),
        );
    }
}

/// Probe (passes): a lease that lapses while the worker's `begin_sending` waits in the writer
/// (its batch waiting on a record lock) is refused: the lease is compared on the database's
/// clock when the batch reads it, after the wait, in the transaction that writes.
#[tokio::test]
async fn probe_a_lease_that_lapses_while_the_batch_waits_is_refused() {
    use sms_core::journal::{FleetJournal, JournalError, WorkerId};
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    let c = campaign("lapse", 1);
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");
    let worker = WorkerId::new("w");
    let leased = store
        .lease(&id, &worker, 1, Duration::from_millis(300))
        .await
        .expect("lease");
    assert_eq!(leased.len(), 1);
    let holder = Holder::lock(&db, "lapse", 0).await;
    let begin = {
        let (store, id, worker) = (store.clone(), id.clone(), worker.clone());
        tokio::spawn(async move { store.begin_sending(&id, &worker, vec![sending(0)]).await })
    };
    waiting_on_a_lock(&db, &[]).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    holder.release().await;
    match begin.await.expect("task") {
        Err(JournalError::LeaseLost { .. }) => {}
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    let records = store.records(id).await.expect("records");
    assert_eq!(records[0].state, RecordState::Planned);
}
