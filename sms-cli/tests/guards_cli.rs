//! The guards of the sending commands, from a shell: a resume through another Twilio account,
//! a campaign too old to resume, flags that could only cause a duplicate or switch off the
//! balance check, the `--program-year` pair, and records that share a record id (texted,
//! reported and resolved by their position).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use sms_core::journal::{Journal, RecordState, Transition};
use sms_core::{CampaignId, Timestamp};
use sms_sqlite::SqliteStore;
use sms_tests::fake_twilio::{FakeTwilio, Fault};

const SID_A: &str = "AC00000000000000000000000000000000";
const SID_B: &str = "AC11111111111111111111111111111111";
const TOKEN: &str = "guard-test-token-never-printed";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sms(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sms"))
        .args(args)
        .arg("--db")
        .arg(db)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .expect("the sms binary runs")
}

fn twilio_sms(twilio: &FakeTwilio, db: &Path, sid: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sms"))
        .args(args)
        .arg("--db")
        .arg(db)
        .args(["--provider", "twilio", "--twilio-base-url"])
        .arg(twilio.base_url())
        .args(["--reconcile-wait", "0", "--rate", "0"])
        .current_dir(root())
        .env("TWILIO_ACCOUNT_SID", sid)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("TWILIO_FROM", "+15005550006")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_MESSAGING_SERVICE_SID")
        .env_remove("TWILIO_BASE_URL")
        .stdin(Stdio::null())
        .output()
        .expect("the sms binary runs")
}

fn failure(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stderr)
}

fn report(db: &Path, campaign: &str) -> serde_json::Value {
    let output = sms(db, &["report", campaign, "--json"]);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", text(&output.stderr));
    })
}

#[test]
fn a_resume_through_another_twilio_account_is_refused_and_sends_nothing() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");
    let twilio = FakeTwilio::start();
    // The third create is refused for the account (401): the run stops, the rest stay planned.
    twilio.set_plan(|n, _| {
        if n == 3 {
            Fault::Status {
                status: 401,
                code: 20003,
                retry_after_s: None,
            }
        } else {
            Fault::None
        }
    });
    let args = [
        "send",
        "--recipients",
        "examples/recipients.csv",
        "--body",
        "Hi {first_name}",
        "--campaign",
        "acct",
        "--yes",
        "--ignore-quiet-hours",
        "--concurrency",
        "1",
    ];
    let first = twilio_sms(&twilio, &db, SID_A, &args);
    assert!(failure(&first).contains("20003"));
    let sent_before = twilio.created().len();
    assert_eq!(sent_before, 2);
    assert!(report(&db, "acct")["totals"]["planned"].as_u64() > Some(0));

    let other = twilio_sms(&twilio, &db, SID_B, &["resume", "acct"]);
    let err = failure(&other);
    assert!(err.contains(SID_A) && err.contains(SID_B), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    assert_eq!(
        twilio.created().len(),
        sent_before,
        "nothing sent through the other account"
    );

    twilio.set_plan(|_, _| Fault::None);
    let same = twilio_sms(&twilio, &db, SID_A, &["resume", "acct"]);
    assert!(same.status.success(), "{}", text(&same.stderr));
    assert_eq!(
        report(&db, "acct")["totals"]["accepted"],
        10,
        "the stand-in takes every number"
    );
}

#[test]
fn a_campaign_older_than_a_day_is_resumed_only_when_allowed() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = SqliteStore::open(&db).expect("open");
        let mut c = sms_tests::campaigns::campaign("old", 3, 3, sms_tests::unpaced(1));
        c.created_at = Timestamp::from_unix_ms(Timestamp::now().unix_ms() - 50 * 3_600_000);
        store.create_campaign(c).await.expect("create");
    });
    let err = failure(&sms(&db, &["resume", "old"]));
    assert!(err.contains("created 50 h ago"), "{err}");
    assert!(err.contains("--max-age-hours 51"), "{err}");
    assert_eq!(report(&db, "old")["totals"]["planned"], 3, "nothing sent");

    let allowed = sms(&db, &["resume", "old", "--max-age-hours", "51"]);
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    assert_eq!(report(&db, "old")["totals"]["accepted"], 3);
}

