//! Segment counting speed.
//!
//! ```text
//! cargo build --release -p sms-cli          # for the CLI group (or set SMS_BIN)
//! cargo bench -p sms-benches --bench segments
//! ```
//!
//! * `segments/workload_bytes`, `segments/workload_messages`: `count()` in process over the
//!   100,000 messages of `segments/bench_workload.jsonl.gz`, smart encoding off and on, as
//!   MB/s and messages/s (Twilio's calculator: about 1,100 messages/s, 0.18 MB/s).
//! * `segments/long_ascii`: `count()` on 1 MB of ASCII prose, without and with extension
//!   characters.
//! * `segments/cli_jsonl`: the `sms segments --jsonl` process on the whole workload,
//!   process start, JSON in and out included, as messages/s. It runs `target/release/sms`
//!   (or `$SMS_BIN`) and is skipped, with a note, when that binary is missing: build it
//!   first so the figure is for the current code.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::read::GzDecoder;
use sms_core::segment::{self, SegmentOptions};

/// The workload: one JSON string per line.
fn workload() -> Vec<String> {
    let path = sms_benches::data_file("segments/bench_workload.jsonl.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    BufReader::new(GzDecoder::new(file))
        .lines()
        .map(|line| {
            let line = line.expect("the workload is valid gzip and UTF-8");
            serde_json::from_str(&line).expect("each workload line is a JSON string")
        })
        .collect()
}

const OFF: SegmentOptions = SegmentOptions {
    smart_encoding: false,
    force_ucs2: false,
};
const ON: SegmentOptions = SegmentOptions {
    smart_encoding: true,
    force_ucs2: false,
};

fn count_all(texts: &[String], options: SegmentOptions) -> u64 {
    texts
        .iter()
        .map(|t| u64::from(segment::count(black_box(t), options).segments))
        .sum()
}

fn bench_workload(c: &mut Criterion) {
    let texts = workload();
    let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let mut group = c.benchmark_group("segments/workload_bytes");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("count_smart_off", |b| b.iter(|| count_all(&texts, OFF)));
    group.bench_function("count_smart_on", |b| b.iter(|| count_all(&texts, ON)));
    group.finish();

    let mut group = c.benchmark_group("segments/workload_messages");
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("count_smart_off", |b| b.iter(|| count_all(&texts, OFF)));
    group.bench_function("count_smart_on", |b| b.iter(|| count_all(&texts, ON)));
    group.sample_size(10);
    group.bench_function("analyze_smart_off", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| segment::analyze(black_box(t), OFF).segments as u64)
                .sum::<u64>()
        })
    });
    group.finish();
}

/// About `len` bytes of ASCII prose; `extension` adds a bracketed note to each sentence.
fn prose(len: usize, extension: bool) -> String {
    let sentence = if extension {
        "Registration for the spring pottery class [room 4] opens Monday at 9am, reply STOP to opt out. "
    } else {
        "Registration for the spring pottery class in room 4 opens Monday at 9am, reply STOP to opt out. "
    };
    sentence.repeat(len / sentence.len() + 1)[..len].to_owned()
}

fn bench_long_ascii(c: &mut Criterion) {
    let mut group = c.benchmark_group("segments/long_ascii");
    for (name, extension) in [("1MB_plain", false), ("1MB_with_brackets", true)] {
        let text = prose(1 << 20, extension);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| segment::count(black_box(&text), OFF)));
    }
    group.finish();
}

/// The release `sms` binary, if built.
fn sms_binary() -> Option<PathBuf> {
    let path = std::env::var_os("SMS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/sms"));
    path.exists().then_some(path)
}

/// Runs `sms segments --jsonl` over `input`; returns the number of output lines.
fn run_cli(binary: &PathBuf, input: &[u8]) -> usize {
    let mut child = Command::new(binary)
        .args(["segments", "--jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the sms binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    std::thread::scope(|scope| {
        scope.spawn(move || stdin.write_all(input).expect("sms reads its whole input"));
        let mut out = Vec::with_capacity(input.len() * 2);
        stdout
            .read_to_end(&mut out)
            .expect("sms output is readable");
        assert!(child.wait().expect("sms exits").success());
        out.iter().filter(|&&b| b == b'\n').count()
    })
}

fn bench_cli(c: &mut Criterion) {
    let Some(binary) = sms_binary() else {
        eprintln!(
            "segments/cli_jsonl skipped: build the binary first (cargo build --release -p sms-cli) or set SMS_BIN"
        );
        return;
    };
    let texts = workload();
    let mut group = c.benchmark_group("segments/cli_jsonl");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(texts.len() as u64));
    for (name, smart) in [("smart_off", false), ("smart_on", true)] {
        let mut input = Vec::new();
        for text in &texts {
            let line = serde_json::json!({ "text": text, "smart_encoding": smart });
            serde_json::to_writer(&mut input, &line).expect("writing to a Vec cannot fail");
            input.push(b'\n');
        }
        assert_eq!(run_cli(&binary, &input), texts.len());
        group.bench_function(name, |b| b.iter(|| run_cli(&binary, &input)));
    }
    group.finish();
}

criterion_group!(benches, bench_workload, bench_long_ascii, bench_cli);
criterion_main!(benches);
