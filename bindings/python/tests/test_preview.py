"""preview: who would be texted, who not and why, and what it costs. Nothing is sent."""

import pytest
import sms_text as sms
from sms_testkit import client_kind, recipient


def blocked(preview):
    return {
        item.record_id: item.outcome.reason_code
        for item in preview.items
        if isinstance(item.outcome, sms.PreviewOutcome.BLOCKED)
    }


def eligible(preview):
    return {
        item.record_id: item.outcome
        for item in preview.items
        if isinstance(item.outcome, sms.PreviewOutcome.ELIGIBLE)
    }


def test_every_consent_skip_reason_with_totals(sim_client):
    sim_client.record_opt_out("+12025550199", sms.OptOutAction.STOP, "called the office")
    records = [
        recipient("ok", "(202) 555-0100"),
        recipient("stopped", "+1 202 555 0199"),
        recipient("no-text", "+12025550101", kind=client_kind("Email, Mail")),
        recipient(
            "staff-no", "+12025550102", kind=sms.RecipientKind.STAFF(permitted_sms_text=False)
        ),
        recipient(
            "staff-yes", "+12025550103", kind=sms.RecipientKind.STAFF(permitted_sms_text=True)
        ),
        recipient("no-mobile", "  "),
        recipient("bad-number", "12345"),
    ]
    preview = sim_client.preview(records, "Hi {first_name}, class is Monday.")

    assert [i.record_id for i in preview.items] == [r.record_id for r in records]
    assert blocked(preview) == {
        "stopped": "opted_out",
        "no-text": "client_not_permitted",
        "staff-no": "staff_not_permitted",
        "no-mobile": "no_mobile",
        "bad-number": "invalid_number",
    }
    ok = eligible(preview)
    assert set(ok) == {"ok", "staff-yes"}
    assert ok["ok"].number == "+12025550100"
    assert ok["ok"].body == "Hi Ann, class is Monday."
    assert (ok["ok"].encoding, ok["ok"].segments) == (sms.Encoding.GSM7, 1)
    # Each refusal has words the office can read.
    for item in preview.items:
        if isinstance(item.outcome, sms.PreviewOutcome.BLOCKED):
            assert item.outcome.reason.strip(), item

    t = preview.totals
    assert (t.records, t.texts, t.skipped, t.message_units) == (7, 2, 5, 2)
    assert t.estimated_cost == "0.0166 USD"  # 2 segments at the default 0.0083
    assert t.skipped_by_reason == {
        "opted_out": 1,
        "client_not_permitted": 1,
        "staff_not_permitted": 1,
        "no_mobile": 1,
        "invalid_number": 1,
    }


def test_message_skip_reasons(sim_client):
    records = [
        recipient("ok", "+12025550100", note="Bring your book."),
        recipient("missing", "+12025550101"),  # no 'note' field
        recipient("blank", "+12025550102", note="   "),  # blank counts as missing
        recipient("at-limit", "+12025550103", note="x" * 1600),
        recipient("long", "+12025550104", note="x" * 1601),
    ]
    preview = sim_client.preview(records, "{note}")
    assert blocked(preview) == {
        "missing": "missing_merge_field",
        "blank": "missing_merge_field",
        "long": "too_long",
    }
    assert eligible(preview)["ok"].body == "Bring your book."
    assert eligible(preview)["at-limit"].segments == 11  # 1600 / 153, rounded up
    reasons = {
        i.record_id: i.outcome.reason
        for i in preview.items
        if isinstance(i.outcome, sms.PreviewOutcome.BLOCKED)
    }
    assert "{note}" in reasons["missing"]
    assert "1601" in reasons["long"] and "1600" in reasons["long"]
    assert preview.totals.skipped_by_reason == {"missing_merge_field": 2, "too_long": 1}


@pytest.mark.parametrize("body", ["", "   ", "\n"])
def test_an_empty_message_texts_nobody(sim_client, body):
    preview = sim_client.preview([recipient(1, "+12025550100"), recipient(2, "+12025550101")], body)
    assert blocked(preview) == {"1": "empty_message", "2": "empty_message"}
    assert preview.totals.texts == 0


def test_a_database_of_another_program_year_sends_nothing(db):
    client = sms.SmsClient(
        sms.SmsConfig(
            ignore_quiet_hours=True,
            database=db,
            provider=sms.ProviderConfig.SIMULATOR(),
            program_year="2024-25",
            current_program_year="2025-26",
        )
    )
    preview = client.preview([recipient(1, "+12025550100"), recipient(2, "+12025550101")], "Hi")
    assert blocked(preview) == {"1": "not_current_program_year", "2": "not_current_program_year"}
    assert (preview.totals.texts, preview.totals.skipped) == (0, 2)
    assert preview.totals.estimated_cost == "0.00 USD"


