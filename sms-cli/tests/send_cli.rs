//! The main job from a shell, on the embedded defaults: `sms send` on the simulator and a real
//! SQLite file, then `report`, `inbound`, `optouts`, and a preview that honours the STOP.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BODY: &str = "Hi {first_name}, {course_title} starts Monday at 9am. Reply STOP to opt out.";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sms(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sms"))
        .args(args)
        .arg("--db")
        .arg(db)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("the sms binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&output.stdout),
            text(&output.stderr)
        )
    })
}

#[test]
fn send_report_stop_and_preview_again() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");

    let send = sms(
        &db,
        &[
            "send",
            "--recipients",
            "examples/recipients.csv",
            "--body",
            BODY,
            "--campaign",
            "fall-start",
            "--yes",
            "--ignore-quiet-hours",
            "--rate",
            "0",
        ],
    );
    let out = text(&send.stdout);
    assert!(send.status.success(), "{out}\n{}", text(&send.stderr));
    assert!(
        out.contains("skip: no mobile number"),
        "the preview is shown first:\n{out}"
    );
    assert!(out.contains("campaign fall-start"), "{out}");
    assert!(out.contains("Report of campaign fall-start"), "{out}");

    let report = sms(&db, &["report", "fall-start", "--json"]);
    assert!(report.status.success(), "every record has a final outcome");
    let report = json(&report);
    let totals = &report["totals"];
    // 9 eligible: 8 accepted, the simulator's +15005550009 cannot receive SMS (21614).
    assert_eq!(totals["accepted"], 8, "{totals}");
    assert_eq!(totals["failed"], 1, "{totals}");
    assert_eq!(totals["blocked"], 8, "{totals}");
    assert_eq!(totals["units_used"], 9, "{totals}");
    assert_eq!(totals["failed_by_class"]["bad_recipient"], 1, "{totals}");

    // Sending the same campaign again texts nobody twice.
    let again = sms(&db, &["resume", "fall-start"]);
    assert!(again.status.success());
    let after = json(&sms(&db, &["report", "fall-start", "--json"]));
    assert_eq!(after["totals"], report["totals"]);

    // The parent of two enrolled children replies STOP: both records are blocked from now on.
    let stop = sms(
        &db,
        &["inbound", "--from", "(646) 555-0199", "--body", " Stop. "],
    );
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    assert!(text(&stop.stdout).contains("recorded: Stop for +16465550199"));
    let chat = sms(
        &db,
        &[
            "inbound",
            "--from",
            "212-555-0123",
            "--body",
            "stop texting me",
            // Under the default FCC policy this sentence opts out (see inbound_cli.rs); the
            // strict policy only flags it.
            "--opt-out-policy",
            "keywords-only",
        ],
    );
    assert!(text(&chat.stdout).contains("a person should review it"));

    let optouts = json(&sms(&db, &["optouts", "--json"]));
    let numbers: Vec<&str> = optouts
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|o| o["number"].as_str())
        .collect();
    assert_eq!(numbers, vec!["+16465550199"]);

    let preview = json(&sms(
        &db,
        &[
            "preview",
            "--recipients",
            "examples/recipients.csv",
            "--body",
            BODY,
            "--json",
        ],
    ));
    assert_eq!(preview["totals"]["blocked_by_reason"]["opted_out"], 2);
    assert_eq!(preview["totals"]["texts"], 7);
}

#[test]
fn send_refuses_without_confirmation_when_no_one_can_answer() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");
    let send = sms(
        &db,
        &[
            "send",
            "--recipients",
            "examples/recipients.csv",
            "--body",
            "Hi",
        ],
    );
    assert_eq!(send.status.code(), Some(2));
    assert!(
        text(&send.stderr).contains("pass --yes"),
        "{}",
        text(&send.stderr)
    );
}

#[test]
fn twilio_configuration_errors_name_the_variable_and_never_the_secret() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");
    let output = Command::new(env!("CARGO_BIN_EXE_sms"))
        .args([
            "send",
            "--recipients",
            "examples/recipients.csv",
            "--body",
            "Hi",
            "--yes",
            "--ignore-quiet-hours",
        ])
        .args(["--provider", "twilio", "--db"])
        .arg(&db)
        .current_dir(root())
        .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
        .env("TWILIO_AUTH_TOKEN", "super-secret-token-value")
        .env_remove("TWILIO_FROM")
        .env_remove("TWILIO_MESSAGING_SERVICE_SID")
        .env_remove("TWILIO_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("the sms binary runs");
    assert_eq!(output.status.code(), Some(2));
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(all.contains("TWILIO_FROM"), "{all}");
    assert!(
        !all.contains("super-secret-token-value"),
        "the token leaked: {all}"
    );
}

