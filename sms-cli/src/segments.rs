//! `sms segments`: how many message units a text costs, and why.
//!
//! Two modes:
//! * for a person: `sms segments [--smart-encoding] [TEXT]` prints the encoding, the
//!   segments, units and characters per segment, and marks the characters that force UCS-2;
//! * for tools: `sms segments --jsonl` reads JSON lines and writes one JSON line per input
//!   line, in the same order, with the field names of the calculator's test vectors
//!   (`public.jsonl`). That output is a stable interface.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufWriter, IsTerminal, Read, Write};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use sms_core::segment::{self, Encoding, LineBreakStyle, SegmentOptions, SegmentReport};

/// Arguments of `sms segments`.
#[derive(clap::Args)]
#[command(after_help = JSONL_HELP)]
pub struct SegmentsArgs {
    /// The text. When absent it is read from standard input, less one final line break
    /// (pass the text as an argument to count a final line break).
    pub text: Option<String>,
    /// Apply Twilio Smart Encoding first (with --jsonl: the default for lines that do not
    /// say).
    #[arg(long)]
    pub smart_encoding: bool,
    /// Send as UCS-2 even when the text is all GSM-7 (with --jsonl: the default for lines
    /// that do not say).
    #[arg(long)]
    pub force_ucs2: bool,
    /// Read JSON lines `{"text": ..., "smart_encoding": bool}` on stdin, write one JSON line each.
    #[arg(long, conflicts_with = "text")]
    pub jsonl: bool,
}

const JSONL_HELP: &str = "\
--jsonl input, one JSON value per line:
  {\"text\": \"...\", \"smart_encoding\": true, \"encoding_param\": \"UCS-2\", \"id\": ...}
  (only text is required; encoding_param is \"auto\", \"GSM-7\" (refuses UCS-2 text) or
  \"UCS-2\" (forces it); a bare JSON string is a text with the default options)
--jsonl output, one line per input line, in order:
  {\"id\", \"encoding\", \"segments\", \"total_size_bits\", \"message_size_bits\",
   \"number_of_characters\", \"number_of_unicode_scalars\", \"graphemes\", \"segment_chars\",
   \"segment_units\", \"segment_bits\", \"non_gsm\", \"line_break_style\", \"smart_text\"}
  (id only when given; smart_text only with smart encoding). A line that cannot be read gives
  {\"error\": \"...\", \"line\": N}; the others are still processed and the exit status is 1.";

/// Runs `sms segments`.
pub fn run(args: SegmentsArgs) -> Result<ExitCode, String> {
    let defaults = SegmentOptions {
        smart_encoding: args.smart_encoding,
        force_ucs2: args.force_ucs2,
    };
    if args.jsonl {
        let stdin = io::stdin().lock();
        let stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
        return run_jsonl(stdin, stdout, defaults).map_err(|e| format!("writing output: {e}"));
    }
    let text = match args.text {
        Some(text) => text,
        None => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading standard input: {e}"))?;
            let kept = text
                .strip_suffix("\r\n")
                .or_else(|| text.strip_suffix('\n'))
                .map_or(text.len(), str::len);
            text.truncate(kept);
            text
        }
    };
    let colour = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let report = segment::analyze(&text, defaults);
    print!("{}", describe(&report, &text, defaults, colour));
    Ok(ExitCode::SUCCESS)
}

/// One input line of `--jsonl` (other fields, such as those of `public.jsonl` records, are
/// ignored, so the test vectors can be fed back in as they are).
#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    smart_encoding: Option<bool>,
    #[serde(borrow)]
    encoding_param: Option<Cow<'a, str>>,
    id: Option<serde_json::Value>,
}

/// One output line of `--jsonl`: the calculator's figures, under its test vectors' names.
#[derive(Serialize)]
struct Row<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<serde_json::Value>,
    encoding: Encoding,
    segments: u32,
    total_size_bits: u32,
    message_size_bits: u32,
    number_of_characters: u32,
    number_of_unicode_scalars: u32,
    graphemes: u32,
    segment_chars: &'a [u32],
    segment_units: &'a [u32],
    segment_bits: &'a [u32],
    non_gsm: &'a [String],
    line_break_style: Option<LineBreakStyle>,
    #[serde(skip_serializing_if = "Option::is_none")]
    smart_text: Option<&'a str>,
}

/// A JSON string, borrowed from the line when it has no escapes.
#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Serialize)]
struct ErrorRow<'a> {
    error: &'a str,
    line: usize,
}

