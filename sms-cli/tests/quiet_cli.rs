//! Quiet hours of `sms preview` and `sms send` from a shell, on the real binary and a real
//! SQLite file.
//!
//! `sms send` has no make-believe clock (it texts real people), so the test picks the time
//! zones instead: `Etc/GMT...` zones where it is now 14:xx (inside 08:00-21:00) and 02:xx
//! (outside), whatever the time of day the test runs at. The golden files hold placeholders for
//! what depends on the date (the zone names, the 08:00 opening), which the test computes on its
//! own and fills in before comparing. Set `UPDATE_GOLDEN=1` to rewrite them (placeholders
//! restored), then review the diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// An `Etc/GMT...` zone whose local hour is `local_hour` now. The offsets run from -12 to +14
/// hours: every hour of the day is some zone's.
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

/// Today's 08:00 in `zone` (where it is 02:xx now): the opening, as an instant and as the
/// preview writes it locally.
fn eight_am(zone: &str) -> (String, String) {
    let tz = jiff::tz::TimeZone::get(zone).expect("a zone");
    let eight = jiff::Timestamp::now()
        .to_zoned(tz.clone())
        .date()
        .at(8, 0, 0, 0)
        .to_zoned(tz)
        .expect("a local time");
    (
        eight.timestamp().to_string(),
        eight.strftime("%Y-%m-%d %H:%M %Z").to_string(),
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    db: PathBuf,
    csv: String,
    /// (placeholder, value) pairs, longest value first.
    values: Vec<(&'static str, String)>,
}

/// D1 and D2 where it is 14:xx, N1 where it is 02:xx, O1 without a zone (the organisation's,
/// given as the night zone), T1 with a zone that does not exist.
fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (day, night) = (zone_with_local_hour(14), zone_with_local_hour(2));
    let csv = format!(
        "record_id,kind,first_name,last_name,mobile,permitted_marketing_methods,permitted_sms_text,time_zone\n\
         D1,client,Ann,Day,(212) 555-0101,Text,,{day}\n\
         D2,client,Bo,Day,(212) 555-0102,Text,,{day}\n\
         N1,client,Cy,Night,(212) 555-0103,Text,,{night}\n\
         O1,client,Di,Org,(212) 555-0104,Text,,\n\
         T1,client,Ed,Typo,(212) 555-0105,Text,,America/New_Yrok\n"
    );
    let path = dir.path().join("people.csv");
    std::fs::write(&path, csv).expect("writable");
    let (utc, local) = eight_am(&night);
    let mut values = vec![
        ("<NIGHT_ZONE>", night),
        ("<DAY_ZONE>", day),
        ("<OPENING_UTC>", utc),
        ("<OPENING_LOCAL>", local),
    ];
    values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    Setup {
        db: dir.path().join("sms.db"),
        csv: path.to_str().expect("utf-8 path").to_owned(),
        _dir: dir,
        values,
    }
}

impl Setup {
    fn args<'a>(&'a self, command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let night = self
            .values
            .iter()
            .find(|(k, _)| *k == "<NIGHT_ZONE>")
            .map(|(_, v)| v.as_str())
            .expect("set");
        let mut args = vec![
            command,
            "--recipients",
            &self.csv,
            "--body",
            "Hi {first_name}",
            "--org-time-zone",
            night,
        ];
        args.extend_from_slice(extra);
        args
    }

    /// `actual` with the values that depend on the day replaced by their placeholders.
    fn placeholders(&self, actual: &str) -> String {
        let mut out = actual.to_owned();
        for (key, value) in &self.values {
            out = out.replace(value.as_str(), key);
        }
        out
    }
}

fn check_golden(name: &str, setup: &Setup, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let actual = setup.placeholders(actual);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).expect("golden file is writable");
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

/// The lines of `out` from the last holding `from` on.
fn from_line(out: &str, from: &str) -> String {
    let start = out
        .rfind(from)
        .unwrap_or_else(|| panic!("no {from:?} in:\n{out}"));
    out[out[..start].rfind('\n').map_or(0, |i| i + 1)..].to_owned()
}

