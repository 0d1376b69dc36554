"""Segment counting from Python: what a user sees before paying for a text."""

import json
import pathlib
import platform

import pytest
import sms_text as sms

HERE = pathlib.Path(__file__).resolve().parent
# A subset of tests/data/segments/public.jsonl (Twilio's Message Segment Calculator), copied
# unmodified: one record per category and smart-encoding setting. See data/README.md.
VECTORS = HERE / "data" / "segment_vectors.jsonl"
# The whole file, when the suite runs inside the repository (not from an installed copy).
PUBLIC = HERE.parents[2] / "tests" / "data" / "segments" / "public.jsonl"

ENCODINGS = {"GSM-7": sms.Encoding.GSM7, "UCS-2": sms.Encoding.UCS2}


def load(path):
    # split("\n"), not splitlines(): texts hold U+2028 and other line separators.
    lines = path.read_text(encoding="utf-8").split("\n")
    records = [json.loads(line) for line in lines if line.strip()]
    # The facade has no forced-UCS-2 option: only the calculator's automatic mode applies.
    return [r for r in records if r["encoding_param"] == "auto"]


def expected(record):
    """What count_segments must answer. Records whose grapheme rules differ between the
    calculator and current Unicode carry the current-Unicode figures in modern_graphemes (as
    tests/tests/segments_parity.rs reads them). smart_text is given only when Smart Encoding
    changed the text."""
    modern = record.get("modern_graphemes") or {}
    smart_text = record.get("smart_text") if record["smart_encoding"] else None
    if smart_text == record["text"]:
        smart_text = None
    return (
        ENCODINGS[record["encoding"]],
        modern.get("segments", record["segments"]),
        modern.get("non_gsm", record["non_gsm"]),
        smart_text,
    )


def mismatches(records):
    wrong = []
    for r in records:
        c = sms.count_segments(r["text"], r["smart_encoding"])
        got = (c.encoding, c.segments, list(c.non_gsm), c.smart_text)
        if got != expected(r):
            wrong.append(f"{r['id']} (smart {r['smart_encoding']}): got {got}, want {expected(r)}")
    return wrong


def test_plain_text_is_one_gsm7_segment():
    c = sms.count_segments("Class starts Monday at 9am", False)
    assert c.encoding == sms.Encoding.GSM7
    assert c.segments == 1
    assert c.non_gsm == []
    assert c.smart_text is None


def test_an_emoji_forces_ucs2_and_is_named():
    c = sms.count_segments("See you there \U0001f600", False)
    assert c.encoding == sms.Encoding.UCS2
    assert c.segments == 1
    assert c.non_gsm == ["\U0001f600"]


def test_ucs2_over_70_units_is_two_segments():
    text = "\U0001f600" + "a" * 69  # 71 UTF-16 units
    c = sms.count_segments(text, False)
    assert (c.encoding, c.segments) == (sms.Encoding.UCS2, 2)


def test_smart_encoding_turns_smart_quotes_into_gsm7():
    text = "\u201cDon\u2019t forget\u201d \u2013 class at 9"
    off = sms.count_segments(text, False)
    assert off.encoding == sms.Encoding.UCS2
    assert set(off.non_gsm) == {"\u201c", "\u2019", "\u201d", "\u2013"}
    on = sms.count_segments(text, True)
    assert on.encoding == sms.Encoding.GSM7
    assert on.smart_text == '"Don\'t forget" - class at 9'
    assert on.non_gsm == []


def test_160_chars_is_one_segment_161_is_two():
    assert sms.count_segments("a" * 160, False).segments == 1
    assert sms.count_segments("a" * 161, False).segments == 2
    assert sms.count_segments("a" * 306, False).segments == 2
    assert sms.count_segments("a" * 307, False).segments == 3


def test_gsm7_extension_characters_count_twice():
    # '{' is in the extension table: an escape plus the character, 2 septets.
    assert sms.count_segments("{" * 80, False).segments == 1
    assert sms.count_segments("{" * 81, False).segments == 2