/// Reads JSON lines from `input`, writes one result line each to `output`; a bad line gives
/// an error line and exit status 1, and the rest is still processed.
///
/// Public for the fuzz target and tests, which feed it arbitrary bytes in-process.
pub fn run_jsonl(
    mut input: impl BufRead,
    mut output: impl Write,
    defaults: SegmentOptions,
) -> io::Result<ExitCode> {
    let mut line = Vec::with_capacity(1024);
    let mut number = 0;
    let mut failed = false;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        match parse_line(trimmed, defaults) {
            Ok(parsed) => {
                let report = segment::analyze(&parsed.text, parsed.options);
                if report.encoding == Encoding::Ucs2 && parsed.require_gsm7 {
                    failed = true;
                    let error = format!(
                        "the text is incompatible with GSM-7 encoding: not GSM-7: {}",
                        report.non_gsm.join(" ")
                    );
                    let row = ErrorRow {
                        error: &error,
                        line: number,
                    };
                    serde_json::to_writer(&mut output, &row)?;
                } else {
                    serde_json::to_writer(&mut output, &row(&report, parsed.id))?;
                }
            }
            Err(error) => {
                failed = true;
                let row = ErrorRow {
                    error: &error,
                    line: number,
                };
                serde_json::to_writer(&mut output, &row)?;
            }
        }
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What one input line asks for.
struct Parsed<'a> {
    text: Cow<'a, str>,
    options: SegmentOptions,
    /// `encoding_param: "GSM-7"`: the calculator refuses text that needs UCS-2.
    require_gsm7: bool,
    id: Option<serde_json::Value>,
}

fn parse_line(line: &[u8], defaults: SegmentOptions) -> Result<Parsed<'_>, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err("empty line: expected a JSON object with a \"text\" field".into());
    }
    let invalid = |e: serde_json::Error| match e.classify() {
        serde_json::error::Category::Data => format!(
            "expected a JSON string or an object {{\"text\": string, \"smart_encoding\": bool, \
             \"encoding_param\": \"auto\" | \"GSM-7\" | \"UCS-2\"}}: {e}"
        ),
        _ => format!("invalid JSON: {e}"),
    };
    // A bare JSON string is a text with the default options.
    if line.trim_ascii_start().first() == Some(&b'"') {
        let text: Cow<'_, str> = serde_json::from_slice::<Borrowed<'_>>(line)
            .map_err(invalid)?
            .0;
        return Ok(Parsed {
            text,
            options: defaults,
            require_gsm7: false,
            id: None,
        });
    }
    let request: Request<'_> = serde_json::from_slice(line).map_err(invalid)?;
    let force_ucs2 = match request.encoding_param.as_deref() {
        None => defaults.force_ucs2,
        // "GSM-7" counts like "auto"; the caller rejects the text if it turns out UCS-2.
        Some("auto" | "GSM-7") => false,
        Some("UCS-2") => true,
        Some(other) => {
            return Err(format!(
                "encoding_param {other:?} is not supported: use \"auto\", \"GSM-7\" or \"UCS-2\""
            ));
        }
    };
    let options = SegmentOptions {
        smart_encoding: request.smart_encoding.unwrap_or(defaults.smart_encoding),
        force_ucs2,
    };
    Ok(Parsed {
        text: request.text,
        options,
        require_gsm7: request.encoding_param.as_deref() == Some("GSM-7"),
        id: request.id,
    })
}

fn row(report: &SegmentReport, id: Option<serde_json::Value>) -> Row<'_> {
    Row {
        id,
        encoding: report.encoding,
        segments: report.segments,
        total_size_bits: report.total_size_bits,
        message_size_bits: report.message_size_bits,
        number_of_characters: report.number_of_characters,
        number_of_unicode_scalars: report.number_of_unicode_scalars,
        graphemes: report.graphemes,
        segment_chars: &report.segment_chars,
        segment_units: &report.segment_units,
        segment_bits: &report.segment_bits,
        non_gsm: &report.non_gsm,
        line_break_style: report.line_break_style,
        smart_text: report.smart_text.as_deref(),
    }
}

