//! `sms alerts`: MyAccount Alerts from the command line. Sign-ups, host events, what is due,
//! sending it (through the same journaled dispatcher as `sms send`), and the wordings.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;
use sms_core::alerts::{
    AlertConfig, AlertEvent, AlertRunner, AlertStore, AlertTemplates, Decision, DueInputs, EventId,
    LocalTime, SectionFacts, SubscriptionAction, SubscriptionBook, SubscriptionChange,
    SubscriptionSource, SubscriptionState, evaluate, lint, plan_event,
};
use sms_core::journal::CampaignSettings;
use sms_core::quiet::ZoneCache;
use sms_core::{
    AlertKind, CancellationToken, OptOutStore, PhoneNumber, ProgramYear, RecordId, Region,
    Timestamp,
};

use crate::edges::{DbArgs, SendingArgs};
use crate::recipients_csv;

/// The wording recorded as consent when `--consent-text` is not given.
pub const DEFAULT_CONSENT_TEXT: &str = "I agree to receive automated text alerts about my classes at this number. Msg & data rates may apply. Reply STOP to opt out, HELP for help.";

/// `sms alerts ...`
#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AlertsCommand {
    /// Sign a client record up for alert kinds, with the consent record.
    Subscribe(SubscribeArgs),
    /// Sign a client record off (kept in the history, never deleted).
    Unsubscribe(UnsubscribeArgs),
    /// Record an event from the registration system; its alerts are scheduled per record.
    Event(Box<EventArgs>),
    /// What would be sent now, what waits and until when, what will never go and why.
    Due(DueArgs),
    /// Send what is due (exactly once, as `sms send`), and print what was done.
    Run(RunArgs),
    /// The wording of each kind, with the lint.
    Templates(TemplatesArgs),
    /// Change a wording.
    Template(TemplateArgs),
}

/// How alerts are timed and capped (the defaults are the product's).
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// The organisation's name (merge field {org_name}).
    #[arg(long, value_name = "NAME", default_value = "Community Ed")]
    pub org_name: String,
    /// The organisation's time zone, for records and sections without one.
    #[arg(long, value_name = "TZ", default_value = "America/New_York")]
    pub org_time_zone: String,
    /// Local time a course_start reminder goes, the day before.
    #[arg(long, value_name = "HH:MM", default_value = "17:00")]
    pub course_start_at: String,
    /// When texts may go, local time (outside: deferred, never dropped).
    #[arg(long, value_name = "HH:MM-HH:MM", default_value = "08:00-21:00")]
    pub quiet_hours: String,
    /// At most this many alerts per number per rolling 24 hours.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub cap: u32,
    /// Let a class_cancelled for a class starting within --urgent-window-minutes go during quiet
    /// hours.
    #[arg(long)]
    pub urgent_cancellations: bool,
    /// The window of --urgent-cancellations.
    #[arg(long, value_name = "MINUTES", default_value_t = 180)]
    pub urgent_window_minutes: u32,
    /// The current program year: a roster from another one is not alerted.
    #[arg(long, value_name = "YEAR")]
    pub current_program_year: Option<String>,
}

impl ConfigArgs {
    /// The configuration these flags ask for, checked (times, quiet hours, time zone).
    pub fn config(&self) -> Result<AlertConfig, String> {
        let course_start_send_at = LocalTime::parse(&self.course_start_at)
            .ok_or_else(|| format!("--course-start-at {:?}: give HH:MM", self.course_start_at))?;
        let quiet_hours = crate::preview_cmd::parse_quiet_hours(&self.quiet_hours)?;
        let org_time_zone = crate::preview_cmd::parse_org_time_zone(&self.org_time_zone)?;
        Ok(AlertConfig {
            org_name: self.org_name.clone(),
            org_time_zone,
            current_program_year: match self.current_program_year.as_deref() {
                None => None,
                Some(text) => Some(ProgramYear::new(text).ok_or_else(|| {
                    format!("--current-program-year {text:?}: not a program year")
                })?),
            },
            course_start_send_at,
            quiet_hours,
            cap_per_24h: self.cap,
            urgent_cancellations_in_quiet_hours: self.urgent_cancellations,
            urgent_cancellation_window_minutes: self.urgent_window_minutes,
            ..AlertConfig::default()
        })
    }
}

