//! The Rust side of the Python benchmark (`bindings/python/bench.sh`): the same facade
//! functions the Python package calls, called from Rust with no FFI, on the same work, so the
//! Python figures can be stated as a ratio to these.
//!
//! ```text
//! cargo run --release -p sms-ffi --example ffi_baseline -- tests/data/segments/bench_workload.jsonl.gz [--reps N]
//! ```
//!
//! Prints one JSON object (calls/s, messages/s, seconds; best of N repetitions, default 5):
//! - `count_segments`: `sms_ffi::count_segments(text, false)` once per message (the owned
//!   `String` it takes is cloned inside the timed loop, as the FFI lifts one per call);
//! - `count_segments_packed`: the whole workload NUL-joined, once, and ten times over (the
//!   buffer is built outside the timed region: it is the Python side's job);
//! - the same two over the short messages (under 70 characters);
//! - `preview`: `SmsClient::preview` of 100,000 recipients on the simulator (a temporary
//!   SQLite file), building the `Recipient` values from plain rows inside the timed region, as
//!   the Python side builds its `Recipient` objects. The rows are those `bench_ffi.py` makes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use sms_ffi::{ProviderConfig, Recipient, RecipientKind, SmsClient, SmsConfig};

/// Recipients previewed (the issue's figure).
const RECIPIENTS: usize = 100_000;
/// A message is "short" below this many characters (Unicode scalars, Python's `len`).
const SHORT_BELOW: usize = 70;
/// The preview's message; the same as the Rust preview benchmark's.
const BODY: &str =
    "Hi {first_name}, {course_title} starts Monday at 9am in Room 4. Reply STOP to opt out.";

const FIRST: &[&str] = &[
    "Ana", "Marcus", "Priya", "Dev", "Tom", "Lena", "Sam", "Grace", "Omar", "Zoë", "Julia", "Noah",
    "Wei", "Lucy", "Dana", "José", "Rita",
];
const LAST: &[&str] = &[
    "Lopez",
    "Reid",
    "Shah",
    "Baker",
    "Nguyen",
    "Whitfield",
    "Park",
    "Moreno",
    "Ford",
    "Okafor",
    "Kim",
];
const COURSES: &[&str] = &[
    "Intro to Welding",
    "Conversational Spanish I",
    "Watercolor Basics",
    "Robotics for Kids",
    "Pottery",
    "Yoga for Beginners",
    "Bookkeeping with QuickBooks",
    "French for Travellers",
    "First Aid & CPR",
    "Python Programming",
];
const AREA_CODES: &[usize] = &[212, 646, 347, 718, 917, 312, 415, 617, 303, 206, 404, 305];
const METHODS: &[&str] = &[
    "Email, Text",
    "Text",
    "Mail;Alerts",
    "Email",
    "text",
    "Email;Mail",
];

/// One recipient as a host holds it before it builds a `Recipient`: plain strings.
struct Row {
    record_id: String,
    staff: Option<bool>,
    methods: String,
    first_name: String,
    last_name: String,
    mobile: String,
    course_title: String,
}

/// The recipients of the preview, by index: `bench_ffi.py`'s `recipient_rows` makes the same
/// ones (same formulas), so both sides preview the same records: numbers in assorted formats,
/// some blank or invalid, clients and staff with mixed permissions, accented names.
fn rows(count: usize) -> Vec<Row> {
    (0..count)
        .map(|i| {
            let area = AREA_CODES[i % AREA_CODES.len()];
            let exchange = 200 + (i * 7919) % 800;
            let line = (i * 104_729) % 10_000;
            let mobile = match i % 20 {
                0 => String::new(),
                1 => "n/a".to_owned(),
                2 => format!("+1 {area} {exchange} {line:04}"),
                3 => format!("{area}.{exchange}.{line:04}"),
                4 => format!("1-{area}-{exchange}-{line:04}"),
                _ => format!("({area}) {exchange}-{line:04}"),
            };
            Row {
                record_id: format!("C{i:07}"),
                staff: (i % 10 == 7).then_some(i % 40 != 7),
                methods: METHODS[i % METHODS.len()].to_owned(),
                first_name: FIRST[i % FIRST.len()].to_owned(),
                last_name: LAST[i % LAST.len()].to_owned(),
                mobile,
                course_title: COURSES[i % COURSES.len()].to_owned(),
            }
        })
        .collect()
}

fn recipient(row: &Row) -> Recipient {
    Recipient {
        record_id: row.record_id.clone(),
        kind: match row.staff {
            Some(permitted_sms_text) => RecipientKind::Staff { permitted_sms_text },
            None => RecipientKind::Client {
                permitted_marketing_methods: row.methods.clone(),
            },
        },
        first_name: row.first_name.clone(),
        last_name: row.last_name.clone(),
        mobile: row.mobile.clone(),
        time_zone: Some("America/New_York".to_owned()),
        fields: HashMap::from([("course_title".to_owned(), row.course_title.clone())]),
    }
}

