//! `sms serve` end to end: the real `sms` binary listening on a free port of 127.0.0.1, a real
//! SQLite file, texts sent by `sms send` through the local Twilio stand-in, and webhooks posted
//! over HTTP and signed here, independently of the code under test (Twilio's documented
//! algorithm: base64 of HMAC-SHA1 over the URL and the sorted parameters).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sms_tests::fake_twilio::{FakeTwilio, Fault};

const ACCOUNT: &str = "AC00000000000000000000000000000000";
const TOKEN: &str = "serve-test-auth-token";
/// The URL Twilio is given: a proxy in front of the service, which sees another address.
const PUBLIC: &str = "https://sms.example.org/office";
const DEADLINE: Duration = Duration::from_secs(30);

/// Family phones: F1 and F2 share one number; R3 and R4 have their own.
const FAMILY: &str = "+12125550101";
const R3: &str = "+12125550103";
const R4: &str = "+12125550104";
const CSV: &str = "record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone
F1,client,Ann,Lee,(212) 555-0101,Text,,
F2,client,Bo,Lee,212.555.0101,Alerts,,
R3,client,Cy,Ng,(212) 555-0103,Text,,
R4,client,Di,Ox,(212) 555-0104,Text,,
";

/// The `sms` binary of this build. `cargo test --workspace` builds it (sms-cli's own tests need
/// it); when it is missing or older than the sources it is built from (`cargo test -p sms-tests`
/// alone), it is built here, so the test never runs a stale binary.
fn sms_binary() -> PathBuf {
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join(format!("sms{}", std::env::consts::EXE_SUFFIX));
    let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let newest_source = ["sms-cli", "sms-core", "sms-twilio", "sms-sqlite"]
        .iter()
        .flat_map(|c| [root.join(c).join("src"), root.join(c).join("Cargo.toml")])
        .chain([root.join("Cargo.lock")])
        .filter_map(|p| newest(&p))
        .max();
    if built.is_none() || newest_source > built {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "-p", "sms-cli", "--bin", "sms"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "cargo build -p sms-cli failed");
    }
    binary
}

/// The latest modification time under `path`.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| newest(&e.ok()?.path()))
        .max()
}

/// Runs an `sms` command (not the service) on `db`; stdout, stderr and success.
fn sms(db: &Path, args: &[&str]) -> (String, String, bool) {
    let output = Command::new(sms_binary())
        .args(args)
        .arg("--db")
        .arg(db)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("the sms binary runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

fn sms_json(db: &Path, args: &[&str]) -> serde_json::Value {
    let (out, err, _) = sms(db, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}\n{err}"))
}

/// `X-Twilio-Signature` as Twilio documents it, written here from the documentation.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn the_signature_is_twilios_documented_one() {
    // Twilio's own test vector (tests/data/twilio/NOTES.md, section 4).
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];
    assert_eq!(
        twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params
        ),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
}

