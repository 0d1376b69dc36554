//! One opt-out rule: the same random histories of STOP/START (ties, skewed clocks, late
//! deliveries) through the SQLite store on a real file and the in-memory store give the same
//! states, histories and snapshots, and a STOP is never lost to a START that arrived before it.

use proptest::prelude::*;
use sms_core::optout::{
    ChangeSource, InMemoryOptOutStore, OptOutAction, OptOutChange, OptOutState, OptOutStore,
};
use sms_core::{PhoneNumber, Timestamp};
use sms_sqlite::SqliteStore;
use sms_tests::campaigns::number;

const NUMBERS: usize = 3;

/// One change as a writer would send it: which number, what, and the writer's clock. Times are
/// drawn from a small range so that ties and out-of-order stamps are common.
fn change() -> impl Strategy<Value = (usize, bool, i64)> {
    (0..NUMBERS, any::<bool>(), 0i64..6)
}

fn to_change(i: usize, (n, stop, at): (usize, bool, i64)) -> OptOutChange {
    OptOutChange {
        number: number(n),
        action: if stop {
            OptOutAction::Stop
        } else {
            OptOutAction::Start
        },
        at: Timestamp::from_unix_ms(1_764_000_000_000 + at * 60_000),
        source: ChangeSource::Inbound,
        message_sid: Some(format!("SM{i}")),
        body: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sqlite_and_memory_agree_and_a_stop_is_never_lost(
        history in prop::collection::vec(change(), 0..14),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = SqliteStore::open(dir.path().join("sms.db")).expect("open");
        let memory = InMemoryOptOutStore::new();
        let changes: Vec<OptOutChange> =
            history.iter().enumerate().map(|(i, c)| to_change(i, *c)).collect();
        runtime.block_on(async {
            for change in &changes {
                sqlite.record(change.clone()).await.expect("sqlite");
                memory.record(change.clone()).await.expect("memory");
            }
        });
        // Reopened: what another process would read.
        let sqlite = SqliteStore::open(dir.path().join("sms.db")).expect("reopen");
        let (sqlite_snapshot, memory_snapshot) = runtime.block_on(async {
            (
                sqlite.snapshot().await.expect("sqlite"),
                memory.snapshot().await.expect("memory"),
            )
        });
        prop_assert_eq!(&sqlite_snapshot, &memory_snapshot);
        for n in 0..NUMBERS {
            let number: PhoneNumber = number(n);
            let (state, expected, sqlite_history, memory_history) = runtime.block_on(async {
                (
                    sqlite.state(number).await.expect("sqlite"),
                    memory.state(number).await.expect("memory"),
                    sqlite.history(number).await.expect("sqlite"),
                    memory.history(number).await.expect("memory"),
                )
            });
            prop_assert_eq!(state, expected, "number {}", n);
            prop_assert_eq!(sqlite_snapshot.state(number), state);
            prop_assert_eq!(&sqlite_history, &memory_history);

            // Independent of the rule's code: what a person would check by hand.
            let mine: Vec<&OptOutChange> = changes.iter().filter(|c| c.number == number).collect();
            let last_start = mine.iter().rposition(|c| c.action == OptOutAction::Start);
            let stops_after = mine
                .iter()
                .skip(last_start.map_or(0, |i| i + 1))
                .filter(|c| c.action == OptOutAction::Stop)
                .map(|c| c.at)
                .min();
            if let Some(earliest) = stops_after {
                // A STOP that arrived after every START stands, whatever the clocks said.
                prop_assert!(
                    matches!(state, OptOutState::OptedOut { since } if since <= earliest),
                    "number {} lost a STOP: {:?} -> {:?}", n, mine, state
                );
            } else if let Some(i) = last_start {
                // The last change is a START stamped no earlier than any STOP: texting resumes.
                let stamped_later = mine[..i]
                    .iter()
                    .any(|c| c.action == OptOutAction::Stop && c.at > mine[i].at);
                if !stamped_later {
                    prop_assert_eq!(state, OptOutState::OptedIn, "{:?}", mine);
                }
            } else {
                prop_assert_eq!(state, OptOutState::OptedIn, "no change at all");
            }
        }
    }
}