#[test]
fn the_preview_says_how_many_are_held_and_until_when() {
    let s = setup();
    let out = sms(&s.db, &s.args("preview", &[]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    // Held: N1 (02:xx) and O1 (the organisation's zone, 02:xx), until 08:00 there; the typo is
    // skipped, never texted in another zone's hours.
    check_golden("preview_quiet.txt", &s, &table);

    let json = sms(&s.db, &s.args("preview", &["--json"]));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let held = &value["held"];
    assert_eq!(held["records"], 2, "{value}");
    let night = &s
        .values
        .iter()
        .find(|(k, _)| *k == "<NIGHT_ZONE>")
        .expect("set")
        .1;
    let (utc, local) = eight_am(night);
    assert_eq!(held["earliest"]["at"], utc.as_str(), "{held}");
    assert_eq!(held["latest"]["local"], local.as_str(), "{held}");
    assert_eq!(held["earliest"]["time_zone"], night.as_str(), "{held}");
    assert_eq!(value["quiet_hours"]["hours"]["from"], "08:00", "{value}");
    assert_eq!(
        value["totals"]["blocked_by_reason"]["unknown_time_zone"], 1,
        "{value}"
    );

    // Ignored: nothing held, and zones are not looked at (the typo is texted).
    let ignored = sms(
        &s.db,
        &s.args("preview", &["--json", "--ignore-quiet-hours"]),
    );
    let value: serde_json::Value = serde_json::from_slice(&ignored.stdout).expect("JSON");
    assert_eq!(value["held"], serde_json::Value::Null);
    assert_eq!(value["totals"]["texts"], 5);
}

#[test]
fn send_holds_the_night_records_exits_4_and_says_how_they_will_go() {
    let s = setup();
    let send = sms(
        &s.db,
        &s.args("send", &["--campaign", "evening", "--yes", "--rate", "0"]),
    );
    let out = text(&send.stdout);
    assert_eq!(send.status.code(), Some(4), "{out}\n{}", text(&send.stderr));
    let golden = format!(
        "exit status {}\n{}",
        send.status.code().unwrap_or(-1),
        from_line(&out, "Held by quiet hours: 2").replace(s.db.to_str().expect("utf-8"), "<DB>")
    );
    check_golden("send_quiet_held.txt", &s, &golden);
    assert!(
        out.contains("To send now: 2 text(s) to 2 record(s)"),
        "{out}"
    );

    let report = sms(&s.db, &["report", "evening", "--json"]);
    assert_eq!(report.status.code(), Some(4), "held: exit 4 for report too");
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    let totals = &report["totals"];
    assert_eq!(
        (&totals["accepted"], &totals["held"], &totals["failed"]),
        (
            &serde_json::json!(2),
            &serde_json::json!(2),
            &serde_json::json!(0)
        ),
        "{totals}"
    );
    let states: Vec<(&str, &str)> = report["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| {
            (
                r["record_id"].as_str().expect("id"),
                r["state"]["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("D1", "accepted"),
            ("D2", "accepted"),
            ("N1", "held"),
            ("O1", "held"),
            ("T1", "blocked")
        ]
    );
    let table = text(&sms(&s.db, &["report", "evening"]).stdout);
    assert_eq!(table.matches(" Held ").count(), 2, "{table}");

    // A resume before 08:00 there sends nothing: still held, exit 4.
    let resume = sms(&s.db, &["resume", "evening"]);
    assert_eq!(resume.status.code(), Some(4), "{}", text(&resume.stdout));
    let again: serde_json::Value =
        serde_json::from_slice(&sms(&s.db, &["report", "evening", "--json"]).stdout).expect("JSON");
    assert_eq!(again["totals"], report["totals"]);

    // In an emergency: everyone now, exit 0.
    let urgent = sms(
        &s.db,
        &s.args(
            "send",
            &[
                "--campaign",
                "urgent",
                "--yes",
                "--rate",
                "0",
                "--ignore-quiet-hours",
            ],
        ),
    );
    assert_eq!(urgent.status.code(), Some(0), "{}", text(&urgent.stdout));
}

#[test]
fn bad_quiet_hour_flags_are_refused_before_anything_is_sent() {
    let s = setup();
    for (extra, expected) in [
        (vec!["--quiet-hours", "8-21"], "--quiet-hours \"8-21\""),
        (
            vec!["--org-time-zone", "Mars/Base"],
            "--org-time-zone \"Mars/Base\"",
        ),
        (
            vec!["--ignore-quiet-hours", "--quiet-hours", "09:00-17:00"],
            "cannot be used with",
        ),
    ] {
        let mut args = vec!["send", "--recipients", &s.csv, "--body", "Hi", "--yes"];
        args.extend(extra.iter().copied());
        let out = sms(&s.db, &args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{extra:?}: {err}");
    }
}
