"""Organisations: two clients on one database file, each for its own organisation, never see
each other's opt-outs or campaigns (a STOP is per sender, as the carriers keep it)."""

import pytest
import sms_text as sms
from sms_testkit import recipient

FAMILY = "+12025550160"


def client(db, organisation=None):
    args = dict(database=db, provider=sms.ProviderConfig.SIMULATOR(), rate_per_second=0)
    if organisation is not None:
        args["organisation"] = organisation
    return sms.SmsClient(sms.SmsConfig(**args))


def people():
    return [recipient("kid-1", FAMILY), recipient("other", "+12025550161")]


def test_a_stop_through_one_organisation_never_blocks_the_other(db):
    acme = client(db, "acme")
    bravo = client(db, "bravo")
    default = client(db)
    plain = sms.SmsConfig(database=db, provider=sms.ProviderConfig.SIMULATOR())
    assert plain.organisation == "default"

    assert acme.handle_inbound(FAMILY, "STOP").action == sms.ReplyAction.OPT_OUT
    assert acme.opt_out_state(FAMILY).opted_out
    assert not bravo.opt_out_state(FAMILY).opted_out
    assert bravo.opt_out_state(FAMILY).history == []
    assert not default.opt_out_state(FAMILY).opted_out

    assert acme.preview(people(), "Hi {first_name}").totals.texts == 1
    assert bravo.preview(people(), "Hi {first_name}").totals.texts == 2

    sent = {r.record_id: r.status for r in bravo.send("fall", people(), "Hi").records}
    assert sent == {"kid-1": sms.RecordStatus.SENT, "other": sms.RecordStatus.SENT}
    # The same campaign id in the other organisation is its own, with acme's STOP applied.
    acme_report = acme.send("fall", people(), "Hi")
    acme_sent = {r.record_id: (r.status, r.reason_code) for r in acme_report.records}
    assert acme_sent == {
        "kid-1": (sms.RecordStatus.NOT_SENT, "opted_out"),
        "other": (sms.RecordStatus.SENT, None),
    }


def test_one_organisation_never_lists_or_reads_the_others_campaigns(db):
    acme = client(db, "acme")
    bravo = client(db, "bravo")
    acme.send("acme-only", people(), "Hi")
    bravo.send("bravo-only", people(), "Hi")
    assert acme.campaigns() == ["acme-only"]
    assert bravo.campaigns() == ["bravo-only"]
    assert client(db).campaigns() == []
    with pytest.raises(sms.SmsError):
        bravo.report("acme-only")
    # A reopened client of the same organisation reads the same rows.
    assert client(db, "acme").report("acme-only").totals.sent == 2


@pytest.mark.parametrize("name", ["", "a b", "x/../y", "é", "x" * 65])
def test_a_bad_organisation_name_is_a_configuration_error(db, name):
    with pytest.raises(sms.SmsError.Configuration) as e:
        client(db, name)
    assert "not an organisation name" in str(e.value)