def test_parity_with_twilios_calculator_on_the_committed_vectors():
    records = load(VECTORS)
    assert len(records) >= 60
    # Both encodings and both smart settings are represented.
    assert {(r["encoding"], r["smart_encoding"]) for r in records} == {
        ("GSM-7", False),
        ("GSM-7", True),
        ("UCS-2", False),
        ("UCS-2", True),
    }
    wrong = mismatches(records)
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.skipif(not PUBLIC.exists(), reason="outside the repository: no tests/data")
def test_parity_with_twilios_calculator_on_every_public_vector():
    records = load(PUBLIC)
    assert len(records) == 3786
    wrong = mismatches(records)
    assert not wrong, f"{len(wrong)} differ:\n" + "\n".join(wrong[:20])


@pytest.mark.parametrize("smart", [False, True])
def test_batch_forms_agree_with_count_segments(smart):
    texts = [r["text"] for r in load(VECTORS)] + ["", "a" * 161, "\U0001f600" * 40]
    one_by_one = [sms.count_segments(t, smart) for t in texts]

    batch = sms.count_segments_many(texts, smart)
    assert list(batch.segments) == [c.segments for c in one_by_one]
    assert list(batch.encodings) == [c.encoding for c in one_by_one]
    assert batch.total_segments == sum(c.segments for c in one_by_one)

    # The packed form: every text's segments as a little-endian u32, then one byte per text
    # (1 for UCS-2).
    packed = sms.count_segments_packed("\0".join(texts).encode("utf-8"), smart)
    n = len(texts)
    assert len(packed) == 5 * n
    for i, c in enumerate(one_by_one):
        segments = int.from_bytes(packed[4 * i : 4 * i + 4], "little")
        ucs2 = packed[4 * n + i]
        assert (segments, ucs2) == (c.segments, int(c.encoding == sms.Encoding.UCS2)), texts[i]


def test_packed_rejects_bytes_that_are_not_utf8():
    with pytest.raises(sms.SmsError.InvalidInput) as e:
        sms.count_segments_packed(b"ok\0\xff\xfe", False)
    assert "UTF-8" in str(e.value)


@pytest.mark.parametrize("smart", [False, True])
def test_both_c_paths_of_the_batch_count_each_text_as_the_generated_function_does(smart):
    # count_segments_many counts the UTF-8 each str already holds (sms_text_python_utf8_views
    # then sms_text_count_segments_views) where Python has a C API, else one joined buffer
    # (sms_text_count_segments_batch). Both, on a batch large enough to be cut into parts, with
    # fresh non-ASCII strs (their UTF-8 is made on the first read) and texts holding NUL, which
    # only the first can carry.
    if platform.python_implementation() == "CPython":
        assert sms._count_views is not None, "CPython has the C API the views path needs"
    base = ["plain", "\u201csmart\u201d \u2013 text", "emoji \U0001f44d\U0001f3fd \u00e9", "",
            "\u20ac" * 500, "x" * 161, "{[~]}"]
    texts = [t + str(i) for i in range(300) for t in base]  # ~500 KB: cut into parts
    expected = sms.count_segments_many.__wrapped__(texts, smart)
    with_nul = texts + ["nul\0inside", "\0"]
    expected_with_nul = sms.count_segments_many.__wrapped__(with_nul, smart)
    for name, path, cases in (
        ("views", sms._count_views, [(texts, expected), (with_nul, expected_with_nul)]),
        ("joined", sms._count_joined, [(texts, expected)]),
    ):
        if path is None:
            continue
        for batch, want in cases:
            fresh = tuple(t.encode("utf-8").decode("utf-8") for t in batch)
            total, segments, ucs2 = path(fresh, smart)
            assert total == want.total_segments, name
            assert segments.tolist() == want.segments, name
            assert [sms._ENCODINGS[u] for u in ucs2] == want.encodings, name
    assert sms._count_joined(tuple(with_nul), smart) is None, "a NUL cannot cross joined"
    assert sms.count_segments_many(with_nul, smart) == expected_with_nul

