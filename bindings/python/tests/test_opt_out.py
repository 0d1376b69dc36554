"""STOP and START: replies, signed webhooks, delivery statuses, and opt-outs kept in the host's
own database (a Python OptOutStore)."""

import contextlib
import datetime
import sqlite3
import threading

import pytest
import sms_text as sms
from sms_testkit import FakeTwilio, recipient, twilio_signature

FAMILY = "+12025550150"
WEBHOOK_TOKEN = "whk-" + "f00d" * 8
INBOUND_URL = "https://school.example/sms/inbound"
STATUS_URL = "https://school.example/sms/status"


def statuses(report):
    return {r.record_id: (r.status, r.reason_code) for r in report.records}


def family(sibling_mobile="(202) 555-0150"):
    # Two records carrying one family phone, typed two ways.
    return [
        recipient("kid-1", FAMILY, first_name="Ann"),
        recipient("kid-2", sibling_mobile, first_name="Ben"),
        recipient("other", "+12025550151", first_name="Cy"),
    ]


def test_a_stop_from_a_shared_phone_blocks_both_records(sim_client):
    first = sim_client.send("week-1", family(), "Hi {first_name}")
    assert first.totals.sent == 3

    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=2)
    result = sim_client.handle_inbound("(202) 555-0150", "STOP")
    assert result.action == sms.ReplyAction.OPT_OUT
    assert result.change is not None and result.change.number == FAMILY
    assert result.reply.lstrip().startswith("<?xml") and "<Response" in result.reply

    second = sim_client.send("week-2", family(), "Hi {first_name}")
    assert statuses(second) == {
        "kid-1": (sms.RecordStatus.NOT_SENT, "opted_out"),
        "kid-2": (sms.RecordStatus.NOT_SENT, "opted_out"),
        "other": (sms.RecordStatus.SENT, None),
    }
    assert second.totals.sent == 1 and second.totals.skipped == 2

    state = sim_client.opt_out_state(FAMILY)
    assert state.number == FAMILY and state.opted_out
    assert state.since is not None and state.since >= before
    assert [(c.action, c.source, c.body) for c in state.history] == [
        (sms.OptOutAction.STOP, sms.ChangeSource.INBOUND, "STOP")
    ]
    # A number never opted out.
    other = sim_client.opt_out_state("+12025550151")
    assert (other.opted_out, other.since, other.history) == (False, None, [])


def test_start_lifts_the_stop(sim_client):
    sim_client.handle_inbound(FAMILY, "STOP")
    result = sim_client.handle_inbound(FAMILY, "START")
    assert result.action == sms.ReplyAction.OPT_IN
    state = sim_client.opt_out_state(FAMILY)
    assert not state.opted_out
    assert [c.action for c in state.history] == [sms.OptOutAction.STOP, sms.OptOutAction.START]
    assert sim_client.preview(family(), "Hi").totals.texts == 3


def test_other_replies_record_nothing(sim_client):
    assert sim_client.handle_inbound(FAMILY, "HELP").action == sms.ReplyAction.HELP
    assert sim_client.handle_inbound(FAMILY, "See you Monday!").action == sms.ReplyAction.OTHER
    assert sim_client.opt_out_state(FAMILY).history == []


def webhook_client(db, **extra):
    return sms.SmsClient(
        sms.SmsConfig(
            database=db,
            provider=sms.ProviderConfig.SIMULATOR(),
            ignore_quiet_hours=True,
            rate_per_second=0,
            webhook_auth_token=WEBHOOK_TOKEN,
            **extra,
        )
    )


def inbound_form(body="STOP", sid="SM" + "1" * 32):
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": FAMILY,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }


def test_a_signed_inbound_webhook_is_accepted(db):
    client = webhook_client(db)
    form = inbound_form()
    result = client.handle_inbound_webhook(
        INBOUND_URL, form, twilio_signature(WEBHOOK_TOKEN, INBOUND_URL, form)
    )
    assert result.action == sms.ReplyAction.OPT_OUT
    assert "<Response" in result.reply
    state = client.opt_out_state(FAMILY)
    assert state.opted_out
    assert state.history[0].message_sid == form["MessageSid"]
    assert client.preview(family(), "Hi").totals.texts == 1
    # Kept as `sms serve` keeps it (`sms replies --db` lists it); Twilio's redelivery of the
    # same MessageSid is stored once.
    client.handle_inbound_webhook(INBOUND_URL, form, twilio_signature(WEBHOOK_TOKEN, INBOUND_URL, form))
    assert stored_replies(db) == [(form["MessageSid"], FAMILY, "STOP", "opt_out")]


