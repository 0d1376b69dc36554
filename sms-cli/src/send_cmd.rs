//! `sms send` and `sms resume`: the main job. Preview, confirm, freeze the campaign in the
//! store, dispatch with a progress bar, print the report. On a shared store (PostgreSQL) the
//! dispatch is one worker of a fleet: any number of `sms resume` on other servers may join it.

use std::io::{BufRead, IsTerminal, Write};

use std::process::ExitCode;
use std::sync::Arc;

use std::time::Duration;

use sms_core::dispatch::{
    DispatchOptions, DispatchWarning, Dispatcher, FleetOptions, Progress, ProgressSnapshot,
};
use sms_core::journal::{
    Campaign, CampaignId, CampaignReport, CampaignSettings, RateLimit, WorkerId,
};
use sms_core::{CancellationToken, OptOutStore, Provider, Timestamp};

use crate::edges::{DbArgs, ProgressView, SendingArgs};
use crate::preview_cmd::{PlanArgs, render_table};
use crate::report_cmd::render_report;
use crate::store::Store;

/// Arguments of `sms send`.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub sending: SendingArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// The campaign's id (letters, digits, `-`, `_`); generated and printed when absent.
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// Send without asking for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Send identical texts once per number (logged against every record carrying it) instead
    /// of once per record.
    #[arg(long)]
    pub once_per_number: bool,
    /// Refuse to start when the campaign needs more message units than this.
    #[arg(long, value_name = "UNITS")]
    pub budget_units: Option<u64>,
    /// Provider calls in flight at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
}

/// Arguments of `sms resume`.
#[derive(clap::Args, Debug)]
pub struct ResumeArgs {
    /// The campaign to resume.
    pub campaign: String,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub sending: SendingArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
    /// Provider calls in flight at once (default: as the campaign was started).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: Option<u32>,
    /// Resume a campaign created at most this many hours ago. A resume re-checks STOPs only,
    /// not the program year or permissions the preview decided: an older campaign is refused
    /// unless this is raised (preview it again instead, when in doubt).
    #[arg(long, value_name = "HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=8_760))]
    pub max_age_hours: u64,
}

/// The shortest lease when the texts reach people: longer than the longest Twilio call (a
/// 5 s connect and a 30 s answer), so a live worker never loses a number in the middle of one.
pub const MIN_LEASE_S: u64 = 40;

/// How a worker shares a campaign with the others on a shared store (PostgreSQL); ignored on
/// SQLite, where one run at a time holds the file.
#[derive(clap::Args, Debug, Clone)]
pub struct FleetArgs {
    /// PostgreSQL: seconds a worker's hold on a number lives unless renewed (every third of it
    /// while the worker runs). A worker that dies leaves its numbers to the others after this.
    /// At least 40 (longer than any Twilio call), except with a stand-in on this machine.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub lease_seconds: u64,
    /// PostgreSQL: how many numbers a worker takes at a time (each number's records are sent
    /// by one worker at a time).
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_numbers: u32,
}

impl FleetArgs {
    /// The fleet options these flags ask for; a number in doubt waits as long as a silence
    /// must last to prove a send failed (`--reconcile-wait`) before another worker looks.
    pub fn options(
        &self,
        sending: &SendingArgs,
        dispatch: &DispatchOptions,
    ) -> Result<FleetOptions, String> {
        if self.lease_seconds < MIN_LEASE_S && sending.reaches_people() {
            return Err(format!(
                "--lease-seconds {}: give at least {MIN_LEASE_S}. A worker must keep its numbers \
                 through the longest provider call, or another worker could take one over \
                 while its text is in flight (shorter leases are allowed only with the simulator \
                 or --twilio-base-url on this machine)",
                self.lease_seconds
            ));
        }
        let lease = Duration::from_secs(self.lease_seconds);
        Ok(FleetOptions {
            batch_numbers: self.batch_numbers,
            lease,
            poll: (lease / 3).clamp(Duration::from_millis(200), Duration::from_secs(2)),
            hold_in_doubt: Duration::from_millis(dispatch.reconcile_settle_ms),
        })
    }
}

