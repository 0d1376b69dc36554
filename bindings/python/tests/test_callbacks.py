"""Host callbacks during long work: progress on the caller's thread, cancel then resume with
nobody texted twice, a callback that raises, a callback that calls the client back, and a
LogWriter that receives the library's records without a secret."""

import base64
import threading

import pytest
import sms_text as sms
from sms_testkit import ACCOUNT_SID, AUTH_TOKEN, numbers, recipient, wait_until


class Listener(sms.ProgressListener):
    def __init__(self, on_progress=None):
        self.progress = []
        self.warnings = []
        self.threads = set()
        self.hook = on_progress

    def on_progress(self, progress):
        self.threads.add(threading.get_ident())
        self.progress.append(progress)
        if self.hook is not None:
            self.hook(progress)

    def on_warning(self, warning):
        self.threads.add(threading.get_ident())
        self.warnings.append(warning)


def people(count, start=100):
    return [recipient(f"r{i}", n, first_name=f"P{i}") for i, n in enumerate(numbers(count, start))]


def consistent(p):
    return p.sent + p.failed + p.skipped + p.unknown + p.remaining == p.total


def test_progress_arrives_on_the_calling_thread_with_consistent_counts(sim_client):
    listener = Listener()
    result = {}

    def work():
        result["thread"] = threading.get_ident()
        result["report"] = sim_client.send(
            "p", people(12) + [recipient("stop", "+15005550009")], "Hi", progress=listener
        )

    # A thread of its own, to show "the calling thread" is not simply the main thread.
    worker = threading.Thread(target=work)
    worker.start()
    worker.join(20)
    assert not worker.is_alive()
    report = result["report"]

    assert listener.progress, "no progress received"
    assert any(p.remaining > 0 for p in listener.progress), "progress only at the end"
    assert listener.threads == {result["thread"]}
    assert all(consistent(p) for p in listener.progress)
    assert all(p.campaign == "p" and p.total == 13 for p in listener.progress)
    sent = [p.sent for p in listener.progress]
    assert sent == sorted(sent), "sent never goes down"
    last = listener.progress[-1]
    assert (last.sent, last.failed, last.remaining) == (12, 1, 0)
    assert (report.totals.sent, report.totals.failed) == (last.sent, last.failed)


def test_cancel_mid_send_then_resume_texts_nobody_twice(twilio, twilio_config):
    client = sms.SmsClient(twilio_config(rate_per_second=20))
    cancel = sms.CancelHandle()
    # Cancel from another thread (the stand-in's) once five texts were created.
    twilio.on_create = lambda created: cancel.cancel() if created == 5 else None
    recipients = people(40)

    first = client.send("big", recipients, "Hi {first_name}", cancel=cancel)
    assert cancel.is_cancelled()
    assert first.cancelled and not first.complete
    pending = [r for r in first.records if r.status == sms.RecordStatus.PENDING]
    sent = [r for r in first.records if r.status == sms.RecordStatus.SENT]
    assert pending and len(sent) >= 5
    assert len(sent) + len(pending) == 40
    assert first.totals.pending == len(pending)
    assert client.report("big") == sms.CampaignReport(
        campaign=first.campaign,
        records=first.records,
        totals=first.totals,
        complete=False,
        cancelled=False,  # a stored report does not know about a run's cancel
    )

    twilio.on_create = None
    listener = Listener()
    final = client.resume("big", progress=listener)
    assert final.complete and not final.cancelled
    assert all(r.status == sms.RecordStatus.SENT for r in final.records)
    # Records sent before the cancel keep their ids: they were not sent again.
    before = {r.record_id: r.provider_id for r in sent}
    assert {r.record_id: r.provider_id for r in final.records if r.record_id in before} == before
    # The stand-in saw every number exactly once.
    per_number = twilio.creates_per_number()
    assert per_number == {r.mobile: 1 for r in recipients}
    assert listener.progress[-1].remaining == 0


def test_a_cancel_before_the_send_sends_nothing(twilio, twilio_config):
    client = sms.SmsClient(twilio_config())
    cancel = sms.CancelHandle()
    cancel.cancel()
    with pytest.raises(sms.SmsError.Cancelled):
        client.send("never", people(3), "Hi", cancel=cancel)
    assert twilio.creates() == []
    assert "never" not in client.campaigns()


