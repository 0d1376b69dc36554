"""Quiet hours from Python: on by default, the preview says how many texts would be held and
until when (the package's one-piece JSON path and the generated one alike), a send holds them
(status HELD), and a client that ignores quiet hours texts everyone. The library's clock cannot
be set, so the test picks Etc/GMT zones where it is now 14:xx (texts go) and 02:xx (held)."""

import datetime

import sms_text as sms
from sms_testkit import recipient


def zone_with_local_hour(local_hour):
    """The (offset in hours, Etc/GMT name) of the zone where it is `local_hour` now."""
    utc_hour = datetime.datetime.now(datetime.timezone.utc).hour
    offset = (local_hour - utc_hour) % 24
    if offset > 14:
        offset -= 24
    # POSIX style: Etc/GMT-3 is three hours ahead of UTC.
    name = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    return offset, name


def eight_am(offset):
    """Today's 08:00 in the zone `offset` hours from UTC (where it is 02:xx now)."""
    zone = datetime.timezone(datetime.timedelta(hours=offset))
    local = datetime.datetime.now(zone)
    return local.replace(hour=8, minute=0, second=0, microsecond=0).astimezone(
        datetime.timezone.utc
    )


def zoned(record_id, mobile, zone):
    r = recipient(record_id, mobile)
    r.time_zone = zone
    return r


def test_a_send_holds_the_records_in_quiet_hours_and_says_until_when(db):
    _, day = zone_with_local_hour(14)
    night_offset, night = zone_with_local_hour(2)
    client = sms.SmsClient(
        sms.SmsConfig(
            database=db,
            provider=sms.ProviderConfig.SIMULATOR(),
            rate_per_second=0,
            org_time_zone=night,
        )
    )
    people = [
        zoned("day", "+12025550170", day),
        zoned("night", "+12025550171", night),
        zoned("org", "+12025550172", None),
        zoned("typo", "+12025550173", "America/New_Yrok"),
    ]
    opening = eight_am(night_offset)

    preview = client.preview(people, "Hi {first_name}")
    assert preview == sms.SmsClient.preview.__wrapped__(client, people, "Hi {first_name}")
    assert preview.held.records == 2
    assert preview.held.earliest == opening == preview.held.latest
    assert "08:00" in preview.held.earliest_local
    assert preview.totals.skipped_by_reason == {"unknown_time_zone": 1}

    report = client.send("evening", people, "Hi {first_name}")
    statuses = [(r.record_id, r.status, r.reason_code) for r in report.records]
    assert statuses == [
        ("day", sms.RecordStatus.SENT, None),
        ("night", sms.RecordStatus.HELD, "quiet_hours"),
        ("org", sms.RecordStatus.HELD, "quiet_hours"),
        ("typo", sms.RecordStatus.NOT_SENT, "unknown_time_zone"),
    ]
    assert (report.totals.held, report.complete) == (2, False)
    assert report.held.earliest == opening


def test_a_client_that_ignores_quiet_hours_texts_everyone_now(db):
    _, night = zone_with_local_hour(2)
    client = sms.SmsClient(
        sms.SmsConfig(
            database=db,
            provider=sms.ProviderConfig.SIMULATOR(),
            rate_per_second=0,
            org_time_zone=night,
            ignore_quiet_hours=True,
        )
    )
    people = [zoned("night", "+12025550171", night), zoned("org", "+12025550172", None)]
    assert client.preview(people, "Hi").held is None
    report = client.send("urgent", people, "Hi")
    assert report.complete and report.totals.sent == 2 and report.held is None
