//! A fleet of `sms` processes sharing one PostgreSQL database, at the process level: the real
//! binary, several `sms resume` workers on one campaign, the real Twilio provider talking to
//! the local stand-in ([`FakeTwilio`]), which counts every text it creates.
//!
//! - **Crash**: three workers send one campaign of 3,000 records while a random worker is
//!   killed with SIGKILL at random points and restarted each time; every record must end
//!   accepted, each person texted exactly once. `CRASH_SEED=N` replays a sequence of kills,
//!   `CRASH_KILLS=N` asks for more.
//! - **Rate**: the campaign's rate is the fleet's total (booked in the database): three
//!   workers at `--rate 30` and `--rate 300` must create texts at that rate, within 3%, over
//!   the steady part of the run (the one timed assertion the fleet asks for).
//! - **Losing the database**: the database stops taking connections and its sessions are ended
//!   while a worker sends; the worker must stop (a store error, no panic) leaving its records
//!   `planned`/`sending`, and a resume once the database is back must finish them exactly once.
//!
//! Every test needs `SMS_TEST_POSTGRES_URL` (a role that may create databases): without it they
//! pass with a message, except under CI (`CI` set), where they fail. They run one at a time
//! (a lock), so the timed one does not share the machine with the others.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sms_postgres::test_support::TestDatabase;
use sms_tests::Rng;
use sms_tests::fake_twilio::{Created, FakeTwilio, Fault};

/// The tests of this file take turns: the rate test measures time, and all of them start
/// several processes on a machine that may have two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A lease a killed worker's numbers are taken over after (short: the stand-in is on this
/// machine, its calls take milliseconds).
const LEASE_SECONDS: &str = "3";

/// Provider calls in flight per worker (`sms send`'s default, stated so the tests can count).
const CONCURRENCY: usize = 4;

/// A runtime for the test database's setup (its admin connection lives on it).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Writes `records` recipients, each on a number of its own; returns the numbers in E.164.
fn write_recipients(path: &Path, records: usize) -> Vec<String> {
    let mut csv = String::from(
        "record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone\n",
    );
    let mut numbers = Vec::with_capacity(records);
    for i in 0..records {
        let exchange = 300 + i / 1000;
        let line = 2000 + i % 1000;
        csv.push_str(&format!(
            "C{i:05},client,Kid{i},Family,(212) {exchange}-{line:04},Text,,America/New_York\n"
        ));
        numbers.push(format!("+1212{exchange}{line:04}"));
    }
    std::fs::write(path, csv).expect("the temp dir is writable");
    numbers
}

/// One test's fleet: the stand-in, the database URL, where the workers' logs go.
struct Fleet {
    twilio: FakeTwilio,
    url: String,
    dir: tempfile::TempDir,
    campaign: String,
    body: String,
    csv: PathBuf,
    rate: String,
    concurrency: usize,
    spawned: usize,
}

