//! The properties the fuzz targets check: one function per target, each taking the raw bytes
//! libFuzzer generates and panicking when a property does not hold (libFuzzer records the
//! input as a crash).
//!
//! This file is compiled twice: into the fuzz crate (`fuzz/src/lib.rs`, used by every
//! `fuzz_targets/*.rs`) and, by `#[path]`, into the test suite
//! (`tests/tests/fuzz_regressions.rs`), which replays every saved crash and every corpus file
//! through the very same functions with plain `cargo test`.

use std::collections::BTreeSet;

use sms_core::keywords::classify;
use sms_core::phone::parse_with_crate;
use sms_core::segment::{self, Encoding, SegmentOptions};
use sms_core::{KeywordClass, PhoneNumber, Region, Template, TemplateError};
use sms_twilio::signature::{SignatureValidator, compute_signature};

/// Every target, by the name of its file in `fuzz_targets/` and its folder in `corpus/` and
/// `regressions/`.
pub const TARGETS: &[&str] = &[
    "recipients_csv",
    "template",
    "phone",
    "webhook",
    "segments",
    "keywords",
    "jsonl",
];

/// Runs the check of `target` on `data`. `false` when there is no such target.
pub fn check(target: &str, data: &[u8]) -> bool {
    match target {
        "recipients_csv" => recipients_csv(data),
        "template" => template(data),
        "phone" => phone(data),
        "webhook" => webhook(data),
        "segments" => segments(data),
        "keywords" => keywords(data),
        "jsonl" => jsonl(data),
        _ => return false,
    }
    true
}

/// The recipients CSV reader: never panics; the header is the only thing that can make the
/// whole file unreadable; every row after it comes back either as a recipient or as a
/// malformed row with its line number, none lost, none counted twice.
pub fn recipients_csv(data: &[u8]) {
    let file = match sms_cli::recipients_csv::read(data) {
        Ok(file) => file,
        Err(error) => {
            assert!(
                error.contains("header"),
                "only the header may make a file unreadable, got {error:?}"
            );
            return;
        }
    };
    // Count the rows with a plain CSV reader: the reader under test must account for each.
    let rows = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(data)
        .records()
        .count();
    assert_eq!(
        file.recipients.len() + file.malformed.len(),
        rows,
        "{} recipients + {} malformed rows, but the file has {rows} rows",
        file.recipients.len(),
        file.malformed.len()
    );
    let mut previous = 0;
    for row in &file.malformed {
        assert!(
            row.line >= 2,
            "a malformed row must name its line (the header is line 1): {row:?}"
        );
        assert!(row.line >= previous, "malformed rows out of order: {row:?}");
        assert!(
            !row.error.is_empty(),
            "a malformed row must say why: {row:?}"
        );
        previous = row.line;
    }
    let extra: BTreeSet<&str> = file.extra_columns.iter().map(String::as_str).collect();
    for recipient in &file.recipients {
        let id = recipient.record_id.as_str();
        assert!(!id.is_empty() && id == id.trim(), "record id {id:?}");
        assert_eq!(recipient.mobile, recipient.mobile.trim());
        let fields: BTreeSet<&str> = recipient.fields.keys().map(String::as_str).collect();
        assert_eq!(fields, extra, "every recipient has every merge field");
    }
}

/// The template parser and renderer: never panic; a template parses exactly when the rules
/// written out below (an independent reading of the syntax) accept it, and rendering with every
/// field present gives the text with each field replaced and each `{{` / `}}` made one brace:
/// no `{` or `}` is left in the text except those the template escaped.
pub fn template(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let value = |name: &str| format!("<{name}>");
    let parsed = Template::parse(source);
    let Some(expected) = render_by_the_rules(source, value) else {
        assert!(parsed.is_err(), "{source:?} breaks the syntax, yet parsed");
        return;
    };
    let template = match parsed {
        Ok(template) => template,
        Err(error) => panic!("{source:?} follows the syntax, yet: {error}"),
    };
    assert_eq!(template.source(), source);
    assert_eq!(template.fields(), expected.fields);
    assert_eq!(template.is_constant(), expected.fields.is_empty());
    let values: Vec<(String, String)> = expected
        .fields
        .iter()
        .map(|f| ((*f).to_owned(), value(f)))
        .collect();
    let lookup = |name: &str| {
        values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let rendered = match template.render(lookup) {
        Ok(rendered) => rendered,
        Err(error) => panic!("{source:?} with every field present: {error}"),
    };
    assert_eq!(rendered, expected.text, "rendering {source:?}");
    let braces = rendered.chars().filter(|c| matches!(c, '{' | '}')).count();
    assert_eq!(
        braces, expected.escaped_braces,
        "{source:?} rendered as {rendered:?}: a brace that was not escaped is left"
    );
    if let Some(first) = expected.fields.first() {
        assert_eq!(
            template.render(|_| None),
            Err(TemplateError::MissingValue {
                name: (*first).to_owned()
            }),
            "a missing value must stop the render, never leave a hole"
        );
    }
}

/// What the template syntax says a source renders to.
struct Expected<'a> {
    text: String,
    fields: Vec<&'a str>,
    escaped_braces: usize,
}

