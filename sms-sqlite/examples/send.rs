//! A campaign from start to finish, as a host program runs it: preview, freeze, send with a
//! progress callback, stop on Ctrl-C, print the report, resume.
//!
//! Run it with `cargo run -p sms-sqlite --example send` and press Ctrl-C while it sends, or
//! pass `--stop-after N` to stop by itself after N texts (what CI does, standing in for a
//! person pressing Ctrl-C or a Stop button).
//!
//! The provider is the simulator (no network, no account); a real host passes
//! `sms_twilio::TwilioProvider` instead, and nothing else changes. The store is a SQLite file
//! in a temporary folder: opt-outs and the journal that makes a resume, even after a crash,
//! text nobody twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sms_core::dispatch::{DispatchOptions, DispatchWarning, Dispatcher, Progress};
use sms_core::journal::{Campaign, CampaignId, CampaignReport, CampaignSettings, RateLimit};
use sms_core::preview::preview;
use sms_core::{
    CancellationToken, Money, OptOutStore, PermittedMarketingMethods, ProgramYear, ProgramYears,
    ProgressSnapshot, Purpose, Recipient, RecipientKind, RecordId, RecordState, Region,
    SimulatedProvider, Template, Timestamp,
};
use sms_sqlite::SqliteStore;

/// The host's progress callback: the dispatcher calls it from its task, so it only prints
/// (a GUI would hand the snapshot to its UI thread). It can also stop the run, which is how a
/// Stop button works: cancel the token the run was given.
struct PrintProgress {
    stop_after: Option<u64>,
    cancel: CancellationToken,
    last_sent: AtomicU64,
}

impl Progress for PrintProgress {
    fn on_progress(&self, p: ProgressSnapshot) {
        // Snapshots come at most every `progress_every_ms`; print only when texts went out.
        if self.last_sent.swap(p.sent, Ordering::Relaxed) != p.sent || p.remaining == 0 {
            eprintln!(
                "  progress: {} sent, {} failed, {} skipped, {} to go",
                p.sent, p.failed, p.blocked, p.remaining
            );
        }
        if self.stop_after.is_some_and(|n| p.sent >= n) {
            self.cancel.cancel();
        }
    }

    fn on_warning(&self, warning: DispatchWarning) {
        eprintln!("  warning: {warning}");
    }
}

/// The host's records, as its own query returns them (see the `preview` example of sms-core
/// for mapping real rows). One number is Twilio's magic invalid number, so the report shows a
/// failure; one client has not allowed texts.
fn recipients() -> Vec<Recipient> {
    let names = [
        ("Ada", "+12125550101"),
        ("Ben", "+12125550102"),
        ("Cleo", "+12125550103"),
        ("Dev", "+15005550001"), // the simulator refuses it: 21211, invalid number
        ("Eli", "+12125550105"),
        ("Fay", "+12125550106"),
        ("Gus", "+12125550107"),
        ("Hana", "+12125550108"),
    ];
    names
        .iter()
        .enumerate()
        .map(|(i, (first, mobile))| Recipient {
            record_id: RecordId::new(format!("C-{}", 1001 + i)),
            kind: RecipientKind::Client {
                permitted_marketing_methods: PermittedMarketingMethods::new(if *first == "Ben" {
                    "Email"
                } else {
                    "Email, Text"
                }),
            },
            first_name: (*first).to_owned(),
            last_name: "Example".to_owned(),
            mobile: (*mobile).to_owned(),
            time_zone: None,
            fields: BTreeMap::new(),
        })
        .collect()
}

