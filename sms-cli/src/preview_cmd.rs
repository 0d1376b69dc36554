//! `sms preview`: who is texted, who is skipped and why, totals and cost.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use sms_core::preview::preview;
use sms_core::quiet::{HeldSummary, QuietHours, QuietRule, held_at};
use sms_core::{
    Money, OptOutSnapshot, Preview, PreviewOutcome, PreviewSettings, ProgramYear, ProgramYears,
    Purpose, Region, Template, Timestamp,
};

use crate::edges::DbTarget;
use crate::recipients_csv::{self, MalformedRow};

/// Parses `--quiet-hours HH:MM-HH:MM` (`sms send`, `sms preview` and `sms alerts` alike).
pub fn parse_quiet_hours(text: &str) -> Result<QuietHours, String> {
    QuietHours::parse(text).ok_or_else(|| format!("--quiet-hours {text:?}: give HH:MM-HH:MM"))
}

/// Checks `--org-time-zone TZ` (`sms send`, `sms preview` and `sms alerts` alike): an IANA name
/// the library knows.
pub fn parse_org_time_zone(text: &str) -> Result<String, String> {
    match sms_core::quiet::zone(text) {
        Some(_) => Ok(text.trim().to_owned()),
        None => Err(format!(
            "--org-time-zone {text:?}: unknown time zone (an IANA name such as America/New_York)"
        )),
    }
}

/// Quiet hours of a manual send: on by default, with the same flags and defaults as
/// `sms alerts`.
#[derive(clap::Args, Debug, Clone)]
pub struct QuietArgs {
    /// Send at any hour (an emergency): no record is held for quiet hours, and records' time
    /// zones are not looked at.
    #[arg(long, conflicts_with = "quiet_hours")]
    pub ignore_quiet_hours: bool,
    /// When texts may go, in each record's local time; outside it a record is held until the
    /// window opens (a resume, or a running `sms serve`, sends it then), never dropped.
    #[arg(long, value_name = "HH:MM-HH:MM", default_value = "08:00-21:00")]
    pub quiet_hours: String,
    /// The organisation's time zone, for records without one.
    #[arg(long, value_name = "TZ", default_value = "America/New_York")]
    pub org_time_zone: String,
}

impl QuietArgs {
    /// The rule these flags ask for; `None` with `--ignore-quiet-hours`.
    pub fn rule(&self) -> Result<Option<QuietRule>, String> {
        if self.ignore_quiet_hours {
            return Ok(None);
        }
        Ok(Some(QuietRule {
            hours: parse_quiet_hours(&self.quiet_hours)?,
            org_time_zone: parse_org_time_zone(&self.org_time_zone)?,
        }))
    }
}

/// What describes a send before it happens: shared by `preview` and `send`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// The recipients CSV file (header:
    /// record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone;
    /// extra columns are merge fields).
    #[arg(long, value_name = "FILE.csv")]
    pub recipients: PathBuf,
    /// The message, with merge fields such as {first_name} or {course_title}.
    #[arg(long, value_name = "TEXT")]
    pub body: String,
    /// Apply Twilio Smart Encoding (smart quotes, dashes... become GSM-7).
    #[arg(long)]
    pub smart_encoding: bool,
    /// Price of one segment (message unit), for the cost estimate.
    #[arg(
        long,
        default_value = "0.0083",
        value_name = "AMOUNT",
        allow_negative_numbers = true
    )]
    pub price_per_segment: String,
    /// Currency of the price.
    #[arg(long, default_value = "USD")]
    pub currency: String,
    /// Region for numbers typed without a country code (ISO 3166 code).
    #[arg(long, default_value = "US")]
    pub region: String,
    /// Program year of the database the recipients come from.
    #[arg(long, value_name = "YEAR")]
    pub program_year: Option<String>,
    /// The current program year (only it may send); give it with --program-year.
    #[arg(long, value_name = "YEAR")]
    pub current_program_year: Option<String>,
    #[command(flatten)]
    pub quiet: QuietArgs,
}

