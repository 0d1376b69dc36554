//! `sms`: count segments, preview a send, send it (crash-safe), and follow it up.

mod alerts_cmd;
mod edges;
mod inbound_cmd;
mod preview_cmd;
mod replies_cmd;
mod report_cmd;
mod send_cmd;
mod serve_cmd;
use sms_store as store;

// The readers of untrusted input live in the library (src/lib.rs) so the fuzz targets reach them.
use sms_cli::{recipients_csv, segments};

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sms",
    version,
    about = "Text clients and staff through Twilio, lawfully and without surprises"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Count segments (message units) of a text, as Twilio counts them.
    Segments(segments::SegmentsArgs),
    /// Show who would be texted, who is skipped and why, and what it would cost.
    Preview(preview_cmd::PreviewArgs),
    /// Preview, confirm, and send: each eligible record texted exactly once, crash or not.
    Send(send_cmd::SendArgs),
    /// Finish a campaign that was stopped or crashed (nobody is texted twice).
    Resume(send_cmd::ResumeArgs),
    /// What happened to each record of a campaign.
    Report(report_cmd::ReportArgs),
    /// Settle a record whose outcome is unknown, after checking the provider's console.
    Resolve(report_cmd::ResolveArgs),
    /// What a reply does: STOP and START change the number's state; anything else is not acted on.
    Inbound(inbound_cmd::InboundArgs),
    /// The numbers that replied STOP, with their history.
    Optouts(inbound_cmd::OptOutsArgs),
    /// The always-on service: Twilio's webhooks (replies, delivery statuses) and a health probe.
    Serve(serve_cmd::ServeArgs),
    /// The replies received (by `sms serve`), their message units, and those a person should read.
    Replies(replies_cmd::RepliesArgs),
    /// MyAccount Alerts: sign-ups, host events, what is due, sending it, the wordings.
    Alerts(alerts_cmd::AlertsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // The commands that need no runtime start faster without one (`segments --jsonl` is
        // called from scripts in loops).
        Command::Segments(args) => segments::run(args),
        Command::Preview(args) => preview_cmd::run(args),
        Command::Send(args) => run_async(send_cmd::send(args)),
        Command::Resume(args) => run_async(send_cmd::resume(args)),
        Command::Report(args) => run_async(report_cmd::run(args)),
        Command::Resolve(args) => run_async(report_cmd::resolve(args)),
        Command::Inbound(args) => run_async(inbound_cmd::inbound(args)),
        Command::Optouts(args) => run_async(inbound_cmd::optouts(args)),
        Command::Serve(args) => run_async(serve_cmd::serve(args)),
        Command::Replies(args) => run_async(replies_cmd::run(args)),
        Command::Alerts(args) => run_async(alerts_cmd::run(args)),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn run_async(
    command: impl std::future::Future<Output = Result<ExitCode, String>>,
) -> Result<ExitCode, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(command)
}