/// The fastest of `reps` runs of `work` (each run gets a fresh input from `setup`, untimed).
fn best<I, O>(reps: usize, mut setup: impl FnMut() -> I, mut work: impl FnMut(I) -> O) -> Duration {
    (0..reps)
        .map(|_| {
            let input = setup();
            let start = Instant::now();
            let out = work(input);
            let elapsed = start.elapsed();
            drop(std::hint::black_box(out));
            elapsed
        })
        .min()
        .expect("at least one repetition")
}

fn read_workload(path: &str) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|line| {
            let line = line.unwrap_or_else(|e| panic!("{path}: {e}"));
            serde_json::from_str::<String>(&line)
                .unwrap_or_else(|e| panic!("{path}: not a JSON string per line: {e}"))
        })
        .collect()
}

/// Per-call and packed figures over `texts`.
fn counting(texts: &[String], reps: usize) -> serde_json::Value {
    let per_call = best(
        reps,
        || (),
        |()| {
            let mut total = 0u64;
            for text in texts {
                total += u64::from(sms_ffi::count_segments(text.clone(), false).segments);
            }
            total
        },
    );
    let packed_bytes = |times: usize| {
        let one = texts.join("\0");
        let mut all = Vec::with_capacity((one.len() + 1) * times);
        for k in 0..times {
            if k > 0 {
                all.push(0);
            }
            all.extend_from_slice(one.as_bytes());
        }
        all
    };
    let packed = |times: usize| {
        let bytes = packed_bytes(times);
        let seconds = best(
            reps,
            || bytes.clone(),
            |bytes| sms_ffi::count_segments_packed(bytes, false).expect("UTF-8"),
        )
        .as_secs_f64();
        let n = texts.len() * times;
        // The answer: 4 bytes of segments and one of encoding per text.
        assert_eq!(
            sms_ffi::count_segments_packed(bytes, false)
                .expect("UTF-8")
                .len(),
            5 * n,
            "one count per text"
        );
        serde_json::json!({ "messages": n, "seconds": seconds, "messages_per_s": n as f64 / seconds })
    };
    serde_json::json!({
        "messages": texts.len(),
        "count_segments": {
            "seconds": per_call.as_secs_f64(),
            "calls_per_s": texts.len() as f64 / per_call.as_secs_f64(),
        },
        "count_segments_packed": packed(1),
        "count_segments_packed_x10": packed(10),
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut workload = None;
    let mut reps = 5usize;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reps" => {
                reps = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .expect("--reps takes a positive number");
            }
            _ if workload.is_none() => workload = Some(arg),
            _ => panic!("usage: ffi_baseline WORKLOAD [--reps N]"),
        }
    }
    let workload = workload.expect("usage: ffi_baseline WORKLOAD [--reps N]");
    let texts = read_workload(&workload);
    let short: Vec<String> = texts
        .iter()
        .filter(|t| t.chars().count() < SHORT_BELOW)
        .cloned()
        .collect();

    let all = counting(&texts, reps);
    let short = counting(&short, reps);

    let dir = tempfile::tempdir().expect("a temporary folder");
    let client = SmsClient::new(SmsConfig {
        database: dir.path().join("bench.db").display().to_string(),
        provider: ProviderConfig::Simulator,
        region: "US".to_owned(),
        program_year: None,
        current_program_year: None,
        price_per_segment: None,
        currency: "USD".to_owned(),
        smart_encoding: false,
        rate_per_second: None,
        concurrency: 4,
        once_per_number: false,
        reconcile_wait_seconds: 30,
        max_campaign_age_hours: 24,
        webhook_auth_token: None,
        opt_out_keywords_only: false,
        organisation: "default".to_owned(),
    })
    .expect("a client on the simulator");
    let rows = rows(RECIPIENTS);
    let (mut build_best, mut call_best) = (f64::MAX, f64::MAX);
    let mut totals = None;
    for _ in 0..reps.min(3) {
        let start = Instant::now();
        let recipients: Vec<Recipient> = rows.iter().map(recipient).collect();
        let built = start.elapsed().as_secs_f64();
        let preview = client
            .preview(recipients, BODY.to_owned())
            .expect("preview");
        let called = start.elapsed().as_secs_f64() - built;
        build_best = build_best.min(built);
        call_best = call_best.min(called);
        let t = &preview.totals;
        totals = Some((t.records, t.texts, t.skipped, t.message_units));
        drop(std::hint::black_box(preview));
    }
    let (records, texts_sent, skipped, units) = totals.expect("at least one repetition");

    let report = serde_json::json!({
        "workload": workload,
        "repetitions": reps,
        "all": all,
        "short": short,
        "short_below_chars": SHORT_BELOW,
        "preview": {
            "recipients": RECIPIENTS,
            "build_seconds": build_best,
            "call_seconds": call_best,
            // The best build plus the best call (as bench_ffi.py reports it).
            "total_seconds": build_best + call_best,
            "records": records,
            "texts": texts_sent,
            "skipped": skipped,
            "message_units": units,
        },
    });
    println!("{report}");
}