def test_a_progress_listener_that_raises_is_an_error_and_resume_finishes(twilio, twilio_config):
    client = sms.SmsClient(twilio_config(rate_per_second=20))
    recipients = people(20)

    def explode(progress):
        if progress.sent > 0:  # mid-send: some texts are out, most are not
            raise ValueError("listener bug 42")

    with pytest.raises(sms.SmsError.HostCallbackFailed) as e:
        client.send("boom", recipients, "Hi", progress=Listener(explode))
    text = str(e.value)
    assert "progress listener" in text and "listener bug 42" in text and "ValueError" in text

    # The process is alive and the client still works.
    assert client.preview(recipients[:1], "Hi").totals.texts == 1
    stopped = client.report("boom")
    assert not stopped.complete, "the run should stop after the texts in flight"
    sent_before = {r.record_id: r.provider_id for r in stopped.records if r.provider_id}
    assert sent_before, "the listener raised after texts were sent"

    final = client.resume("boom")
    assert final.complete
    assert all(r.status == sms.RecordStatus.SENT for r in final.records)
    assert {r.record_id: r.provider_id for r in final.records if r.record_id in sent_before} == (
        sent_before
    )
    assert twilio.creates_per_number() == {r.mobile: 1 for r in recipients}


def test_warnings_reach_the_listener_and_one_that_raises_is_an_error(twilio, twilio_config):
    # A balance the library cannot read: the run goes on, with a warning for staff.
    twilio.balance = "not a number"
    client = sms.SmsClient(twilio_config())
    listener = Listener()
    report = client.send("w1", people(2), "Hi", progress=listener)
    assert report.complete and report.totals.sent == 2
    assert any("balance" in w for w in listener.warnings), listener.warnings

    class Bad(Listener):
        def on_warning(self, warning):
            raise KeyError("warning bug")

    # The warning comes before the texts; the texts in flight may still finish the campaign.
    # Either way the host hears the truth: an error naming the listener and what is left to
    # resume, or (every record final) the report itself, never an error that hides sent texts.
    try:
        report = client.send("w2", people(2, 300), "Hi", progress=Bad())
        assert report.complete and report.totals.sent == 2
    except sms.SmsError.HostCallbackFailed as e:
        assert "warning bug" in str(e) and "resume campaign w2" in str(e), str(e)
        assert client.resume("w2").complete
    assert all(n == 1 for n in twilio.creates_per_number().values())


def test_calling_the_client_from_a_callback_is_refused_not_a_deadlock(sim_client):
    refused = []
    other = []

    def call_back(progress):
        try:
            sim_client.report("re")
        except sms.SmsError.Reentrant as e:
            refused.append(str(e))
        except Exception as e:  # anything else is a failure of the test, recorded
            other.append(repr(e))

    report = sim_client.send("re", people(5), "Hi", progress=Listener(call_back))
    assert report.complete and report.totals.sent == 5
    assert other == []
    assert refused, "report() inside the callback was not refused"
    assert "callback" in refused[0]
    # After the callback, the same call works.
    assert sim_client.report("re") == report


class Writer(sms.LogWriter):
    def __init__(self):
        self.records = []
        self.lock = threading.Lock()

    def log(self, record):
        with self.lock:
            self.records.append(record)

    def snapshot(self):
        with self.lock:
            return list(self.records)


def test_a_log_writer_receives_records_and_never_the_token(
    twilio, twilio_config, log_writer_cleared
):
    writer = Writer()
    sms.set_log_writer(writer, sms.LogLevel.DEBUG)
    client = sms.SmsClient(twilio_config())
    client.send("logged", people(3) + [recipient("bad", "+15005550009")], "Hi {first_name}")
    client.handle_inbound("+12025550100", "STOP")

    # Records arrive on the library's log thread: wait for the run's end to reach us.
    def run_ended():
        return any("run ended" in r.text and "logged" in r.text for r in writer.snapshot())

    assert wait_until(run_ended), [r.text for r in writer.snapshot()]
    assert wait_until(lambda: any("opt-out change recorded" in r.text for r in writer.snapshot()))
    records = writer.snapshot()
    assert all(isinstance(r.level, sms.LogLevel) and r.target for r in records)
    assert any(r.target.startswith("sms_") for r in records)
    assert any(r.level == sms.LogLevel.DEBUG for r in records)
    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    for r in records:
        assert AUTH_TOKEN not in r.text and basic not in r.text, r.text
        assert "Hi P0" not in r.text, "a message body was logged: " + r.text

    # Above the level: nothing at DEBUG once the level is WARN.
    sms.set_log_writer(writer, sms.LogLevel.WARN)
    count = len(writer.snapshot())
    client.preview(people(1), "Hi")
    client.send("quiet", people(1, 300), "Hi")
    client.handle_inbound("+12025550101", "STOP")
    assert all(
        r.level in (sms.LogLevel.WARN, sms.LogLevel.ERROR) for r in writer.snapshot()[count:]
    )


def test_a_log_writer_that_raises_loses_only_its_records(sim_client, log_writer_cleared):
    class Raising(sms.LogWriter):
        def __init__(self):
            self.calls = 0

        def log(self, record):
            self.calls += 1
            raise RuntimeError("log sink down")

    writer = Raising()
    sms.set_log_writer(writer, sms.LogLevel.INFO)
    report = sim_client.send("r", people(3), "Hi")
    assert report.complete and report.totals.sent == 3
    assert wait_until(lambda: writer.calls > 0)
