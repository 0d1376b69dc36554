//! `sms send` and `sms resume`: the main job. Preview, confirm, freeze the campaign in the
//! SQLite file, dispatch with a progress bar, print the report.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use sms_core::dispatch::{DispatchOptions, Dispatcher};
use sms_core::journal::{Campaign, CampaignId, CampaignSettings, RateLimit};
use sms_core::{CancellationToken, OptOutStore, Timestamp};

use crate::edges::{DbArgs, ProgressView, SendingArgs};
use crate::preview_cmd::{PlanArgs, render_table};
use crate::report_cmd::render_report;

/// Arguments of `sms send`.
#[derive(clap::Args, Debug)]
pub struct SendArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub sending: SendingArgs,
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
    /// Provider calls in flight at once (default: as the campaign was started).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: Option<u32>,
    /// Resume a campaign created at most this many hours ago. A resume re-checks STOPs only,
    /// not the program year or permissions the preview decided: an older campaign is refused
    /// unless this is raised (preview it again instead, when in doubt).
    #[arg(long, value_name = "HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=8_760))]
    pub max_age_hours: u64,
}

/// Runs `sms send`.
pub async fn send(args: SendArgs) -> Result<ExitCode, String> {
    // Flags are checked before anything is shown or stored.
    let options = args.sending.options()?;
    let store = args.db.open()?;
    let snapshot = store
        .snapshot()
        .await
        .map_err(|e| format!("cannot read opt-outs: {e}"))?;
    let (preview, malformed, settings) = args.plan.preview(&snapshot)?;
    print!("{}", render_table(&preview, &malformed, &settings));
    println!(
        "  opt-outs         {} number(s) in {}",
        snapshot.len(),
        args.db.describe()
    );

    let id = match &args.campaign {
        Some(name) => CampaignId::new(name)
            .ok_or_else(|| format!("--campaign {name:?}: use letters, digits, '-' and '_' only"))?,
        None => CampaignId::generate(Timestamp::now()),
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
    };
    let dispatcher =
        Dispatcher::new(provider, store.clone(), store.clone()).with_options(options.clone());
    let name = format!("{} ({})", args.plan.body, args.plan.recipients.display());
    let campaign = Campaign::from_preview(
        id.clone(),
        name,
        preview,
        campaign_settings,
        Timestamp::now(),
    );

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
        "\nTo send: {} text(s) to {} record(s), {} message unit(s){}{duration}",
        estimate.texts,
        estimate.records,
        estimate.units,
        estimate
            .cost
            .as_ref()
            .map(|c| format!(", about {c}"))
            .unwrap_or_default()
    );
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if !args.yes && !confirm(texts, &campaign.settings.rate)? {
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
    run(dispatcher, id, args.db.org.flag()).await
}

/// Runs `sms resume`.
pub async fn resume(args: ResumeArgs) -> Result<ExitCode, String> {
    let id = CampaignId::new(&args.campaign)
        .ok_or_else(|| format!("{:?} is not a campaign id", args.campaign))?;
    let store = args.db.open_existing()?;
    let options = DispatchOptions {
        concurrency: args.concurrency,
        max_campaign_age_ms: Some(args.max_age_hours.saturating_mul(3_600_000)),
        ..args.sending.options()?
    };
    let dispatcher =
        Dispatcher::new(args.sending.provider()?, store.clone(), store).with_options(options);
    run(dispatcher, id, args.db.org.flag()).await
}

async fn run(
    dispatcher: Dispatcher<
        dyn sms_core::Provider,
        sms_sqlite::SqliteStore,
        sms_sqlite::SqliteStore,
    >,
    id: CampaignId,
    org_flag: String,
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
    let dispatcher = dispatcher.with_progress(view.clone());
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping after the texts in flight (resume later to finish)...");
            on_ctrl_c.cancel();
        }
    });
    let result = dispatcher.run(id.clone(), cancel).await;
    view.finish();
    let summary = result.map_err(|e| e.to_string())?;
    print!("{}", render_report(&summary.report));
    if summary.cancelled {
        println!("Stopped before the end: sms resume {id}{org_flag}");
    }
    Ok(if summary.report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn human_duration(seconds: f64) -> String {
    let seconds = seconds.ceil() as u64;
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

fn confirm(texts: u64, rate: &RateLimit) -> Result<bool, String> {
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
    print!("\nSend {texts} text(s), {pace}? [y/N] ");
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
