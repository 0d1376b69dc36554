//! `sms alerts` end to end: the real binary, a real SQLite file, the simulator and the local
//! Twilio stand-in (a SIGKILL mid-run, then a restart: no alert twice, none lost).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sms_tests::fake_twilio::{FakeTwilio, Fault};

fn sms(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sms"))
        .args(args)
        .arg("--db")
        .arg(db)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("the sms binary runs")
}

fn ok(output: Output) -> String {
    let out = String::from_utf8(output.stdout).expect("utf-8");
    let err = String::from_utf8(output.stderr).expect("utf-8");
    assert!(output.status.success(), "{out}\n{err}");
    out
}

const ROSTER: &str = "\
record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone,course_title
C1,client,Ana,Lopez,(212) 555-0101,\"Email, Text\",,America/New_York,Intro to Welding
C2,client,Marcus,Reid,212.555.0102,Mail;Alerts,,America/Chicago,Intro to Welding
C3,client,Lee,Park,212.555.0103,Email,,,Intro to Welding
C4,client,Kim,Park,212.555.0104,Text,,,Intro to Welding
S7,staff,Bo,Ng,202 555 0143,,Yes,,Intro to Welding
";

/// A database with C1..C4 subscribed to course_start and the section's start recorded.
fn setup(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("sms.db");
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, ROSTER).expect("written");
    for (record, mobile) in [
        ("C1", "(212) 555-0101"),
        ("C2", "212.555.0102"),
        ("C3", "212.555.0103"),
        ("C4", "212.555.0104"),
    ] {
        ok(sms(
            &db,
            &[
                "alerts",
                "subscribe",
                "--record",
                record,
                "--mobile",
                mobile,
                "--kinds",
                "course_start,class_cancelled",
                "--now",
                "2026-01-10T12:00:00Z",
            ],
        ));
    }
    let roster = roster.to_str().expect("utf-8 path");
    let event = [
        "alerts",
        "event",
        "--id",
        "SEC-42-start",
        "--kind",
        "course_start",
        "--section",
        "WELD-101",
        "--roster",
        roster,
        "--starts-at",
        "2026-03-09T13:00:00Z",
        "--now",
        "2026-03-01T12:00:00Z",
    ];
    let out = ok(sms(&db, &event));
    assert_eq!(
        out,
        "event SEC-42-start (course_start, section WELD-101): 5 alert(s) scheduled, due from 2026-03-08T21:00:00Z\n"
    );
    // The host reports it again: nothing new.
    let out = ok(sms(&db, &event));
    assert!(
        out.contains("recorded before") && out.contains("0 alert(s) scheduled; 5 already"),
        "{out}"
    );
    db
}

