//! The runnable examples a Rust host starts from (`cargo run -p CRATE --example NAME`) do what
//! their comments promise: each network-free one is run and its output checked.
//!
//! The binaries are the ones `cargo test --workspace` has just built (it builds every example
//! before running any test) in `target/<profile>/examples/`: running them here costs no second
//! build. Run alone, this test needs them built first: `cargo build --examples` (or the whole
//! `cargo test --workspace`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The example's binary, refusing a missing or older-than-its-source one (a stale binary
/// would test yesterday's example).
fn example(krate: &str, name: &str) -> PathBuf {
    // This test runs from target/<profile>/deps/.
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/");
    let binary = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("examples")
        .join(format!("{name}.rs"));
    let modified = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    };
    assert!(
        binary.exists() && modified(&binary) >= modified(&source),
        "{} is missing or older than {}: build the examples first (cargo build --examples, or \
         the whole cargo test --workspace)",
        binary.display(),
        source.display()
    );
    binary
}

/// Runs the example and returns its standard output; it must exit successfully.
fn run(krate: &str, name: &str, args: &[&str]) -> String {
    let output = Command::new(example(krate, name))
        .args(args)
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn preview_prints_who_is_texted_who_is_skipped_and_the_cost() {
    let expected = "\
Message: Hi {first_name}, {course_title} moves to Room 4 on Monday – same time. Reply STOP to opt out.

record   kind    name               mobile           outcome
C-1001   client  Ada Lovelace       (212) 555-0123   text +12125550123 (1 unit(s), GSM-7)
C-1002   client  Zoë Ørsted         212.555.0124     text +12125550124 (2 unit(s), UCS-2)
C-1003   client  Byron Lovelace     +1 212 555 0123  text +12125550123 (1 unit(s), GSM-7)
C-1004   client  Grace Hopper                        skipped: no mobile number
C-1005   client  Alan Turing        212-555-0126     skipped: client has neither Text nor Alerts in Permitted Marketing Methods
C-1006   client  Edsger Dijkstra    212 555 0127     skipped: number +12125550127 opted out (STOP) on 2026-01-01T00:00:00Z
C-1007   client  Barbara Liskov     212-555-O128     skipped: invalid phone number: \"212-555-O128\"
S-17     staff   Mary Somerville    1-212-555-0129   text +12125550129 (1 unit(s), GSM-7)
S-18     staff   Charles Babbage    212 555 0130     skipped: staff member's Permitted SMS Text is not Yes

records selected   9
to text            4 (3 distinct numbers, 1 shared by 2 records)
skipped            5
  client_not_permitted     1
  invalid_number           1
  no_mobile                1
  opted_out                1
  staff_not_permitted      1
message units      5
estimated cost     0.0415 USD

First text: Hi Ada, Pottery 101 moves to Room 4 on Monday - same time. Reply STOP to opt out.
";
    assert_eq!(run("sms-core", "preview", &[]), expected);
}

#[test]
fn mock_provider_checks_pass() {
    assert_eq!(
        run("sms-core", "mock_provider", &[]),
        "\
ok: the two texts went out once each, word for word, in order
ok: a refused account stops the announcement (code 20003), nobody else is tried
ok: the simulator accepted Ada and Zoë and refused 21211, 21610, 21614 as Twilio would
all checks passed
"
    );
}

#[test]
fn send_stops_midway_then_the_resume_finishes_without_texting_anyone_twice() {
    let out = run("sms-sqlite", "send", &["--stop-after", "3"]);
    let (first, resumed) = out
        .split_once("Stopped before the end; resuming\n")
        .unwrap_or_else(|| panic!("the run was not stopped:\n{out}"));
    assert!(
        first.starts_with(
            "Preview: 8 record(s), 7 to text, 1 skipped, 7 unit(s), about 0.0581 USD\n"
        ),
        "{first}"
    );
    // Stopped after 3 texts (the one in flight may finish too): some are still to send.
    let stopped_totals = first.lines().last().expect("totals line");
    assert!(
        !stopped_totals.contains("still to send 0;"),
        "{stopped_totals}"
    );
    assert!(first.contains("Pending"), "{first}");
    assert_eq!(
        resumed,
        "\
Report of campaign pool-closed
  #0  C-1001  Ada Example   Sent      1 unit(s)
  #1  C-1002  Ben Example   Not sent  client has neither Text nor Alerts in Permitted Marketing Methods
  #2  C-1003  Cleo Example  Sent      1 unit(s)
  #3  C-1004  Dev Example   Failed    bad_recipient 21211
  #4  C-1005  Eli Example   Sent      1 unit(s)
  #5  C-1006  Fay Example   Sent      1 unit(s)
  #6  C-1007  Gus Example   Sent      1 unit(s)
  #7  C-1008  Hana Example  Sent      1 unit(s)
  sent 6, failed 1, not sent 1, still to send 0; 6 message unit(s) used
Texts the provider accepted: 6
"
    );
}

#[test]
fn webhooks_refuse_a_forgery_record_a_signed_stop_and_answer_twiml() {
    assert_eq!(
        run("sms-twilio", "webhooks", &["--self-test"]),
        "\
forged STOP: HTTP 403, 0 change(s) on file
signed STOP: HTTP 200
  TwiML: <?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>You will get no more texts from Example Rec Center. Reply START to resume.</Message></Response>
  +14155552671 is opted out (recorded in the SQLite file)
same STOP again (a retry): HTTP 200, 1 change(s) on file
signed status callback: HTTP 200
"
    );
}
