//! `sms`: count segments, preview a send, and (soon) send it.

mod preview_cmd;
mod recipients_csv;
mod segments;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Segments(args) => segments::run(args),
        Command::Preview(args) => preview_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
