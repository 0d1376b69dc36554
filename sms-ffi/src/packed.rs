//! The packed form of a preview, for the Python package: the recipients in one string and the
//! answer in one string, laid out so that each side writes and reads them in a few bulk
//! operations (Python's C-level `str.join`, slicing) instead of uniffi's field-by-field buffers
//! or a JSON document, which cost Python more than the preview costs Rust (see
//! `bindings/python/bench.sh`). Strings, not bytes: uniffi hands a `String` over whole each way,
//! but copies a `Vec<u8>` one byte at a time on the Rust side (some 100 ms for the 20 MB of a
//! 100,000-record preview).
//!
//! Recipients (`n` records, at least one):
//!
//! | characters | what |
//! |---|---|
//! | up to a NUL | `n`, in decimal |
//! | `n` | each record's kind: U+0000 a client, U+0001 a staff member |
//! | one per staff member | its Permitted SMS Text, U+0000 or U+0001, in record order |
//! | `n` | U+0001 when the record has a time zone, else U+0000 |
//! | `n` | each record's number of merge fields, as the character of that code point |
//! | the rest | strings separated by NUL: each record's `record_id`, `first_name`, `last_name`, `mobile`; then each client's Permitted Marketing Methods; then each time zone given; then each record's merge fields as name, value |
//!
//! A string holding NUL adds a separator, so the count of strings no longer matches: the
//! recipients are refused, never misread.
//!
//! Answer (see [`answer`]); positions count characters (Unicode scalar values, Python's `str`
//! indexes):
//!
//! | characters | what |
//! |---|---|
//! | up to a NUL | `n`, the items, in decimal |
//! | up to a NUL | `t`, the length of the totals, in decimal |
//! | `t` | the totals as JSON, in the field names of `PreviewTotals`, and `held`: what quiet hours hold (`null`, or `records`, `earliest_ms`, `earliest_local`, `latest_ms`, `latest_local`) |
//! | `2 n` | per item, one byte: 0 (blocked), 1 (eligible, GSM-7) or 3 (eligible, UCS-2) |
//! | `8 n` | per item, its segments: a u32 (0 when blocked) |
//! | `48 n` | per item, three u64: where its `record_id`, then its `number` (eligible) or `reason_code` (blocked), then its `body` or `reason` end among the strings |
//! | the rest | the strings, one after the other |
//!
//! Numbers in the three middle runs are little-endian bytes, each byte in two hexadecimal
//! digits: Python's `bytes.fromhex` turns a run back into an array in one C call.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Why packed recipients cannot be read (the Python package then takes the generated path).
pub(crate) type Refused = String;

/// Takes `n` flag characters (U+0000 or U+0001) off the front of `text`.
fn flags<'a>(text: &mut &'a str, n: usize, what: &str) -> Result<&'a [u8], Refused> {
    let bytes = text.as_bytes();
    if bytes.len() < n {
        return Err(format!("packed recipients: {what} is cut short"));
    }
    if bytes[..n].iter().any(|&b| b > 1) {
        return Err(format!(
            "packed recipients: {what} holds a character other than U+0000 and U+0001"
        ));
    }
    // Bytes below 0x80 are whole characters: the split is at a character boundary.
    let (head, rest) = text.split_at(n);
    *text = rest;
    Ok(head.as_bytes())
}

/// The recipients of a packed string, checked whole first, then read one at a time as the
/// preview takes them: no list of them is built (it cost as much as the preview's own work).
pub(crate) struct Recipients<'a> {
    left: usize,
    kinds: std::slice::Iter<'a, u8>,
    permitted: std::slice::Iter<'a, u8>,
    zones: std::slice::Iter<'a, u8>,
    field_counts: std::str::Chars<'a>,
    main: std::str::Split<'a, char>,
    methods: std::str::Split<'a, char>,
    time_zones: std::str::Split<'a, char>,
    fields: std::str::Split<'a, char>,
}

