//! `sms segments` as a user and a tool see it: the process, its output and its exit status.
//!
//! The `--jsonl` golden file holds texts from every category of the calculator's test
//! vectors; its expected figures were checked against the calculator's. To refresh it after
//! an intended change: `UPDATE_GOLDEN=1 cargo test -p sms-cli --test segments_cli`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn sms(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sms"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("NO_COLOR")
        .spawn()
        .expect("the sms binary starts");
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()));
    let output = child.wait_with_output().expect("the sms binary runs");
    writer
        .join()
        .expect("the writer thread does not panic")
        .expect("sms reads its whole input");
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("sms writes UTF-8")
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

#[test]
fn jsonl_output_matches_the_golden_file() {
    let input = std::fs::read_to_string(golden("segments.input.jsonl")).expect("golden input");
    let output = sms(&["segments", "--jsonl"], &input);
    let actual = stdout(&output);
    let path = golden("segments.output.jsonl");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).expect("golden output is writable");
    }
    let expected = std::fs::read_to_string(&path).expect("golden output");
    assert_eq!(
        input.lines().count(),
        actual.lines().count(),
        "one line out per line in"
    );
    for (n, (got, want)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "line {}", n + 1);
    }
    assert_eq!(actual.lines().count(), expected.lines().count());
    // The golden input holds malformed lines on purpose.
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_malformed_line_reports_its_number_and_the_rest_is_processed() {
    let output = sms(
        &["segments", "--jsonl"],
        "{\"text\": \"Hello\"}\n{oops}\n{\"text\": \"\u{1F600}\", \"smart_encoding\": true}\n",
    );
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["encoding"], "GSM-7");
    assert_eq!(lines[0]["segments"], 1);
    assert_eq!(lines[1]["line"], 2);
    assert!(
        lines[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("JSON"))
    );
    assert_eq!(lines[2]["encoding"], "UCS-2");
    assert_eq!(lines[2]["segment_units"], serde_json::json!([2]));
    assert_eq!(lines[2]["non_gsm"], serde_json::json!(["\u{1F600}"]));
    assert_eq!(lines[2]["smart_text"], "\u{1F600}");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn jsonl_succeeds_when_every_line_is_good() {
    let output = sms(
        &["segments", "--jsonl", "--smart-encoding"],
        "\"It\u{2019}s\"\n{\"text\": \"x\", \"smart_encoding\": false}\n",
    );
    assert!(output.status.success());
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    // The flag is the default; a line can override it.
    assert!(lines[0].contains("\"smart_text\":\"It's\""));
    assert!(!lines[1].contains("smart_text"));
}

#[test]
fn human_output_marks_the_characters_that_force_ucs2() {
    let output = sms(
        &["segments", "Caf\u{e9} \u{2615} at 9 \u{2014} see you"],
        "",
    );
    assert!(output.status.success());
    let out = stdout(&output);
    assert!(out.contains("encoding       UCS-2"), "{out}");
    assert!(out.contains("segments       1 (message units)"), "{out}");
    assert!(
        out.contains("segment 1    21 UTF-16 units, 21 characters"),
        "{out}"
    );
    assert!(out.contains("forcing UCS-2  2 characters:"), "{out}");
    // Not a terminal: brackets, not colour.
    assert!(
        out.contains("Caf\u{e9} [\u{2615}] at 9 [\u{2014}] see you"),
        "{out}"
    );
    assert!(out.contains("\u{2615}  U+2615"), "{out}");
    assert!(out.contains("\u{2014}  U+2014"), "{out}");
    assert!(!out.contains('\x1b'));
}

#[test]
fn human_output_with_smart_encoding_shows_the_sent_text() {
    let text = format!("\u{201C}{}\u{201D}", "a".repeat(160));
    let output = sms(&["segments", "--smart-encoding", &text], "");
    let out = stdout(&output);
    assert!(out.contains("encoding       GSM-7"), "{out}");
    assert!(out.contains("segments       2"), "{out}");
    assert!(out.contains("segment 1    153 septets"), "{out}");
    assert!(out.contains("segment 2    9 septets"), "{out}");
    assert!(
        out.contains(&format!("smart text:\n  \"{}\"", "a".repeat(160))),
        "{out}"
    );
    assert!(out.contains("forcing UCS-2  none"), "{out}");
}

#[test]
fn text_from_stdin_loses_only_its_final_line_break() {
    let output = sms(&["segments"], "two\nlines\n");
    let out = stdout(&output);
    assert!(
        out.contains("length         9 septets, 9 characters"),
        "{out}"
    );
}