const MARK_ON: &str = "\x1b[1;7;31m";
const MARK_OFF: &str = "\x1b[0m";

/// The report for a person. `colour` marks the characters that force UCS-2 with ANSI
/// reverse video; otherwise they are put in brackets.
fn describe(report: &SegmentReport, text: &str, options: SegmentOptions, colour: bool) -> String {
    let mut out = String::new();
    let units = match report.encoding {
        Encoding::Gsm7 => "septets",
        Encoding::Ucs2 => "UTF-16 units",
    };
    let forced = if options.force_ucs2 && report.non_gsm.is_empty() {
        " (forced)"
    } else {
        ""
    };
    let total_units: u32 = report.segment_units.iter().sum();
    let _ = writeln!(out, "encoding       {}{forced}", report.encoding.as_str());
    let _ = writeln!(out, "segments       {} (message units)", report.segments);
    let _ = writeln!(
        out,
        "length         {total_units} {units}, {} characters",
        report.graphemes
    );
    for (i, (units_in, chars_in)) in report
        .segment_units
        .iter()
        .zip(&report.segment_chars)
        .enumerate()
    {
        let _ = writeln!(
            out,
            "  segment {:<4} {units_in} {units}, {chars_in} characters",
            i + 1
        );
    }
    let sent = report.smart_text.as_deref().unwrap_or(text);
    if let Some(smart) = &report.smart_text {
        let note = if smart == text { " (unchanged)" } else { "" };
        let _ = writeln!(out, "smart text{note}:");
        let _ = writeln!(out, "  {}", shown(smart));
    }
    if report.non_gsm.is_empty() {
        let _ = writeln!(out, "forcing UCS-2  none: every character is GSM-7");
        return out;
    }
    let n = report.non_gsm.len();
    let plural = if n == 1 { "" } else { "s" };
    let _ = writeln!(out, "forcing UCS-2  {n} character{plural}:");
    let mut marked = String::with_capacity(sent.len() + 16);
    for g in segment::graphemes(sent) {
        match (segment::is_gsm7_grapheme(g), colour) {
            (true, _) => marked.push_str(&shown(g)),
            (false, true) => {
                let _ = write!(marked, "{MARK_ON}{}{MARK_OFF}", shown(g));
            }
            (false, false) => {
                let _ = write!(marked, "[{}]", shown(g));
            }
        }
    }
    let _ = writeln!(out, "  {marked}");
    let mut listed: Vec<(&str, usize)> = Vec::new();
    for g in &report.non_gsm {
        match listed.iter_mut().find(|(seen, _)| seen == g) {
            Some((_, n)) => *n += 1,
            None => listed.push((g, 1)),
        }
    }
    for (g, n) in listed {
        let points: Vec<String> = g.chars().map(|c| format!("U+{:04X}", c as u32)).collect();
        let times = if n > 1 {
            format!(" (x{n})")
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {}  {}{times}", shown(g), points.join(" "));
    }
    out
}

/// Text safe to print: line feeds stay, other control characters are escaped so they
/// cannot move the cursor or change the terminal.
fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() && c != '\n' {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl(input: &str) -> (String, ExitCode) {
        let mut out = Vec::new();
        let code = run_jsonl(input.as_bytes(), &mut out, SegmentOptions::default())
            .expect("writing to a Vec cannot fail");
        (
            String::from_utf8(out).expect("serde_json writes UTF-8"),
            code,
        )
    }

    #[test]
    fn jsonl_keeps_one_line_per_input_line() {
        let (out, code) =
            jsonl("\"hi\"\n\n{\"text\": 5}\n{\"text\":\"a\",\"encoding_param\":\"UCS-2\"}\n");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("{\"encoding\":\"GSM-7\",\"segments\":1"));
        assert!(lines[1].contains("\"line\":2"));
        assert!(lines[2].contains("\"line\":3"));
        assert!(lines[3].starts_with("{\"encoding\":\"UCS-2\""));
        assert_eq!(code, ExitCode::FAILURE);
    }

    #[test]
    fn control_characters_are_escaped_for_display() {
        assert_eq!(shown("a\tb\x1b[0m\n"), "a\\tb\\u{1b}[0m\n");
    }
}