impl Iterator for Recipients<'_> {
    type Item = sms_core::Recipient;

    fn next(&mut self) -> Option<sms_core::Recipient> {
        self.left = self.left.checked_sub(1)?;
        // Every count was checked in `recipients`: no iterator below runs short.
        fn next<'a>(strings: &mut std::str::Split<'a, char>) -> &'a str {
            strings.next().unwrap_or_default()
        }
        let record_id = sms_core::RecordId::new(next(&mut self.main));
        let first_name = next(&mut self.main).to_owned();
        let last_name = next(&mut self.main).to_owned();
        let mobile = next(&mut self.main).to_owned();
        // As `From<types::Recipient> for sms_core::Recipient`: the test below holds them equal.
        let kind = match self.kinds.next() {
            Some(0) => sms_core::RecipientKind::Client {
                permitted_marketing_methods: sms_core::PermittedMarketingMethods::new(next(
                    &mut self.methods,
                )),
            },
            _ => sms_core::RecipientKind::Staff {
                permitted_sms_text: self.permitted.next() == Some(&1),
            },
        };
        let time_zone = match self.zones.next() {
            Some(1) => Some(next(&mut self.time_zones).to_owned()),
            _ => None,
        };
        let count = self.field_counts.next().map_or(0, |c| c as usize);
        let fields = (0..count)
            .map(|_| {
                let name = next(&mut self.fields).to_owned();
                (name, next(&mut self.fields).to_owned())
            })
            .collect();
        Some(sms_core::Recipient {
            record_id,
            kind,
            first_name,
            last_name,
            mobile,
            time_zone,
            fields,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// The recipients of a packed string (the layout is in the module's documentation), or why it
/// cannot be read.
pub(crate) fn recipients(packed: &str) -> Result<Recipients<'_>, Refused> {
    let (n, mut text) = packed
        .split_once('\0')
        .ok_or("packed recipients: no record count")?;
    let n: usize = n
        .parse()
        .map_err(|_| format!("packed recipients: the record count {n:?} is not a number"))?;
    let kinds = flags(&mut text, n, "the kinds")?;
    let staff = kinds.iter().filter(|&&k| k == 1).count();
    let permitted = flags(&mut text, staff, "the staff permissions")?;
    let zones = flags(&mut text, n, "the time zone flags")?;
    let mut counts = text.char_indices();
    let fields: usize = counts.by_ref().take(n).map(|(_, c)| c as usize).sum();
    let (field_counts, text) = text.split_at(counts.next().map_or(text.len(), |(at, _)| at));
    if field_counts.chars().count() != n {
        return Err("packed recipients: the field counts are cut short".to_owned());
    }
    let zones_given = zones.iter().filter(|&&z| z == 1).count();

    // Where each run of strings starts: after the records' own (4 n), the clients'
    // (n - staff), the time zones given. One pass also counts them all.
    let sections = [4 * n, 5 * n - staff, 5 * n - staff + zones_given];
    let mut starts = [text.len(); 3];
    let mut found = 0;
    if !text.is_empty() {
        for piece in text.split('\0') {
            for (start, &section) in starts.iter_mut().zip(&sections) {
                if section == found {
                    *start = piece.as_ptr() as usize - text.as_ptr() as usize;
                }
            }
            found += 1;
        }
    }
    let expected = sections[2] + 2 * fields;
    if found != expected {
        return Err(format!(
            "packed recipients: {found} strings where {expected} were expected (a string holds NUL?)"
        ));
    }
    Ok(Recipients {
        left: n,
        kinds: kinds.iter(),
        permitted: permitted.iter(),
        zones: zones.iter(),
        field_counts: field_counts.chars(),
        main: text.split('\0'),
        methods: text[starts[0]..].split('\0'),
        time_zones: text[starts[1]..].split('\0'),
        fields: text[starts[2]..].split('\0'),
    })
}

/// The totals as the answer carries them: `PreviewTotals`' fields.
#[derive(serde::Serialize)]
struct Totals<'a> {
    records: u64,
    texts: u64,
    skipped: u64,
    message_units: u64,
    estimated_cost: String,
    skipped_by_reason: &'a std::collections::BTreeMap<String, u64>,
    /// What quiet hours hold at the time of the preview (null when nothing is held).
    held: Option<crate::types::JsonHeld>,
}

