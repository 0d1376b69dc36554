//! The alert store on a real server: the contract `tests/tests/alerts.rs` holds the memory and
//! SQLite stores to (seeded and checked the same way), organisations kept apart, and two
//! servers claiming at once.

use std::collections::BTreeMap;

use sms_core::alerts::{
    AlertConfig, AlertEvent, AlertOutcome, AlertStatus, AlertStore, AlertStoreError,
    AlertTemplates, EventId, EventInsert, RecentSend, StoredAlert, SubscriptionAction,
    SubscriptionChange, SubscriptionSource, plan_event,
};
use sms_core::{
    AlertKind, PermittedMarketingMethods, PhoneNumber, PreviewItem, Recipient, RecipientKind,
    RecordId, Timestamp,
};

use super::{fresh, open};

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("valid")
}

fn client(id: &str, first: &str, mobile: &str) -> Recipient {
    Recipient {
        record_id: RecordId::new(id),
        kind: RecipientKind::Client {
            permitted_marketing_methods: PermittedMarketingMethods::new("Email, Alerts"),
        },
        first_name: first.into(),
        last_name: "Lopez".into(),
        mobile: mobile.into(),
        time_zone: Some("America/New_York".into()),
        fields: BTreeMap::from([("course_title".to_owned(), "Intro to Welding".to_owned())]),
    }
}

/// Six clients, a family phone among them, two events; every one subscribed to both kinds.
async fn seed(store: &dyn AlertStore) -> usize {
    let roster = vec![
        client("C1", "Ana", "+12125550101"),
        client("C2", "Bo", "+12125550102"),
        client("KID1", "Cy", "+12125550103"),
        client("KID2", "Di", "(212) 555-0103"),
    ];
    let config = AlertConfig::default();
    let templates = AlertTemplates::new([(
        AlertKind::EvaluationDue,
        "{org_name}: {first_name}, the evaluation for {course_title} is open. Reply STOP to opt out."
            .to_owned(),
    )]);
    for (kind, text) in templates_of(&templates) {
        store.set_template(kind, text).await.expect("stored");
    }
    let mut evaluation = event("EV-1", AlertKind::EvaluationDue, "2026-05-01T14:00:00Z");
    evaluation.section = "WELD-101".into();
    let mut change = event("SC-1", AlertKind::ScheduleChanged, "2026-05-01T14:05:00Z");
    change.old = Some("Room 12".into());
    change.new = Some("Room 204".into());
    let later = vec![
        client("C5", "Ed", "+12125550105"),
        client("C6", "Flo", "+12125550106"),
    ];
    let mut scheduled = 0;
    for (e, r) in [(evaluation, roster.clone()), (change, later.clone())] {
        let alerts = plan_event(&e, &r, &config, &templates).expect("plans");
        scheduled += alerts.len();
        store.record_event(e, alerts).await.expect("stored");
    }
    for r in roster.iter().chain(&later) {
        for kind in [AlertKind::EvaluationDue, AlertKind::ScheduleChanged] {
            store
                .record_subscription(SubscriptionChange {
                    record_id: r.record_id.clone(),
                    kind,
                    action: SubscriptionAction::Subscribe,
                    number: PhoneNumber::parse(&r.mobile, Default::default()).ok(),
                    at: t("2026-01-01T00:00:00Z"),
                    source: SubscriptionSource::Myaccount,
                    wording: "Text me alerts about my classes. Reply STOP to opt out.".into(),
                })
                .await
                .expect("stored");
        }
    }
    scheduled
}

fn templates_of(templates: &AlertTemplates) -> Vec<(AlertKind, String)> {
    AlertKind::ALL
        .into_iter()
        .filter(|k| !templates.is_default(*k))
        .map(|k| (k, templates.source(k).to_owned()))
        .collect()
}

fn event(id: &str, kind: AlertKind, received: &str) -> AlertEvent {
    AlertEvent {
        id: EventId::new(id).expect("id"),
        kind,
        section: "WELD-101".into(),
        section_time_zone: None,
        starts_at: None,
        old: None,
        new: None,
        hold_until: None,
        reason: None,
        program_year: None,
        received_at: t(received),
    }
}

