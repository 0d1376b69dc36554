//! The alert store on a real server, where only a server can show it: two servers claiming the
//! same alerts at once. The contract itself (and organisations kept apart) is the conformance
//! suite's, run on every store: `cargo test -p sms-tests --test conformance`.

use std::collections::BTreeMap;

use sms_core::alerts::{
    AlertConfig, AlertEvent, AlertStore, AlertStoreError, AlertTemplates, EventId, StoredAlert,
    SubscriptionAction, SubscriptionChange, SubscriptionSource, plan_event,
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
