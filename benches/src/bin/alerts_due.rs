//! `due` at one instant for 100,000 subscribed clients: time and peak memory, one process.
//!
//! `cargo build --release -p sms-benches --bin alerts_due && taskset -c 1 /usr/bin/time -v target/release/alerts_due [COUNT]`
//!
//! 1,000 sections of 100 clients each have a `course_start` event; every client is subscribed,
//! 1 in 50 numbers replied STOP, 1 in 20 clients had alerts lately (the cap is counted), and
//! the clients are spread over four time zones (some in quiet hours at the instant). Two
//! figures: the rules alone ([`evaluate`] over alerts in memory), and what `sms alerts due`
//! does (read everything from the SQLite file, then evaluate).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sms_core::alerts::{
    AlertConfig, AlertEvent, AlertStore, AlertTemplates, DueInputs, EventId, RecentSend,
    SectionFacts, SubscriptionAction, SubscriptionBook, SubscriptionChange, SubscriptionSource,
    evaluate, plan_event,
};
use sms_core::{
    AlertKind, OptOutAction, OptOutChange, OptOutSnapshot, OptOutStore, PermittedMarketingMethods,
    PhoneNumber, Recipient, RecipientKind, RecordId, Region, Timestamp,
};

/// Counts live heap bytes and their peak, so the peak of one phase can be told apart from the
/// set-up around it.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts measuring a phase: returns the live bytes now and resets the peak to them.
fn phase_start() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// The phase's peak heap above what was live when it started, in MB.
fn phase_peak_mb(start: usize) -> f64 {
    PEAK.load(Ordering::Relaxed).saturating_sub(start) as f64 / 1_048_576.0
}