/// Appends the little-endian bytes of `value`, each in two hexadecimal digits.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

/// The strings of the answer and where each ends, in characters.
struct Strings {
    text: String,
    chars: u64,
}

impl Strings {
    /// Appends `s`; answers where it ends.
    fn push(&mut self, s: &str) -> u64 {
        self.text.push_str(s);
        self.chars += s.chars().count() as u64;
        self.chars
    }
}

/// The packed answer of a preview (the layout is in the module's documentation): what the
/// facade's `Preview` holds, item for item, with the same texts.
pub(crate) fn answer(p: &sms_core::Preview, now: sms_core::Timestamp) -> String {
    let n = p.items.len();
    let t = &p.totals;
    let totals = serde_json::to_string(&Totals {
        records: t.records,
        texts: t.texts,
        skipped: t.blocked,
        message_units: t.message_units,
        estimated_cost: t.estimated_cost.to_string(),
        skipped_by_reason: &t.blocked_by_reason,
        held: crate::types::held_json(p, now),
    })
    .unwrap_or_default(); // strings and numbers: cannot fail
    let mut flags = String::with_capacity(2 * n);
    let mut segment_counts = String::with_capacity(8 * n);
    let mut ends = String::with_capacity(48 * n);
    let mut strings = Strings {
        text: String::with_capacity(n * 64),
        chars: 0,
    };
    for item in &p.items {
        let (flag, segments, first, second) = match &item.outcome {
            sms_core::PreviewOutcome::Eligible {
                number,
                body,
                encoding,
                segments,
            } => {
                let flag = match encoding {
                    sms_core::Encoding::Gsm7 => 1,
                    sms_core::Encoding::Ucs2 => 3,
                };
                (
                    flag,
                    *segments,
                    Cow::Owned(number.e164()),
                    Cow::Borrowed(body.as_str()),
                )
            }
            sms_core::PreviewOutcome::Blocked { reason } => (
                0,
                0,
                Cow::Borrowed(reason.code()),
                Cow::Owned(reason.to_string()),
            ),
        };
        push_hex(&mut flags, &[flag]);
        push_hex(&mut segment_counts, &segments.to_le_bytes());
        push_hex(
            &mut ends,
            &strings.push(item.record_id.as_str()).to_le_bytes(),
        );
        push_hex(&mut ends, &strings.push(&first).to_le_bytes());
        push_hex(&mut ends, &strings.push(&second).to_le_bytes());
    }
    let mut out = String::with_capacity(32 + totals.len() + 58 * n + strings.text.len());
    // Writing to a String cannot fail.
    let _ = write!(out, "{n}\0{}\0", totals.chars().count());
    for run in [&totals, &flags, &segment_counts, &ends, &strings.text] {
        out.push_str(run);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Preview, PreviewOutcome, Recipient, RecipientKind};

    /// What the packed recipients read as, in full.
    fn read_recipients(packed: &str) -> Result<Vec<sms_core::Recipient>, Refused> {
        recipients(packed).map(Iterator::collect)
    }

    /// Packs recipients as the Python package does.
    fn pack(records: &[Recipient]) -> String {
        let mut out = format!("{}\0", records.len());
        let mut strings: Vec<&str> = Vec::new();
        for r in records {
            out.push(char::from(u8::from(matches!(
                r.kind,
                RecipientKind::Staff { .. }
            ))));
            strings
                .extend([&r.record_id, &r.first_name, &r.last_name, &r.mobile].map(|s| s.as_str()));
        }
        for r in records {
            if let RecipientKind::Staff { permitted_sms_text } = r.kind {
                out.push(char::from(u8::from(permitted_sms_text)));
            }
        }
        for r in records {
            if let RecipientKind::Client {
                permitted_marketing_methods,
            } = &r.kind
            {
                strings.push(permitted_marketing_methods);
            }
        }
        out.extend(
            records
                .iter()
                .map(|r| char::from(u8::from(r.time_zone.is_some()))),
        );
        strings.extend(records.iter().filter_map(|r| r.time_zone.as_deref()));
        for r in records {
            out.push(char::from_u32(r.fields.len() as u32).expect("a few fields"));
            for (name, value) in &r.fields {
                strings.extend([name.as_str(), value.as_str()]);
            }
        }
        out.push_str(&strings.join("\0"));
        out
    }

    fn sample() -> Vec<Recipient> {
        let client = |methods: &str| RecipientKind::Client {
            permitted_marketing_methods: methods.to_owned(),
        };
        let one =
            |id: &str, kind, mobile: &str, zone: Option<&str>, fields: &[(&str, &str)]| Recipient {
                record_id: id.to_owned(),
                kind,
                first_name: format!("First {id}"),
                last_name: "Zo\u{eb}".to_owned(),
                mobile: mobile.to_owned(),
                time_zone: zone.map(str::to_owned),
                fields: fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            };
        let staff = |permitted_sms_text| RecipientKind::Staff { permitted_sms_text };
        let mut many_fields: Vec<(String, String)> = (0..200)
            .map(|i| (format!("f{i}"), format!("v{i}")))
            .collect();
        many_fields.push(("course".to_owned(), "Yoga \u{1F9D8}".to_owned()));
        let many: Vec<(&str, &str)> = many_fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        vec![
            one(
                "a",
                client("Email, Text"),
                "(202) 555-0100",
                None,
                &[("course", "Yoga \u{1F9D8}")],
            ),
            one(
                "b",
                staff(true),
                "2025550101",
                Some("America/Chicago"),
                &[("course", "\u{20AC}5")],
            ),
            one(
                " c ",
                client(""),
                "",
                Some(""),
                &[("", ""), ("course", "y")],
            ),
            one("d", staff(false), "2025550102", None, &[("course", "x")]),
            one("e", client("Text"), "12345", None, &many),
            one("f", client("Text"), "2025550103", None, &[("course", "")]),
        ]
    }

    #[test]
    fn recipients_read_back_as_the_generated_path_converts_them() {
        let records = sample();
        let packed = pack(&records);
        let expected: Vec<sms_core::Recipient> = records.into_iter().map(Into::into).collect();
        assert_eq!(read_recipients(&packed), Ok(expected));
        assert_eq!(recipients(&packed).map(|r| r.size_hint()), Ok((6, Some(6))));
    }

    #[test]
    fn a_string_holding_nul_or_a_cut_buffer_is_refused_not_misread() {
        let mut records = sample();
        records[1].first_name = "A\0B".to_owned();
        assert!(read_recipients(&pack(&records)).is_err());
        // Every cut before the last separator loses a string: refused. (A cut after it only
        // shortens the last string, which no count can see: the string crosses whole.)
        let packed = pack(&sample());
        let last_separator = packed.rfind('\0').unwrap_or_default();
        for (cut, _) in packed
            .char_indices()
            .take_while(|(at, _)| *at <= last_separator)
        {
            assert!(read_recipients(&packed[..cut]).is_err(), "cut at {cut}");
        }
        let bad_flag = pack(&sample()).replacen("\0\u{0}", "\0\u{2}", 1);
        assert!(read_recipients(&bad_flag).is_err());
        assert!(read_recipients("six\0").is_err());
    }

    /// Reads a packed answer the way the Python package does, into the facade's `Preview`.
    fn read(answer: &str) -> Preview {
        let chars: Vec<char> = answer.chars().collect();
        let text = |from: usize, to: usize| chars[from..to].iter().collect::<String>();
        let (n, rest) = answer.split_once('\0').expect("n");
        let (t, _) = rest.split_once('\0').expect("t");
        let (n, t): (usize, usize) = (n.parse().expect("n"), t.parse().expect("t"));
        let at = n.to_string().len() + t.to_string().len() + 2;
        let totals: serde_json::Value = serde_json::from_str(&text(at, at + t)).expect("JSON");
        // Each run: two hexadecimal digits a byte, numbers little-endian.
        let run = |from: usize, width: usize, count: usize| -> Vec<u64> {
            let bytes: Vec<u8> = (from..from + 2 * width * count)
                .step_by(2)
                .map(|k| u8::from_str_radix(&text(k, k + 2), 16).expect("hex"))
                .collect();
            bytes
                .chunks(width)
                .map(|c| c.iter().rev().fold(0, |v, &b| v << 8 | u64::from(b)))
                .collect()
        };
        let flags = run(at + t, 1, n);
        let segments = run(at + t + 2 * n, 4, n);
        let ends = run(at + t + 10 * n, 8, 3 * n);
        let base = at + t + 58 * n;
        let items = (0..n)
            .map(|i| {
                let start = if i == 0 { 0 } else { ends[3 * i - 1] as usize };
                let [a, b, c] = [0, 1, 2].map(|k| base + ends[3 * i + k] as usize);
                let (first, second) = (text(a, b), text(b, c));
                crate::types::PreviewItem {
                    record_id: text(base + start, a),
                    outcome: match flags[i] {
                        0 => PreviewOutcome::Blocked {
                            reason_code: first,
                            reason: second,
                        },
                        flag => PreviewOutcome::Eligible {
                            number: first,
                            body: second,
                            encoding: if flag == 3 {
                                crate::Encoding::Ucs2
                            } else {
                                crate::Encoding::Gsm7
                            },
                            segments: segments[i] as u32,
                        },
                    },
                }
            })
            .collect();
        let number = |name: &str| totals[name].as_u64().expect(name);
        let time = |ms: &serde_json::Value| {
            std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(ms.as_u64().expect("milliseconds"))
        };
        let held = &totals["held"];
        let held = (!held.is_null()).then(|| crate::types::HeldSummary {
            records: held["records"].as_u64().expect("records"),
            earliest: time(&held["earliest_ms"]),
            earliest_local: held["earliest_local"].as_str().expect("local").to_owned(),
            latest: time(&held["latest_ms"]),
            latest_local: held["latest_local"].as_str().expect("local").to_owned(),
        });
        Preview {
            held,
            items,
            totals: crate::types::PreviewTotals {
                records: number("records"),
                texts: number("texts"),
                skipped: number("skipped"),
                message_units: number("message_units"),
                estimated_cost: totals["estimated_cost"].as_str().expect("cost").to_owned(),
                skipped_by_reason: totals["skipped_by_reason"]
                    .as_object()
                    .expect("map")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
                    .collect(),
            },
        }
    }

    #[test]
    fn the_answer_reads_back_as_the_facades_preview() {
        let year = sms_core::consent::ProgramYear::new("2026").expect("year");
        let settings = sms_core::PreviewSettings {
            region: sms_core::phone::Region::US,
            smart_encoding: false,
            price_per_segment: sms_core::Money::parse("0.0083", "USD").expect("price"),
            program_years: sms_core::consent::ProgramYears::current(year),
            purpose: sms_core::consent::Purpose::Manual,
            // Every record outside any window: each is held, and the answer says until when.
            quiet_hours: Some(sms_core::quiet::QuietRule {
                hours: sms_core::quiet::QuietHours::parse("00:00-00:01").expect("window"),
                org_time_zone: "Pacific/Kiritimati".to_owned(),
            }),
        };
        let now = sms_core::Timestamp::parse("2026-07-01T12:00:00Z").expect("time");
        for body in [
            "Hi {first_name}, {course}!",
            "\u{1F600} {course} \u{e9}",
            "{course}",
        ] {
            let template = sms_core::Template::parse(body).expect("template");
            let core = sms_core::preview::preview(
                sample().into_iter().map(sms_core::Recipient::from),
                &template,
                &sms_core::OptOutSnapshot::default(),
                &settings,
            )
            .expect("preview");
            let packed = answer(&core, now);
            let expected = Preview::at(core, now);
            assert!(expected.held.is_some(), "the rule holds them");
            assert_eq!(read(&packed), expected, "{body}");
        }
    }
}