#[test]
fn bad_flags_and_missing_or_mismatched_state_are_clear_errors() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");
    let missing = dir.path().join("typo.db");
    let stderr = |output: Output| {
        assert_eq!(output.status.code(), Some(2), "{}", text(&output.stdout));
        text(&output.stderr)
    };
    assert!(stderr(sms(&missing, &["report", "fall"])).contains("no database at"));
    assert!(stderr(sms(&missing, &["optouts"])).contains("no database at"));
    assert!(
        !missing.exists(),
        "reading commands never create a database"
    );

    let send = |extra: &[&str]| {
        let mut args = vec![
            "send",
            "--recipients",
            "examples/recipients.csv",
            "--body",
            "Hi",
            "--yes",
            "--ignore-quiet-hours",
        ];
        args.extend_from_slice(extra);
        sms(&db, &args)
    };
    assert!(stderr(send(&["--rate", "1e-300"])).contains("--rate"));
    assert!(stderr(send(&["--concurrency", "0"])).contains("concurrency"));
    assert!(stderr(send(&["--campaign", "fall start"])).contains("--campaign"));

    let sent = send(&["--campaign", "fall", "--rate", "0"]);
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    // A simulator campaign resumed through Twilio would reconcile against a provider that
    // never sent it: refused before any call (the base URL points at a closed port).
    let resumed = Command::new(env!("CARGO_BIN_EXE_sms"))
        .args([
            "resume",
            "fall",
            "--provider",
            "twilio",
            "--twilio-base-url",
            "http://127.0.0.1:9",
        ])
        .arg("--db")
        .arg(&db)
        .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
        .env("TWILIO_AUTH_TOKEN", "not-a-real-token")
        .env("TWILIO_FROM", "+15005550006")
        .stdin(Stdio::null())
        .output()
        .expect("the sms binary runs");
    let err = stderr(resumed);
    assert!(
        err.contains("started with the provider 'simulator'"),
        "{err}"
    );
    let err = stderr(sms(&db, &["resolve", "fall", "C1001", "--not-sent"]));
    assert!(
        err.contains("no record \"C1001\" whose outcome is unknown"),
        "{err}"
    );
}

/// Two organisations in one file (`--org`): a STOP to one blocks that one only, each sends its
/// own campaign of the same id, one never reads the other's, the hints repeat `--org`, and a
/// name that is not an organisation's is a usage error.
#[test]
fn two_organisations_in_one_file_never_see_each_others_rows() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");
    let with_org = |org: Option<&str>, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        if let Some(org) = org {
            all.extend(["--org", org]);
        }
        sms(&db, &all)
    };
    let stop = with_org(
        Some("acme"),
        &["inbound", "--from", "(646) 555-0199", "--body", "STOP"],
    );
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    let opted_out = |org| {
        json(&with_org(org, &["optouts", "--json"]))
            .as_array()
            .expect("a list")
            .len()
    };
    assert_eq!(opted_out(Some("acme")), 1);
    assert_eq!(opted_out(None), 0, "acme's STOP does not block default");
    assert_eq!(opted_out(Some("bravo")), 0);

    let preview = |org| {
        json(&with_org(
            org,
            &[
                "preview",
                "--recipients",
                "examples/recipients.csv",
                "--body",
                BODY,
                "--json",
            ],
        ))["totals"]["texts"]
            .as_u64()
            .expect("a count")
    };
    assert_eq!((preview(Some("acme")), preview(None)), (7, 9));

    let send = |org| {
        with_org(
            org,
            &[
                "send",
                "--recipients",
                "examples/recipients.csv",
                "--body",
                BODY,
                "--campaign",
                "fall",
                "--yes",
                "--rate",
                "0",
                // What this test checks must not depend on the hour it runs at.
                "--ignore-quiet-hours",
            ],
        )
    };
    let acme = send(Some("acme"));
    let out = text(&acme.stdout);
    assert!(acme.status.success(), "{out}\n{}", text(&acme.stderr));
    assert!(
        out.contains(&format!(
            "resume with: sms resume fall --db {} --org acme)",
            db.display()
        )),
        "{out}"
    );
    assert!(out.contains("organisation acme"), "{out}");
    let default = send(None);
    let out = text(&default.stdout);
    assert!(
        default.status.success(),
        "the same id in another organisation: {out}"
    );
    assert!(
        out.contains(&format!(
            "resume with: sms resume fall --db {})",
            db.display()
        )),
        "no --org for default: {out}"
    );
    let texted = |org| {
        let report = json(&with_org(org, &["report", "fall", "--json"]));
        let totals = &report["totals"];
        totals["accepted"].as_u64().unwrap_or(0) + totals["failed"].as_u64().unwrap_or(0)
    };
    assert_eq!((texted(Some("acme")), texted(None)), (7, 9));

    let other = with_org(Some("bravo"), &["report", "fall"]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr).contains("no campaign fall"),
        "{}",
        text(&other.stderr)
    );

    for bad in ["a b", "", "x/../y"] {
        let refused = with_org(Some(bad), &["optouts"]);
        assert_eq!(refused.status.code(), Some(2), "{bad:?}");
        let err = text(&refused.stderr);
        assert!(
            err.contains("is not an organisation name"),
            "{bad:?}: {err}"
        );
    }
}