impl PlanArgs {
    /// The preview settings these arguments describe.
    pub fn settings(&self) -> Result<PreviewSettings, String> {
        let price_per_segment =
            Money::parse(&self.price_per_segment, &self.currency).ok_or_else(|| {
                format!(
                    "--price-per-segment {:?} is not an amount such as 0.0083",
                    self.price_per_segment
                )
            })?;
        // A negative price makes every cost negative: the balance check would always pass.
        if price_per_segment.micros < 0 {
            return Err(format!(
                "--price-per-segment {:?}: a price cannot be negative (it would switch off the \
                 check of the cost against the provider's balance)",
                self.price_per_segment
            ));
        }
        let region = Region::parse(&self.region).ok_or_else(|| {
            format!(
                "--region {:?} is not a known region code such as US",
                self.region
            )
        })?;
        // Both or neither: with one alone, any old year would pass for the current one.
        let (database, current) = match (&self.program_year, &self.current_program_year) {
            (None, None) => {
                let year = ProgramYear::new("current").expect("not blank");
                (year.clone(), year)
            }
            (Some(database), Some(current)) => (
                ProgramYear::new(database).ok_or("--program-year cannot be blank")?,
                ProgramYear::new(current).ok_or("--current-program-year cannot be blank")?,
            ),
            _ => {
                return Err(
                    "give both --program-year and --current-program-year (only the \
                            current program year may send)"
                        .to_owned(),
                );
            }
        };
        Ok(PreviewSettings {
            region,
            smart_encoding: self.smart_encoding,
            price_per_segment,
            program_years: ProgramYears { database, current },
            purpose: Purpose::Manual,
            quiet_hours: self.quiet.rule()?,
        })
    }

    /// Reads the recipients and makes the preview against `opt_outs`; also returns the rows
    /// skipped as malformed and the settings the preview used.
    pub fn preview(
        &self,
        opt_outs: &OptOutSnapshot,
    ) -> Result<(Preview, Vec<MalformedRow>, PreviewSettings), String> {
        let settings = self.settings()?;
        let template = Template::parse(&self.body).map_err(|e| format!("--body: {e}"))?;
        let file = File::open(&self.recipients)
            .map_err(|e| format!("cannot open {}: {e}", self.recipients.display()))?;
        let file = recipients_csv::read(BufReader::new(file))
            .map_err(|e| format!("{}: {e}", self.recipients.display()))?;
        let mut known: Vec<&str> = vec!["first_name", "last_name", "record_id", "mobile"];
        known.extend(file.extra_columns.iter().map(String::as_str));
        template
            .check_fields(&known)
            .map_err(|e| format!("--body: {e}"))?;
        let preview = preview(file.recipients, &template, opt_outs, &settings)
            .map_err(|e| format!("--body: {e}"))?;
        Ok((preview, file.malformed, settings))
    }
}

/// Arguments of `sms preview`.
#[derive(clap::Args, Debug)]
pub struct PreviewArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Write JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The SQLite file whose opt-outs apply (read only; none when the file does not exist), or
    /// a PostgreSQL URL (as `sms send --db`).
    #[arg(long, value_name = "PATH|URL", default_value = "./sms.db", value_parser = crate::edges::parse_db)]
    pub db: DbTarget,
    #[command(flatten)]
    pub org: crate::edges::OrgArgs,
}

#[derive(Serialize)]
struct PreviewJson<'a> {
    #[serde(flatten)]
    preview: &'a Preview,
    /// The records quiet hours would hold if sent now, and until when (`null`: none, or quiet
    /// hours ignored).
    held: Option<HeldSummary>,
    malformed_rows: &'a [MalformedRow],
    settings: PreviewSettings,
}

/// Runs `sms preview`.
pub fn run(args: PreviewArgs) -> Result<ExitCode, String> {
    let snapshot = match &args.db {
        DbTarget::File(path) if !path.exists() => OptOutSnapshot::default(),
        db => read_opt_outs(db, &args.org.org)?,
    };
    let (preview, malformed, settings) = args.plan.preview(&snapshot)?;
    let now = Timestamp::now();
    if args.json {
        let json = PreviewJson {
            preview: &preview,
            held: held_now(&preview, now),
            malformed_rows: &malformed,
            settings,
        };
        let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", render_table(&preview, &malformed, &settings, now));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_opt_outs(db: &DbTarget, org: &sms_core::Org) -> Result<OptOutSnapshot, String> {
    use sms_core::OptOutStore as _;
    // I/O and timers: a PostgreSQL pool's connections are tasks with deadlines.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(async {
            let store = db.open(org, true).await?;
            store
                .snapshot()
                .await
                .map_err(|e| format!("cannot read opt-outs from {}: {e}", db.shown()))
        })
}

