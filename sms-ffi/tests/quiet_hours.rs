//! Quiet hours through the facade, as a host sees them: on by default, configured by
//! `SmsConfig`, ignored by `ignore_quiet_hours`. The test cannot set the library's clock, so
//! it picks `Etc/GMT...` zones where it is now 14:xx (texts go) and 02:xx (held until 08:00).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;

use common::{client, config};
use sms_ffi::{PreviewOutcome, RecordStatus, SmsClient, SmsError};

/// The UTC offset, in hours, of the zone where it is `local_hour` now, and its name.
fn zone_with_local_hour(local_hour: i64) -> (i64, String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let utc_hour = i64::try_from(now / 3600 % 24).expect("small");
    let mut offset = (local_hour - utc_hour).rem_euclid(24);
    if offset > 14 {
        offset -= 24;
    }
    // POSIX style: Etc/GMT-3 is three hours ahead of UTC.
    let name = match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    (offset, name)
}

/// Today's 08:00 in a zone `offset` hours from UTC where it is 02:xx now.
fn eight_am(offset: i64) -> SystemTime {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("small");
    let local = now + offset * 3600;
    let opening = local - local.rem_euclid(86_400) + 8 * 3600 - offset * 3600;
    UNIX_EPOCH + Duration::from_secs(u64::try_from(opening).expect("after 1970"))
}

#[test]
fn a_host_s_send_holds_the_records_in_quiet_hours_and_says_until_when() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, day) = zone_with_local_hour(14);
    let (night_offset, night) = zone_with_local_hour(2);
    let mut quiet = config(&dir);
    quiet.ignore_quiet_hours = false;
    quiet.org_time_zone = night.clone();
    let sms = SmsClient::new(quiet).expect("client");
    let zoned = |id: &str, mobile: &str, zone: Option<&str>| {
        let mut r = client(id, mobile);
        r.time_zone = zone.map(str::to_owned);
        r
    };
    let people = vec![
        zoned("day", "2125550160", Some(&day)),
        zoned("night", "2125550161", Some(&night)),
        zoned("org", "2125550162", None),
        zoned("typo", "2125550163", Some("America/New_Yrok")),
    ];
    let opening = eight_am(night_offset);

    let preview = sms
        .preview(people.clone(), "Hi {first_name}".to_owned())
        .expect("preview");
    let held = preview.held.clone().expect("two held");
    assert_eq!(
        (held.records, held.earliest, held.latest),
        (2, opening, opening)
    );
    assert!(held.earliest_local.contains("08:00"), "{held:?}");
    assert!(matches!(
        &preview.items[3].outcome,
        PreviewOutcome::Blocked { reason_code, .. } if reason_code == "unknown_time_zone"
    ));

    let report = sms
        .send(
            "evening".to_owned(),
            people.clone(),
            "Hi {first_name}".to_owned(),
            None,
            None,
        )
        .expect("send");
    let statuses: Vec<(RecordStatus, Option<&str>)> = report
        .records
        .iter()
        .map(|r| (r.status, r.reason_code.as_deref()))
        .collect();
    assert_eq!(
        statuses,
        [
            (RecordStatus::Sent, None),
            (RecordStatus::Held, Some("quiet_hours")),
            (RecordStatus::Held, Some("quiet_hours")),
            (RecordStatus::NotSent, Some("unknown_time_zone")),
        ]
    );
    assert!(
        report.records[1]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("08:00")),
        "{:?}",
        report.records[1]
    );
    assert_eq!(
        (report.totals.held, report.totals.pending, report.complete),
        (2, 0, false)
    );
    assert_eq!(report.held.as_ref().map(|h| h.earliest), Some(opening));

    // A resume before 08:00 there sends nothing more.
    let resumed = sms
        .resume("evening".to_owned(), None, None)
        .expect("resume");
    assert_eq!(resumed.totals.sent, 1);
    assert_eq!(resumed.totals.held, 2);

    // In an emergency, a client that ignores quiet hours texts everyone now, zones unread.
    let mut urgent = config(&dir);
    urgent.org_time_zone = night;
    let sms = SmsClient::new(urgent).expect("client");
    let report = sms
        .send("urgent".to_owned(), people, "Hi".to_owned(), None, None)
        .expect("send");
    assert_eq!((report.totals.sent, report.complete), (4, true));
    assert_eq!(report.held, None);
}

#[test]
fn a_bad_quiet_hours_configuration_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (hours, zone, named) in [
        ("8-21", "America/New_York", "quiet_hours \"8-21\""),
        ("08:00-21:00", "Mars/Base", "org_time_zone \"Mars/Base\""),
    ] {
        let mut bad = config(&dir);
        bad.ignore_quiet_hours = false;
        bad.quiet_hours = hours.to_owned();
        bad.org_time_zone = zone.to_owned();
        let err = SmsClient::new(bad).expect_err("refused");
        assert!(
            matches!(&err, SmsError::Configuration(text) if text.contains(named)),
            "{err:?}"
        );
    }
}