fn form(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// A running `sms serve`, its standard error read line by line.
struct Service {
    child: Child,
    addr: SocketAddr,
    lines: Receiver<String>,
}

impl Service {
    /// Starts `sms serve` on `db`, sending through `twilio`, with `extra` flags.
    fn start(db: &Path, twilio: &FakeTwilio, extra: &[&str]) -> Service {
        let mut child = Command::new(sms_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--verbose"])
            .args(extra)
            .args(["--public-url", PUBLIC, "--db"])
            .arg(db)
            .args(["--provider", "twilio", "--twilio-base-url"])
            .arg(twilio.base_url())
            .env("TWILIO_ACCOUNT_SID", ACCOUNT)
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .env("TWILIO_FROM", "+15005550006")
            .env_remove("TWILIO_API_KEY")
            .env_remove("TWILIO_API_SECRET")
            .env_remove("TWILIO_MESSAGING_SERVICE_SID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sms serve starts");
        let stderr = child.stderr.take().expect("piped");
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut service = Service {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            lines,
        };
        let line = service.wait_for_line("listening on ");
        service.addr = line
            .rsplit("listening on ")
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        service
    }

    /// Waits for a log line holding `needle` (all lines before it are passed over).
    fn wait_for_line(&mut self, needle: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no log line with {needle:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("sms serve exited before logging {needle:?}")
                }
            }
        }
    }

    /// Sends one request on a new connection; the status and the body of the answer.
    fn request(
        &self,
        method: &str,
        path: &str,
        signature: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).expect("connects");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let head = request_head(method, path, signature, body.len());
        stream.write_all(head.as_bytes()).expect("head written");
        // A refused body (413) may be answered before it is all written: not an error here.
        let _ = stream.write_all(body.as_bytes());
        read_answer(&mut stream)
    }

    /// Posts a webhook to `path`, signed for the public URL with Twilio's token.
    fn post_signed(&self, path: &str, params: &[(&str, &str)]) -> (u16, String) {
        let signature = twilio_signature(TOKEN, &format!("{PUBLIC}{path}"), params);
        self.request("POST", path, Some(&signature), &form(params))
    }

    /// Waits for the process to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                return status;
            }
            assert!(Instant::now() < end, "sms serve did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request_head(method: &str, path: &str, signature: Option<&str>, length: usize) -> String {
    let signature = signature
        .map(|s| format!("X-Twilio-Signature: {s}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: sms.example.org\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{signature}Content-Length: {length}\r\n\r\n"
    )
}

fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn inbound<'a>(
    sid: &'a str,
    from: &'a str,
    body: &'a str,
    segments: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AccountSid", ACCOUNT),
        ("MessageSid", sid),
        ("SmsMessageSid", sid),
        ("From", from),
        ("To", "+15005550006"),
        ("Body", body),
        ("NumSegments", segments),
        ("NumMedia", "0"),
        ("ApiVersion", "2010-04-01"),
    ]
}

fn opted_out(db: &Path) -> Vec<String> {
    sms_json(db, &["optouts", "--json"])
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| o["number"].as_str().expect("a number").to_owned())
        .collect()
}

fn replies(db: &Path) -> serde_json::Value {
    sms_json(db, &["replies", "--json"])
}

/// The preview's outcome per record id on `db`'s opt-outs.
fn preview(db: &Path, csv: &Path) -> Vec<(String, String)> {
    let csv = csv.to_str().expect("utf-8 path");
    let preview = sms_json(
        db,
        &[
            "preview",
            "--recipients",
            csv,
            "--body",
            "Hi {first_name}",
            "--json",
        ],
    );
    preview["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let outcome = i["outcome"].as_str().expect("outcome").to_owned();
            let why = if outcome == "blocked" {
                format!(":{}", i["reason"])
            } else {
                String::new()
            };
            (
                i["record_id"].as_str().expect("id").to_owned(),
                outcome + &why,
            )
        })
        .collect()
}