/// The syntax, read from the documentation: `{{` and `}}` are literal braces; `{name}` is a
/// field whose name (surrounding white space ignored) is letters, digits and `_`; any other
/// brace is an error.
fn render_by_the_rules(source: &str, value: impl Fn(&str) -> String) -> Option<Expected<'_>> {
    let mut expected = Expected {
        text: String::new(),
        fields: Vec::new(),
        escaped_braces: 0,
    };
    let mut rest = source;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") || rest.starts_with("}}") {
            expected.text.push(c);
            expected.escaped_braces += 1;
            rest = &rest[2..];
        } else if c == '}' {
            return None;
        } else if c == '{' {
            let (inside, after) = rest[1..].split_once('}')?;
            let name = inside.trim();
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return None;
            }
            expected.text.push_str(&value(name));
            if !expected.fields.contains(&name) {
                expected.fields.push(name);
            }
            rest = after;
        } else {
            expected.text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Some(expected)
}

/// Default regions the phone target tries (the first byte of the input picks one), with their
/// country calling codes. US (the default, so twice as likely) and CA take the fast path for
/// national input; the others only for `+1` input.
const REGIONS: &[(&str, &str)] = &[
    ("US", "1"),
    ("CA", "1"),
    ("US", "1"),
    ("GB", "44"),
    ("AU", "61"),
];

/// Phone parsing, differentially: the fast NANP path (`PhoneNumber::parse`) and the
/// `phonenumber` crate (`parse_with_crate`) give the same answer; and a number accepted keeps
/// the digits typed: for a North American result, its ten national digits are exactly the
/// digits of the input less a leading `1` (or `011 1`, the international prefix dialled from
/// North America); for any result, its digits can be read in order
/// from the region's calling code followed by the digits typed (nothing invented, such as a
/// letter turned into its keypad digit).
///
/// The first byte picks the default region; the rest is the text typed.
pub fn phone(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (code, calling_code) = REGIONS[usize::from(selector) % REGIONS.len()];
    let Some(region) = Region::parse(code) else {
        panic!("{code} is a region of the metadata");
    };
    let fast = PhoneNumber::parse(text, region);
    let reference = parse_with_crate(text, region);
    assert_eq!(
        fast, reference,
        "fast path and crate disagree on {text:?} (region {region})"
    );
    let Ok(number) = fast else {
        return;
    };
    let kept = number.digits().to_string();
    let typed: String = text.chars().filter_map(decimal_digit).collect();
    // From another region a `+1` number may be dialled through that region's own prefix; the
    // rule below still holds for it.
    if calling_code == "1"
        && let Some(national) = kept.strip_prefix('1').filter(|n| n.len() == 10)
    {
        // Dialled from North America, `011` is the international prefix, not part of the number.
        let typed_number = typed
            .strip_prefix("0111")
            .map_or(typed.as_str(), |_| &typed[3..]);
        let typed_national = typed_number.strip_prefix('1').unwrap_or(typed_number);
        assert_eq!(
            typed_national, national,
            "{text:?} (region {region}) became {number}: the digits kept are not the digits typed"
        );
    }
    let available = format!("{calling_code}{typed}");
    assert!(
        is_subsequence(&kept, &available),
        "{text:?} (region {region}) became {number}: digits that were never typed"
    );
}

/// The value of a decimal digit in any script the phone-number metadata reads (ASCII,
/// full-width, Arabic-Indic, Devanagari, ...), as a character `'0'..='9'`.
fn decimal_digit(c: char) -> Option<char> {
    const ZEROS: [u32; 16] = [
        0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
        0xE50, 0xED0, 0xFF10,
    ];
    let code = u32::from(c);
    ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
        .and_then(|&zero| char::from_digit(code - zero, 10))
}

/// Whether `needle` can be read, in order, in `haystack` (skipping characters of it).
fn is_subsequence(needle: &str, haystack: &str) -> bool {
    let mut rest = haystack.chars();
    needle.chars().all(|n| rest.any(|h| h == n))
}

