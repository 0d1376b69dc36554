//! Peak memory and time of a 1,000,000-recipient preview, in one process on one core.
//!
//! `cargo run --release -p sms-benches --bin preview_peak [-- COUNT]`
//! Recipients are streamed into the preview as a host reading its database would; the figure
//! printed is the process's peak resident set (VmHWM), which includes the preview itself.

use std::time::Instant;

use sms_benches::{PREVIEW_TEMPLATE, preview_settings, recipients};
use sms_core::preview::preview;
use sms_core::{OptOutSnapshot, Template};

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let template = Template::parse(PREVIEW_TEMPLATE).expect("valid template");
    let settings = preview_settings();
    let start = Instant::now();
    let result = preview(
        recipients(count),
        &template,
        &OptOutSnapshot::default(),
        &settings,
    )
    .expect("fields exist");
    let elapsed = start.elapsed();
    println!(
        "preview of {count} recipients (generated while streaming): {:.3} s, {:.0} recipients/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    println!(
        "texts {}, skipped {}, message units {}, cost {}",
        result.totals.texts,
        result.totals.blocked,
        result.totals.message_units,
        result.totals.estimated_cost
    );
    match peak_rss_mb() {
        Some(mb) => println!("peak resident memory: {mb:.0} MB"),
        None => println!("peak resident memory: unavailable (no /proc/self/status)"),
    }
}
