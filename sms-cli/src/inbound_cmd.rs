//! `sms inbound` (what a reply does) and `sms optouts` (who replied STOP).

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use sms_core::{
    ChangeSource, OptOutChange, OptOutPolicy, OptOutStore, PhoneNumber, Region, Timestamp,
};
use sms_twilio::{InboundHandler, SignatureValidator, compute_signature, form_fields};

use crate::edges::DbArgs;

/// Arguments of `sms inbound`.
#[derive(clap::Args, Debug)]
pub struct InboundArgs {
    /// The number the reply comes from (as typed; normalised to E.164). An E.164 number the
    /// phone metadata does not know (`+15551234567`) is accepted too: a STOP from it is recorded.
    #[arg(long, value_name = "NUMBER")]
    pub from: String,
    /// The reply's text.
    #[arg(long, value_name = "TEXT")]
    pub body: String,
    /// Our number the reply was sent to.
    #[arg(long, value_name = "NUMBER", default_value = "+15005550006")]
    pub to: String,
    /// The provider's id of the reply (a redelivery with the same id records nothing new).
    #[arg(long, value_name = "SID")]
    pub message_sid: Option<String>,
    /// When the reply was received (RFC 3339, `2026-09-01T14:30:00Z`); default now. For
    /// recording a reply received elsewhere (a call to the office, a reply seen in the console).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
    /// How a reply that is not exactly a keyword is read: `fcc` (default) also records a short
    /// sentence holding an opt-out word ("please stop") as an opt-out, marked for review;
    /// `keywords-only` acts on keywords only and flags such sentences.
    #[arg(long, value_enum, default_value_t = PolicyArg::Fcc)]
    pub opt_out_policy: PolicyArg,
    /// Write JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--opt-out-policy`: [`OptOutPolicy`] on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyArg {
    /// The FCC revocation rule (47 CFR 64.1200(a)(10)): keywords and short sentences.
    Fcc,
    /// Keywords only; sentences are flagged for review, not acted on.
    KeywordsOnly,
}

impl From<PolicyArg> for OptOutPolicy {
    fn from(arg: PolicyArg) -> Self {
        match arg {
            PolicyArg::Fcc => OptOutPolicy::Fcc,
            PolicyArg::KeywordsOnly => OptOutPolicy::KeywordsOnly,
        }
    }
}

/// Arguments of `sms optouts`.
#[derive(clap::Args, Debug)]
pub struct OptOutsArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Write JSON.
    #[arg(long)]
    pub json: bool,
}

/// The URL and token the CLI signs its simulated webhook with: the reply goes through exactly
/// the path a real Twilio webhook takes, signature check included.
const LOCAL_URL: &str = "https://localhost/sms/inbound";
const LOCAL_TOKEN: &str = "sms-cli-local-webhook";

/// Runs `sms inbound`.
pub async fn inbound(args: InboundArgs) -> Result<ExitCode, String> {
    // As the webhook does: a number the metadata does not know yet, typed in E.164, is still
    // the sender's number, and its STOP must be recorded.
    let from = PhoneNumber::parse(&args.from, Region::US)
        .or_else(|e| PhoneNumber::from_e164_shape(args.from.trim()).map_err(|_| e))
        .map_err(|e| format!("--from {:?}: {e}", args.from))?;
    let now = match &args.at {
        Some(text) => Timestamp::parse(text).ok_or_else(|| {
            format!("--at {text:?}: expected an RFC 3339 time such as 2026-09-01T14:30:00Z")
        })?,
        None => Timestamp::now(),
    };
    // Opened only once the arguments are known good: a typo must not create a database.
    let store = args.db.open().await?;
    let sid = args
        .message_sid
        .clone()
        .unwrap_or_else(|| format!("SMcli{:027}", now.unix_ms()));
    let fields = form_fields(&[
        ("MessageSid", sid.as_str()),
        ("From", &from.to_string()),
        ("To", args.to.as_str()),
        ("Body", args.body.as_str()),
        ("NumSegments", "1"),
    ]);
    let signature = compute_signature(LOCAL_TOKEN, LOCAL_URL, &fields);
    let handler = InboundHandler::new(
        SignatureValidator::new(LOCAL_TOKEN),
        store as Arc<dyn OptOutStore>,
    )
    .with_opt_out_policy(args.opt_out_policy.into());
    let outcome = handler
        .handle(LOCAL_URL, &fields, Some(&signature), now)
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let class = &outcome.classification;
    println!("reply from {from}: {:?}", args.body);
    println!(
        "meaning: {:?}{}",
        class.class,
        class
            .keyword
            .as_deref()
            .map(|k| format!(" (keyword {k})"))
            .unwrap_or_default()
    );
    match &outcome.change {
        Some(change) if change.source == ChangeSource::NaturalLanguage => println!(
            "recorded: {:?} for {} at {} (every record carrying this number), read from a sentence: a person should review it and may reverse it with a START",
            change.action, change.number, change.at
        ),
        Some(change) => println!(
            "recorded: {:?} for {} at {} (every record carrying this number)",
            change.action, change.number, change.at
        ),
        None if class.likely_revocation => println!(
            "not acted on: this looks like a request to stop but is not a keyword (policy keywords-only, or a long message); a person should review it"
        ),
        None => println!("not acted on: only STOP and START are processed"),
    }
    println!("answer (TwiML): {}", outcome.response_body());
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct OptedOut {
    number: PhoneNumber,
    since: Timestamp,
    history: Vec<OptOutChange>,
}

/// Runs `sms optouts`.
pub async fn optouts(args: OptOutsArgs) -> Result<ExitCode, String> {
    let store = args.db.open_existing().await?;
    let snapshot = store.snapshot().await.map_err(|e| e.to_string())?;
    let mut list = Vec::with_capacity(snapshot.len());
    for (number, since) in snapshot.iter() {
        let history = store.history(number).await.map_err(|e| e.to_string())?;
        list.push(OptedOut {
            number,
            since,
            history,
        });
    }
    list.sort_by_key(|o| (o.since, o.number));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("No number has opted out.");
    }
    for entry in &list {
        let last = entry.history.last();
        let review = if last.is_some_and(|c| c.source == ChangeSource::NaturalLanguage) {
            ": review it"
        } else {
            ""
        };
        println!(
            "{}  opted out {}  ({} change(s); last from {}{review})",
            entry.number,
            entry.since,
            entry.history.len(),
            last.map(|c| source_name(c.source)).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How `sms optouts` names where a change came from.
fn source_name(source: ChangeSource) -> &'static str {
    match source {
        ChangeSource::Inbound => "inbound",
        ChangeSource::NaturalLanguage => "natural-language reply",
        ChangeSource::Provider => "provider",
        ChangeSource::Staff => "staff",
    }
}
