//! `sms inbound` (what a reply does) and `sms optouts` (who replied STOP).

use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use sms_core::{OptOutChange, OptOutStore, PhoneNumber, Region, Timestamp};
use sms_twilio::{InboundHandler, SignatureValidator, compute_signature, form_fields};

use crate::edges::DbArgs;

/// Arguments of `sms inbound`.
#[derive(clap::Args, Debug)]
pub struct InboundArgs {
    /// The number the reply comes from (as typed; normalised to E.164).
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
    #[command(flatten)]
    pub db: DbArgs,
    /// Write JSON.
    #[arg(long)]
    pub json: bool,
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
    let from = PhoneNumber::parse(&args.from, Region::US)
        .map_err(|e| format!("--from {:?}: {e}", args.from))?;
    let store = args.db.open()?;
    let now = Timestamp::now();
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
    );
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
        Some(change) => println!(
            "recorded: {:?} for {} at {} (every record carrying this number)",
            change.action, change.number, change.at
        ),
        None if class.likely_revocation => println!(
            "not acted on: only STOP and START are processed, but this looks like a request to stop; a person should review it"
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
    let store = args.db.open_existing()?;
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
        println!(
            "{}  opted out {}  ({} change(s); last from {})",
            entry.number,
            entry.since,
            entry.history.len(),
            last.map(|c| format!("{:?}", c.source).to_lowercase())
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
