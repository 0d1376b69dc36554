//! `sms report`: what happened to each record of a campaign.

use std::fmt::Write as _;
use std::process::ExitCode;

use std::sync::Arc;

use sms_core::dispatch::{Dispatcher, Resolution};
use sms_core::journal::{CampaignId, CampaignReport, RecordState, load_report};
use sms_core::{SimulatedProvider, Timestamp};

use crate::edges::DbArgs;

/// Arguments of `sms report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The campaign.
    pub campaign: String,
    #[command(flatten)]
    pub db: DbArgs,
    /// Write JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `sms report`.
pub async fn run(args: ReportArgs) -> Result<ExitCode, String> {
    let id = CampaignId::new(&args.campaign)
        .ok_or_else(|| format!("{:?} is not a campaign id", args.campaign))?;
    let store = args.db.open_existing().await?;
    let report = load_report(&*store, id).await.map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render_report(&report));
        print!("{}", crate::send_cmd::held_lines(&report, &args.db.flags()));
    }
    Ok(crate::send_cmd::exit_status(&report, false))
}

fn outcome(state: &RecordState) -> String {
    match state {
        RecordState::Planned => "not sent yet".to_owned(),
        RecordState::Blocked { reason } => format!("skipped: {reason}"),
        RecordState::Sending { .. } => "sending (interrupted; resume reconciles it)".to_owned(),
        RecordState::Accepted {
            provider_id,
            segments,
            ..
        } => format!("sent {provider_id}, {segments} unit(s)"),
        RecordState::Failed { failure, .. } => format!(
            "failed ({}{}): {}",
            failure.class,
            failure.code.map(|c| format!(" {c}")).unwrap_or_default(),
            failure.message
        ),
        RecordState::Deferred { failure, .. } => {
            format!("deferred, resume retries it: {}", failure.message)
        }
        RecordState::Unknown { message, .. } => {
            format!("UNKNOWN, a person must check: {message}")
        }
        RecordState::Held {
            until, time_zone, ..
        } => format!(
            "held by quiet hours until {} ({until})",
            sms_core::quiet::zone(time_zone)
                .map(|tz| sms_core::quiet::format_local(*until, &tz, "%Y-%m-%d %H:%M %Z"))
                .unwrap_or_else(|| time_zone.clone())
        ),
    }
}

/// The report as a person reads it.
pub fn render_report(report: &CampaignReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\nReport of campaign {}", report.campaign_id);
    // `#` is the record's position (`seq` in --json): unique even when record ids repeat, and
    // what `sms resolve --record` takes.
    let _ = writeln!(
        out,
        "  {:>4} {:<8} {:<6} {:<18} {:<11} outcome",
        "#", "record", "kind", "name", "status"
    );
    for record in &report.records {
        let delivery = record
            .delivery
            .as_ref()
            .map(|d| {
                let code = d.error_code.map(|c| format!(" {c}")).unwrap_or_default();
                format!(" [{:?}{code}]", d.status).to_lowercase()
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:>4} {:<8} {:<6} {:<18} {:<11} {}{delivery}",
            format!("#{}", record.seq),
            record.record_id.as_str(),
            record.kind.label(),
            record.name,
            record.status_label(),
            outcome(&record.state)
        );
    }
    let t = &report.totals;
    let _ = writeln!(out, "\nTotals");
    let _ = writeln!(out, "  records      {}", t.records);
    let _ = writeln!(
        out,
        "  sent         {}   ({} text(s), {} message unit(s))",
        t.accepted, t.texts_sent, t.units_used
    );
    let _ = writeln!(out, "  skipped      {}", t.blocked);
    let _ = writeln!(out, "  failed       {}", t.failed);
    if let Some(held) = &report.held {
        let _ = writeln!(
            out,
            "  held         {}   (quiet hours: {})",
            t.held,
            held.until_text()
        );
    }
    if t.planned + t.sending + t.deferred + t.unknown > 0 {
        let _ = writeln!(
            out,
            "  not final    {}   (planned {}, sending {}, deferred {}, unknown {})",
            t.planned + t.sending + t.deferred + t.unknown,
            t.planned,
            t.sending,
            t.deferred,
            t.unknown
        );
    }
    if t.delivered + t.undelivered > 0 {
        let _ = writeln!(
            out,
            "  delivered    {}   undelivered {}",
            t.delivered, t.undelivered
        );
    }
    out
}