#[test]
fn due_says_what_goes_what_waits_until_when_and_what_never_goes_and_run_sends_it_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = setup(dir.path());

    // 16:00 in New York on the day before: not due yet; Chicago's 17:00 is an hour later.
    let out = ok(sms(
        &db,
        &["alerts", "due", "--now", "2026-03-08T20:00:00Z"],
    ));
    assert!(
        out.contains("due at 2026-03-08T21:00:00Z (2026-03-08 17:00 EDT)"),
        "{out}"
    );
    assert!(
        out.contains("due at 2026-03-08T22:00:00Z (2026-03-08 17:00 CDT)"),
        "{out}"
    );
    assert!(out.ends_with("send now 0, waiting 5, never 0\n"), "{out}");

    let json = ok(sms(
        &db,
        &["alerts", "due", "--now", "2026-03-08T21:00:00Z", "--json"],
    ));
    let due: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let by_record = |id: &str| {
        due["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .find(|a| a["record_id"] == id)
            .cloned()
            .expect("the record")
    };
    assert_eq!(by_record("C1")["decision"], "send");
    assert_eq!(
        by_record("C1")["body"],
        "Community Ed: Intro to Welding starts tomorrow, Mon Mar 9 at 9:00 AM. Reply STOP to opt out."
    );
    assert_eq!(by_record("C2")["code"], "not_yet_due");
    assert_eq!(by_record("C2")["until"], "2026-03-08T22:00:00Z");
    assert_eq!(by_record("C3")["code"], "client_not_permitted");
    assert_eq!(by_record("S7")["code"], "staff_never_alerted");
    assert_eq!(
        (
            due["send"].as_u64(),
            due["wait"].as_u64(),
            due["never"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );

    // C4 signs off before it goes.
    ok(sms(
        &db,
        &[
            "alerts",
            "unsubscribe",
            "--record",
            "C4",
            "--kinds",
            "course_start",
            "--now",
            "2026-03-08T20:30:00Z",
        ],
    ));
    let out = ok(sms(
        &db,
        &[
            "alerts",
            "run",
            "--now",
            "2026-03-08T21:00:00Z",
            "--rate",
            "0",
        ],
    ));
    assert!(
        out.contains("sent 1, failed 0, waiting 1, never 3, in doubt 0 (campaign alerts-batch-1"),
        "{out}"
    );
    assert!(
        out.contains("unsubscribed from course_start alerts on 2026-03-08T20:30:00Z"),
        "{out}"
    );
    let out = ok(sms(
        &db,
        &[
            "alerts",
            "run",
            "--now",
            "2026-03-08T22:00:00Z",
            "--rate",
            "0",
        ],
    ));
    assert!(
        out.contains("sent 1, failed 0, waiting 0, never 0"),
        "{out}"
    );
    // Run again: nothing left.
    let out = ok(sms(
        &db,
        &[
            "alerts",
            "run",
            "--now",
            "2026-03-08T22:30:00Z",
            "--rate",
            "0",
        ],
    ));
    assert!(
        out.ends_with("sent 0, failed 0, waiting 0, never 0, in doubt 0\n"),
        "{out}"
    );
    // Each batch is a campaign of the journal, reported as any other.
    let report = ok(sms(&db, &["report", "alerts-batch-1"]));
    assert!(report.contains("C1") && report.contains("Sent"), "{report}");
}

#[test]
fn templates_show_the_defaults_and_a_change_is_linted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sms.db");
    let json = ok(sms(&db, &["alerts", "templates", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(6));
    assert!(
        list.as_array()
            .expect("list")
            .iter()
            .all(|t| t["default"] == true && t["warnings"] == serde_json::json!([]))
    );
    let out = ok(sms(
        &db,
        &[
            "alerts",
            "template",
            "set",
            "evaluation_due",
            "{org_name}: rate {course_title} \u{2014} thanks!",
        ],
    ));
    assert!(
        out.contains("warning: \"\u{2014}\" (U+2014) forces UCS-2"),
        "{out}"
    );
    let out = ok(sms(&db, &["alerts", "templates"]));
    assert!(
        out.contains("evaluation_due (custom)\n  {org_name}: rate {course_title} \u{2014} thanks!"),
        "{out}"
    );
    let refused = sms(
        &db,
        &["alerts", "template", "set", "evaluation_due", "{org_name"],
    );
    assert_eq!(refused.status.code(), Some(2));
    let refused = sms(&db, &["alerts", "template", "set", "coffee_ready", "Hi"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unknown alert kind \"coffee_ready\"")
    );
}

#[test]
fn an_alerts_run_killed_mid_send_then_restarted_texts_nobody_twice_and_nobody_is_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = setup(dir.path());
    let twilio = FakeTwilio::start();
    // The second text is created at once but answered a minute later: the kill lands while
    // `sms` waits for it, with the message created.
    twilio.set_plan(|n, _| {
        if n == 2 {
            Fault::Delay(Duration::from_secs(60))
        } else {
            Fault::None
        }
    });
    let run = |now: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sms"));
        command
            .args([
                "alerts",
                "run",
                "--now",
                now,
                "--rate",
                "0",
                "--provider",
                "twilio",
            ])
            .args([
                "--twilio-base-url",
                &twilio.base_url(),
                "--reconcile-wait",
                "0",
            ])
            .arg("--db")
            .arg(&db)
            .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
            .env("TWILIO_AUTH_TOKEN", "not-a-real-token")
            .env("TWILIO_FROM", "+15005550006")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    // 18:00 in New York, 17:00 in Chicago: C1, C2 and C4 are due.
    let mut child = run("2026-03-08T23:00:00Z").spawn().expect("runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while twilio.created().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the second text was never created"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    twilio.set_plan(|_, _| Fault::None);
    let output = run("2026-03-08T23:05:00Z").output().expect("runs");
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let per_recipient = twilio.created_per_recipient();
    assert_eq!(per_recipient.len(), 3, "{per_recipient:?}");
    assert!(
        per_recipient.values().all(|n| *n == 1),
        "a text went twice: {per_recipient:?}"
    );
    let report = ok(sms(&db, &["report", "alerts-batch-1", "--json"]));
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON");
    assert_eq!(report["totals"]["accepted"], 3, "{report}");
}

/// Found by review: each of these was accepted and did something a person would not expect.
#[test]
fn an_old_years_roster_an_empty_wording_and_a_made_up_clock_for_real_texts_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sms.db");
    let roster = dir.path().join("roster.csv");
    std::fs::write(&roster, ROSTER).expect("written");
    let roster = roster.to_str().expect("utf-8 path");
    let refused_with = |args: &[&str], words: &str| {
        let out = sms(&db, args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
    };
    let event = |year: &str| {
        [
            "alerts",
            "event",
            "--id",
            "E2",
            "--kind",
            "class_cancelled",
            "--section",
            "S2",
            "--roster",
            roster,
            "--starts-at",
            "2026-03-10T20:00:00Z",
            "--now",
            "2026-03-10T14:00:00Z",
            "--program-year",
            year,
            "--current-program-year",
            "2025-2026",
        ]
        .map(str::to_owned)
    };
    let old = event("2024-2025");
    refused_with(
        &old.iter().map(String::as_str).collect::<Vec<_>>(),
        "--program-year 2024-2025 is not the current program year (2025-2026)",
    );
    // Nothing was scheduled: the event can be reported again for the right year.
    let current = event("2025-2026");
    let out = ok(sms(
        &db,
        &current.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert!(out.contains("alert(s) scheduled"), "{out}");

    refused_with(
        &["alerts", "template", "set", "course_start", "  "],
        "an empty one would send nothing",
    );
    refused_with(
        &[
            "alerts",
            "run",
            "--now",
            "2026-03-10T14:00:30Z",
            "--provider",
            "twilio",
        ],
        "would text real people now",
    );
}