def test_same_program_year_sends(db):
    client = sms.SmsClient(
        sms.SmsConfig(
            ignore_quiet_hours=True,
            database=db,
            provider=sms.ProviderConfig.SIMULATOR(),
            program_year="2025-26",
            current_program_year="2025-26",
        )
    )
    assert client.preview([recipient(1, "+12025550100")], "Hi").totals.texts == 1


def test_cost_follows_price_and_segments(db):
    client = sms.SmsClient(
        sms.SmsConfig(
            ignore_quiet_hours=True,
            database=db,
            provider=sms.ProviderConfig.SIMULATOR(),
            price_per_segment="0.01",
            currency="USD",
        )
    )
    # 161 GSM-7 characters: 2 segments each, 3 records.
    preview = client.preview([recipient(i, f"+120255501{i:02d}") for i in range(3)], "a" * 161)
    assert (preview.totals.texts, preview.totals.message_units) == (3, 6)
    assert preview.totals.estimated_cost == "0.06 USD"


def test_smart_encoding_in_the_config_changes_the_body_and_the_count(db):
    client = sms.SmsClient(
        sms.SmsConfig(
            database=db,
            provider=sms.ProviderConfig.SIMULATOR(),
            smart_encoding=True,
            ignore_quiet_hours=True,
        )
    )
    item = eligible(client.preview([recipient(1, "+12025550100")], "Don\u2019t be late"))["1"]
    assert item.body == "Don't be late"
    assert item.encoding == sms.Encoding.GSM7


def test_preview_stores_nothing(sim_client):
    sim_client.preview([recipient(1, "+12025550100")], "Hi")
    assert sim_client.campaigns() == []


@pytest.mark.parametrize("body", ["Hi {first_name", "Hi {}"])
def test_a_template_that_does_not_parse_is_a_template_error(sim_client, body):
    with pytest.raises(sms.SmsError.Template) as e:
        sim_client.preview([recipient(1, "+12025550100")], body)
    assert str(e.value).strip()


def test_the_fast_preview_answers_exactly_what_the_generated_method_answers(sim_client):
    # sms_text replaces SmsClient.preview with a JSON crossing; the generated method stays
    # reachable as __wrapped__ and must give the very same Preview.
    sim_client.record_opt_out("+12025550199", sms.OptOutAction.STOP, None)
    records = [
        recipient("ok", "(202) 555-0100", course_title="Watercolour \u2014 \U0001F3A8"),
        recipient("stopped", "+1 202 555 0199"),
        recipient("no-text", "+12025550101", kind=client_kind("Email, Mail")),
        recipient("staff-no", "2025550102", kind=sms.RecipientKind.STAFF(permitted_sms_text=False)),
        recipient("staff-yes", "2025550103", kind=sms.RecipientKind.STAFF(permitted_sms_text=True)),
        recipient("no-mobile", ""),
        recipient("bad", "12345"),
        recipient("missing", "2025550104", first_name=""),
        recipient("quote\"back\\slash", "2025550105", first_name="Zo\u00eb \"Z\""),
        sms.Recipient(
            record_id="tz",
            kind=client_kind("Text"),
            first_name="T",
            last_name="Z",
            mobile="2025550106",
            time_zone="America/Chicago",
        ),
    ]
    body = "Hi {first_name}, {course_title} starts Monday."
    fast = sim_client.preview(records, body)
    generic = sms.SmsClient.preview.__wrapped__(sim_client, records, body)
    assert fast == generic
    assert len(fast.items) == len(records)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: [recipient(1, "2025550100")] + ["not a recipient"],
        lambda: [sms.Recipient(record_id=7, kind=client_kind(), first_name="A", last_name="B", mobile="2025550100")],
        lambda: [recipient(1, "2025550100", kind=sms.RecipientKind.STAFF(permitted_sms_text="yes"))],
        lambda: [recipient(1, "2025550100", first_name="\ud800")],
    ],
)
def test_the_fast_preview_refuses_wrong_types_as_the_generated_method_does(sim_client, bad):
    records = bad()
    with pytest.raises(Exception) as generic:
        sms.SmsClient.preview.__wrapped__(sim_client, records, "Hi")
    with pytest.raises(type(generic.value)):
        sim_client.preview(records, "Hi")