/// Arguments of `sms resolve`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("verdict").required(true).args(["sent", "not_sent"])))]
pub struct ResolveArgs {
    /// The campaign.
    pub campaign: String,
    /// The record whose outcome is unknown: its record id, or its position as `#N` (the `#`
    /// column of `sms report`, `seq` in its JSON) when several records share the id.
    #[arg(required_unless_present = "record", conflicts_with = "record")]
    pub record_id: Option<String>,
    /// The record by its position (the `#` column of `sms report`, `seq` in its JSON).
    #[arg(long, value_name = "N")]
    pub record: Option<u32>,
    /// The text went out (checked in the provider's console): log it as sent.
    #[arg(long)]
    pub sent: bool,
    /// The provider's message id, with --sent (from the provider's console): it keeps that
    /// message from being taken as proof for another record on the same number.
    #[arg(
        long,
        value_name = "SID",
        requires = "sent",
        required_if_eq("sent", "true")
    )]
    pub provider_id: Option<String>,
    /// The text did not go out: the next `sms resume` sends it.
    #[arg(long)]
    pub not_sent: bool,
    #[command(flatten)]
    pub db: DbArgs,
}

/// The unknown record `args` name: by position (`--record N`, or `#N` when no record has that
/// id), or by record id when exactly one unknown record carries it.
fn find_record<'r>(
    report: &'r CampaignReport,
    args: &ResolveArgs,
) -> Result<&'r sms_core::journal::RecordReport, String> {
    let id = &report.campaign_id;
    let is_unknown =
        |r: &&sms_core::journal::RecordReport| matches!(r.state, RecordState::Unknown { .. });
    let by_id = args.record_id.as_deref().map(str::trim);
    let position = args.record.or_else(|| {
        let text = by_id?;
        let seq = text.strip_prefix('#')?.parse().ok()?;
        // A record whose id really is "#17" keeps its id.
        (!report.records.iter().any(|r| r.record_id.as_str() == text)).then_some(seq)
    });
    if let Some(seq) = position {
        let record = report
            .records
            .iter()
            .find(|r| r.seq == seq)
            .ok_or_else(|| format!("campaign {id} has no record #{seq}"))?;
        if !is_unknown(&record) {
            return Err(format!(
                "record #{seq} ({}) of campaign {id} is {}, not unknown: only a record whose \
                 outcome is unknown can be resolved",
                record.record_id,
                record.state.code()
            ));
        }
        return Ok(record);
    }
    let wanted = by_id.unwrap_or_default();
    let unknown: Vec<_> = report
        .records
        .iter()
        .filter(|r| r.record_id.as_str() == wanted)
        .filter(is_unknown)
        .collect();
    match unknown.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!(
            "campaign {id} has no record {wanted:?} whose outcome is unknown"
        )),
        several => {
            let positions: Vec<String> = several.iter().map(|r| format!("#{}", r.seq)).collect();
            Err(format!(
                "campaign {id} has {} unknown records with id {wanted:?}, at positions {}: \
                 name one with --record N (the # column of `sms report`)",
                several.len(),
                positions.join(", ")
            ))
        }
    }
}

/// Runs `sms resolve`: a person's decision on a record reconciliation could not settle.
pub async fn resolve(args: ResolveArgs) -> Result<ExitCode, String> {
    let id = CampaignId::new(&args.campaign)
        .ok_or_else(|| format!("{:?} is not a campaign id", args.campaign))?;
    let store = args.db.open_existing().await?;
    let report = load_report(&*store, id.clone())
        .await
        .map_err(|e| e.to_string())?;
    let record = find_record(&report, &args)?;
    let resolution = if args.sent {
        Resolution::Sent {
            provider_id: args
                .provider_id
                .clone()
                .ok_or("--sent needs --provider-id (the message id in the provider's console)")?,
        }
    } else {
        Resolution::NotSent
    };
    // The provider is not called: a resolution only records what a person found out.
    let dispatcher = Dispatcher::new(Arc::new(SimulatedProvider::new()), store.clone(), store);
    dispatcher
        .resolve(id.clone(), record.seq, resolution, Timestamp::now())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "record #{} ({}) of campaign {id}: {}",
        record.seq,
        record.record_id,
        if args.sent {
            "logged as sent"
        } else {
            "planned again; `sms resume` will send it"
        }
    );
    Ok(ExitCode::SUCCESS)
}