/// Runs `sms send`.
pub async fn send(args: SendArgs) -> Result<ExitCode, String> {
    // Flags are checked before anything is shown or stored.
    let options = args.sending.options()?;
    let fleet = args.fleet.options(&args.sending, &options)?;
    let store = args.db.open().await?;
    let snapshot = store
        .snapshot()
        .await
        .map_err(|e| format!("cannot read opt-outs: {e}"))?;
    let (preview, malformed, settings) = args.plan.preview(&snapshot)?;
    let now = Timestamp::now();
    print!("{}", render_table(&preview, &malformed, &settings, now));
    println!(
        "  opt-outs         {} number(s) in {}",
        snapshot.len(),
        args.db.describe()
    );

    let id = match &args.campaign {
        Some(name) => CampaignId::new(name)
            .ok_or_else(|| format!("--campaign {name:?}: use letters, digits, '-' and '_' only"))?,
        None => CampaignId::generate(now),
    };
    let texts = preview.totals.texts;
    let provider = args.sending.provider()?;
    let campaign_settings = CampaignSettings {
        provider: Some(provider.name().to_owned()),
        provider_identity: Some(provider.identity()),
        rate: args.sending.rate()?.unwrap_or_default(),
        concurrency: args.concurrency,
        once_per_number: args.once_per_number,
        budget_units: args.budget_units,
        price_per_segment: Some(settings.price_per_segment.clone()),
        // Campaign::from_preview takes the preview's.
        quiet_hours: None,
    };
    let dispatcher =
        Dispatcher::new(provider, store.clone(), store.clone()).with_options(options.clone());
    let name = format!("{} ({})", args.plan.body, args.plan.recipients.display());
    let campaign = Campaign::from_preview(id.clone(), name, preview, campaign_settings, now);

    if texts == 0 {
        println!("\nNothing to send: no record may be texted.");
        return Ok(ExitCode::SUCCESS);
    }
    let (estimate, warnings) = sms_core::dispatch::estimate_campaign(&campaign, &options);
    let duration = estimate
        .duration_seconds
        .map(|s| format!(", about {}", human_duration(s)))
        .unwrap_or_default();
    println!(
        "\nTo send{}: {} text(s) to {} record(s), {} message unit(s){}{duration}",
        if estimate.held.is_some() { " now" } else { "" },
        estimate.texts,
        estimate.records,
        estimate.units,
        estimate
            .cost
            .as_ref()
            .map(|c| format!(", about {c}"))
            .unwrap_or_default()
    );
    if let Some(held) = &estimate.held {
        println!(
            "Held by quiet hours: {} record(s), {}; they go when the hours open",
            held.records,
            held.until_text()
        );
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let held = estimate.held.as_ref().map_or(0, |h| h.records);
    if !args.yes && !confirm(estimate.texts, held, &campaign.settings.rate)? {
        println!("Not sent.");
        return Ok(ExitCode::from(1));
    }
    dispatcher
        .create(campaign)
        .await
        .map_err(|e| format!("cannot store the campaign: {e}"))?;
    println!(
        "\ncampaign {id} (resume with: sms resume {id} {})",
        args.db.flags()
    );
    if store.is_shared() {
        println!(
            "other servers may send it with this one: sms resume {id} {}",
            args.db.flags()
        );
    }
    run(dispatcher, &store, id, &args.db, fleet).await
}

/// Runs `sms resume`.
pub async fn resume(args: ResumeArgs) -> Result<ExitCode, String> {
    let id = CampaignId::new(&args.campaign)
        .ok_or_else(|| format!("{:?} is not a campaign id", args.campaign))?;
    let store = args.db.open_existing().await?;
    let options = DispatchOptions {
        concurrency: args.concurrency,
        max_campaign_age_ms: Some(args.max_age_hours.saturating_mul(3_600_000)),
        ..args.sending.options()?
    };
    let fleet = args.fleet.options(&args.sending, &options)?;
    let dispatcher = Dispatcher::new(args.sending.provider()?, store.clone(), store.clone())
        .with_options(options);
    run(dispatcher, &store, id, &args.db, fleet).await
}

/// A fleet worker's view: the warnings, and a line now and then on the numbers it holds (a
/// bar would measure one batch, not the campaign the others send too).
struct FleetView {
    worker: WorkerId,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Progress for FleetView {
    fn on_progress(&self, s: ProgressSnapshot) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            eprintln!(
                "progress: worker {}: {} sent, {} remaining of the records it holds, {:.1}/s",
                self.worker, s.sent, s.remaining, s.rate_per_second
            );
            *last = Some(std::time::Instant::now());
        }
    }

    fn on_warning(&self, warning: DispatchWarning) {
        eprintln!("warning: {warning}");
    }
}

