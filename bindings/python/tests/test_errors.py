"""Errors a host sees: one SmsError, a subclass per thing to do, a message a person can read,
and never a secret the library holds."""

import pytest
import sms_text as sms
from sms_testkit import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, recipient


def readable(e):
    text = str(e)
    assert text.strip(), f"{type(e).__name__} has no text"
    # A flat error: the text itself, not a field dump such as "reason=..." or "message=...".
    assert not text.startswith(("reason=", "message=", "SmsError")), text
    assert "\\n" not in text
    return text


def config(db, **overrides):
    args = dict(database=db, provider=sms.ProviderConfig.SIMULATOR(), ignore_quiet_hours=True)
    args.update(overrides)
    return sms.SmsConfig(**args)


@pytest.mark.parametrize("campaign", ["has space", "", "semi;colon", "../up"])
def test_a_bad_campaign_id_is_invalid_input(sim_client, campaign):
    with pytest.raises(sms.SmsError.InvalidInput) as e:
        sim_client.send(campaign, [recipient(1, "+12025550100")], "Hi")
    assert "letters, digits" in readable(e.value)
    with pytest.raises(sms.SmsError.InvalidInput):
        sim_client.report(campaign)
    assert sim_client.campaigns() == []


def test_a_bad_region_is_a_configuration_error(db):
    with pytest.raises(sms.SmsError.Configuration) as e:
        sms.SmsClient(config(db, region="Narnia"))
    assert "Narnia" in readable(e.value)


@pytest.mark.parametrize(
    "years", [dict(program_year="2025-26"), dict(current_program_year="2025-26")]
)
def test_only_one_program_year_is_a_configuration_error(db, years):
    with pytest.raises(sms.SmsError.Configuration) as e:
        sms.SmsClient(config(db, **years))
    text = readable(e.value)
    assert "program_year" in text and "current_program_year" in text


@pytest.mark.parametrize(
    "overrides, words",
    [
        (dict(concurrency=0), "concurrency"),
        (dict(rate_per_second=-1.0), "rate_per_second"),
        (dict(price_per_segment="cheap"), "price_per_segment"),
        (dict(database="  "), "database"),
        (dict(reconcile_wait_seconds=2), "reconcile_wait_seconds"),
    ],
)
def test_other_configuration_errors(db, overrides, words):
    with pytest.raises(sms.SmsError.Configuration) as e:
        sms.SmsClient(config(db, **overrides))
    assert words in readable(e.value)


def test_a_short_reconcile_wait_is_refused_for_a_real_twilio_address(db):
    provider = sms.ProviderConfig.TWILIO(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number="+15005550006",
        messaging_service_sid=None,
        base_url="https://api.twilio.com",
    )
    with pytest.raises(sms.SmsError.Configuration) as e:
        sms.SmsClient(config(db, provider=provider, reconcile_wait_seconds=0))
    text = readable(e.value)
    assert "127.0.0.1" in text and AUTH_TOKEN not in text


@pytest.mark.parametrize("body", ["Hi {first_name", "Hi {first_name}, {", "Hi {}"])
def test_a_template_with_an_unclosed_brace_is_a_template_error(sim_client, body):
    with pytest.raises(sms.SmsError.Template) as e:
        sim_client.send("t", [recipient(1, "+12025550100")], body)
    readable(e.value)
    assert sim_client.campaigns() == []  # nothing stored


def test_a_bad_number_is_invalid_input(sim_client):
    with pytest.raises(sms.SmsError.InvalidInput) as e:
        sim_client.opt_out_state("not a phone")
    assert "not a phone" in readable(e.value)
    with pytest.raises(sms.SmsError.InvalidInput):
        sim_client.handle_inbound("12", "STOP")


def test_every_error_is_an_sms_error_and_an_exception():
    for name in [
        "InvalidInput",
        "Template",
        "ConsentRefused",
        "ProviderRejected",
        "RateLimited",
        "ProviderUnavailable",
        "Configuration",
        "Store",
        "WebhookSignature",
        "Cancelled",
        "HostCallbackFailed",
        "Reentrant",
        "Internal",
    ]:
        cls = getattr(sms.SmsError, name)
        assert issubclass(cls, sms.SmsError) and issubclass(cls, Exception), name


# --- secrets --------------------------------------------------------------------------------


def test_no_error_text_holds_the_auth_token(db, tmp_path):
    """Every error raised on a Twilio configuration, whatever the cause, is searched for the
    token. (What Python prints of the *config objects* is uniffi's: see the next test.)"""
    stand_in = FakeTwilio()
    texts = []
    try:
        bad = [
            (dict(account_sid="not-a-sid"), 0),
            (dict(from_number=None), 0),
            (dict(base_url="ftp://127.0.0.1:1"), 30),
            (dict(base_url="https://example.com"), 0),
        ]
        for overrides, wait in bad:
            with pytest.raises(sms.SmsError.Configuration) as e:
                sms.SmsClient(
                    sms.SmsConfig(
                        ignore_quiet_hours=True,
                        database=db,
                        provider=stand_in.provider(**overrides),
                        reconcile_wait_seconds=wait,
                    )
                )
            texts.append(readable(e.value) + repr(e.value))
        # Rejected by "Twilio" (the token is wrong for this account).
        client = sms.SmsClient(
            sms.SmsConfig(
                ignore_quiet_hours=True,
                database=str(tmp_path / "b.db"),
                provider=stand_in.provider(auth_token=AUTH_TOKEN + "-old"),
                reconcile_wait_seconds=0,
                rate_per_second=0,
            )
        )
        with pytest.raises(sms.SmsError) as e:
            client.send("x", [recipient(1, "+12025550100")], "Hi")
        texts.append(readable(e.value) + repr(e.value))
        texts.append(repr(client) + str(client))
    finally:
        stand_in.close()
    for text in texts:
        assert AUTH_TOKEN not in text, text


def test_what_python_prints_of_a_twilio_config():
    # uniffi generates ProviderConfig.TWILIO as a class whose repr/str show every field, the
    # auth token included; the package's __init__ replaces them for the two classes holding a
    # secret (the Rust Debug of both masks it too).
    provider = sms.ProviderConfig.TWILIO(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        from_number="+15005550006",
        messaging_service_sid=None,
        base_url=None,
    )
    config = sms.SmsConfig(database="x.db", provider=provider, webhook_auth_token=AUTH_TOKEN)
    shown = repr(provider) + str(provider) + repr(config) + str(config)
    assert AUTH_TOKEN not in shown


def test_twilio_config_optional_fields_default_to_none():
    provider = sms.ProviderConfig.TWILIO(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number="+15005550006"
    )
    assert provider.base_url is None and provider.messaging_service_sid is None
