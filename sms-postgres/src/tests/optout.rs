//! Opt-outs on a real server: the core's rule over arrival order, per organisation.

use sms_core::optout::{InMemoryOptOutStore, OptOutAction, OptOutState, OptOutStore};
use sms_core::{PhoneNumber, Timestamp};

use super::{change, fresh, number, open};

#[tokio::test]
async fn opt_outs_survive_reconnecting_and_a_later_start_lifts_a_stop() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    store
        .record(change(1, OptOutAction::Stop, 10))
        .await
        .expect("stop");
    store
        .record(change(2, OptOutAction::Stop, 10))
        .await
        .expect("stop");
    store
        .record(change(2, OptOutAction::Start, 20))
        .await
        .expect("start");
    drop(store);
    let store = open(&db, "default").await;
    assert_eq!(
        store.state(number(1)).await.expect("state"),
        OptOutState::OptedOut {
            since: Timestamp::from_unix_ms(10)
        }
    );
    assert_eq!(
        store.state(number(2)).await.expect("state"),
        OptOutState::OptedIn
    );
    let history = store.history(number(2)).await.expect("history");
    assert_eq!(
        history,
        vec![
            change(2, OptOutAction::Stop, 10),
            change(2, OptOutAction::Start, 20)
        ]
    );
    let snapshot = store.snapshot().await.expect("snapshot");
    assert_eq!(snapshot.len(), 1);
    assert_eq!(
        snapshot.state(number(1)),
        OptOutState::OptedOut {
            since: Timestamp::from_unix_ms(10)
        }
    );
}

#[tokio::test]
async fn a_start_stamped_later_that_arrived_first_does_not_lift_the_stop() {
    let Some((_db, store)) = fresh("default").await else {
        return;
    };
    // A webhook host whose clock runs ahead records START at 2,000; the STOP stamped 1,000
    // arrives after it. Arrival order says the STOP is the latest word.
    store
        .record(change(3, OptOutAction::Start, 2_000))
        .await
        .expect("start");
    store
        .record(change(3, OptOutAction::Stop, 1_000))
        .await
        .expect("stop");
    assert_eq!(
        store.state(number(3)).await.expect("state"),
        OptOutState::OptedOut {
            since: Timestamp::from_unix_ms(1_000)
        }
    );
    assert_eq!(store.snapshot().await.expect("snapshot").len(), 1);
}

#[tokio::test]
async fn random_histories_give_the_states_the_memory_store_gives() {
    let Some((_db, store)) = fresh("default").await else {
        return;
    };
    let memory = InMemoryOptOutStore::new();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    // 400 changes over 12 numbers, times jittered so that arrival and time disagree often.
    for _ in 0..400 {
        let n = rng.u64(0..12);
        let action = if rng.bool() {
            OptOutAction::Stop
        } else {
            OptOutAction::Start
        };
        let c = change(n, action, rng.i64(0..50));
        store.record(c.clone()).await.expect("record");
        memory.record(c).await.expect("record");
    }
    for n in 0..12 {
        assert_eq!(
            store.state(number(n)).await.expect("state"),
            memory.state(number(n)).await.expect("state"),
            "number {n}"
        );
        assert_eq!(
            store.history(number(n)).await.expect("history"),
            memory.history(number(n)).await.expect("history")
        );
    }
    assert_eq!(
        store.snapshot().await.expect("snapshot"),
        memory.snapshot().await.expect("snapshot")
    );
}

#[tokio::test]
async fn a_stop_to_one_organisation_never_blocks_another() {
    let Some((db, riverside)) = fresh("riverside").await else {
        return;
    };
    let hillcrest = open(&db, "hillcrest").await;
    riverside
        .record(change(4, OptOutAction::Stop, 10))
        .await
        .expect("stop");
    assert!(matches!(
        riverside.state(number(4)).await.expect("state"),
        OptOutState::OptedOut { .. }
    ));
    assert_eq!(
        hillcrest.state(number(4)).await.expect("state"),
        OptOutState::OptedIn
    );
    assert!(
        hillcrest
            .history(number(4))
            .await
            .expect("history")
            .is_empty()
    );
    assert!(hillcrest.snapshot().await.expect("snapshot").is_empty());
    // A START to the other organisation does not lift the first one's STOP either.
    hillcrest
        .record(change(4, OptOutAction::Start, 20))
        .await
        .expect("start");
    assert!(matches!(
        riverside.state(number(4)).await.expect("state"),
        OptOutState::OptedOut { .. }
    ));
}

#[tokio::test]
async fn a_number_the_phone_metadata_does_not_know_is_kept() {
    let Some((_db, store)) = fresh("default").await else {
        return;
    };
    // E.164-shaped but not a valid number today: a STOP from it must still block it.
    let unknown = PhoneNumber::from_e164_shape("+999123456789").expect("shape");
    let mut stop = change(0, OptOutAction::Stop, 5);
    stop.number = unknown;
    store.record(stop).await.expect("stop");
    let snapshot = store.snapshot().await.expect("snapshot");
    assert!(matches!(
        snapshot.state(unknown),
        OptOutState::OptedOut { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_from_two_servers_lose_nothing() {
    let Some((db, first)) = fresh("default").await else {
        return;
    };
    let second = open(&db, "default").await;
    let mut tasks = Vec::new();
    for (w, store) in [first.clone(), second.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let action = if (i + w) % 2 == 0 {
                    OptOutAction::Stop
                } else {
                    OptOutAction::Start
                };
                store
                    .record(change(7, action, i as i64))
                    .await
                    .expect("record");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let history = first.history(number(7)).await.expect("history");
    assert_eq!(history.len(), 100);
    // Both handles read one order, and the state is the rule over it.
    assert_eq!(history, second.history(number(7)).await.expect("history"));
    assert_eq!(
        first.state(number(7)).await.expect("state"),
        OptOutState::from_history(&history)
    );
}
