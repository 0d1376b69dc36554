//! `sms segments`: placeholder, being written.

use std::process::ExitCode;

/// Arguments of `sms segments`.
#[derive(clap::Args)]
pub struct SegmentsArgs {
    /// The text (read from standard input when absent).
    pub text: Option<String>,
    /// Apply Twilio Smart Encoding first.
    #[arg(long)]
    pub smart_encoding: bool,
    /// Read JSON lines `{"text": ..., "smart_encoding": bool}` on stdin, write one JSON line each.
    #[arg(long)]
    pub jsonl: bool,
}

/// Runs `sms segments`.
pub fn run(args: SegmentsArgs) -> Result<ExitCode, String> {
    let text = args.text.unwrap_or_default();
    let count = sms_core::segment::count(
        &text,
        sms_core::SegmentOptions {
            smart_encoding: args.smart_encoding,
            force_ucs2: false,
        },
    );
    println!("{} {}", count.encoding.as_str(), count.segments);
    Ok(ExitCode::SUCCESS)
}
