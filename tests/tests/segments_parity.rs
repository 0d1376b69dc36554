//! Parity with Twilio's calculator on every record of `segments/public.jsonl`.
//!
//! The crate takes grapheme rules from `unicode-segmentation` (current Unicode), so records
//! flagged `grapheme_rules_differ` are checked against their `modern_graphemes` figures
//! (what the calculator gives on current-Unicode graphemes); all other figures must match
//! the calculator's own.

use std::fs;

use serde::Deserialize;
use serde_json::Value;
use sms_core::segment::{self, Encoding, SegmentOptions, SegmentReport};

#[derive(Deserialize)]
struct Record {
    id: String,
    text: String,
    smart_encoding: bool,
    encoding_param: String,
    encoding: Encoding,
    segments: u32,
    total_size_bits: u32,
    message_size_bits: u32,
    number_of_characters: u32,
    number_of_unicode_scalars: u32,
    graphemes: u32,
    segment_chars: Vec<u32>,
    segment_units: Vec<u32>,
    segment_bits: Vec<u32>,
    non_gsm: Vec<String>,
    line_break_style: Option<segment::LineBreakStyle>,
    smart_text: Option<String>,
    modern_graphemes: Option<Modern>,
}

/// The figures that depend on grapheme rules, recomputed with current Unicode rules.
#[derive(Deserialize)]
struct Modern {
    segments: u32,
    number_of_characters: u32,
    graphemes: u32,
    segment_chars: Vec<u32>,
    segment_units: Vec<u32>,
    total_size_bits: u32,
    non_gsm: Vec<String>,
}

fn mismatches(record: &Record, report: &SegmentReport) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, ok: bool, got: String, want: String| {
        if !ok {
            out.push(format!("{field}: got {got}, want {want}"));
        }
    };
    macro_rules! field {
        ($name:ident, $want:expr) => {
            check(
                stringify!($name),
                report.$name == $want,
                format!("{:?}", report.$name),
                format!("{:?}", $want),
            )
        };
    }
    field!(encoding, record.encoding);
    field!(message_size_bits, record.message_size_bits);
    field!(number_of_unicode_scalars, record.number_of_unicode_scalars);
    field!(line_break_style, record.line_break_style);
    if record.smart_encoding {
        field!(smart_text, record.smart_text.clone());
    } else {
        field!(smart_text, None::<String>);
    }
    match &record.modern_graphemes {
        None => {
            field!(segments, record.segments);
            field!(total_size_bits, record.total_size_bits);
            field!(number_of_characters, record.number_of_characters);
            field!(graphemes, record.graphemes);
            field!(segment_chars, record.segment_chars.clone());
            field!(segment_units, record.segment_units.clone());
            field!(segment_bits, record.segment_bits.clone());
            field!(non_gsm, record.non_gsm.clone());
        }
        Some(modern) => {
            field!(segments, modern.segments);
            field!(total_size_bits, modern.total_size_bits);
            field!(number_of_characters, modern.number_of_characters);
            field!(graphemes, modern.graphemes);
            field!(segment_chars, modern.segment_chars.clone());
            field!(segment_units, modern.segment_units.clone());
            // `modern_graphemes` leaves segment bits out: they follow from the units.
            let bits = if record.encoding == Encoding::Gsm7 {
                7
            } else {
                16
            };
            let segment_bits: Vec<u32> = modern.segment_units.iter().map(|u| u * bits).collect();
            field!(segment_bits, segment_bits);
            field!(non_gsm, modern.non_gsm.clone());
        }
    }
    out
}

#[test]
fn every_public_record_matches_the_calculator() {
    let path = sms_tests::data_file("segments/public.jsonl");
    let data = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut checked, mut modern, mut failures) = (0, 0, Vec::new());
    for (n, line) in data
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: Record =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        let options = SegmentOptions {
            smart_encoding: record.smart_encoding,
            force_ucs2: match record.encoding_param.as_str() {
                "auto" => false,
                "UCS-2" => true,
                other => panic!("line {}: unexpected encoding_param {other}", n + 1),
            },
        };
        let report = segment::analyze(&record.text, options);
        let counted = segment::count(&record.text, options);
        let mut wrong = mismatches(&record, &report);
        if (counted.encoding, counted.segments) != (report.encoding, report.segments) {
            wrong.push(format!("count() gives {counted:?}"));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} (smart {}, {}): {}",
                record.id,
                record.smart_encoding,
                record.encoding_param,
                wrong.join("; ")
            ));
        }
        checked += 1;
        modern += usize::from(record.modern_graphemes.is_some());
    }
    println!("checked {checked} records ({modern} against modern_graphemes)");
    assert!(
        failures.is_empty(),
        "{} of {checked} records differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(checked, 3794, "public.jsonl should hold 3,794 records");
}

/// Every record's JSON fields are known to this test: a new field in the data would show up
/// here rather than be silently ignored.
#[test]
fn public_records_hold_only_known_fields() {
    let path = sms_tests::data_file("segments/public.jsonl");
    let data = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let known = [
        "id",
        "category",
        "text",
        "smart_encoding",
        "encoding_param",
        "encoding",
        "segments",
        "total_size_bits",
        "message_size_bits",
        "number_of_characters",
        "number_of_unicode_scalars",
        "graphemes",
        "segment_chars",
        "segment_units",
        "segment_bits",
        "non_gsm",
        "line_break_style",
        "smart_text",
        "flags",
        "modern_graphemes",
    ];
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).expect("the first test parses every line");
        let object = value.as_object().expect("each record is a JSON object");
        for key in object.keys() {
            assert!(known.contains(&key.as_str()), "unknown field {key}");
        }
    }
}