/// The contract every alert store keeps.
async fn contract(store: &dyn AlertStore) {
    let scheduled = seed(store).await;
    assert_eq!(scheduled, 6);
    // The host reports an event twice: nothing new.
    let e = event("SC-1", AlertKind::ScheduleChanged, "2026-05-01T15:00:00Z");
    let again = plan_event(
        &AlertEvent {
            old: Some("a".into()),
            new: Some("b".into()),
            ..e.clone()
        },
        &[client("C5", "Ed", "+12125550105")],
        &AlertConfig::default(),
        &AlertTemplates::default(),
    )
    .expect("plans");
    assert_eq!(
        store.record_event(e, again).await.expect("stored"),
        EventInsert {
            new_event: false,
            scheduled: 0,
            duplicates: 1
        }
    );
    assert_eq!(store.events().await.expect("read").len(), 2);
    // Unsubscribing is kept in the history.
    store
        .record_subscription(SubscriptionChange {
            record_id: RecordId::new("C1"),
            kind: AlertKind::EvaluationDue,
            action: SubscriptionAction::Unsubscribe,
            number: None,
            at: t("2026-02-01T00:00:00Z"),
            source: SubscriptionSource::Staff,
            wording: String::new(),
        })
        .await
        .expect("stored");
    let history = store
        .subscription_history(Some(RecordId::new("C1")))
        .await
        .expect("read");
    assert_eq!(
        history.iter().map(|c| c.action).collect::<Vec<_>>(),
        [
            SubscriptionAction::Subscribe,
            SubscriptionAction::Subscribe,
            SubscriptionAction::Unsubscribe
        ]
    );
    assert_eq!(
        history[0].wording,
        "Text me alerts about my classes. Reply STOP to opt out."
    );

    // Claims are all or nothing, and an alert is claimed once.
    let pending = store.pending().await.expect("read");
    assert_eq!(pending.len(), 6);
    let item = |s: &StoredAlert| PreviewItem {
        record_id: s.alert.recipient.record_id.clone(),
        kind: sms_core::RecordKind::Client,
        name: "x".into(),
        mobile: s.alert.recipient.mobile.clone(),
        time_zone: None,
        outcome: sms_core::PreviewOutcome::Eligible {
            number: PhoneNumber::parse(&s.alert.recipient.mobile, Default::default())
                .expect("valid"),
            body: "b".into(),
            encoding: sms_core::Encoding::Gsm7,
            segments: 1,
        },
    };
    let batch = store
        .claim_batch(
            t("2026-05-01T14:10:00Z"),
            vec![
                (pending[0].id, item(&pending[0])),
                (pending[1].id, item(&pending[1])),
            ],
        )
        .await
        .expect("claims");
    let refused = store
        .claim_batch(
            t("2026-05-01T14:10:00Z"),
            vec![
                (pending[2].id, item(&pending[2])),
                (pending[1].id, item(&pending[1])),
            ],
        )
        .await;
    assert!(
        matches!(refused, Err(AlertStoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(
        store.pending().await.expect("read").len(),
        4,
        "nothing of the refused claim"
    );
    assert_eq!(
        store.open_batches().await.expect("read"),
        vec![batch.clone()]
    );
    assert_eq!(
        store
            .recent_sends(t("2026-05-01T00:00:00Z"))
            .await
            .expect("read")
            .len(),
        2,
        "claimed alerts count against the cap"
    );
    let sent = AlertOutcome::Sent {
        number: PhoneNumber::from_e164("+12125550101").expect("valid"),
        provider_id: "SM1".into(),
        campaign_id: batch.campaign_id.clone(),
    };
    // The rules' `finish` leaves a claimed alert to its batch.
    store
        .finish(
            vec![(
                batch.alerts[0],
                AlertOutcome::Never {
                    reason: sms_core::alerts::AlertReason::StaffNeverAlerted,
                },
            )],
            t("2026-05-01T14:11:00Z"),
        )
        .await
        .expect("ignored");
    store
        .settle(
            vec![(batch.alerts[0], sent.clone())],
            t("2026-05-01T14:11:00Z"),
        )
        .await
        .expect("settles");
    // A replay never changes a final outcome.
    store
        .settle(
            vec![(
                batch.alerts[0],
                AlertOutcome::Failed {
                    failure: sms_core::journal::SendFailure {
                        class: "x".into(),
                        code: None,
                        message: "x".into(),
                    },
                },
            )],
            t("2026-05-01T14:12:00Z"),
        )
        .await
        .expect("ignored");
    let all = store.all_alerts().await.expect("read");
    let first = all.iter().find(|a| a.id == batch.alerts[0]).expect("there");
    assert_eq!(
        first.status,
        AlertStatus::Done {
            outcome: sent,
            at: t("2026-05-01T14:11:00Z")
        }
    );
    assert_eq!(
        store.open_batches().await.expect("read").len(),
        1,
        "one still claimed"
    );
    // Every outcome reads back as written (a consent block nests the consent's reason).
    let blocked = AlertOutcome::Never {
        reason: sms_core::alerts::AlertReason::Blocked {
            reason: sms_core::BlockReason::OptedOut {
                number: PhoneNumber::from_e164("+12125550102").expect("valid"),
                since: t("2026-04-01T00:00:00Z"),
            },
        },
    };
    store
        .settle(
            vec![(batch.alerts[1], blocked.clone())],
            t("2026-05-01T14:11:00Z"),
        )
        .await
        .expect("settles");
    let all = store.all_alerts().await.expect("read");
    let second = all.iter().find(|a| a.id == batch.alerts[1]).expect("there");
    assert_eq!(
        second.status,
        AlertStatus::Done {
            outcome: blocked,
            at: t("2026-05-01T14:11:00Z")
        }
    );
    let recent: Vec<RecentSend> = store
        .recent_sends(t("2026-05-01T14:10:01Z"))
        .await
        .expect("read");
    assert!(recent.is_empty(), "claimed at 14:10:00, before the window");
}

fn preview_item(s: &StoredAlert) -> PreviewItem {
    PreviewItem {
        record_id: s.alert.recipient.record_id.clone(),
        kind: sms_core::RecordKind::Client,
        name: "x".into(),
        mobile: s.alert.recipient.mobile.clone(),
        time_zone: None,
        outcome: sms_core::PreviewOutcome::Eligible {
            number: PhoneNumber::parse(&s.alert.recipient.mobile, Default::default())
                .expect("valid"),
            body: "b".into(),
            encoding: sms_core::Encoding::Gsm7,
            segments: 1,
        },
    }
}

#[tokio::test]
async fn the_alert_store_keeps_the_contract_and_survives_reconnecting() {
    let Some((db, store)) = fresh("default").await else {
        return;
    };
    contract(&store).await;
    drop(store);
    let store = open(&db, "default").await;
    assert_eq!(store.events().await.expect("read").len(), 2);
    assert_eq!(store.pending().await.expect("read").len(), 4);
    assert_eq!(store.open_batches().await.expect("read").len(), 0);
    assert_eq!(
        store.templates().await.expect("read"),
        vec![(
            AlertKind::EvaluationDue,
            "{org_name}: {first_name}, the evaluation for {course_title} is open. Reply STOP to opt out."
                .to_owned()
        )]
    );
}

#[tokio::test]
async fn one_organisation_never_reads_or_changes_another_s_alerts() {
    let Some((db, riverside)) = fresh("riverside").await else {
        return;
    };
    let hillcrest = open(&db, "hillcrest").await;
    seed(&riverside).await;
    assert!(hillcrest.events().await.expect("read").is_empty());
    assert!(hillcrest.pending().await.expect("read").is_empty());
    assert!(hillcrest.all_alerts().await.expect("read").is_empty());
    assert!(
        hillcrest
            .subscription_history(None)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(hillcrest.templates().await.expect("read").is_empty());
    // Its ids are not the other's to claim or finish.
    let theirs = riverside.pending().await.expect("read");
    let item = preview_item(&theirs[0]);
    assert!(matches!(
        hillcrest
            .claim_batch(t("2026-05-01T14:10:00Z"), vec![(theirs[0].id, item)])
            .await,
        Err(AlertStoreError::Conflict(_))
    ));
    assert!(matches!(
        hillcrest
            .finish(
                vec![(
                    theirs[0].id,
                    AlertOutcome::Never {
                        reason: sms_core::alerts::AlertReason::StaffNeverAlerted,
                    },
                )],
                t("2026-05-01T14:11:00Z"),
            )
            .await,
        Err(AlertStoreError::Conflict(_))
    ));
    assert_eq!(riverside.pending().await.expect("read").len(), 6);
    // The same event id is new to the other organisation, and batches are numbered per
    // organisation.
    seed(&hillcrest).await;
    assert_eq!(hillcrest.pending().await.expect("read").len(), 6);
    let mine = hillcrest.pending().await.expect("read");
    let batch = hillcrest
        .claim_batch(
            t("2026-05-01T14:10:00Z"),
            vec![(mine[0].id, preview_item(&mine[0]))],
        )
        .await
        .expect("claims");
    assert_eq!(batch.campaign_id.as_str(), "alerts-batch-1");
    assert!(riverside.open_batches().await.expect("read").is_empty());
    assert!(
        riverside
            .recent_sends(t("2026-01-01T00:00:00Z"))
            .await
            .expect("read")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_claiming_the_same_alerts_never_both_get_one() {
    let Some((db, first)) = fresh("default").await else {
        return;
    };
    let second = open(&db, "default").await;
    seed(&first).await;
    let pending = first.pending().await.expect("read");
    let claims: Vec<(u64, PreviewItem)> = pending.iter().map(|s| (s.id, preview_item(s))).collect();
    let mut tasks = Vec::new();
    for store in [first.clone(), second.clone()] {
        let claims = claims.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            // Each server claims the alerts one at a time, both racing through the same list.
            for claim in claims {
                match store
                    .claim_batch(t("2026-05-01T14:10:00Z"), vec![claim])
                    .await
                {
                    Ok(batch) => won.push(batch),
                    Err(AlertStoreError::Conflict(_)) => {}
                    Err(other) => panic!("unexpected {other}"),
                }
            }
            won
        }));
    }
    let mut batches = Vec::new();
    for task in tasks {
        batches.extend(task.await.expect("claimer"));
    }
    let mut claimed: Vec<u64> = batches.iter().flat_map(|b| b.alerts.clone()).collect();
    claimed.sort_unstable();
    let mut all: Vec<u64> = pending.iter().map(|s| s.id).collect();
    all.sort_unstable();
    assert_eq!(claimed, all, "each alert claimed exactly once");
    let mut names: Vec<&str> = batches.iter().map(|b| b.campaign_id.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(
        names.len(),
        batches.len(),
        "every batch has its own campaign"
    );
}
