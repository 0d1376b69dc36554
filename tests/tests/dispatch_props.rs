//! Property: whatever the provider does (slow down, try later, unknown outcomes sent or not,
//! refusals, crashes before or after it took the text), no record is ever texted twice, every
//! accepted record carries the id of the message with its body, and resuming until done gives
//! every record a final outcome.

use std::sync::Arc;

use proptest::prelude::*;
use sms_core::journal::{InMemoryJournal, Journal, RecordState};
use sms_core::{CancellationToken, Dispatcher, InMemoryOptOutStore};
use sms_tests::campaigns::{body, campaign};
use sms_tests::faults::{Fault, FaultProvider};
use sms_tests::unpaced;

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::Accept),
        1 => (0u64..5_000).prop_map(Fault::SlowDown),
        1 => Just(Fault::TryLater),
        1 => Just(Fault::UnknownSent),
        1 => Just(Fault::UnknownNotSent),
        1 => Just(Fault::BadRecipient),
        1 => Just(Fault::CrashBefore),
        1 => Just(Fault::CrashAfter),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn no_record_is_ever_accepted_twice(
        faults in prop::collection::vec(fault(), 0..80),
        records in 1usize..25,
        numbers in 1usize..6,
        concurrency in 1u32..5,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let journal = Arc::new(InMemoryJournal::new());
            let store = Arc::new(InMemoryOptOutStore::new());
            let c = campaign("prop", records, numbers, unpaced(concurrency));
            let id = c.id.clone();
            journal.create_campaign(c).await.expect("create");
            let provider = FaultProvider::new(faults);
            // The fault provider's history is exact at once: silence may count as "not sent"
            // immediately (the wait before trusting it is tested in the core).
            let dispatcher = Dispatcher::new(Arc::new(provider.clone()), store, journal.clone())
                .with_options(sms_tests::quick_options());
            let mut report = None;
            for _ in 0..40 {
                tokio::select! {
                    summary = dispatcher.run(id.clone(), CancellationToken::new()) => {
                        let summary = summary.expect("run");
                        if summary.report.is_complete() {
                            report = Some(summary.report);
                            break;
                        }
                    }
                    () = provider.crashed() => {}
                }
            }
            let report = report.expect("resuming finishes the campaign");
            let sent = provider.sent();
            for (i, record) in report.records.iter().enumerate() {
                let mine: Vec<_> = sent.iter().filter(|m| m.body.as_deref() == Some(body(i).as_str())).collect();
                prop_assert!(mine.len() <= 1, "record {} texted {} times", i, mine.len());
                match &record.state {
                    RecordState::Accepted { provider_id, .. } => {
                        prop_assert_eq!(mine.len(), 1);
                        prop_assert_eq!(&mine[0].provider_id, provider_id);
                    }
                    RecordState::Failed { .. } => prop_assert!(mine.is_empty()),
                    other => prop_assert!(false, "record {} ended {:?}", i, other),
                }
            }
            Ok(())
        })?;
    }
}
