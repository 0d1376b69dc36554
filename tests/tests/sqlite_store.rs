//! The SQLite store on a real file: readers while a campaign is written, delivery statuses in
//! the report. (What another handle reads after a write returns is the conformance suite's.)

use std::sync::Arc;

use sms_core::journal::{DeliveryUpdate, Journal, load_report};
use sms_core::{CancellationToken, DeliveryStatus, Dispatcher, SimulatedProvider, Timestamp};
use sms_sqlite::SqliteStore;
use sms_tests::campaigns::campaign;
use sms_tests::unpaced;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_can_be_read_while_a_campaign_is_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(dir.path().join("sms.db")).expect("open"));
    let c = campaign("live", 400, 50, unpaced(16));
    let id = c.id.clone();
    store.create_campaign(c).await.expect("create");
    let provider = Arc::new(SimulatedProvider::new());
    let dispatcher = Dispatcher::new(provider.clone(), store.clone(), store.clone());
    let reader = {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            while seen < 400 {
                let report = load_report(&*store, id.clone()).await.expect("report");
                assert!(report.totals.accepted >= seen, "progress never goes back");
                seen = report.totals.accepted;
                tokio::task::yield_now().await;
            }
        })
    };
    let summary = dispatcher
        .run(id.clone(), CancellationToken::new())
        .await
        .expect("run");
    reader.await.expect("the reader saw every text");
    assert_eq!(summary.report.totals.accepted, 400);

    // Status callbacks arrive: delivered for most, one undelivered with its error code.
    for (i, message) in provider.sent().iter().enumerate() {
        let (status, error_code) = if i == 0 {
            (DeliveryStatus::Undelivered, Some(30003))
        } else {
            (DeliveryStatus::Delivered, None)
        };
        let update = DeliveryUpdate {
            provider_id: message.provider_id.clone(),
            status,
            error_code,
            segments: None,
            at: Timestamp::now(),
        };
        assert!(store.record_delivery(update).await.expect("callback"));
    }
    let report = load_report(&*store, id).await.expect("report");
    assert_eq!(
        (report.totals.delivered, report.totals.undelivered),
        (399, 1)
    );
    assert_eq!(report.totals.units_used, 400);
}