/// The records of `preview` quiet hours would hold if sent at `now`.
pub fn held_now(preview: &Preview, now: Timestamp) -> Option<HeldSummary> {
    preview
        .quiet_hours
        .as_ref()
        .and_then(|rule| held_at(&preview.items, rule, now))
}

/// The preview's quiet-hours lines: the rule, and what it holds if sent at `now`.
pub fn quiet_lines(preview: &Preview, now: Timestamp) -> String {
    let Some(rule) = &preview.quiet_hours else {
        return "  quiet hours      ignored (--ignore-quiet-hours): texts go at any hour\n"
            .to_owned();
    };
    let mut out = format!(
        "  quiet hours      {} local (records without a time zone: {})\n",
        rule.hours, rule.org_time_zone
    );
    match held_now(preview, now) {
        None => out.push_str("  held now         none: every text may go now\n"),
        Some(held) => {
            let _ = writeln!(
                out,
                "  held now         {} of {} text(s), {}",
                held.records,
                preview.totals.texts,
                held.until_text()
            );
        }
    }
    out
}

/// The preview as a person reads it; quiet hours as they stand at `now`.
pub fn render_table(
    preview: &Preview,
    malformed: &[MalformedRow],
    settings: &PreviewSettings,
    now: Timestamp,
) -> String {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "Message: {}", preview.template);
    let rows: Vec<[String; 5]> = preview
        .items
        .iter()
        .map(|item| {
            let outcome = match &item.outcome {
                PreviewOutcome::Eligible {
                    number,
                    encoding,
                    segments,
                    ..
                } => format!(
                    "text {number}, {segments} segment{} ({})",
                    if *segments == 1 { "" } else { "s" },
                    encoding.as_str()
                ),
                PreviewOutcome::Blocked { reason } => format!("skip: {reason}"),
            };
            [
                item.record_id.to_string(),
                item.kind.label().to_owned(),
                item.name.clone(),
                item.mobile.clone(),
                outcome,
            ]
        })
        .collect();
    let header = ["RECORD", "KIND", "NAME", "MOBILE", "OUTCOME"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 4 {
                text.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            }
        }
        text.trim_end().to_owned()
    };
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", line(header));
    for (row, item) in rows.iter().zip(&preview.items) {
        let text = line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
        let painted = match item.outcome {
            PreviewOutcome::Eligible { .. } => text,
            PreviewOutcome::Blocked { .. } => paint("33", &text),
        };
        let _ = writeln!(out, "{painted}");
    }
    if !malformed.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}",
            paint(
                "31",
                &format!("Rows skipped as malformed: {}", malformed.len())
            )
        );
        for row in malformed {
            let _ = writeln!(out, "  line {}: {}", row.line, row.error);
        }
    }
    let t = &preview.totals;
    let _ = writeln!(out);
    let _ = writeln!(out, "Totals");
    let _ = writeln!(out, "  records          {}", t.records);
    let mut texts = format!(
        "  texts            {}   to {} number{}",
        t.texts,
        t.distinct_numbers,
        if t.distinct_numbers == 1 { "" } else { "s" }
    );
    if t.shared_numbers > 0 {
        let _ = write!(
            texts,
            "; {} number{} shared by {} records, each record is texted",
            t.shared_numbers,
            if t.shared_numbers == 1 { "" } else { "s" },
            t.records_on_shared_numbers
        );
    }
    let _ = writeln!(out, "{texts}");
    let reasons: Vec<String> = t
        .blocked_by_reason
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "  skipped          {}{}",
        t.blocked,
        if reasons.is_empty() {
            String::new()
        } else {
            format!("   ({})", reasons.join(", "))
        }
    );
    let _ = writeln!(
        out,
        "  message units    {}   (GSM-7 texts {}, UCS-2 texts {})",
        t.message_units, t.gsm7_texts, t.ucs2_texts
    );
    let _ = writeln!(
        out,
        "  estimated cost   {}   at {} per segment{}",
        t.estimated_cost,
        settings.price_per_segment,
        if settings.smart_encoding {
            ", smart encoding on"
        } else {
            ""
        }
    );
    out.push_str(&quiet_lines(preview, now));
    out
}