#[test]
fn flags_that_could_only_cause_a_duplicate_or_hide_the_cost_are_refused() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");
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
    let err = failure(&send(&["--reconcile-wait", "0"]));
    assert!(err.contains("at least 10 seconds"), "{err}");
    assert!(err.contains("twice"), "the error says why: {err}");
    assert!(failure(&send(&["--reconcile-wait", "9"])).contains("--reconcile-wait 9"));
    for price in [
        "-0.01",
        "--price-per-segment=-1",
        "NaN",
        "inf",
        "--price-per-segment=-inf",
    ] {
        let flag = if price.starts_with("--") {
            vec![price]
        } else {
            vec!["--price-per-segment", price]
        };
        let err = failure(&send(&flag));
        assert!(err.contains("--price-per-segment"), "{price}: {err}");
        let preview = sms(
            &db,
            &[
                &[
                    "preview",
                    "--recipients",
                    "examples/recipients.csv",
                    "--body",
                    "Hi",
                ][..],
                &flag,
            ]
            .concat(),
        );
        assert!(failure(&preview).contains("--price-per-segment"), "{price}");
    }
    // --program-year and --current-program-year go together, either way round.
    for pair in [
        ["--program-year", "2025"],
        ["--current-program-year", "2026"],
    ] {
        let err = failure(&send(&pair));
        assert!(
            err.contains("give both --program-year and --current-program-year"),
            "{pair:?}: {err}"
        );
    }
    assert!(!db.exists() || report_is_empty(&db), "nothing was stored");
}

fn report_is_empty(db: &Path) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        SqliteStore::open(db)
            .expect("open")
            .campaigns()
            .await
            .expect("campaigns")
            .is_empty()
    })
}

#[test]
fn records_sharing_an_id_are_each_texted_reported_and_resolved_by_position() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");
    let csv = dir.path().join("twins.csv");
    std::fs::write(
        &csv,
        "record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone\n\
         C7,client,Ana,Lopez,(212) 555-0123,Text,,\n\
         C7,client,Ben,Lopez,(212) 555-0124,Text,,\n\
         C8,client,Cy,Ortiz,(212) 555-0125,Text,,\n",
    )
    .expect("written");
    let csv = csv.to_str().expect("utf-8 path");
    let sent = sms(
        &db,
        &[
            "send",
            "--recipients",
            csv,
            "--body",
            "Hi {first_name}",
            "--campaign",
            "twins",
            "--yes",
            "--ignore-quiet-hours",
            "--rate",
            "0",
        ],
    );
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let out = text(&sent.stdout);
    assert!(out.contains("#0 C7") && out.contains("#1 C7"), "{out}");
    let twins = report(&db, "twins");
    let records = twins["records"].as_array().expect("records");
    let ids: Vec<(&str, u64, &str)> = records
        .iter()
        .map(|r| {
            (
                r["record_id"].as_str().expect("id"),
                r["seq"].as_u64().expect("seq"),
                r["state"]["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("C7", 0, "accepted"),
            ("C7", 1, "accepted"),
            ("C8", 2, "accepted")
        ]
    );
    assert_ne!(
        records[0]["state"]["provider_id"],
        records[1]["state"]["provider_id"]
    );

    // Both outcomes lost (a crash): only a person can settle them.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(&db).expect("open"));
        let mut c = sms_tests::campaigns::campaign("lost", 3, 3, sms_tests::unpaced(1));
        for item in &mut c.items[..2] {
            item.record_id = sms_core::RecordId::new("C7");
        }
        let id: CampaignId = c.id.clone();
        store.create_campaign(c).await.expect("create");
        let at = Timestamp::now();
        for state in [
            RecordState::Sending { attempt: 1, at },
            RecordState::Unknown {
                message: "the answer was lost".into(),
                sent_at: at,
                at,
            },
        ] {
            let moves = (0..2)
                .map(|seq| Transition {
                    seq,
                    state: state.clone(),
                })
                .collect();
            store.apply(id.clone(), moves).await.expect("applied");
        }
    });
    let err = failure(&sms(&db, &["resolve", "lost", "C7", "--not-sent"]));
    assert!(err.contains("#0, #1") && err.contains("--record"), "{err}");
    let by_flag = sms(
        &db,
        &[
            "resolve",
            "lost",
            "--record",
            "1",
            "--sent",
            "--provider-id",
            "SM1",
        ],
    );
    assert!(by_flag.status.success(), "{}", text(&by_flag.stderr));
    let by_hash = sms(&db, &["resolve", "lost", "#0", "--not-sent"]);
    assert!(by_hash.status.success(), "{}", text(&by_hash.stderr));
    let lost = report(&db, "lost");
    assert_eq!(lost["records"][0]["state"]["state"], "planned");
    assert_eq!(lost["records"][1]["state"]["provider_id"], "SM1");
    let err = failure(&sms(
        &db,
        &["resolve", "lost", "--record", "1", "--not-sent"],
    ));
    assert!(err.contains("is accepted, not unknown"), "{err}");
}