#[derive(clap::Args, Debug)]
struct SubscribeArgs {
    /// The client record.
    #[arg(long, value_name = "ID")]
    record: String,
    /// The number the client signs up with.
    #[arg(long, value_name = "NUMBER")]
    mobile: String,
    /// Kinds, comma-separated: course_start, evaluation_due, upcoming_offering, class_cancelled,
    /// waitlist_slot_open, schedule_changed.
    #[arg(long, value_name = "KIND[,KIND]")]
    kinds: String,
    /// Where the sign-up came from.
    #[arg(
        long,
        value_name = "myaccount|staff|import",
        default_value = "myaccount"
    )]
    source: String,
    /// The exact wording the client agreed to (recorded with the sign-up).
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_CONSENT_TEXT)]
    consent_text: String,
    /// When (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(clap::Args, Debug)]
struct UnsubscribeArgs {
    /// The client record.
    #[arg(long, value_name = "ID")]
    record: String,
    /// Kinds, comma-separated; default every kind the record is subscribed to.
    #[arg(long, value_name = "KIND[,KIND]")]
    kinds: Option<String>,
    /// Where the request came from.
    #[arg(
        long,
        value_name = "myaccount|staff|import",
        default_value = "myaccount"
    )]
    source: String,
    /// When (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(clap::Args, Debug)]