#[test]
fn sms_serve_takes_signed_webhooks_refuses_the_rest_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sms.db");
    let csv = dir.path().join("recipients.csv");
    std::fs::write(&csv, CSV).expect("writable");
    let twilio = FakeTwilio::start();

    // Four texts through the stand-in, as the office sends them.
    let csv_arg = csv.to_str().expect("utf-8 path");
    let base = twilio.base_url();
    let send = Command::new(sms_binary())
        .args([
            "send",
            "--recipients",
            csv_arg,
            "--body",
            "Hi {first_name}, class is on.",
        ])
        .args([
            "--yes",
            "--campaign",
            "spring",
            "--rate",
            "0",
            "--reconcile-wait",
            "0",
        ])
        .args(["--provider", "twilio", "--twilio-base-url", &base, "--db"])
        .arg(&db)
        .env("TWILIO_ACCOUNT_SID", ACCOUNT)
        .env("TWILIO_AUTH_TOKEN", TOKEN)
        .env("TWILIO_FROM", "+15005550006")
        .env_remove("TWILIO_API_KEY")
        .env_remove("TWILIO_MESSAGING_SERVICE_SID")
        .stdin(Stdio::null())
        .output()
        .expect("sms send runs");
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    let sid_of = |to: &str| {
        twilio
            .created()
            .into_iter()
            .find(|m| m.to == to)
            .unwrap_or_else(|| panic!("a text to {to}"))
            .sid
    };
    let (sid3, sid4) = (sid_of(R3), sid_of(R4));

    let mut service = Service::start(&db, &twilio, &[]);
    assert_eq!(
        service.request("GET", "/healthz", None, ""),
        (200, "ok\n".to_owned())
    );

    // Not Twilio: no signature, another token, or signed for the address the socket sees
    // instead of the public URL Twilio was given. 403 each, and nothing recorded.
    let stop = inbound("SM00000000000000000000000000000001", FAMILY, "STOP", "1");
    let body = form(&stop);
    let socket_url = format!("http://{}/twilio/inbound", service.addr);
    for signature in [
        None,
        Some(twilio_signature(
            "another-token",
            &format!("{PUBLIC}/twilio/inbound"),
            &stop,
        )),
        Some(twilio_signature(TOKEN, &socket_url, &stop)),
        Some(twilio_signature(
            TOKEN,
            &format!("{PUBLIC}/twilio/inbound"),
            &stop[1..],
        )),
    ] {
        let (status, _) = service.request("POST", "/twilio/inbound", signature.as_deref(), &body);
        assert_eq!(status, 403, "{signature:?}");
    }
    let forged = inbound("SM00000000000000000000000000000009", R3, "Delivered", "1");
    let status_forged = [
        ("MessageSid", sid3.as_str()),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
    ];
    let wrong = twilio_signature(
        "another-token",
        &format!("{PUBLIC}/twilio/status"),
        &status_forged,
    );
    assert_eq!(
        service
            .request(
                "POST",
                "/twilio/status",
                Some(&wrong),
                &form(&status_forged)
            )
            .0,
        403
    );
    assert_eq!(
        service
            .request("POST", "/twilio/inbound", None, &form(&forged))
            .0,
        403
    );
    assert!(opted_out(&db).is_empty());
    assert_eq!(replies(&db)["totals"]["replies"], 0);
    let report = sms_json(&db, &["report", "spring", "--json"]);
    assert!(
        report["records"]
            .as_array()
            .expect("records")
            .iter()
            .all(|r| r["delivery"].is_null())
    );

    // A signed STOP from the family phone: both records carrying the number are blocked.
    let (status, answer) = service.post_signed("/twilio/inbound", &stop);
    assert_eq!(status, 200);
    assert!(answer.contains("<Response/>"), "{answer}");
    assert_eq!(opted_out(&db), vec![FAMILY.to_owned()]);
    let outcomes = preview(&db, &csv);
    for (id, outcome) in &outcomes {
        let blocked = outcome.starts_with("blocked") && outcome.contains("opted_out");
        assert_eq!(blocked, id.starts_with('F'), "{id}: {outcome}");
    }

    // Replies use message units: a three-segment question and a long message asking to stop
    // (flagged for a person, not acted on: it is not a keyword and too long to be read as one).
    let question = "Is the Monday watercolour class still on next week? My daughter has a school trip that day and we were wondering whether she could join the Wednesday group instead, and whether the materials list is the same for both groups or different";
    assert_eq!(
        service
            .post_signed(
                "/twilio/inbound",
                &inbound("SM00000000000000000000000000000002", R3, question, "3")
            )
            .0,
        200
    );
    let moved = "We moved away last year and my son no longer takes any classes with you so please stop sending these to this number thanks";
    assert_eq!(
        service
            .post_signed(
                "/twilio/inbound",
                &inbound("SM00000000000000000000000000000003", R4, moved, "1")
            )
            .0,
        200
    );
    // Twilio redelivers the question: stored once.
    assert_eq!(
        service
            .post_signed(
                "/twilio/inbound",
                &inbound("SM00000000000000000000000000000002", R3, question, "3")
            )
            .0,
        200
    );
    let listed = replies(&db);
    assert_eq!(listed["totals"]["replies"], 3, "{listed}");
    assert_eq!(listed["totals"]["units"], 1 + 3 + 1, "{listed}");
    assert_eq!(listed["totals"]["to_review"], 1, "{listed}");
    let question_row = listed["replies"]
        .as_array()
        .expect("replies")
        .iter()
        .find(|r| r["from"] == R3)
        .expect("the question is stored");
    assert_eq!(question_row["segments"], 3);
    assert_eq!(question_row["body"], question);
    assert_eq!(
        opted_out(&db),
        vec![FAMILY.to_owned()],
        "the long message is not an opt-out"
    );

    // Delivery statuses, signed: Delivered for R3, Undelivered 30003 for R4.
    for params in [
        vec![
            ("AccountSid", ACCOUNT),
            ("MessageSid", sid3.as_str()),
            ("SmsSid", sid3.as_str()),
            ("MessageStatus", "delivered"),
            ("To", R3),
        ],
        vec![
            ("AccountSid", ACCOUNT),
            ("MessageSid", sid4.as_str()),
            ("SmsSid", sid4.as_str()),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
            ("To", R4),
        ],
    ] {
        assert_eq!(service.post_signed("/twilio/status", &params).0, 200);
    }
    let report = sms_json(&db, &["report", "spring", "--json"]);
    let delivery = |id: &str| {
        report["records"]
            .as_array()
            .expect("records")
            .iter()
            .find(|r| r["record_id"] == id)
            .map(|r| r["delivery"].clone())
            .expect("the record")
    };
    assert_eq!(delivery("R3")["status"], "delivered");
    assert_eq!(delivery("R4")["status"], "undelivered");
    assert_eq!(delivery("R4")["error_code"], 30003);
    let (text, _, _) = sms(&db, &["report", "spring"]);
    let line = |id: &str| {
        text.lines()
            .find(|l| l.contains(&format!(" {id} ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("R3").contains("Delivered"), "{text}");
    assert!(
        line("R4").contains("Undelivered") && line("R4").contains("30003"),
        "{text}"
    );

    // A body over the bound (Twilio's forms are a few hundred bytes): 413, nothing recorded.
    let huge = "x".repeat(70 * 1024);
    let (status, _) = service.post_signed(
        "/twilio/inbound",
        &inbound("SM00000000000000000000000000000004", R3, &huge, "1"),
    );
    assert_eq!(status, 413);
    // Every earlier request's log lines are behind this one: the next "received" is the next
    // request's.
    service.wait_for_line("POST /twilio/inbound 413");
    assert_eq!(replies(&db)["totals"]["replies"], 3);

    // SIGTERM while a STOP is in flight (its body half sent): no new connections, the STOP is
    // answered and recorded, and the service exits 0.
    let stop_r4 = inbound("SM00000000000000000000000000000005", R4, "STOP", "1");
    let body = form(&stop_r4);
    let signature = twilio_signature(TOKEN, &format!("{PUBLIC}/twilio/inbound"), &stop_r4);
    let mut in_flight = TcpStream::connect(service.addr).expect("connects");
    in_flight.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let (first, rest) = body.split_at(body.len() / 2);
    in_flight
        .write_all(request_head("POST", "/twilio/inbound", Some(&signature), body.len()).as_bytes())
        .expect("head");
    in_flight
        .write_all(first.as_bytes())
        .expect("half the body");
    service.wait_for_line("POST /twilio/inbound received");
    let killed = Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    service.wait_for_line("SIGTERM: stopping");
    let end = Instant::now() + DEADLINE;
    while TcpStream::connect(service.addr).is_ok() {
        assert!(
            Instant::now() < end,
            "still accepting connections after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    in_flight
        .write_all(rest.as_bytes())
        .expect("the rest of the body");
    let (status, answer) = read_answer(&mut in_flight);
    assert_eq!(status, 200, "{answer}");
    let exit = service.wait_exit();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    let mut numbers = opted_out(&db);
    numbers.sort();
    assert_eq!(numbers, vec![FAMILY.to_owned(), R4.to_owned()]);
}

/// An `Etc/GMT...` zone whose local hour is `local_hour` now (the test cannot set the
/// service's clock, so it picks the zone instead). The offsets run from -12 to +14 hours: every
/// hour of the day is some zone's.
/// `sms serve --org NAME` serves one organisation of a shared file: a STOP it receives blocks
/// that organisation's number only, and the reply is that organisation's.
#[test]
fn sms_serve_for_one_organisation_records_into_that_organisation_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sms.db");
    let twilio = FakeTwilio::start();
    let mut service = Service::start(&db, &twilio, &["--org", "acme", "--alerts-every", "0"]);
    let line = service.wait_for_line("database ");
    assert!(line.contains("organisation acme"), "{line}");
    let stop = inbound("SM00000000000000000000000000000091", FAMILY, "STOP", "1");
    assert_eq!(service.post_signed("/twilio/inbound", &stop).0, 200);
    assert_eq!(
        sms_json(&db, &["optouts", "--json", "--org", "acme"])
            .as_array()
            .expect("a list")
            .len(),
        1
    );
    assert_eq!(opted_out(&db), Vec::<String>::new(), "default is not acme");
    assert_eq!(
        sms_json(&db, &["replies", "--json", "--org", "acme"])["totals"]["replies"],
        1
    );
    assert_eq!(replies(&db)["totals"]["replies"], 0);
}

fn zone_with_local_hour(local_hour: i64) -> String {
    let utc_hour = i64::from(
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .hour(),
    );
    let mut offset = (local_hour - utc_hour).rem_euclid(24);
    if offset > 14 {
        offset -= 24;
    }
    // POSIX style: Etc/GMT-3 is three hours ahead of UTC.
    match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

/// A roster in the recipients CSV format: (record, number) each a client who permits texts.
fn roster(dir: &Path, name: &str, people: &[(String, String)]) -> PathBuf {
    let mut csv = "record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,\
                   permitted_sms_text,time_zone\n"
        .to_owned();
    for (record, number) in people {
        csv.push_str(&format!("{record},client,Pat,Doe,{number},Text,,\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, csv).expect("writable");
    path
}

/// Subscribes `people` to class_cancelled and reports the section cancelled, in `zone`.
fn cancel_section(db: &Path, dir: &Path, section: &str, zone: &str, people: &[(String, String)]) {
    for (record, number) in people {
        let (out, err, ok) = sms(
            db,
            &[
                "alerts",
                "subscribe",
                "--record",
                record,
                "--mobile",
                number,
                "--kinds",
                "class_cancelled",
            ],
        );
        assert!(ok, "{out}\n{err}");
    }
    let roster = roster(dir, &format!("{section}.csv"), people);
    let starts_at = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(30)).to_string();
    let (out, err, ok) = sms(
        db,
        &[
            "alerts",
            "event",
            "--id",
            &format!("{section}-cancelled"),
            "--kind",
            "class_cancelled",
            "--section",
            section,
            "--roster",
            roster.to_str().expect("utf-8 path"),
            "--section-time-zone",
            zone,
            "--starts-at",
            &starts_at,
            "--reason",
            "weather",
        ],
    );
    assert!(
        ok && out.contains(&format!("{} alert(s) scheduled", people.len())),
        "{out}\n{err}"
    );
}

/// Polls `done` until it holds, or fails the test at the deadline with `what`.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Texts the stand-in created for `number`.
fn texts_to(twilio: &FakeTwilio, number: &str) -> usize {
    twilio.created().iter().filter(|m| m.to == number).count()
}

#[test]
fn sms_serve_sends_due_alerts_once_holds_quiet_hours_and_a_kill_or_a_stop_mid_batch_loses_and_repeats_nothing()
 {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sms.db");
    let twilio = FakeTwilio::start();
    // 14:xx where the day section meets (inside 08:00-21:00), 02:xx where the night one does.
    let (day_zone, night_zone) = (zone_with_local_hour(14), zone_with_local_hour(2));
    let day = vec![("D1".to_owned(), "+12125550150".to_owned())];
    let night = vec![("N1".to_owned(), "+12125550151".to_owned())];
    cancel_section(&db, dir.path(), "DAY-1", &day_zone, &day);
    cancel_section(&db, dir.path(), "NIGHT-1", &night_zone, &night);

    // A run every second, 10 texts a second; a text in doubt is looked up at once (the
    // stand-in lists what it created without delay).
    let flags = &[
        "--alerts-every",
        "1",
        "--rate",
        "10",
        "--reconcile-wait",
        "0",
    ];
    let mut service = Service::start(&db, &twilio, flags);

    // Due now and in waking hours: one text, in a batch the report shows.
    until("the day section's alert is sent", || {
        texts_to(&twilio, &day[0].1) == 1
    });
    service.wait_for_line("alerts run: sent 1,");
    let report = sms_json(&db, &["report", "alerts-batch-1", "--json"]);
    assert_eq!(report["totals"]["accepted"], 1, "{report}");

    // In quiet hours: waits, and says until 08:00 local.
    let due = sms_json(&db, &["alerts", "due", "--json"]);
    let waiting = due["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["record_id"] == "N1")
        .unwrap_or_else(|| panic!("N1's alert: {due}"));
    assert_eq!(waiting["decision"], "wait", "{due}");
    assert_eq!(waiting["code"], "quiet_hours", "{due}");
    let tz = jiff::tz::TimeZone::get(&night_zone).expect("a zone");
    let eight = jiff::Timestamp::now()
        .to_zoned(tz.clone())
        .date()
        .at(8, 0, 0, 0)
        .to_zoned(tz)
        .expect("a local time")
        .timestamp();
    let until_at: jiff::Timestamp = waiting["until"]
        .as_str()
        .expect("until")
        .parse()
        .expect("RFC 3339");
    assert_eq!(until_at, eight, "{due}");

    // A bigger section is cancelled while the service runs; the stand-in creates its 4th text
    // but answers it a minute later, and the service is SIGKILLed then: some texts out, one in
    // doubt, the rest not sent.
    let big: Vec<(String, String)> = (60..66)
        .map(|i| (format!("B{i}"), format!("+121255501{i}")))
        .collect();
    twilio.set_plan(|n, _| {
        if n == 5 {
            Fault::Delay(Duration::from_secs(60))
        } else {
            Fault::None
        }
    });
    cancel_section(&db, dir.path(), "BIG-1", &day_zone, &big);
    until("the big section's 4th text is created", || {
        twilio.created().len() >= 5
    });
    service.child.kill().expect("SIGKILL");
    service.child.wait().expect("reaped");
    let at_kill = twilio.created().len();
    assert!(
        at_kill < 1 + big.len(),
        "all sent before the kill: {at_kill}"
    );

    // Restarted, it finishes the batch: every recipient has exactly one text, none is lost.
    twilio.set_plan(|_, _| Fault::None);
    let mut service = Service::start(&db, &twilio, flags);
    until("the big batch is final", || {
        let report = sms_json(&db, &["report", "alerts-batch-2", "--json"]);
        report["totals"]["accepted"] == big.len()
    });
    let per_recipient = twilio.created_per_recipient();
    for (record, number) in day.iter().chain(&big) {
        let n: u32 = per_recipient
            .iter()
            .filter(|((to, _), _)| to == number)
            .map(|(_, n)| n)
            .sum();
        assert_eq!(n, 1, "{record} ({number}) got {n} texts: {per_recipient:?}");
    }
    assert_eq!(texts_to(&twilio, &night[0].1), 0, "a text in quiet hours");
    let due = sms_json(&db, &["alerts", "due", "--json"]);
    assert_eq!(
        (&due["send"], &due["wait"], &due["in_flight"]),
        (
            &serde_json::json!(0),
            &serde_json::json!(1),
            &serde_json::json!(0)
        ),
        "{due}"
    );

    // SIGTERM while a batch is sending (its 2nd text answered a second late): the text in
    // flight is answered and journaled, nothing new starts, the service exits 0; the next start
    // sends the rest.
    let more: Vec<(String, String)> = (80..83)
        .map(|i| (format!("M{i}"), format!("+121255501{i}")))
        .collect();
    let before = twilio.created().len();
    twilio.set_plan(move |n, _| {
        if n == before as u64 + 2 {
            Fault::Delay(Duration::from_secs(1))
        } else {
            Fault::None
        }
    });
    cancel_section(&db, dir.path(), "MORE-1", &day_zone, &more);
    until("the 2nd text of the batch is created", || {
        twilio.created().len() >= before + 2
    });
    let stopped = Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(stopped.success());
    service.wait_for_line("stopped by the shutdown");
    let exit = service.wait_exit();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    let sent_before_stop = twilio.created().len() - before;
    assert!(
        sent_before_stop < more.len(),
        "the whole batch went before the stop: {sent_before_stop}"
    );
    twilio.set_plan(|_, _| Fault::None);
    let _service = Service::start(&db, &twilio, flags);
    until("the stopped batch is final", || {
        let report = sms_json(&db, &["report", "alerts-batch-3", "--json"]);
        report["totals"]["accepted"] == more.len()
    });
    for (record, number) in &more {
        assert_eq!(texts_to(&twilio, number), 1, "{record} ({number})");
    }
}
