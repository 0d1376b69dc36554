"""send, resume and report: on the simulator, and through ProviderConfig.TWILIO to a local
stand-in of Twilio's API (sms_testkit.FakeTwilio)."""

import base64

import pytest
import sms_text as sms
from sms_testkit import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, client_kind, recipient


def by_id(report):
    return {r.record_id: r for r in report.records}


def test_send_on_the_simulator(sim_client):
    records = [
        recipient("a", "+12025550100"),
        recipient("b", "(202) 555-0101"),
        recipient("no-text", "+12025550102", kind=client_kind("Email")),
        recipient("bad", "+15005550009"),  # the simulator: cannot receive SMS (21614)
        recipient("long", "+12025550103", first_name="B" * 200),
    ]
    report = sim_client.send("spring-2026", records, "Hi {first_name}, class is Monday.")

    assert report.campaign == "spring-2026"
    assert report.complete and not report.cancelled
    r = by_id(report)
    assert [x.record_id for x in report.records] == ["a", "b", "no-text", "bad", "long"]
    assert r["a"].status == sms.RecordStatus.SENT
    assert r["a"].provider_id.startswith("SM")
    assert r["a"].units == 1 and r["a"].reason_code is None
    assert r["long"].status == sms.RecordStatus.SENT and r["long"].units == 2
    assert r["a"].provider_id != r["b"].provider_id
    assert r["no-text"].status == sms.RecordStatus.NOT_SENT
    assert r["no-text"].reason_code == "client_not_permitted"
    assert r["no-text"].provider_id is None and r["no-text"].units == 0
    assert r["bad"].status == sms.RecordStatus.FAILED
    assert r["bad"].reason_code == "bad_recipient"
    assert "mobile" in r["bad"].reason
    t = report.totals
    assert (t.records, t.sent, t.skipped, t.failed, t.units) == (5, 3, 1, 1, 4)
    assert (t.pending, t.check) == (0, 0)

    assert sim_client.report("spring-2026") == report
    assert sim_client.campaigns() == ["spring-2026"]


def test_the_simulators_opted_out_number_fails_with_opted_out(sim_client):
    report = sim_client.send("c", [recipient(1, "+15005550004")], "Hi")
    record = report.records[0]
    assert record.status == sms.RecordStatus.FAILED
    assert record.reason_code == "opted_out"


def test_a_campaign_id_is_used_once(sim_client):
    sim_client.send("once", [recipient(1, "+12025550100")], "Hi")
    with pytest.raises(sms.SmsError.InvalidInput) as e:
        sim_client.send("once", [recipient(1, "+12025550100")], "Hi")
    assert "once" in str(e.value)


def test_an_unknown_campaign_is_invalid_input(sim_client):
    with pytest.raises(sms.SmsError.InvalidInput) as e:
        sim_client.report("never-sent")
    assert "never-sent" in str(e.value)


def test_send_through_twilio_to_the_stand_in(twilio, twilio_config):
    client = sms.SmsClient(twilio_config())
    records = [
        recipient("a", "+12025550100", first_name="Ann"),
        recipient("b", "(202) 555-0101", first_name="Bob"),
        recipient("c", "+12025550102", kind=client_kind("Email")),
    ]
    report = client.send("fall", records, "Hi {first_name}, see you Monday.")

    creates = twilio.creates()
    assert len(creates) == 2
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    for request in twilio.requests:
        assert request["auth"] == expected_auth  # HTTP Basic with the account SID
    for request in creates:
        assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
        assert request["content_type"] == "application/x-www-form-urlencoded"
    forms = sorted((c["form"] for c in creates), key=lambda f: f["To"])
    assert forms == [
        {"To": "+12025550100", "From": FROM_NUMBER, "Body": "Hi Ann, see you Monday."},
        {"To": "+12025550101", "From": FROM_NUMBER, "Body": "Hi Bob, see you Monday."},
    ]
    # The balance is checked before the run.
    assert len(twilio.gets("/Balance.json")) == 1

    r = by_id(report)
    sids = {m["to"]: m["sid"] for m in twilio.messages}
    assert r["a"].status == sms.RecordStatus.SENT and r["a"].provider_id == sids["+12025550100"]
    assert r["b"].status == sms.RecordStatus.SENT and r["b"].provider_id == sids["+12025550101"]
    assert (
        r["c"].status == sms.RecordStatus.NOT_SENT and r["c"].reason_code == "client_not_permitted"
    )
    assert (report.totals.sent, report.totals.units) == (2, 2)
    assert client.report("fall") == report


def test_units_come_from_twilios_answer(twilio, twilio_config):
    client = sms.SmsClient(twilio_config())
    report = client.send("long", [recipient(1, "+12025550100")], "x" * 200)
    assert twilio.messages[0]["num_segments"] == "2"
    assert report.records[0].units == 2


def test_wrong_credentials_fail_the_send_without_leaking_the_token(twilio, db):
    config = sms.SmsConfig(
        ignore_quiet_hours=True,
        database=db,
        provider=twilio.provider(auth_token="not-the-token-" + "z" * 20),
        rate_per_second=0,
        reconcile_wait_seconds=0,
    )
    client = sms.SmsClient(config)
    # Refused as a whole: the provider rejects the account, not this record.
    with pytest.raises(sms.SmsError.ProviderRejected) as e:
        client.send("auth", [recipient(1, "+12025550100")], "Hi")
    assert "Authenticate" in str(e.value)
    assert "not-the-token" not in str(e.value) and "not-the-token" not in repr(e.value)
    assert not twilio.messages
    # The campaign is stored; a resume with the right credentials would finish it.
    assert client.report("auth").records[0].status == sms.RecordStatus.PENDING


def test_resume_reconciles_a_send_whose_answer_was_lost(twilio, twilio_config):
    """A 500 after Twilio created the message: the send is in doubt, and the library must find
    it in Twilio's list rather than text the person again."""
    client = sms.SmsClient(twilio_config())
    twilio.lose_create_answers = True
    first = client.send("doubt", [recipient(1, "+12025550100")], "Hi")
    twilio.lose_create_answers = False
    # With reconcile_wait_seconds=0 the same run reads Twilio's list and finds the message.
    final = first
    assert final.complete, [str(r) for r in first.records]
    assert final.records[0].status == sms.RecordStatus.SENT
    assert final.records[0].provider_id == twilio.messages[0]["sid"]
    assert twilio.creates_per_number() == {"+12025550100": 1}
    assert twilio.gets("/Messages.json"), "the list was read to reconcile"