struct EventArgs {
    /// The host's id of the event (reported twice, it is one event).
    #[arg(long, value_name = "EVENT_ID")]
    id: String,
    /// Which alert it fires.
    #[arg(long, value_name = "KIND")]
    kind: String,
    /// The section.
    #[arg(long, value_name = "ID")]
    section: String,
    /// The section's roster, in the recipients CSV format.
    #[arg(long, value_name = "FILE.csv")]
    roster: std::path::PathBuf,
    /// The section's own time zone (wins over the records').
    #[arg(long, value_name = "TZ")]
    section_time_zone: Option<String>,
    /// When the section or class starts.
    #[arg(long, value_name = "RFC3339")]
    starts_at: Option<String>,
    /// schedule_changed: the old value.
    #[arg(long, value_name = "TEXT", requires = "new")]
    old: Option<String>,
    /// schedule_changed: the new value.
    #[arg(long, value_name = "TEXT", requires = "old")]
    new: Option<String>,
    /// waitlist_slot_open: the seat is held until then.
    #[arg(long, value_name = "RFC3339")]
    hold_until: Option<String>,
    /// Why (a cancellation's cause).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// The program year of the roster's database.
    #[arg(long, value_name = "YEAR")]
    program_year: Option<String>,
    /// When the event was received (RFC 3339); default now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(clap::Args, Debug)]
struct DueArgs {
    /// Evaluate at this time instead of now ("what if").
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Decide at this time instead of now.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    sending: SendingArgs,
}

#[derive(clap::Args, Debug)]
struct TemplatesArgs {
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(clap::Args, Debug)]
struct TemplateArgs {
    #[command(subcommand)]
    command: TemplateCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TemplateCommand {
    /// Set the wording of KIND (linted: UCS-2 and length past one segment are named).
    Set {
        /// The kind.
        kind: String,
        /// The wording, with merge fields ({course_title}, {start_time}...).
        text: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// Runs `sms alerts ...`.
pub async fn run(args: AlertsArgs) -> Result<ExitCode, String> {
    match args.command {
        AlertsCommand::Subscribe(args) => subscribe(args).await,
        AlertsCommand::Unsubscribe(args) => unsubscribe(args).await,
        AlertsCommand::Event(args) => event(*args).await,
        AlertsCommand::Due(args) => due(args).await,
        AlertsCommand::Run(args) => send_due(args).await,
        AlertsCommand::Templates(args) => templates(args).await,
        AlertsCommand::Template(TemplateArgs {
            command: TemplateCommand::Set { kind, text, db },
        }) => set_template(&kind, text, db).await,
    }
}

fn now_or(text: Option<&str>) -> Result<Timestamp, String> {
    match text {
        None => Ok(Timestamp::now()),
        Some(text) => Timestamp::parse(text)
            .ok_or_else(|| format!("--now {text:?}: give an RFC 3339 time (2026-03-08T21:00:00Z)")),
    }
}

fn time_flag(flag: &str, text: Option<&str>) -> Result<Option<Timestamp>, String> {
    text.map(|text| {
        Timestamp::parse(text).ok_or_else(|| format!("{flag} {text:?}: give an RFC 3339 time"))
    })
    .transpose()
}

fn kinds(text: &str) -> Result<Vec<AlertKind>, String> {
    let mut kinds = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = AlertKind::parse(name).ok_or_else(|| {
            format!(
                "unknown alert kind {name:?}; the kinds: {}",
                AlertKind::ALL.map(|k| k.as_str()).join(", ")
            )
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err("give at least one kind".to_owned());
    }
    Ok(kinds)
}

fn source(text: &str) -> Result<SubscriptionSource, String> {
    SubscriptionSource::parse(text)
        .ok_or_else(|| format!("--source {text:?}: give myaccount, staff or import"))
}

fn store_error(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn subscribe(args: SubscribeArgs) -> Result<ExitCode, String> {
    let kinds = kinds(&args.kinds)?;
    let source = source(&args.source)?;
    let number = PhoneNumber::parse(&args.mobile, Region::default())
        .map_err(|e| format!("--mobile {:?}: {e}", args.mobile))?;
    if args.consent_text.trim().is_empty() {
        return Err("--consent-text: the wording the client agreed to cannot be empty".to_owned());
    }
    let at = now_or(args.now.as_deref())?;
    let record = RecordId::new(&args.record);
    if record.as_str().is_empty() {
        return Err("--record: give the client record's id".to_owned());
    }
    let store = args.db.open().await?;
    for kind in &kinds {
        store
            .record_subscription(SubscriptionChange {
                record_id: record.clone(),
                kind: *kind,
                action: SubscriptionAction::Subscribe,
                number: Some(number),
                at,
                source,
                wording: args.consent_text.clone(),
            })
            .await
            .map_err(store_error)?;
        println!("{record} subscribed to {kind} at {number} ({source}, {at})");
    }
    println!("consent: {:?}", args.consent_text);
    Ok(ExitCode::SUCCESS)
}

async fn unsubscribe(args: UnsubscribeArgs) -> Result<ExitCode, String> {
    let source = source(&args.source)?;
    let at = now_or(args.now.as_deref())?;
    let record = RecordId::new(&args.record);
    let store = args.db.open_existing().await?;
    let history = store
        .subscription_history(Some(record.clone()))
        .await
        .map_err(store_error)?;
    let book = SubscriptionBook::from_history(&history);
    let wanted = match &args.kinds {
        Some(text) => kinds(text)?,
        None => AlertKind::ALL
            .into_iter()
            .filter(|k| {
                matches!(
                    book.state(&record, *k),
                    SubscriptionState::Subscribed { .. }
                )
            })
            .collect(),
    };
    if wanted.is_empty() {
        println!("{record} is subscribed to no alert kind: nothing to do");
        return Ok(ExitCode::SUCCESS);
    }
    for kind in wanted {
        store
            .record_subscription(SubscriptionChange {
                record_id: record.clone(),
                kind,
                action: SubscriptionAction::Unsubscribe,
                number: None,
                at,
                source,
                wording: String::new(),
            })
            .await
            .map_err(store_error)?;
        println!("{record} unsubscribed from {kind} ({source}, {at}); the history is kept");
    }
    Ok(ExitCode::SUCCESS)
}

async fn event(args: EventArgs) -> Result<ExitCode, String> {
    let kind = kinds(&args.kind)?;
    let [kind] = kind[..] else {
        return Err("--kind: give one kind".to_owned());
    };
    let id = EventId::new(&args.id).ok_or("--id: give the host's event id")?;
    let config = args.config.config()?;
    let file = std::fs::File::open(&args.roster)
        .map_err(|e| format!("cannot read {}: {e}", args.roster.display()))?;
    let roster = recipients_csv::read(std::io::BufReader::new(file))?;
    for bad in &roster.malformed {
        eprintln!(
            "warning: {} line {}: {} (skipped)",
            args.roster.display(),
            bad.line,
            bad.error
        );
    }
    let received_at = now_or(args.now.as_deref())?;
    let program_year = match args.program_year.as_deref() {
        None => None,
        Some(text) => Some(
            ProgramYear::new(text)
                .ok_or_else(|| format!("--program-year {text:?}: not a program year"))?,
        ),
    };
    if let (Some(year), Some(current)) = (&program_year, &config.current_program_year)
        && year != current
    {
        // Only the current program year may be texted: refuse the roster now rather than
        // schedule alerts that a `due` without --current-program-year would send.
        return Err(format!(
            "--program-year {year} is not the current program year ({current}): nobody in              its roster may be texted; nothing scheduled"
        ));
    }
    let event = AlertEvent {
        id,
        kind,
        section: args.section.trim().to_owned(),
        section_time_zone: args.section_time_zone.clone(),
        starts_at: time_flag("--starts-at", args.starts_at.as_deref())?,
        old: args.old.clone(),
        new: args.new.clone(),
        hold_until: time_flag("--hold-until", args.hold_until.as_deref())?,
        reason: args.reason.clone(),
        program_year,
        received_at,
    };
    let store = args.db.open().await?;
    let templates = AlertTemplates::new(store.templates().await.map_err(store_error)?);
    let alerts =
        plan_event(&event, &roster.recipients, &config, &templates).map_err(|e| e.to_string())?;
    let first_due = alerts.iter().map(|a| a.due_at).min();
    let inserted = store
        .record_event(event.clone(), alerts)
        .await
        .map_err(store_error)?;
    if !inserted.new_event {
        println!(
            "event {} was recorded before: its first report stands",
            event.id
        );
    }
    println!(
        "event {} ({kind}, section {}): {} alert(s) scheduled{}{}",
        event.id,
        event.section,
        inserted.scheduled,
        first_due
            .filter(|_| inserted.scheduled > 0)
            .map(|d| format!(", due from {d}"))
            .unwrap_or_default(),
        if inserted.duplicates > 0 {
            format!(
                "; {} already scheduled for this event (sent once)",
                inserted.duplicates
            )
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// One alert in `sms alerts due`.
#[derive(Serialize)]
struct DueLine {
    alert_id: u64,
    event_id: String,
    kind: AlertKind,
    section: String,
    record_id: String,
    time_zone: String,
    decision: &'static str,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until_local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    number: Option<PhoneNumber>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<u32>,
    detail: String,
}

#[derive(Serialize)]
struct DueReport {
    now: Timestamp,
    send: u64,
    wait: u64,
    never: u64,
    never_by_reason: BTreeMap<String, u64>,
    in_flight: u64,
    alerts: Vec<DueLine>,
}

/// `at` in the time zone `zone` names, read from `zones` (each looked up once: a report of
/// 100,000 waiting alerts names a handful).
fn local(at: Timestamp, zone: &str, zones: &mut ZoneCache) -> Option<String> {
    let tz = zones.get(zone)?;
    let ts = jiff::Timestamp::from_millisecond(at.unix_ms()).ok()?;
    Some(ts.to_zoned(tz).strftime("%Y-%m-%d %H:%M %Z").to_string())
}

async fn due(args: DueArgs) -> Result<ExitCode, String> {
    let now = now_or(args.now.as_deref())?;
    let config = args.config.config()?;
    let store = args.db.open_existing().await?;
    let (ids, scheduled): (Vec<u64>, Vec<_>) = store
        .pending()
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|s| (s.id, s.alert))
        .unzip();
    let templates = AlertTemplates::new(store.templates().await.map_err(store_error)?);
    let subscriptions = SubscriptionBook::from_history(
        &store
            .subscription_history(None)
            .await
            .map_err(store_error)?,
    );
    let opt_outs = store
        .snapshot()
        .await
        .map_err(|e| format!("cannot read opt-outs: {e}"))?;
    let recent = store
        .recent_sends(Timestamp::from_unix_ms(now.unix_ms() - 24 * 3_600_000))
        .await
        .map_err(store_error)?;
    let events = store.events().await.map_err(store_error)?;
    let sections = SectionFacts::from_events(&events);
    let in_flight = store
        .open_batches()
        .await
        .map_err(store_error)?
        .iter()
        .map(|b| b.alerts.len() as u64)
        .sum();
    let inputs = DueInputs {
        config: &config,
        templates: &templates,
        subscriptions: &subscriptions,
        opt_outs: &opt_outs,
        recent: &recent,
        sections: &sections,
        region: Region::default(),
    };
    let mut report = DueReport {
        now,
        send: 0,
        wait: 0,
        never: 0,
        never_by_reason: BTreeMap::new(),
        in_flight,
        alerts: Vec::with_capacity(scheduled.len()),
    };
    let mut zones = ZoneCache::new();
    for evaluation in evaluate(&scheduled, &inputs, now) {
        let alert = &scheduled[evaluation.index];
        let mut line = DueLine {
            alert_id: ids[evaluation.index],
            event_id: alert.event_id.to_string(),
            kind: alert.kind,
            section: alert.section.clone(),
            record_id: alert.record_id().to_string(),
            time_zone: alert.time_zone.clone(),
            decision: evaluation.decision.label(),
            code: "send",
            until: None,
            until_local: None,
            number: None,
            body: None,
            segments: None,
            detail: String::new(),
        };
        match &evaluation.decision {
            Decision::Send {
                number,
                body,
                segments,
                ..
            } => {
                report.send += 1;
                line.number = Some(*number);
                line.body = Some(body.clone());
                line.segments = Some(*segments);
                line.detail = format!("to {number}, {segments} segment(s): {body}");
            }
            Decision::Wait { reason } | Decision::Never { reason } => {
                if reason.is_wait() {
                    report.wait += 1;
                } else {
                    report.never += 1;
                    *report
                        .never_by_reason
                        .entry(reason.code().to_owned())
                        .or_default() += 1;
                }
                line.code = reason.code();
                line.until = match reason {
                    sms_core::alerts::AlertReason::NotYetDue { due_at } => Some(*due_at),
                    sms_core::alerts::AlertReason::QuietHours { until, .. }
                    | sms_core::alerts::AlertReason::OverCap { until, .. } => Some(*until),
                    _ => None,
                };
                line.until_local = line
                    .until
                    .and_then(|u| local(u, &alert.time_zone, &mut zones));
                line.detail = reason.to_string();
            }
        }
        report.alerts.push(line);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    // One write per buffer, not per line: the table of 100,000 alerts is 100,000 lines.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let failed = |e: std::io::Error| format!("cannot write the report: {e}");
    writeln!(out, "Alerts at {now}").map_err(failed)?;
    writeln!(
        out,
        "{:>5}  {:<12} {:<18} {:<10} {:<6} why / when",
        "alert", "event", "kind", "record", "now"
    )
    .map_err(failed)?;
    // Sends first, then waits by time, then the rest.
    let mut lines: Vec<&DueLine> = report.alerts.iter().collect();
    lines.sort_by_key(|l| {
        (
            match l.decision {
                "send" => 0,
                "wait" => 1,
                _ => 2,
            },
            l.until,
            l.alert_id,
        )
    });
    for l in lines {
        let when = match (&l.until_local, l.decision) {
            (Some(local), "wait") => format!("{} ({local})", l.detail),
            _ => l.detail.clone(),
        };
        writeln!(
            out,
            "{:>5}  {:<12} {:<18} {:<10} {:<6} {when}",
            l.alert_id,
            l.event_id,
            l.kind.as_str(),
            l.record_id,
            l.decision
        )
        .map_err(failed)?;
    }
    writeln!(
        out,
        "\nsend now {}, waiting {}, never {}{}",
        report.send,
        report.wait,
        report.never,
        if report.never_by_reason.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                report
                    .never_by_reason
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )
    .map_err(failed)?;
    if report.in_flight > 0 {
        writeln!(
            out,
            "{} alert(s) claimed by an interrupted run: the next `sms alerts run` finishes them",
            report.in_flight
        )
        .map_err(failed)?;
    }
    out.flush().map_err(failed)?;
    Ok(ExitCode::SUCCESS)
}

async fn send_due(args: RunArgs) -> Result<ExitCode, String> {
    if args.now.is_some() && args.sending.reaches_people() {
        return Err(
            "--now: with Twilio this would text real people now, judged against another \
                    clock (due times, quiet hours, the cap); ask `sms alerts due --now` what \
                    would go then, or run with the simulator or a local stand-in"
                .to_owned(),
        );
    }
    let now = now_or(args.now.as_deref())?;
    let config = args.config.config()?;
    let options = args.sending.options()?;
    let provider = args.sending.provider()?;
    let store = args.db.open_existing().await?;
    let runner = AlertRunner::new(provider, store.clone(), store.clone(), store.clone())
        .with_config(config)
        .with_settings(CampaignSettings {
            rate: args.sending.rate()?.unwrap_or_default(),
            ..CampaignSettings::default()
        })
        .with_options(options);
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping after the texts in flight (the next run finishes)...");
            on_ctrl_c.cancel();
        }
    });
    let report = runner
        .run_due(now, cancel)
        .await
        .map_err(|e| e.to_string())?;
    println!("Alerts run at {now}");
    for line in &report.lines {
        println!(
            "{:>5}  {:<12} {:<18} {:<10} {:<8} {}",
            line.alert_id,
            line.event_id,
            line.kind.as_str(),
            line.record_id,
            line.action,
            line.detail
        );
    }
    println!(
        "\n{}{}",
        report.counts(),
        if report.batches.is_empty() {
            String::new()
        } else {
            format!(
                " (campaign{} {}: see sms report ... {})",
                if report.batches.len() > 1 { "s" } else { "" },
                report.batch_list(),
                args.db.flags()
            )
        }
    );
    for id in &report.busy {
        eprintln!("warning: campaign {id} is being sent by another run: left to it");
    }
    for (id, why) in &report.stuck {
        eprintln!("warning: campaign {id} cannot be run: {why}");
    }
    if let Some(why) = &report.claim_conflict {
        eprintln!(
            "warning: another run is sending some of these alerts ({why}): run again to see what is left"
        );
    }
    if report.cancelled {
        println!(
            "Stopped before the end: run `sms alerts run {}` again to finish",
            args.db.flags()
        );
    }
    Ok(if report.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// One wording in `sms alerts templates`.
#[derive(Serialize)]
struct TemplateLine {
    kind: AlertKind,
    text: String,
    default: bool,
    warnings: Vec<String>,
}

async fn templates(args: TemplatesArgs) -> Result<ExitCode, String> {
    // Reading the wordings needs no database: a missing file shows the embedded defaults.
    let stored = if !args.db.db.is_missing_file() {
        args.db
            .open()
            .await?
            .templates()
            .await
            .map_err(store_error)?
    } else {
        Vec::new()
    };
    let templates = AlertTemplates::new(stored);
    let lines: Vec<TemplateLine> = AlertKind::ALL
        .into_iter()
        .map(|kind| {
            let text = templates.source(kind).to_owned();
            let warnings = match lint(&text) {
                Ok(warnings) => warnings.iter().map(ToString::to_string).collect(),
                Err(error) => vec![error.to_string()],
            };
            TemplateLine {
                kind,
                default: templates.is_default(kind),
                text,
                warnings,
            }
        })
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&lines).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for line in &lines {
        println!(
            "{} ({})\n  {}",
            line.kind,
            if line.default { "default" } else { "custom" },
            line.text
        );
        for warning in &line.warnings {
            println!("  warning: {warning}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_template(kind: &str, text: String, db: DbArgs) -> Result<ExitCode, String> {
    let kind = AlertKind::parse(kind).ok_or_else(|| {
        format!(
            "unknown alert kind {kind:?}; the kinds: {}",
            AlertKind::ALL.map(|k| k.as_str()).join(", ")
        )
    })?;
    if text.trim().is_empty() {
        // An empty wording would turn the kind off for everyone without a word ("the message
        // is empty" at each run): sign-ups are how clients stop a kind.
        return Err(format!(
            "{kind} template: give a wording; an empty one would send nothing to anyone"
        ));
    }
    let warnings = lint(&text).map_err(|e| format!("{kind} template: {e}"))?;
    let store = db.open().await?;
    store
        .set_template(kind, text.clone())
        .await
        .map_err(store_error)?;
    println!("{kind} template set:\n  {text}");
    for warning in &warnings {
        println!("  warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
