"""The whole chain works: Rust built by maturin, the generated module, the hand-written package
(its batch counter and its secret-hiding reprs), and a callback from Rust into Python."""

import sms_text


def test_package_reexports_the_generated_names_and_its_own_helpers():
    assert "count_segments" in sms_text.__all__
    assert "SmsClient" in sms_text.__all__
    assert "count_segments_many" in sms_text.__all__
    assert sms_text.count_segments.__wrapped__ is sms_text._native.sms_ffi.count_segments


def test_a_text_crosses_and_its_count_comes_back():
    count = sms_text.count_segments("Class starts Monday at 9am", False)
    assert count.encoding == sms_text.Encoding.GSM7
    assert count.segments == 1


def test_the_batch_counter_equals_one_call_per_text_even_on_its_slow_path():
    texts = ["hi", "a" * 161, "caf\u00e9 \U0001F600", "x\0y", "", "\u201cquoted\u201d"]
    for smart in (False, True):
        batch = sms_text.count_segments_many(texts, smart)
        one_by_one = [sms_text.count_segments(t, smart) for t in texts]
        assert batch.segments == [c.segments for c in one_by_one]
        assert batch.encodings == [c.encoding for c in one_by_one]
        assert batch.total_segments == sum(c.segments for c in one_by_one)
        fast = sms_text.count_segments_many(texts[:3] + texts[4:], smart)
        assert fast == sms_text._native.sms_ffi.count_segments_many(texts[:3] + texts[4:], smart)


def test_reprs_never_show_a_token():
    provider = sms_text.ProviderConfig.TWILIO("AC" + "0" * 32, "s3cr3t-token")
    config = sms_text.SmsConfig(
        database="x.db", provider=provider, webhook_auth_token="hook-s3cr3t"
    )
    for shown in (str(provider), repr(provider), str(config), repr(config)):
        assert "s3cr3t" not in shown, shown
        assert "***" in shown


def test_the_fast_count_answers_exactly_what_the_generated_function_answers():
    fast = sms_text.count_segments
    generic = sms_text._native.sms_ffi.count_segments
    assert fast is not generic, "the C fast path is installed"
    texts = [
        "",
        "hi",
        "a" * 161,
        "\u201cSee you Monday\u201d \u2014 room 4",
        "caf\u00e9 \U0001F600 \u0928\u092e\u0938\u094d\u0924\u0947",
        "\U0001F468\u200d\U0001F469\u200d\U0001F467 family",
        "x\0y",
        "\0\U0001F600\0",
        "{[~^|\u20ac]}",
    ]
    for smart in (False, True):
        for text in texts:
            assert fast(text, smart) == generic(text, smart), (text, smart)
