//! `sms preview` end to end: the real binary on the shipped example file, against golden files.
//!
//! Set `UPDATE_GOLDEN=1` to rewrite the golden files after an intended change, then review the
//! diff.

use std::path::{Path, PathBuf};
use std::process::Command;

const BODY: &str = "Hi {first_name}, {course_title} starts Monday at 9am. Reply STOP to opt out.";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `sms` from the project root. Previews read opt-outs from `--db` when it exists, so the
/// tests point it at a file that never does (a `./sms.db` left by a manual run must not change
/// their output).
fn sms(args: &[&str]) -> (String, String, bool) {
    let no_db = std::env::temp_dir().join("sms-cli-tests-no-such-dir/none.db");
    sms_with_db(args, &no_db)
}

/// Runs `sms` from the project root with `--db db`.
fn sms_with_db(args: &[&str], db: &Path) -> (String, String, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_sms"))
        .args(args)
        .arg("--db")
        .arg(db)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the sms binary runs");
    (
        String::from_utf8(output.stdout).expect("utf-8 output"),
        String::from_utf8(output.stderr).expect("utf-8 output"),
        output.status.success(),
    )
}

fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("golden file is writable");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "missing golden file {}: {e} (run with UPDATE_GOLDEN=1)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

#[test]
fn table_shows_who_is_texted_who_is_skipped_and_why() {
    // Quiet hours ignored: what they hold depends on the time of day (tests/quiet_cli.rs).
    let (out, err, ok) = sms(&[
        "preview",
        "--recipients",
        "examples/recipients.csv",
        "--body",
        BODY,
        "--ignore-quiet-hours",
    ]);
    assert!(ok, "{err}");
    for expected in [
        "skip: no mobile number",
        "skip: client has neither Text nor Alerts",
        "line 19: kind \"teacher\" is not client or staff",
        "1 number shared by 2 records, each record is texted",
        "estimated cost",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    check_golden("preview.txt", &out);
}

#[test]
fn json_is_stable() {
    let (out, err, ok) = sms(&[
        "preview",
        "--recipients",
        "examples/recipients.csv",
        "--body",
        BODY,
        "--json",
        "--ignore-quiet-hours",
    ]);
    assert!(ok, "{err}");
    let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(value["totals"]["records"], 17);
    assert_eq!(value["malformed_rows"].as_array().map(Vec::len), Some(4));
    check_golden("preview.json", &out);
}

#[test]
fn an_unknown_merge_field_is_an_error_naming_the_field() {
    let (_, err, ok) = sms(&[
        "preview",
        "--recipients",
        "examples/recipients.csv",
        "--body",
        "Hi {frist_name}",
    ]);
    assert!(!ok);
    assert!(
        err.contains("frist_name") && err.contains("first_name"),
        "{err}"
    );
}

#[test]
fn the_current_program_year_rule_blocks_everyone_in_a_past_year() {
    let (out, err, ok) = sms(&[
        "preview",
        "--recipients",
        "examples/recipients.csv",
        "--body",
        "Hi",
        "--program-year",
        "2025-2026",
        "--current-program-year",
        "2026-2027",
        "--json",
    ]);
    assert!(ok, "{err}");
    let value: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(value["totals"]["texts"], 0);
    assert_eq!(
        value["totals"]["blocked_by_reason"]["not_current_program_year"],
        17
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (_, err, ok) = sms(&["preview", "--recipients", "nope.csv", "--body", "Hi"]);
    assert!(!ok);
    assert!(err.contains("cannot open nope.csv"), "{err}");
}

/// A number of the example file that replied STOP (recorded with `sms inbound` at a fixed time):
/// both records carrying it are skipped, with the reason and since when.
#[test]
fn an_opted_out_number_skips_every_record_that_carries_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sms.db");
    let (_, err, ok) = sms_with_db(
        &[
            "inbound",
            "--from",
            "(646) 555-0199",
            "--body",
            "STOP",
            "--message-sid",
            "SMgolden",
            "--at",
            "2026-09-01T14:30:00Z",
        ],
        &db,
    );
    assert!(ok, "{err}");
    let (out, err, ok) = sms_with_db(
        &[
            "preview",
            "--recipients",
            "examples/recipients.csv",
            "--body",
            BODY,
            "--ignore-quiet-hours",
        ],
        &db,
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.matches("skip: number +16465550199 opted out (STOP)")
            .count(),
        2,
        "{out}"
    );
    check_golden("preview_opted_out.txt", &out);
}