/// The auth token the webhook target signs with.
const TOKEN: &str = "fuzz-auth-token";
/// The token of a rotation in progress: signatures made with it must verify too.
const OTHER_TOKEN: &str = "fuzz-previous-token";

/// Webhook forms with signatures: parsing any bytes as a form never panics; a signature that
/// Twilio would compute over the URL and the parsed form verifies (with either token of a
/// rotation); after any single-byte change to the URL, the body or the signature, the old
/// signature verifies only when what Twilio signs (the URL and the sorted `name+value` pairs)
/// is unchanged. The inbound and status readers never panic on any form either.
///
/// Layout of `data`: two bytes of position and one replacement byte for the change, then the
/// URL up to the first `\n`, then the body.
pub fn webhook(data: &[u8]) {
    let Some(([hi, lo, replacement], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let (url, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let request_url = String::from_utf8_lossy(url);
    let params = sms_twilio::parse_form(body);
    let signature = compute_signature(TOKEN, &request_url, &params);
    let validator = SignatureValidator::new(TOKEN).with_additional_token(OTHER_TOKEN);
    assert_eq!(
        validator.validate(&request_url, &params, Some(&signature)),
        Ok(()),
        "a signature computed over the request must verify: {request_url:?} {params:?}"
    );
    let other = compute_signature(OTHER_TOKEN, &request_url, &params);
    assert_eq!(
        validator.validate(&request_url, &params, Some(&other)),
        Ok(())
    );
    assert!(
        SignatureValidator::new(OTHER_TOKEN)
            .validate(&request_url, &params, Some(&signature))
            .is_err(),
        "a signature made with another token must not verify"
    );

    // One byte changed somewhere in URL, body or signature.
    let mut url = url.to_vec();
    let mut body = body.to_vec();
    let mut header = signature.clone().into_bytes();
    let total = url.len() + body.len() + header.len();
    let mut at = (usize::from(*hi) << 8 | usize::from(*lo)) % total;
    let target = if at < url.len() {
        &mut url
    } else if at < url.len() + body.len() {
        at -= url.len();
        &mut body
    } else {
        at -= url.len() + body.len();
        &mut header
    };
    if target[at] == *replacement {
        return;
    }
    target[at] = *replacement;
    let changed_url = String::from_utf8_lossy(&url);
    let changed_params = sms_twilio::parse_form(&body);
    let changed_header = String::from_utf8_lossy(&header);
    let verified = validator
        .validate(&changed_url, &changed_params, Some(&changed_header))
        .is_ok();
    // The URL and the form are signed as one string, so compare that string.
    let same_signed = format!("{changed_url}{}", signed_pairs(&changed_params))
        == format!("{request_url}{}", signed_pairs(&params))
        && changed_header.trim() == signature;
    assert_eq!(
        verified, same_signed,
        "after one byte changed ({changed_url:?}, {changed_params:?}, {changed_header:?}) the \
         old signature must verify exactly when the signed data is unchanged"
    );

    // Whatever the form holds, reading it as an inbound text or a status callback answers,
    // never panics.
    if let Ok(message) = sms_twilio::InboundMessage::parse(&params) {
        let classification = message.classify();
        if classification.class == KeywordClass::Other {
            assert_eq!(classification.keyword, None, "{classification:?}");
        }
    }
    let _ = sms_twilio::StatusUpdate::parse(&params);
}

/// What Twilio signs of a form, after the URL: every `name` then `value`, sorted, identical
/// pairs once. (Twilio's scheme concatenates without separators, so `ab=c` and `ab&c` sign the
/// same; that is the scheme, not a defect of this implementation.)
fn signed_pairs(params: &[(String, String)]) -> String {
    let pairs: BTreeSet<&(String, String)> = params.iter().collect();
    pairs.iter().map(|(n, v)| format!("{n}{v}")).collect()
}

/// The segment counter: `count` and `analyze` never panic and agree on encoding and segments,
/// with Smart Encoding and forced UCS-2 on and off; the report adds up; a segment holds at most
/// 160 septets / 70 units alone, 153 / 67 as part of several, unless a grapheme longer than a
/// third of a segment is packed the calculator's way (it appends the grapheme that overflowed
/// without checking that it fits: `tests/data/segments/RULES.md`).
pub fn segments(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for (smart_encoding, force_ucs2) in [(false, false), (true, false), (false, true), (true, true)]
    {
        let options = SegmentOptions {
            smart_encoding,
            force_ucs2,
        };
        let quick = segment::count(&text, options);
        let report = segment::analyze(&text, options);
        assert_eq!(
            (quick.encoding, quick.segments),
            (report.encoding, report.segments),
            "count and analyze disagree on {text:?} with {options:?}"
        );
        assert!(report.segments >= 1);
        assert_eq!(report.segment_units.len(), report.segments as usize);
        assert_eq!(report.segment_chars.len(), report.segments as usize);
        if force_ucs2 {
            assert_eq!(report.encoding, Encoding::Ucs2);
        }
        let sent = report.smart_text.as_deref().unwrap_or(&text);
        let bits_per_unit = match report.encoding {
            Encoding::Gsm7 => 7,
            Encoding::Ucs2 => 16,
        };
        let units: u32 = report.segment_units.iter().sum();
        let expected_units: usize = match report.encoding {
            Encoding::Gsm7 => sent
                .chars()
                .map(|c| usize::from(segment::gsm7_septets(c)))
                .sum(),
            Encoding::Ucs2 => sent.encode_utf16().count(),
        };
        assert_eq!(units as usize, expected_units, "units of {text:?}");
        assert_eq!(report.message_size_bits, units * bits_per_unit);
        let grapheme_total: u32 = report.segment_chars.iter().sum();
        assert_eq!(grapheme_total, report.graphemes);
        let (single, part) = match report.encoding {
            Encoding::Gsm7 => (160, 153),
            Encoding::Ucs2 => (70, 67),
        };
        let limit = if report.segments == 1 { single } else { part };
        let oversized = report.encoding == Encoding::Ucs2
            && segment::graphemes(sent).any(|g| g.encode_utf16().count() > 32);
        if !oversized {
            assert!(
                report.segment_units.iter().all(|&u| u <= limit),
                "{text:?} with {options:?}: segment units {:?} over {limit}",
                report.segment_units
            );
        }
    }
}

/// White space the keyword target puts around a reply (as phones and carriers do).
const SPACES: &[&str] = &[
    " ", "\t", "\n", "\r\n", "\u{a0}", "\u{3000}", "\u{2003}", "  \n ",
];

/// Keyword classification: never panics; a keyword result names a keyword of its list; and
/// white space around a reply changes nothing.
pub fn keywords(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let body = String::from_utf8_lossy(rest);
    let plain = classify(&body);
    match plain.class {
        KeywordClass::Other => assert_eq!(plain.keyword, None),
        _ => assert!(plain.keyword.is_some(), "{body:?}: {plain:?}"),
    }
    let before = SPACES[usize::from(selector & 7)];
    let after = SPACES[usize::from(selector >> 5)];
    for padded in [
        format!("{before}{body}"),
        format!("{body}{after}"),
        format!("{before}{body}{after}"),
    ] {
        assert_eq!(
            classify(&padded),
            plain,
            "{body:?} and {padded:?} classify differently"
        );
    }
}

/// The `sms segments --jsonl` reader: never panics, and each input line gives exactly one
/// output line, a JSON object that is either the figures or `{"error": .., "line": N}` with N
/// that line's number.
pub fn jsonl(data: &[u8]) {
    for defaults in [
        SegmentOptions::default(),
        SegmentOptions {
            smart_encoding: true,
            force_ucs2: false,
        },
    ] {
        let mut output = Vec::new();
        let result = sms_cli::segments::run_jsonl(data, &mut output, defaults);
        assert!(result.is_ok(), "writing to memory cannot fail");
        let lines_in = data.split(|&b| b == b'\n').count() - usize::from(data.ends_with(b"\n"));
        let lines_in = if data.is_empty() { 0 } else { lines_in };
        let text = match std::str::from_utf8(&output) {
            Ok(text) => text,
            Err(error) => panic!("output is not UTF-8: {error}"),
        };
        assert!(text.is_empty() || text.ends_with('\n'));
        let lines_out: Vec<&str> = text.lines().collect();
        assert_eq!(lines_out.len(), lines_in, "one output line per input line");
        for (index, line) in lines_out.iter().enumerate() {
            let value: serde_json::Value = match serde_json::from_str(line) {
                Ok(value) => value,
                Err(error) => panic!("output line {line:?} is not JSON: {error}"),
            };
            let object = value.as_object().expect("each output line is an object");
            if let Some(error) = object.get("error") {
                assert!(error.is_string(), "{line}");
                assert_eq!(
                    object.get("line").and_then(serde_json::Value::as_u64),
                    Some(index as u64 + 1),
                    "an error line names its input line: {line}"
                );
            } else {
                assert!(
                    object.contains_key("encoding") && object.contains_key("segments"),
                    "{line}"
                );
            }
        }
    }
}
