"""Fixtures of the Python suite. Helpers live in sms_testkit.py, importable from every test
whatever pytest's import mode."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402
import sms_text as sms  # noqa: E402
from sms_testkit import FakeTwilio  # noqa: E402


@pytest.fixture
def db(tmp_path):
    """A fresh SQLite file for one test."""
    return str(tmp_path / "sms.db")


@pytest.fixture
def sim_client(db):
    """A client on the simulator, no rate limit; quiet hours ignored (what the tests check must
    not depend on the hour they run at: test_quiet_hours.py has its own clients)."""
    return sms.SmsClient(
        sms.SmsConfig(
            database=db,
            provider=sms.ProviderConfig.SIMULATOR(),
            rate_per_second=0,
            ignore_quiet_hours=True,
        )
    )


@pytest.fixture
def twilio():
    """The Twilio stand-in on 127.0.0.1, stopped after the test."""
    stand_in = FakeTwilio()
    yield stand_in
    stand_in.close()


@pytest.fixture
def twilio_config(db, twilio):
    """An SmsConfig sending through the stand-in; keyword overrides for the test."""

    def make(**overrides):
        args = dict(
            database=db,
            provider=twilio.provider(),
            rate_per_second=0,
            reconcile_wait_seconds=0,
            ignore_quiet_hours=True,
        )
        args.update(overrides)
        return sms.SmsConfig(**args)

    return make


@pytest.fixture
def log_writer_cleared():
    """The log writer is process-wide: cleared after the test that sets it."""
    yield
    sms.clear_log_writer()