async fn run(
    dispatcher: Dispatcher<dyn Provider, Store, Store>,
    store: &Store,
    id: CampaignId,
    db: &DbArgs,
    fleet: FleetOptions,
) -> Result<ExitCode, String> {
    let (estimate, warnings) = dispatcher.estimate(id.clone()).await.map_err(|e| match e {
        sms_core::DispatchError::TooOld { age_hours, .. } => {
            format!("{e} (--max-age-hours {})", age_hours + 1)
        }
        other => other.to_string(),
    })?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let view = Arc::new(ProgressView::new(estimate.records));
    let worker = store.is_shared().then(sms_store::worker_id);
    let dispatcher = match &worker {
        None => dispatcher.with_progress(view.clone()),
        Some(worker) => {
            view.finish();
            println!("sending as fleet worker {worker}");
            dispatcher.with_progress(Arc::new(FleetView {
                worker: worker.clone(),
                last: std::sync::Mutex::new(None),
            }))
        }
    };
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping after the texts in flight (resume later to finish)...");
            on_ctrl_c.cancel();
        }
    });
    let result = match worker {
        None => dispatcher.run(id.clone(), cancel).await,
        Some(worker) => {
            dispatcher
                .run_fleet(id.clone(), worker, fleet, cancel)
                .await
        }
    };
    view.finish();
    let summary = result.map_err(|e| e.to_string())?;
    print!("{}", render_report(&summary.report));
    if summary.cancelled {
        println!("Stopped before the end: sms resume {id} {}", db.flags());
    }
    print!("{}", held_lines(&summary.report, &db.flags()));
    Ok(exit_status(&summary.report, summary.cancelled))
}

/// Exit status 4: every record is final except some held by quiet hours (nothing in doubt,
/// nothing left by a stop); they go when the hours open.
pub const EXIT_HELD: u8 = 4;

/// The exit status of a run (or a report): 0 when every record is final, 4 when only records
/// held by quiet hours are left, 3 otherwise (stopped, or an outcome in doubt).
pub fn exit_status(report: &CampaignReport, cancelled: bool) -> ExitCode {
    if report.is_complete() {
        ExitCode::SUCCESS
    } else if !cancelled && report.only_held_left() {
        ExitCode::from(EXIT_HELD)
    } else {
        ExitCode::from(3)
    }
}

/// What staff need to know about records held by quiet hours: how many, until when, and how
/// they will go. Empty when none is held.
pub fn held_lines(report: &CampaignReport, db_flags: &str) -> String {
    let Some(held) = &report.held else {
        return String::new();
    };
    let id = &report.campaign_id;
    let mut out = format!(
        "\nHeld by quiet hours: {} record(s), {}.\n",
        held.records,
        held.until_text()
    );
    let last = if held.latest.at == held.earliest.at {
        String::new()
    } else {
        format!(" (the last after {})", held.latest.local)
    };
    out.push_str(&format!(
        "They go with `sms resume {id} {db_flags}` after {}{last}, or a running `sms serve` sends \
         them.\n",
        held.earliest.local
    ));
    // A resume refuses a campaign older than --max-age-hours (24 by default).
    let age_hours = (held.latest.at.unix_ms() - report.created_at.unix_ms()) / 3_600_000 + 1;
    if age_hours > 24 {
        out.push_str(&format!(
            "The last opening is {age_hours} h after the campaign was created: resume it with \
             --max-age-hours {age_hours}.\n"
        ));
    }
    out
}

fn human_duration(seconds: f64) -> String {
    let seconds = seconds.ceil() as u64;
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

fn confirm(texts: u64, held: u64, rate: &RateLimit) -> Result<bool, String> {
    if !std::io::stdin().is_terminal() {
        return Err(
            "refusing to send without confirmation: pass --yes to send without asking".to_owned(),
        );
    }
    let pace = match rate {
        RateLimit::Unlimited => "as fast as the provider allows".to_owned(),
        RateLimit::MessagesPerSecond { per_second } => format!("{per_second} text(s) per second"),
        RateLimit::SegmentsPerSecond { per_second } => {
            format!("{per_second} segment(s) per second")
        }
    };
    let held = if held > 0 {
        format!(" now (and hold {held} for quiet hours)")
    } else {
        String::new()
    };
    print!("\nSend {texts} text(s){held}, {pace}? [y/N] ");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