def stored_replies(db):
    """The replies the database keeps, read as `sms replies` reads them."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT message_sid, from_number, body, class FROM replies ORDER BY received_at_ms"
        ).fetchall()


@pytest.mark.parametrize(
    "forge",
    [
        "wrong-token",
        "other-url",
        "edited-body",
        "empty",
    ],
)
def test_a_forged_inbound_webhook_is_refused_and_records_nothing(db, forge):
    client = webhook_client(db)
    form = inbound_form()
    signature = {
        "wrong-token": twilio_signature("not-the-token", INBOUND_URL, form),
        "other-url": twilio_signature(WEBHOOK_TOKEN, INBOUND_URL + "?x=1", form),
        "edited-body": twilio_signature(WEBHOOK_TOKEN, INBOUND_URL, inbound_form(body="HELLO")),
        "empty": "",
    }[forge]
    with pytest.raises(sms.SmsError.WebhookSignature) as e:
        client.handle_inbound_webhook(INBOUND_URL, form, signature)
    assert str(e.value).strip()
    assert WEBHOOK_TOKEN not in str(e.value)
    state = client.opt_out_state(FAMILY)
    assert (state.opted_out, state.history) == (False, [])
    assert stored_replies(db) == []


def test_webhooks_need_a_token(sim_client):
    form = inbound_form()
    with pytest.raises(sms.SmsError.Configuration) as e:
        sim_client.handle_inbound_webhook(INBOUND_URL, form, "x")
    assert "webhook_auth_token" in str(e.value)


def test_the_twilio_auth_token_signs_webhooks_by_default(db):
    stand_in = FakeTwilio()
    try:
        client = sms.SmsClient(
            sms.SmsConfig(
                database=db,
                provider=stand_in.provider(),
                reconcile_wait_seconds=0,
                ignore_quiet_hours=True,
            )
        )
        form = inbound_form()
        signature = twilio_signature(stand_in.auth_token, INBOUND_URL, form)
        assert (
            client.handle_inbound_webhook(INBOUND_URL, form, signature).action
            == sms.ReplyAction.OPT_OUT
        )
    finally:
        stand_in.close()


def test_a_signed_delivered_status_shows_in_the_report(db):
    client = webhook_client(db)
    sent = client.send("c", [recipient(1, "+12025550100"), recipient(2, "+12025550101")], "Hi")
    sid = sent.records[0].provider_id
    form = {
        "MessageSid": sid,
        "MessageStatus": "delivered",
        "AccountSid": "AC" + "0" * 32,
        "To": "+12025550100",
        "From": "+15005550006",
    }
    assert client.handle_status_webhook(
        STATUS_URL, form, twilio_signature(WEBHOOK_TOKEN, STATUS_URL, form)
    )
    report = client.report("c")
    assert report.records[0].status == sms.RecordStatus.DELIVERED
    assert report.records[1].status == sms.RecordStatus.SENT
    assert report.totals.delivered == 1

    # An older status arriving late does not undo the delivery.
    late = dict(form, MessageStatus="sent")
    client.handle_status_webhook(
        STATUS_URL, late, twilio_signature(WEBHOOK_TOKEN, STATUS_URL, late)
    )
    assert client.report("c").records[0].status == sms.RecordStatus.DELIVERED
    # A status for a message this database never sent changes nothing.
    stray = dict(form, MessageSid="SM" + "9" * 32)
    assert not client.handle_status_webhook(
        STATUS_URL, stray, twilio_signature(WEBHOOK_TOKEN, STATUS_URL, stray)
    )
    # A forged one raises and changes nothing.
    forged = dict(form, MessageSid=report.records[1].provider_id, MessageStatus="undelivered")
    with pytest.raises(sms.SmsError.WebhookSignature):
        client.handle_status_webhook(
            STATUS_URL, forged, twilio_signature("nope", STATUS_URL, forged)
        )
    assert client.report("c").records[1].status == sms.RecordStatus.SENT


def test_a_status_says_whether_the_message_is_one_of_ours(db):
    client = webhook_client(db)
    sid = client.send("c", [recipient(1, "+12025550100")], "Hi").records[0].provider_id
    form = {"MessageSid": sid, "MessageStatus": "delivered"}
    signature = twilio_signature(WEBHOOK_TOKEN, STATUS_URL, form)
    assert client.handle_status_webhook(STATUS_URL, form, signature) is True
    # Twilio retries: the same status again is harmless and still names one of ours.
    assert client.handle_status_webhook(STATUS_URL, form, signature) is True
    assert client.report("c").records[0].status == sms.RecordStatus.DELIVERED
    other = {"MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}
    assert (
        client.handle_status_webhook(
            STATUS_URL, other, twilio_signature(WEBHOOK_TOKEN, STATUS_URL, other)
        )
        is False
    )


def test_an_undelivered_status_carries_the_carrier_code(db):
    client = webhook_client(db)
    sid = client.send("c", [recipient(1, "+12025550100")], "Hi").records[0].provider_id
    form = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    client.handle_status_webhook(
        STATUS_URL, form, twilio_signature(WEBHOOK_TOKEN, STATUS_URL, form)
    )
    record = client.report("c").records[0]
    assert record.status == sms.RecordStatus.UNDELIVERED
    assert record.reason_code == "30003"


# --- opt-outs in the host's own database -------------------------------------------------


class DictStore(sms.OptOutStore):
    """What a host with its own database would write: a list of changes, in order."""

    def __init__(self):
        self.changes = []
        self.lock = threading.Lock()
        self.fail = None  # an exception to raise from every call
        self.calls = []

    def _check(self, what):
        self.calls.append(what)
        if self.fail is not None:
            raise self.fail

    def record(self, change):
        self._check("record")
        with self.lock:
            self.changes.append(change)

    def history(self, number):
        self._check("history")
        with self.lock:
            return [c for c in self.changes if c.number == number]

    def all_changes(self):
        self._check("all_changes")
        with self.lock:
            return list(self.changes)


def test_a_python_opt_out_store_receives_and_decides(db):
    store = DictStore()
    client = sms.SmsClient.with_opt_out_store(
        sms.SmsConfig(
            database=db,
            provider=sms.ProviderConfig.SIMULATOR(),
            rate_per_second=0,
            ignore_quiet_hours=True,
        ),
        store,
    )
    client.handle_inbound("202-555-0150", "Stop")
    assert len(store.changes) == 1
    change = store.changes[0]
    assert (change.number, change.action, change.source, change.body) == (
        FAMILY,
        sms.OptOutAction.STOP,
        sms.ChangeSource.INBOUND,
        "Stop",
    )
    assert isinstance(change.at, datetime.datetime)

    assert statuses(client.send("c", family(), "Hi")) == {
        "kid-1": (sms.RecordStatus.NOT_SENT, "opted_out"),
        "kid-2": (sms.RecordStatus.NOT_SENT, "opted_out"),
        "other": (sms.RecordStatus.SENT, None),
    }
    assert client.opt_out_state(FAMILY).opted_out
    # Nothing landed in the SQLite file's own opt-out table: a client on it alone sees none.
    plain = sms.SmsClient(
        sms.SmsConfig(
            database=db, provider=sms.ProviderConfig.SIMULATOR(), ignore_quiet_hours=True
        )
    )
    assert not plain.opt_out_state(FAMILY).opted_out


def test_a_stop_the_host_stored_itself_is_honoured(db):
    store = DictStore()
    store.changes.append(
        sms.OptOutChange(
            number=FAMILY,
            action=sms.OptOutAction.STOP,
            at=datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc),
            source=sms.ChangeSource.STAFF,
            message_sid=None,
            body="asked at the front desk",
        )
    )
    client = sms.SmsClient.with_opt_out_store(
        sms.SmsConfig(
            database=db, provider=sms.ProviderConfig.SIMULATOR(), ignore_quiet_hours=True
        ),
        store,
    )
    preview = client.preview(family(), "Hi")
    assert preview.totals.skipped_by_reason == {"opted_out": 2}
    state = client.opt_out_state(FAMILY)
    assert state.since == datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    "failure", [RuntimeError("database is down"), sms.HostError.Failed("database is down")]
)
def test_a_store_that_raises_stops_the_send_and_texts_nobody(twilio, twilio_config, failure):
    store = DictStore()
    client = sms.SmsClient.with_opt_out_store(twilio_config(), store)
    store.fail = failure
    with pytest.raises((sms.SmsError.HostCallbackFailed, sms.SmsError.Store)) as e:
        client.send("c", family(), "Hi")
    assert "database is down" in str(e.value)
    assert twilio.creates() == []
    with pytest.raises((sms.SmsError.HostCallbackFailed, sms.SmsError.Store)):
        client.preview(family(), "Hi")
    # A STOP that cannot be stored is an error the host answers 500 to (Twilio retries).
    with pytest.raises((sms.SmsError.HostCallbackFailed, sms.SmsError.Store)):
        client.handle_inbound(FAMILY, "STOP")

    # The store back: the client still works.
    store.fail = None
    report = client.send("c2", family(), "Hi")
    assert report.totals.sent == 3
    assert sorted(twilio.creates_per_number().items()) == [(FAMILY, 2), ("+12025550151", 1)]


def test_a_store_calling_the_client_back_is_refused_not_a_deadlock(db):
    class CallingBack(DictStore):
        client = None
        refused = []

        def all_changes(self):
            try:
                self.client.preview([recipient(1, "+12025550100")], "Hi")
            except sms.SmsError.Reentrant as e:
                self.refused.append(str(e))
            return super().all_changes()

    store = CallingBack()
    client = sms.SmsClient.with_opt_out_store(
        sms.SmsConfig(
            database=db, provider=sms.ProviderConfig.SIMULATOR(), ignore_quiet_hours=True
        ),
        store,
    )
    store.client = client
    assert client.preview([recipient(1, "+12025550100")], "Hi").totals.texts == 1
    assert store.refused and "opt-out store" in store.refused[0]
