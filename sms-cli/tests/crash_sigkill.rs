//! Crash safety, measured: the real `sms` process is killed with SIGKILL at many random points
//! while it sends through the real Twilio provider to a local stand-in that counts what it
//! accepts; `sms resume` finishes each campaign. Every eligible record must be accepted exactly
//! once, and no text may be created twice, across all kill points.
//!
//! `CRASH_SEED=N` replays one sequence of kill points; `CRASH_KILLS=N` asks for more of them.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sms_tests::fake_twilio::{FakeTwilio, Fault};

const RECORDS: usize = 300;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64: reproducible from the printed seed.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Each campaign texts its own numbers: reconciliation rightly refuses to decide when the
/// provider holds a different text to the same number from minutes before (a person must).
fn write_recipients(path: &Path, campaign: usize) -> Vec<String> {
    let mut csv = String::from(
        "record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone\n",
    );
    let mut numbers = Vec::new();
    for i in 0..RECORDS {
        // Distinct valid New York numbers, typed in the usual way.
        let exchange = 200 + (campaign * RECORDS / 10 + i / 10) % 700;
        let line = 1000 + i;
        csv.push_str(&format!(
            "C{i:04},client,Kid{i},Family,(212) {exchange}-{line:04},Text,,America/New_York\n"
        ));
        numbers.push(format!("+1212{exchange}{line:04}"));
    }
    std::fs::write(path, csv).expect("the temp dir is writable");
    numbers
}

fn sms(twilio: &FakeTwilio, db: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sms"));
    command
        .args(args)
        .arg("--db")
        .arg(db)
        // The stand-in lists what it created at once: no need to wait before trusting silence.
        .args(["--reconcile-wait", "0"])
        .args(["--provider", "twilio", "--twilio-base-url"])
        .arg(twilio.base_url())
        .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
        .env("TWILIO_AUTH_TOKEN", "not-a-real-token")
        .env("TWILIO_FROM", "+15005550006")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_MESSAGING_SERVICE_SID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn campaign_exists(db: &Path, campaign: &str) -> bool {
    let status = Command::new(env!("CARGO_BIN_EXE_sms"))
        .args(["report", campaign, "--db"])
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sms report runs");
    status.code() != Some(2)
}

fn report(db: &Path, campaign: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_sms"))
        .args(["report", campaign, "--json", "--db"])
        .arg(db)
        .output()
        .expect("sms report runs");
    serde_json::from_slice(&output.stdout).expect("the report is JSON")
}

#[test]
fn sigkill_at_random_points_then_resume_texts_everyone_exactly_once() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_CAFE_F00D);
    let wanted_kills: usize = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("sms.db");

    let twilio = FakeTwilio::start();
    // A little latency per request, as a real API has, so kills land mid-campaign.
    let mut latency = Rng(seed.rotate_left(17) | 1);
    twilio.set_plan(move |_, _| Fault::Delay(Duration::from_micros(latency.below(3_000))));

    let started = Instant::now();
    // A kill counts when the process was still running; it counts as mid-send when texts were
    // created during that process's life (so it was cut off while sending, not while starting
    // or reconciling). The target is on the stricter count.
    let mut effective_kills = 0usize;
    let mut mid_send_kills = 0usize;
    let mut attempts = 0usize;
    let mut campaigns: Vec<(String, String, Vec<String>)> = Vec::new();
    while mid_send_kills < wanted_kills {
        let campaign = format!("crash-{}", campaigns.len() + 1);
        let body = format!(
            "Campaign {} : class moved to Room 4. Reply STOP to opt out.",
            campaigns.len() + 1
        );
        let csv = dir.path().join(format!("{campaign}.csv"));
        let numbers = write_recipients(&csv, campaigns.len());
        let csv = csv.to_str().expect("utf-8 temp path").to_owned();
        // Kill while the campaign runs, until it finishes despite the kills.
        loop {
            attempts += 1;
            assert!(attempts < 2_000, "the campaigns never finish (seed {seed})");
            let args: Vec<&str> = if campaign_exists(&db, &campaign) {
                vec!["resume", &campaign, "--rate", "0"]
            } else {
                vec![
                    "send",
                    "--recipients",
                    &csv,
                    "--body",
                    &body,
                    "--campaign",
                    &campaign,
                    "--yes",
                    "--rate",
                    "0",
                ]
            };
            let created_before = twilio.created().len();
            let mut child = sms(&twilio, &db, &args).spawn().expect("sms starts");
            let delay = Duration::from_millis(15 + rng.below(250));
            let deadline = Instant::now() + delay;
            let mut finished = None;
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait().expect("waitable child") {
                    finished = Some(status);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if std::env::var_os("CRASH_DEBUG").is_some() {
                eprintln!(
                    "attempt {attempts} {:?} after {delay:?}: finished {finished:?}, created {}",
                    args.first(),
                    twilio.created().len()
                );
            }
            match finished {
                Some(status) if status.success() => break,
                Some(status) => {
                    let report = report(&db, &campaign);
                    let stuck: Vec<&serde_json::Value> = report["records"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|r| r["state"]["state"] != "accepted")
                        .collect();
                    panic!(
                        "sms exited with {status} before being killed (seed {seed}): {}\n{stuck:#?}",
                        report["totals"]
                    )
                }
                None => {
                    child.kill().expect("SIGKILL delivered");
                    child.wait().expect("reaped");
                    effective_kills += 1;
                    if twilio.created().len() > created_before {
                        mid_send_kills += 1;
                    }
                }
            }
        }
        campaigns.push((campaign, body, numbers));
    }

    // Every eligible record of every campaign accepted exactly once, and nothing sent twice.
    let created = twilio.created_per_recipient();
    let duplicates: Vec<_> = created.iter().filter(|(_, n)| **n > 1).collect();
    let mut expected: HashMap<(String, String), u32> = HashMap::new();
    for (campaign, body, numbers) in &campaigns {
        let report = report(&db, campaign);
        let totals = &report["totals"];
        assert_eq!(totals["accepted"], RECORDS, "{campaign}: {totals}");
        assert_eq!(totals["unknown"], 0, "{campaign}: {totals}");
        assert_eq!(totals["sending"], 0, "{campaign}: {totals}");
        for number in numbers {
            expected.insert((number.clone(), body.clone()), 1);
        }
    }
    println!(
        "seed {seed}: {effective_kills} SIGKILLs of a running sms ({mid_send_kills} while texts were going out) \
         over {} campaign(s) of {RECORDS} records, \
         {attempts} processes, {} texts created, {} duplicates, {:.1} s",
        campaigns.len(),
        twilio.created().len(),
        duplicates.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        duplicates.is_empty(),
        "texted twice: {duplicates:?} (seed {seed})"
    );
    assert_eq!(
        created, expected,
        "someone was skipped or texted who should not be (seed {seed})"
    );
}
