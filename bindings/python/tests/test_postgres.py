"""A host on PostgreSQL: `SmsConfig.database` takes a postgres:// URL, clients on several
"servers" (here: several clients, several threads) share opt-outs and campaigns, and sends run
as fleet workers: any number may resume one campaign at once and nobody is texted twice.

The server is the one `.ci/postgres.sh` starts (SMS_TEST_POSTGRES_URL). Under CI these tests
fail without it; elsewhere they skip. Every test works in an organisation of its own, so the
shared test database needs no cleaning and no test sees another's rows."""

import os
import threading
import uuid

import pytest
import sms_text as sms
from sms_testkit import numbers, recipient, twilio_signature


@pytest.fixture
def pg_url():
    url = os.environ.get("SMS_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("SMS_TEST_POSTGRES_URL is not set: CI must start PostgreSQL (.ci/postgres.sh)")
        pytest.skip("no PostgreSQL: export SMS_TEST_POSTGRES_URL=\"$(.ci/postgres.sh)\" to run these")
    return url


@pytest.fixture
def org():
    return "py-" + uuid.uuid4().hex[:12]


def client(url, org, provider=None, **overrides):
    args = dict(
        database=url,
        organisation=org,
        provider=provider or sms.ProviderConfig.SIMULATOR(),
        rate_per_second=0,
        ignore_quiet_hours=True,
    )
    if provider is not None:
        # The stand-in on 127.0.0.1 lists a message at once: no wait for a silence.
        args["reconcile_wait_seconds"] = 0
    args.update(overrides)
    return sms.SmsClient(sms.SmsConfig(**args))


def test_a_stop_received_by_one_server_blocks_every_other(pg_url, org):
    front = client(pg_url, org)
    back = client(pg_url, org)
    people = [recipient("kid-1", "+12025550170"), recipient("kid-2", "+12025550171")]

    assert front.handle_inbound("+12025550170", "STOP").action == sms.ReplyAction.OPT_OUT
    # The other client reads the shared store, not a copy.
    assert back.opt_out_state("+12025550170").opted_out
    report = back.send("fall", people, "Class moved to Room 4")
    outcome = {r.record_id: (r.status, r.reason_code) for r in report.records}
    assert outcome == {
        "kid-1": (sms.RecordStatus.NOT_SENT, "opted_out"),
        "kid-2": (sms.RecordStatus.SENT, None),
    }
    # A third client (a server started later) reads the campaign the second one sent.
    assert client(pg_url, org).campaigns() == ["fall"]
    assert client(pg_url, org).report("fall").totals.sent == 1


def test_two_servers_resuming_one_campaign_text_each_record_once(pg_url, org, twilio):
    people = [recipient(f"r-{i}", n) for i, n in enumerate(numbers(120, start=300))]
    first = client(pg_url, org, provider=twilio.provider())
    # The first server stops after five texts (a cancel from the stand-in's thread): the rest
    # wait, planned, for whoever resumes.
    cancel = sms.CancelHandle()
    twilio.on_create = lambda created: cancel.cancel() if created == 5 else None
    stopped = first.send("spring", people, "Welcome back", cancel=cancel)
    assert stopped.cancelled and not stopped.complete
    twilio.on_create = None

    # Two more "servers" and two threads: each resume is one fleet worker.
    workers = [client(pg_url, org, provider=twilio.provider()) for _ in range(2)]
    reports, errors = [], []

    def resume(c):
        try:
            reports.append(c.resume("spring"))
        except Exception as e:  # pragma: no cover - the assertion below names it
            errors.append(e)

    threads = [threading.Thread(target=resume, args=(c,)) for c in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(reports) == 2
    final = first.report("spring")
    assert final.totals.sent == 120
    assert all(r.status == sms.RecordStatus.SENT for r in final.records)
    per_number = twilio.creates_per_number()
    assert sorted(per_number) == sorted(numbers(120, start=300))
    assert set(per_number.values()) == {1}, "a number was texted twice"


def test_the_password_of_the_url_is_never_printed(pg_url, org):
    config = sms.SmsConfig(
        database=pg_url.replace("sms_test_pw", "s3cret-pw-42"),
        organisation=org,
        provider=sms.ProviderConfig.SIMULATOR(),
    )
    assert "s3cret-pw-42" not in repr(config)
    assert "s3cret-pw-42" not in str(config)
    # A wrong password: refused as a store error that does not repeat it.
    with pytest.raises(sms.SmsError.Store) as e:
        sms.SmsClient(config)
    assert "s3cret-pw-42" not in str(e.value)


@pytest.mark.parametrize(
    "database",
    [
        "postgres://sms_test@127.0.0.1:5432/sms_test?sslmode=disable&password=s3cret-pw-42",
        "postgresql://sms_test@127.0.0.1/sms_test?password=s3cret-pw-42",
        "postgresql+psycopg2://sms_test:s3cret-pw-42@127.0.0.1/sms_test",
        "postgres:/sms_test:s3cret-pw-42@127.0.0.1/sms_test",
    ],
)
def test_no_form_of_a_database_url_prints_its_password(database):
    config = sms.SmsConfig(database=database, provider=sms.ProviderConfig.SIMULATOR())
    assert "s3cret-pw-42" not in repr(config)
    assert "s3cret-pw-42" not in str(config)


@pytest.mark.parametrize(
    "database",
    [
        "postgresql+psycopg2://sms_test:s3cret-pw-42@127.0.0.1/sms_test",
        "postgres:/sms_test:s3cret-pw-42@127.0.0.1/sms_test",
    ],
)
def test_a_url_this_library_does_not_open_is_refused_without_its_password(database):
    # Taken for a file path, it was opened as one, and the error repeated it whole.
    with pytest.raises(sms.SmsError.Configuration) as e:
        sms.SmsClient(sms.SmsConfig(database=database, provider=sms.ProviderConfig.SIMULATOR()))
    assert "s3cret-pw-42" not in str(e.value)
    assert "postgres://" in str(e.value)


def test_a_stop_holding_a_nul_is_recorded_and_its_reply_kept(pg_url, org):
    token = "webhook-token-" + "x" * 20
    c = client(pg_url, org, webhook_auth_token=token)
    url = "https://sms.example.org/twilio/inbound"
    form = {
        "MessageSid": "SM" + "7" * 32,
        "AccountSid": "AC" + "0" * 32,
        "From": "+12025550177",
        "To": "+15005550006",
        "Body": "STOP\0",
        "NumSegments": "1",
    }
    signature = twilio_signature(token, url, form)
    assert c.handle_inbound_webhook(url, form, signature).action == sms.ReplyAction.OPT_OUT
    assert c.opt_out_state("+12025550177").opted_out
    # Twilio's redelivery is harmless: recorded once.
    c.handle_inbound_webhook(url, form, signature)
    assert len(c.opt_out_state("+12025550177").history) == 1