/// CPU time of the process (user + system), in seconds: what one core spent, whatever else
/// the machine runs.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; 100 ticks a second.
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn number(i: usize) -> PhoneNumber {
    // 212-2xx-xxxx and 646-2xx-xxxx: valid New York numbers, distinct per client.
    let area = if i < 800_000 { 212 } else { 646 };
    PhoneNumber::from_e164(&format!("+1{area}2{:06}", i % 800_000)).expect("valid")
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let zones = [
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Los_Angeles",
    ];
    let config = AlertConfig::default();
    let templates = AlertTemplates::default();
    let received = Timestamp::parse("2026-03-01T12:00:00Z").expect("valid");
    // Every section starts Monday 9 March at 14:00 UTC: due Sunday 17:00 local.
    let starts = Timestamp::parse("2026-03-09T14:00:00Z").expect("valid");
    // 22:30 UTC: New York 18:30 (due), Chicago 17:30 (due), Denver 16:30 and Los Angeles 15:30
    // (not yet): a realistic mixture.
    let now = Timestamp::parse("2026-03-08T22:30:00Z").expect("valid");

    let mut events = Vec::new();
    let mut alerts = Vec::with_capacity(count);
    let mut subscriptions = Vec::with_capacity(count);
    let sections = count.div_ceil(100);
    for section in 0..sections {
        let roster: Vec<Recipient> = (section * 100..((section + 1) * 100).min(count))
            .map(|i| Recipient {
                record_id: RecordId::new(format!("C{i:07}")),
                kind: RecipientKind::Client {
                    permitted_marketing_methods: PermittedMarketingMethods::new("Email, Alerts"),
                },
                first_name: "Ana".into(),
                last_name: "Lopez".into(),
                mobile: number(i).to_string(),
                time_zone: Some(zones[i % zones.len()].to_owned()),
                fields: BTreeMap::from([("course_title".to_owned(), format!("Course {section}"))]),
            })
            .collect();
        let event = AlertEvent {
            id: EventId::new(format!("SEC-{section}-start")).expect("id"),
            kind: AlertKind::CourseStart,
            section: format!("SEC-{section}"),
            section_time_zone: None,
            starts_at: Some(starts),
            old: None,
            new: None,
            hold_until: None,
            reason: None,
            program_year: None,
            received_at: received,
        };
        for r in &roster {
            subscriptions.push(SubscriptionChange {
                record_id: r.record_id.clone(),
                kind: AlertKind::CourseStart,
                action: SubscriptionAction::Subscribe,
                number: PhoneNumber::from_e164(&r.mobile).ok(),
                at: received,
                source: SubscriptionSource::Myaccount,
                wording: "I agree to receive text alerts.".into(),
            });
        }
        let planned = plan_event(&event, &roster, &config, &templates).expect("plans");
        alerts.push(planned.clone());
        events.push((event, planned));
    }
    let flat: Vec<_> = alerts.into_iter().flatten().collect();
    let stops: Vec<(PhoneNumber, Timestamp)> = (0..count)
        .step_by(50)
        .map(|i| (number(i), received))
        .collect();
    let recent: Vec<RecentSend> = (0..count)
        .step_by(20)
        .flat_map(|i| {
            (0..3).map(move |k| RecentSend {
                number: number(i),
                event_id: EventId::new(format!("OLD-{k}")).expect("id"),
                at: Timestamp::from_unix_ms(now.unix_ms() - 3_600_000 * (k + 1)),
            })
        })
        .collect();

    // 1. The rules alone.
    let heap = phase_start();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let book = SubscriptionBook::from_history(&subscriptions);
    let opt_outs = OptOutSnapshot::new(stops.iter().copied());
    let facts = SectionFacts::from_events(events.iter().map(|(e, _)| e));
    let inputs = DueInputs {
        config: &config,
        templates: &templates,
        subscriptions: &book,
        opt_outs: &opt_outs,
        recent: &recent,
        sections: &facts,
        region: Region::default(),
    };
    let decided = evaluate(&flat, &inputs, now);
    let rules = started.elapsed();
    let mut by_label: BTreeMap<String, usize> = BTreeMap::new();
    for e in &decided {
        let key = e.decision.reason().map_or("send", |r| r.code()).to_owned();
        *by_label.entry(key).or_default() += 1;
    }
    println!(
        "rules: evaluate {} alerts at one instant: {:.3} s wall, {:.2} s CPU, peak heap {:.0} MB ({:?})",
        decided.len(),
        rules.as_secs_f64(),
        cpu_seconds() - cpu,
        phase_peak_mb(heap),
        by_label
    );
    drop(decided);

    // What decoding the alerts' JSON rows alone cost when schema 4 stored each alert so (schema
    // 5 reads columns): for comparison.
    let rows: Vec<String> = flat
        .iter()
        .map(|a| serde_json::to_string(a).expect("serialises"))
        .collect();
    let cpu = cpu_seconds();
    let decoded: Vec<sms_core::alerts::ScheduledAlert> = rows
        .iter()
        .map(|r| serde_json::from_str(r).expect("parses"))
        .collect();
    println!(
        "decoding {} alert rows of JSON ({} bytes on average, as schema 4 stored them) alone: {:.2} s CPU",
        decoded.len(),
        rows.iter().map(String::len).sum::<usize>() / rows.len().max(1),
        cpu_seconds() - cpu
    );
    drop((rows, decoded));

    // 2. What `sms alerts due` does: read everything from SQLite, then evaluate.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sms_sqlite::SqliteStore::open(dir.path().join("sms.db")).expect("opens");
    runtime.block_on(async {
        for (event, planned) in events {
            store.record_event(event, planned).await.expect("stored");
        }
        for change in subscriptions {
            store.record_subscription(change).await.expect("stored");
        }
        for (n, at) in &stops {
            store
                .record(OptOutChange {
                    number: *n,
                    action: OptOutAction::Stop,
                    at: *at,
                    source: sms_core::ChangeSource::Inbound,
                    message_sid: None,
                    body: None,
                })
                .await
                .expect("stored");
        }
    });
    let heap = phase_start();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let decided = runtime.block_on(async {
        let lap = Instant::now();
        let pending = store.pending().await.expect("read");
        eprintln!("  pending: {:.3} s", lap.elapsed().as_secs_f64());
        let lap = Instant::now();
        let scheduled: Vec<_> = pending.into_iter().map(|s| s.alert).collect();
        let templates = AlertTemplates::new(store.templates().await.expect("read"));
        let book =
            SubscriptionBook::from_history(&store.subscription_history(None).await.expect("read"));
        let opt_outs = store.snapshot().await.expect("read");
        let recent = store
            .recent_sends(Timestamp::from_unix_ms(now.unix_ms() - 24 * 3_600_000))
            .await
            .expect("read");
        let events = store.events().await.expect("read");
        let facts = SectionFacts::from_events(&events);
        eprintln!(
            "  the rest of the reads: {:.3} s",
            lap.elapsed().as_secs_f64()
        );
        let lap = Instant::now();
        let _ = &lap;
        let inputs = DueInputs {
            config: &config,
            templates: &templates,
            subscriptions: &book,
            opt_outs: &opt_outs,
            recent: &recent,
            sections: &facts,
            region: Region::default(),
        };
        let n = evaluate(&scheduled, &inputs, now).len();
        eprintln!("  evaluate: {:.3} s", lap.elapsed().as_secs_f64());
        n
    });
    let total = started.elapsed();
    println!(
        "due from SQLite (read alerts, sign-ups, opt-outs, events; evaluate) for {decided} alerts: {:.3} s wall, {:.2} s CPU, peak heap {:.0} MB",
        total.as_secs_f64(),
        cpu_seconds() - cpu,
        phase_peak_mb(heap),
    );
    match peak_rss_mb() {
        Some(mb) => println!("peak resident memory (whole process, both parts): {mb:.0} MB"),
        None => println!("peak resident memory: unavailable (no /proc/self/status)"),
    }
}