/// The report as the office reads it: one line per record, then the counts.
fn print_report(report: &CampaignReport) {
    println!("Report of campaign {}", report.campaign_id);
    for r in &report.records {
        let detail = match &r.state {
            RecordState::Accepted { segments, .. } => format!("{segments} unit(s)"),
            RecordState::Failed { failure, .. } => format!(
                "{} {}",
                failure.class,
                failure.code.map(|c| c.to_string()).unwrap_or_default()
            ),
            RecordState::Blocked { reason } => reason.to_string(),
            _ => String::new(),
        };
        let line = format!(
            "  #{:<2} {:<7} {:<13} {:<9} {detail}",
            r.seq,
            r.record_id.as_str(),
            r.name,
            r.status_label()
        );
        println!("{}", line.trim_end());
    }
    let t = &report.totals;
    println!(
        "  sent {}, failed {}, not sent {}, still to send {}; {} message unit(s) used",
        t.accepted,
        t.failed,
        t.blocked,
        t.planned + t.deferred + t.sending,
        t.units_used
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stop_after = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => None,
        [flag, n] if flag == "--stop-after" => Some(n.parse::<u64>()?),
        _ => return Err("usage: send [--stop-after N]".into()),
    };

    // The host's database file; here in a temporary folder removed at the end.
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(dir.path().join("sms.db"))?);
    let provider = Arc::new(SimulatedProvider::new());

    // 1. Preview against the opt-outs on file, and freeze it as a campaign: what is sent is
    //    exactly what staff saw, even if the records change afterwards.
    let template =
        Template::parse("Hi {first_name}, the pool is closed Saturday. Reply STOP to opt out.")?;
    let settings = sms_core::PreviewSettings {
        region: Region::parse("US").ok_or("unknown region")?,
        smart_encoding: false,
        price_per_segment: Money::parse("0.0083", "USD").ok_or("bad price")?,
        program_years: ProgramYears::current(ProgramYear::new("2026").ok_or("blank year")?),
        purpose: Purpose::Manual,
        // Quiet hours off so the demo sends at any hour. A real host keeps them on:
        // `Some(sms_core::quiet::QuietRule::default())` holds texts outside 08:00-21:00 local
        // until morning (journaled `held`; a resume or `sms serve` sends them then).
        quiet_hours: None,
    };
    let preview = preview(recipients(), &template, &store.snapshot().await?, &settings)?;
    println!(
        "Preview: {} record(s), {} to text, {} skipped, {} unit(s), about {}",
        preview.totals.records,
        preview.totals.texts,
        preview.totals.blocked,
        preview.totals.message_units,
        preview.totals.estimated_cost
    );
    let id = CampaignId::new("pool-closed").ok_or("bad campaign id")?;
    let campaign = Campaign::from_preview(
        id.clone(),
        "Pool closed Saturday",
        preview,
        CampaignSettings {
            // A US long code sends about 1 text a second; 5 here keeps the demo short while
            // leaving time to press Ctrl-C.
            rate: RateLimit::MessagesPerSecond { per_second: 5.0 },
            concurrency: 1,
            provider: Some(sms_core::Provider::name(&*provider).to_owned()),
            provider_identity: Some(sms_core::Provider::identity(&*provider)),
            ..CampaignSettings::default()
        },
        Timestamp::now(),
    );

    // 2. Send. The same store is the opt-out store (a STOP arriving mid-send wins) and the
    //    journal (every send is written before and after the provider call).
    let options = DispatchOptions {
        progress_every_ms: 0, // every change, for the demo
        ..DispatchOptions::default()
    };
    let cancel = CancellationToken::new();
    let progress = Arc::new(PrintProgress {
        stop_after,
        cancel: cancel.clone(),
        last_sent: AtomicU64::new(0),
    });
    let dispatcher = Dispatcher::new(provider.clone(), store.clone(), store.clone())
        .with_options(options.clone())
        .with_progress(progress);
    dispatcher.create(campaign).await?;

    // Ctrl-C cancels the run: the texts in flight finish and are journaled, nothing is cut in
    // half, and the campaign can be resumed.
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after the texts in flight...");
            on_ctrl_c.cancel();
        }
    });
    println!("Sending campaign {id} (Ctrl-C stops it)");
    let summary = dispatcher.run(id.clone(), cancel).await?;
    print_report(&summary.report);

    // 3. Resume: what a host does after a stop, a crash or a restart. Everything it needs is
    //    in the journal; records already sent are never sent again. A new process would open
    //    the same file and build a new dispatcher, as here.
    if summary.cancelled {
        println!("Stopped before the end; resuming");
        let dispatcher =
            Dispatcher::new(provider.clone(), store.clone(), store.clone()).with_options(options);
        let summary = dispatcher.run(id, CancellationToken::new()).await?;
        print_report(&summary.report);
    }

    // The simulator remembers what it accepted: each eligible record exactly once.
    println!("Texts the provider accepted: {}", provider.sent().len());
    Ok(())
}
