//! `sms replies`: the messages received (by `sms serve`), the message units they used, and
//! the ones a person should read (a likely request to stop that was not a keyword, or an
//! opt-out read from a sentence, which they may reverse).

use std::process::ExitCode;

use serde::Serialize;
use sms_core::{KeywordClass, Timestamp};
use sms_sqlite::StoredReply;

use crate::edges::DbArgs;

/// Arguments of `sms replies`.
#[derive(clap::Args, Debug)]
pub struct RepliesArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Only replies received at or after this time (RFC 3339, `2026-09-01T00:00:00Z`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only the replies a person should read.
    #[arg(long)]
    pub review: bool,
    /// Write JSON.
    #[arg(long)]
    pub json: bool,
}

/// The counts `sms replies` ends with.
#[derive(Debug, Default, Serialize)]
struct Totals {
    replies: u64,
    units: u64,
    opt_outs: u64,
    opt_ins: u64,
    to_review: u64,
}

#[derive(Serialize)]
struct Listing {
    replies: Vec<StoredReply>,
    totals: Totals,
}

/// Runs `sms replies`.
pub async fn run(args: RepliesArgs) -> Result<ExitCode, String> {
    let since = match &args.since {
        Some(text) => Timestamp::parse(text).ok_or_else(|| {
            format!("--since {text:?}: expected an RFC 3339 time such as 2026-09-01T00:00:00Z")
        })?,
        None => Timestamp::from_unix_ms(0),
    };
    let store = args.db.open_existing().await?;
    let mut replies = store.replies(since).await.map_err(|e| e.to_string())?;
    if args.review {
        replies.retain(|r| r.review);
    }
    let mut totals = Totals::default();
    for reply in &replies {
        totals.replies += 1;
        totals.units += u64::from(reply.segments);
        totals.opt_outs += u64::from(reply.class == KeywordClass::OptOut);
        totals.opt_ins += u64::from(reply.class == KeywordClass::OptIn);
        totals.to_review += u64::from(reply.review);
    }
    if args.json {
        let listing = Listing { replies, totals };
        println!(
            "{}",
            serde_json::to_string_pretty(&listing).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    for r in &replies {
        let meaning = match r.class {
            KeywordClass::OptOut => "STOP",
            KeywordClass::OptIn => "START",
            KeywordClass::Help => "HELP",
            KeywordClass::Other => "reply",
        };
        println!(
            "{}  {}  {meaning:<5}  {} unit(s)  {:?}{}",
            r.received_at,
            r.from,
            r.segments,
            r.body,
            if r.review { "  REVIEW" } else { "" }
        );
    }
    println!(
        "{} repl{}, {} message unit(s); {} STOP, {} START; {} for a person to review",
        totals.replies,
        if totals.replies == 1 { "y" } else { "ies" },
        totals.units,
        totals.opt_outs,
        totals.opt_ins,
        totals.to_review
    );
    Ok(ExitCode::SUCCESS)
}
