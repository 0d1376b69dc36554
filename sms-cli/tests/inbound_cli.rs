//! `sms inbound` end to end: the real binary, a real SQLite file in a temporary folder.

use std::path::Path;
use std::process::Command;

/// Runs `sms` with `--db db`; returns stdout, stderr and success.
fn sms(db: &Path, args: &[&str]) -> (String, String, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_sms"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env("NO_COLOR", "1")
        .output()
        .expect("the sms binary runs");
    (
        String::from_utf8(output.stdout).expect("utf-8 output"),
        String::from_utf8(output.stderr).expect("utf-8 output"),
        output.status.success(),
    )
}

/// The numbers `sms optouts --json` lists as opted out.
fn opted_out(db: &Path) -> Vec<String> {
    let (out, err, ok) = sms(db, &["optouts", "--json"]);
    assert!(ok, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    list.as_array()
        .expect("a list")
        .iter()
        .map(|o| o["number"].as_str().expect("a number").to_owned())
        .collect()
}

/// Issue 7, defect 1: `212-555-O123` (letter O) recorded the STOP on +12125556123, a number
/// nobody typed, and left the real sender textable.
#[test]
fn a_stop_from_a_number_with_a_letter_is_refused_not_recorded_on_another_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sms.db");
    let (_, err, ok) = sms(
        &db,
        &["inbound", "--from", "+12125550199", "--body", "STOP"],
    );
    assert!(ok, "{err}");
    for (typed, keypad) in [
        ("212-555-O123", "+12125556123"),
        ("212-555-0l23", "+12125550523"),
        ("212-S55-0123", "+12127550123"),
    ] {
        let (out, err, ok) = sms(&db, &["inbound", "--from", typed, "--body", "STOP"]);
        assert!(!ok, "{typed} was accepted: {out}");
        assert!(err.contains("invalid phone number"), "{err}");
        let numbers = opted_out(&db);
        assert!(!numbers.contains(&keypad.to_owned()), "{numbers:?}");
    }
    assert_eq!(opted_out(&db), vec!["+12125550199".to_owned()]);
}