impl Fleet {
    fn new(url: &str, campaign: &str, records: usize, rate: &str) -> (Fleet, Vec<String>) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let csv = dir.path().join("recipients.csv");
        let numbers = write_recipients(&csv, records);
        let fleet = Fleet {
            twilio: FakeTwilio::start(),
            url: url.to_owned(),
            dir,
            campaign: campaign.to_owned(),
            body: format!("{campaign}: class moved to Room 4. Reply STOP to opt out."),
            csv,
            rate: rate.to_owned(),
            concurrency: CONCURRENCY,
            spawned: 0,
        };
        (fleet, numbers)
    }

    /// `sms ARGS --db URL` with the stand-in as Twilio; output to a log file of its own.
    fn command(&mut self, args: &[&str]) -> (Command, PathBuf) {
        self.spawned += 1;
        let log = self
            .dir
            .path()
            .join(format!("{}-{}.log", self.spawned, args[0]));
        let out = File::create(&log).expect("a log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sms"));
        command
            .args(args)
            .arg("--db")
            .arg(&self.url)
            .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
            .env("TWILIO_AUTH_TOKEN", "not-a-real-token")
            .env("TWILIO_FROM", "+15005550006")
            .env_remove("TWILIO_API_KEY")
            .env_remove("TWILIO_MESSAGING_SERVICE_SID")
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log file"))
            .stderr(out);
        (command, log)
    }

    /// The flags of a sending worker: the stand-in, no settle wait (it lists at once), short
    /// leases, the rate.
    fn sending_flags(&self) -> Vec<String> {
        [
            "--provider",
            "twilio",
            "--twilio-base-url",
            &self.twilio.base_url(),
            "--reconcile-wait",
            "0",
            "--lease-seconds",
            LEASE_SECONDS,
            "--rate",
            &self.rate,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    /// `sms send` creating the campaign (then sending it as a fleet worker).
    fn send(&mut self) -> Worker {
        let concurrency = self.concurrency.to_string();
        let mut args: Vec<String> = [
            "send",
            "--recipients",
            self.csv.to_str().expect("utf-8 temp path"),
            "--body",
            &self.body,
            "--campaign",
            &self.campaign,
            "--yes",
            "--ignore-quiet-hours",
            "--concurrency",
            &concurrency,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(self.sending_flags());
        self.spawn(&args)
    }

    /// `sms resume CAMPAIGN`: one more worker.
    fn resume(&mut self) -> Worker {
        let mut args = vec!["resume".to_owned(), self.campaign.clone()];
        args.extend(self.sending_flags());
        self.spawn(&args)
    }

    fn spawn(&mut self, args: &[String]) -> Worker {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (mut command, log) = self.command(&args);
        let child = command.spawn().expect("sms starts");
        Worker {
            child,
            log,
            started: Instant::now(),
        }
    }

    /// Whether the campaign is stored (`sms report` exits 2 for an unknown campaign).
    fn campaign_exists(&mut self) -> bool {
        let campaign = self.campaign.clone();
        let (mut command, _) = self.command(&["report", &campaign]);
        let status = command.status().expect("sms report runs");
        status.code() != Some(2)
    }

    /// `sms report CAMPAIGN --json`.
    fn report(&mut self) -> serde_json::Value {
        let output = Command::new(env!("CARGO_BIN_EXE_sms"))
            .args(["report", &self.campaign, "--json", "--db", &self.url])
            .stdin(Stdio::null())
            .output()
            .expect("sms report runs");
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "the report is not JSON ({e}): {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }

    /// Waits for the campaign to be stored by the `sms send` worker (which may fail first).
    fn wait_for_campaign(&mut self, creator: &mut Worker) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.campaign_exists() {
            if let Some(status) = creator.child.try_wait().expect("waitable") {
                panic!(
                    "sms send exited with {status} before the campaign was stored:\n{}",
                    creator.tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the campaign was not stored within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Checks that every record is accepted and that each number received the campaign's text
    /// exactly once, the journal's provider ids naming the stand-in's messages.
    fn assert_everyone_texted_once(&mut self, numbers: &[String], context: &str) {
        let report = self.report();
        let totals = &report["totals"];
        assert_eq!(totals["accepted"], numbers.len(), "{context}: {totals}");
        let created = self.twilio.created();
        let by_sid: HashMap<&str, &Created> = created.iter().map(|c| (c.sid.as_str(), c)).collect();
        let mut journaled = HashSet::new();
        for record in report["records"].as_array().expect("records") {
            let sid = record["state"]["provider_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{context}: accepted without an id: {record}"));
            let message = by_sid
                .get(sid)
                .unwrap_or_else(|| panic!("{context}: {sid} was never created: {record}"));
            assert_eq!(Some(message.to.as_str()), record["number"].as_str());
            assert_eq!(message.body, self.body);
            journaled.insert(sid);
        }
        let per_number = self.twilio.created_per_recipient();
        let duplicates: Vec<_> = per_number.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            duplicates.is_empty(),
            "{context}: texted twice: {duplicates:?}"
        );
        let expected: HashMap<(String, String), u32> = numbers
            .iter()
            .map(|n| ((n.clone(), self.body.clone()), 1))
            .collect();
        assert_eq!(per_number, expected, "{context}: someone missing or extra");
        assert_eq!(
            journaled.len(),
            created.len(),
            "{context}: every text created is journaled against its record"
        );
    }
}

/// A running `sms` process and its log.
struct Worker {
    child: Child,
    log: PathBuf,
    started: Instant,
}

impl Worker {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The start and the end of the output (a report lists every record): for failures.
    fn tail(&self) -> String {
        let output = self.output();
        let lines: Vec<&str> = output.lines().collect();
        if lines.len() <= 60 {
            return output;
        }
        format!(
            "{}\n[... {} lines ...]\n{}",
            lines[..20].join("\n"),
            lines.len() - 60,
            lines[lines.len() - 40..].join("\n")
        )
    }

    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL delivered");
        self.child.wait().expect("reaped");
    }

    /// Waits for the process to end, at most until `deadline` (then kills it and panics).
    fn wait_until(&mut self, deadline: Instant, what: &str) -> ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().expect("waitable") {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "{what}: still running after {:?}:\n{}",
                    self.started.elapsed(),
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn seed_and_kills() -> (u64, usize) {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xF1EE_75EE_D001);
    let kills: usize = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    (seed, kills)
}

/// Three workers on one campaign of 3,000 records; a random one SIGKILLed at random points
/// and restarted each time. Its numbers are taken over when its leases expire, the records it
/// left `sending` reconciled with the stand-in's list: nobody texted twice, nobody missed.
#[test]
fn a_fleet_killed_at_random_points_texts_everyone_exactly_once() {
    let _serial = serial();
    let rt = runtime();
    let Some(db) = rt.block_on(TestDatabase::create()) else {
        return;
    };
    const RECORDS: usize = 3_000;
    let (seed, wanted_kills) = seed_and_kills();
    println!("fleet crash: seed {seed} (CRASH_SEED={seed} replays), {wanted_kills} kills");
    let mut rng = Rng::new(seed);
    // 120 texts a second in all: about 25 s of sending, so the kills (about 9 s of them) all
    // land while texts are going out, however fast the machine.
    let (mut fleet, numbers) = Fleet::new(db.url(), "fleet-crash", RECORDS, "120");
    let mut latency = Rng::new(seed.rotate_left(17));
    fleet
        .twilio
        .set_plan(move |_, _| Fault::Delay(Duration::from_micros(latency.below(3_000))));

    let started = Instant::now();
    let mut creator = fleet.send();
    fleet.wait_for_campaign(&mut creator);
    let mut workers = vec![creator, fleet.resume(), fleet.resume()];

    let mut kills = 0usize;
    let mut mid_send = 0usize;
    let mut finished_early = false;
    let mut created_at_last_kill = fleet.twilio.created().len();
    while kills < wanted_kills {
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
        // A worker that ended by itself: the campaign is done (every number's work finished),
        // or it failed, which the test reports.
        for worker in &mut workers {
            if let Some(status) = worker.child.try_wait().expect("waitable") {
                assert!(
                    status.success(),
                    "a worker exited with {status} before being killed (seed {seed}):\n{}",
                    worker.tail()
                );
                finished_early = true;
            }
        }
        if finished_early {
            break;
        }
        let slot = rng.below(workers.len() as u64) as usize;
        workers[slot].kill();
        kills += 1;
        let created = fleet.twilio.created().len();
        if created > created_at_last_kill && created < RECORDS {
            mid_send += 1;
        }
        created_at_last_kill = created;
        workers[slot] = fleet.resume();
    }
    let killing = started.elapsed();
    // The fleet finishes by itself: the last worker to find no work left exits 0. (About 25 s
    // of sending at 120/s; a minute on a machine busy with other work; the deadline only
    // catches a fleet that never ends.)
    let deadline = started + Duration::from_secs(150);
    for worker in &mut workers {
        let status = worker.wait_until(deadline, "a worker after the kills");
        assert!(
            status.success(),
            "a worker exited with {status} (seed {seed}):\n{}",
            worker.tail()
        );
    }
    let fleet_done = started.elapsed();
    // A last resume finds nothing in doubt and nothing to send.
    let created_before_last = fleet.twilio.created().len();
    let mut last = fleet.resume();
    let status = last.wait_until(Instant::now() + Duration::from_secs(30), "the last resume");
    assert!(
        status.success(),
        "the last resume: {status}\n{}",
        last.tail()
    );
    println!(
        "fleet crash: seed {seed}: {kills} SIGKILLs ({mid_send} while texts were going out) over \
         {:.1} s, the fleet done at {:.1} s, {} texts created ({} by the last resume), {} \
         look(s) at the stand-in's list for records in doubt, {} processes",
        killing.as_secs_f64(),
        fleet_done.as_secs_f64(),
        fleet.twilio.created().len(),
        fleet.twilio.created().len() - created_before_last,
        fleet.twilio.list_requests(),
        fleet.spawned,
    );
    fleet.assert_everyone_texted_once(&numbers, &format!("seed {seed}"));
    assert!(
        fleet.twilio.list_requests() > 0,
        "no record was left in doubt by a kill, so no takeover was reconciled (seed {seed})"
    );
    assert!(
        !finished_early && mid_send >= 20,
        "only {mid_send} of {kills} kills landed while texts were going out (seed {seed}): \
         the campaign ran too fast for the test to prove anything"
    );
}

/// Texts a second over the steady part of a run: the stand-in's creation times, without the
/// first second (workers starting, the first batches leased) and the last half second.
fn steady_rate(created: &[Created]) -> (f64, usize, i64) {
    let mut times: Vec<i64> = created.iter().map(|c| c.created_ms).collect();
    times.sort_unstable();
    let (first, last) = (times[0], times[times.len() - 1]);
    let window: Vec<i64> = times
        .into_iter()
        .filter(|t| *t >= first + 1_000 && *t <= last - 500)
        .collect();
    let span = window[window.len() - 1] - window[0];
    let rate = (window.len() - 1) as f64 * 1_000.0 / span as f64;
    (rate, window.len(), span)
}

/// Three workers share the campaign's rate: their total is the rate asked for, within 3%.
fn fleet_rate(db_url: &str, rate: u32, seconds: usize, concurrency: usize) -> f64 {
    let records = rate as usize * seconds;
    let (mut fleet, numbers) = Fleet::new(
        db_url,
        &format!("fleet-rate-{rate}"),
        records,
        &rate.to_string(),
    );
    fleet.concurrency = concurrency;
    let started = Instant::now();
    let mut creator = fleet.send();
    fleet.wait_for_campaign(&mut creator);
    let mut workers = vec![creator, fleet.resume(), fleet.resume()];
    let deadline = started + Duration::from_secs(seconds as u64 + 40);
    for worker in &mut workers {
        let status = worker.wait_until(deadline, "a rate worker");
        assert!(
            status.success(),
            "a worker exited with {status}:\n{}",
            worker.tail()
        );
    }
    fleet.assert_everyone_texted_once(&numbers, &format!("rate {rate}"));
    let (measured, texts, span_ms) = steady_rate(&fleet.twilio.created());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let error = (measured - f64::from(rate)) / f64::from(rate);
    println!(
        "fleet rate: --rate {rate} over 3 workers: {measured:.2}/s ({:+.2}%) over {texts} texts in \
         {span_ms} ms of the steady part; run {:.1} s; load average {}",
        error * 100.0,
        started.elapsed().as_secs_f64(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Above the rate: the booking in the database let the workers exceed the campaign's rate.
    // Below it: they did not use their slots, or could not keep up (a machine busy with other
    // work: the load average says).
    assert!(
        error.abs() <= 0.03,
        "--rate {rate}: the fleet sent {measured:.2}/s, {:+.2}% off (load average {})",
        error * 100.0,
        load.trim()
    );
    measured
}

/// `--rate 30` over three workers: the rate is the campaign's, booked in the database, not
/// each worker's (three times it would be 90/s).
#[test]
fn three_workers_keep_a_rate_of_30_in_total() {
    let _serial = serial();
    let rt = runtime();
    let Some(db) = rt.block_on(TestDatabase::create()) else {
        return;
    };
    fleet_rate(db.url(), 30, 12, CONCURRENCY);
}

/// `--rate 300` over three workers, each with 8 calls in flight (a worker's share, 100/s, with
/// the database's commits in each send, needs more than the default 4 on a busy machine).
#[test]
fn three_workers_keep_a_rate_of_300_in_total() {
    let _serial = serial();
    let rt = runtime();
    let Some(db) = rt.block_on(TestDatabase::create()) else {
        return;
    };
    fleet_rate(db.url(), 300, 8, 8);
}

/// The database goes while a worker sends: it stops connections (`ALLOW_CONNECTIONS false`, as
/// the database's owner may) and its sessions are ended (`pg_terminate_backend`, as a restart
/// or a cut network would). The worker stops with a store error, having sent only what was in
/// flight; nothing is guessed (records stay `planned` or `sending`); once the database is back
/// a resume reconciles and finishes, everyone texted exactly once.
#[test]
fn a_worker_that_loses_the_database_stops_and_a_resume_finishes_exactly_once() {
    let _serial = serial();
    let rt = runtime();
    let Some(db) = rt.block_on(TestDatabase::create_database()) else {
        return;
    };
    const RECORDS: usize = 1_500;
    let (mut fleet, numbers) = Fleet::new(db.url(), "fleet-db-loss", RECORDS, "100");
    let mut worker = fleet.send();
    fleet.wait_for_campaign(&mut worker);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fleet.twilio.created().len() < 100 {
        assert!(
            Instant::now() < deadline,
            "no texts going out:\n{}",
            worker.tail()
        );
        assert!(
            worker.child.try_wait().expect("waitable").is_none(),
            "the worker ended before the cut:\n{}",
            worker.tail()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let admin = rt.block_on(db.admin());
    rt.block_on(admin.batch_execute(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS false",
        db.name()
    )))
    .expect("the owner may close its database");
    let ended = rt.block_on(db.terminate_sessions());
    let cut = Instant::now();
    let created_at_cut = fleet.twilio.created().len();

    let status = worker.wait_until(
        cut + Duration::from_secs(60),
        "the worker without its database",
    );
    let stopped_after = cut.elapsed();
    let output = worker.output();
    let created_after = fleet.twilio.created().len();
    println!(
        "database lost: {ended} session(s) ended after {created_at_cut} texts; the worker exited \
         {status} {:.2} s later, {} text(s) created after the cut",
        stopped_after.as_secs_f64(),
        created_after - created_at_cut
    );
    assert_eq!(status.code(), Some(2), "a store error is exit 2:\n{output}");
    assert!(!output.contains("panicked"), "{output}");
    let error_line = output
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line:\n{output}"));
    assert!(
        error_line.contains("database") || error_line.contains("connection"),
        "the error names the store: {error_line}"
    );
    println!("database lost: the worker said {error_line:?}");
    assert!(
        created_after - created_at_cut <= CONCURRENCY,
        "only the texts in flight at the cut may go out after it: {} did",
        created_after - created_at_cut
    );

    // The database is back: nothing was decided without it.
    rt.block_on(admin.batch_execute(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        db.name()
    )))
    .expect("reopened");
    let report = fleet.report();
    let totals = &report["totals"];
    for state in ["failed", "deferred", "unknown", "held", "blocked"] {
        assert_eq!(totals[state], 0, "{state}: {totals}");
    }
    let accepted = totals["accepted"].as_u64().expect("a count");
    let sending = totals["sending"].as_u64().expect("a count");
    let planned = totals["planned"].as_u64().expect("a count");
    assert_eq!(accepted + sending + planned, RECORDS as u64, "{totals}");
    assert!(planned > 0, "the cut came before the end: {totals}");
    assert!(
        sending as usize <= CONCURRENCY,
        "only the texts in flight are in doubt: {totals}"
    );
    assert!(
        created_after as u64 <= accepted + sending,
        "every text created is accepted or in doubt in the journal: {created_after} created, \
         {totals}"
    );

    // Unlimited, for speed: the rate is not what this test is about.
    fleet.rate = "0".into();
    let mut resume = fleet.resume();
    let status = resume.wait_until(Instant::now() + Duration::from_secs(60), "the resume");
    assert!(status.success(), "the resume: {status}\n{}", resume.tail());
    fleet.assert_everyone_texted_once(&numbers, "after the database came back");
}
