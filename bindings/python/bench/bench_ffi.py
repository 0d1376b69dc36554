"""The Python package `sms_text` timed beside the same work in Rust (no FFI) and beside the
Python peer `smsutil`, with the issue's targets: one table.

Run by bindings/python/bench.sh, which builds everything in release and passes the Rust
figures (the JSON printed by `cargo run --release -p sms-ffi --example ffi_baseline`):

    python bench_ffi.py --workload W.jsonl.gz --vectors public.jsonl --rust rust.json [--reps N]

Every figure is the best of N repetitions (the machine is shared: the load is printed with
the results). "FFI overhead" is Python's time divided by Rust's for the same work. bench.sh
runs the Rust side before and after Python (--measure-only, then --measured with both
--rust files): each Rust figure is the best of the two runs.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import tempfile
import time

import smsutil
import sms_text

# The preview's message and recipients: the same as ffi_baseline.rs (sms-ffi/examples).
BODY = "Hi {first_name}, {course_title} starts Monday at 9am in Room 4. Reply STOP to opt out."
RECIPIENTS = 100_000
SHORT_BELOW = 70  # characters (len); ffi_baseline.rs counts Unicode scalars alike
FIRST = ["Ana", "Marcus", "Priya", "Dev", "Tom", "Lena", "Sam", "Grace", "Omar", "Zoë",
         "Julia", "Noah", "Wei", "Lucy", "Dana", "José", "Rita"]
LAST = ["Lopez", "Reid", "Shah", "Baker", "Nguyen", "Whitfield", "Park", "Moreno", "Ford",
        "Okafor", "Kim"]
COURSES = ["Intro to Welding", "Conversational Spanish I", "Watercolor Basics",
           "Robotics for Kids", "Pottery", "Yoga for Beginners", "Bookkeeping with QuickBooks",
           "French for Travellers", "First Aid & CPR", "Python Programming"]
AREA_CODES = [212, 646, 347, 718, 917, 312, 415, 617, 303, 206, 404, 305]
METHODS = ["Email, Text", "Text", "Mail;Alerts", "Email", "text", "Email;Mail"]

# The targets.
PER_CALL_TARGET = 100_000  # calls/s, and 3x smsutil, at 100% parity
PER_CALL_VS_SMSUTIL = 3.0
BATCH_TARGET = 1_000_000  # messages/s
PREVIEW_TARGET = 0.5  # seconds for 100,000 recipients, building the Python objects included


def best(reps, work, setup=lambda: None):
    """The fastest of `reps` runs of `work(setup())`, in seconds (setup untimed)."""
    fastest = float("inf")
    for _ in range(reps):
        arg = setup()
        start = time.perf_counter()
        work(arg)
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def preview_packer():
    """The package's own packing of recipients for SmsClient.preview_packed (the function its
    SmsClient.preview closes over)."""
    preview = sms_text.SmsClient.preview
    cells = {getattr(c.cell_contents, "__name__", None): c.cell_contents
             for c in preview.__closure__ or ()}
    return cells["pack"]


def read_workload(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def recipient_rows(count):
    """The preview's recipients as a host holds them before building `Recipient`s: plain
    tuples, by the formulas of ffi_baseline.rs's `rows` (numbers in assorted formats, some
    blank or invalid; clients and staff with mixed permissions; accented names)."""
    rows = []
    for i in range(count):
        area = AREA_CODES[i % len(AREA_CODES)]
        exchange = 200 + (i * 7919) % 800
        line = (i * 104_729) % 10_000
        form = i % 20
        if form == 0:
            mobile = ""
        elif form == 1:
            mobile = "n/a"
        elif form == 2:
            mobile = f"+1 {area} {exchange} {line:04d}"
        elif form == 3:
            mobile = f"{area}.{exchange}.{line:04d}"
        elif form == 4:
            mobile = f"1-{area}-{exchange}-{line:04d}"
        else:
            mobile = f"({area}) {exchange}-{line:04d}"
        staff = (i % 40 != 7) if i % 10 == 7 else None
        rows.append((f"C{i:07d}", staff, METHODS[i % len(METHODS)], FIRST[i % len(FIRST)],
                     LAST[i % len(LAST)], mobile, COURSES[i % len(COURSES)]))
    return rows


def build_recipients(rows):
    """What a host does with its rows: one `Recipient` (and its kind and fields) per row."""
    recipient = sms_text.Recipient
    client = sms_text.RecipientKind.CLIENT
    staff_kind = sms_text.RecipientKind.STAFF
    return [
        recipient(
            record_id=record_id,
            kind=client(permitted_marketing_methods=methods) if staff is None
            else staff_kind(permitted_sms_text=staff),
            first_name=first,
            last_name=last,
            mobile=mobile,
            time_zone="America/New_York",
            fields={"course_title": course},
        )
        for record_id, staff, methods, first, last, mobile, course in rows
    ]


def fresh(texts):
    """Equal texts in new str objects, which have not made their UTF-8 yet."""
    return [t.encode("utf-8").decode("utf-8") for t in texts]


def interleaved(reps, python, rust):
    """(Python's best, Rust's best) in seconds, the two timed one after the other in each
    repetition: their ratio holds when the machine's load changes between repetitions."""
    return best(reps, python[0], python[1]), best(reps, rust[0], rust[1])


def many_pair(texts):
    """count_segments_many of `texts`, and the same counting in Rust alone: the library's
    C function on the texts already joined into one buffer (made untimed), the counts written
    in place; what remains is the Rust work and one ctypes call."""
    from array import array

    def joined():
        n = len(texts)
        data = b"\0".join(t.encode("utf-8") for t in texts)
        return data, n, array("I", bytes(4 * n)), array("B", bytes(n))

    def rust_alone(arg):
        data, n, segments, ucs2 = arg
        total = sms_text._count_batch(data, len(data), False, n, segments.buffer_info()[0],
                                      ucs2.buffer_info()[0])
        assert total >= 0

    return ((sms_text.count_segments_many, lambda: fresh(texts)), (rust_alone, joined))


def per_call(texts):
    count = sms_text.count_segments
    for text in texts:
        count(text, False)


def smsutil_per_message(texts):
    split = smsutil.split
    for text in texts:
        len(split(text).parts)


def parity(vectors_path):
    """% of the public vectors (smart encoding off, encoding auto) whose segments each counter
    gets right; the expected value is `modern_graphemes.segments` where the record has it (the
    Rust crate takes its grapheme rules from current Unicode)."""
    records = []
    with open(vectors_path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["smart_encoding"] is False and r["encoding_param"] == "auto":
                expected = (r.get("modern_graphemes") or {}).get("segments", r["segments"])
                records.append((r["id"], r["text"], expected))
    ours = sum(sms_text.count_segments(t, False).segments == e for _, t, e in records)
    batch = sms_text.count_segments_many([t for _, t, _ in records]).segments
    ours_many = sum(got == e for got, (_, _, e) in zip(batch, records))
    theirs = 0
    for _, text, expected in records:
        try:
            theirs += len(smsutil.split(text).parts) == expected
        except Exception:  # a text smsutil cannot split counts as a miss
            pass
    n = len(records)
    return {"records": n, "sms_text": 100 * ours / n, "sms_text_many": 100 * ours_many / n,
            "smsutil": 100 * theirs / n}


def best_of_runs(runs):
    """The Rust figures of several ffi_baseline runs (bench.sh runs it before and after the
    Python side, so that a change of the machine's load between the two weighs less): each
    rate its highest, each time its lowest; counts as they are."""
    def merge(values, key):
        first = values[0]
        if isinstance(first, dict):
            return {k: merge([v[k] for v in values], k) for k in first}
        if key.endswith("_per_s"):
            return max(values)
        if key.endswith("seconds"):
            return min(values)
        return first
    return merge(runs, "")


def fmt_rate(x):
    return f"{x:,.0f}/s"


def fmt_s(x):
    return f"{x:.3f} s"


def measure(args, reps, rust):
    """The Python side's figures, as a JSON-able dict."""
    load_before = os.getloadavg()

    texts = read_workload(args.workload)
    short = [t for t in texts if len(t) < SHORT_BELOW]
    if len(texts) != rust["all"]["messages"] or len(short) != rust["short"]["messages"]:
        sys.exit("the Rust baseline ran on another workload")

    py = {}
    for name, work in (("all", texts), ("short", short)):
        n = len(work)
        py[name] = {
            "per_call": n / best(reps, lambda _: per_call(work)),
            # Fresh str objects each time (made untimed): count_segments_many reads the UTF-8
            # a str keeps once made, so the same objects again would be quicker than a host's
            # new texts.
            "many": n / best(reps, lambda w: sms_text.count_segments_many(w),
                             setup=lambda: fresh(work)),
            "many_x10": 10 * n / best(reps, lambda w: sms_text.count_segments_many(w),
                                      setup=lambda: fresh(work * 10)),
            "many_pair": interleaved(reps, *many_pair(work)),
            # smsutil is slow (~30,000/s): fewer repetitions.
            "smsutil": n / best(min(reps, 3), lambda _: smsutil_per_message(work)),
        }

    # Preview: (a) building the Recipient objects from plain rows, (b) the call, best of each.
    rows = recipient_rows(RECIPIENTS)
    with tempfile.TemporaryDirectory() as folder:
        client = sms_text.SmsClient(sms_text.SmsConfig(
            database=os.path.join(folder, "bench.db"), provider=sms_text.ProviderConfig.SIMULATOR()))
        build_s = call_s = read_s = rust_s = float("inf")
        pack = preview_packer()
        for _ in range(min(reps, 3)):
            start = time.perf_counter()
            recipients = build_recipients(rows)
            built = time.perf_counter()
            preview = client.preview(recipients, BODY)
            done = time.perf_counter()
            # The package makes each PreviewItem when it is first read: reading them all is
            # timed apart, as the host that needs every item pays it.
            for _item in preview.items:
                pass
            read = time.perf_counter()
            # The Rust side of the call alone: the same recipients packed beforehand
            # (untimed); what remains is the Rust work and the two strings crossing.
            packed = pack(recipients)
            rust_start = time.perf_counter()
            client.preview_packed(packed, BODY)
            rust_s = min(rust_s, time.perf_counter() - rust_start)
            build_s, call_s = min(build_s, built - start), min(call_s, done - built)
            read_s = min(read_s, read - done)
            t = preview.totals
            totals = (t.records, t.texts, t.skipped, t.message_units)
            del preview, recipients
        del client
    par = parity(args.vectors)
    return {"py": py, "par": par, "totals": totals, "build_s": build_s, "call_s": call_s,
            "read_s": read_s, "rust_call_s": rust_s, "load_before": load_before,
            "load_after": os.getloadavg()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", required=True)
    parser.add_argument("--vectors", required=True)
    parser.add_argument("--rust", required=True, action="append",
                        help="the JSON ffi_baseline printed (repeatable: the best of each figure)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--measure-only", metavar="FILE",
                        help="measure the Python side, write the figures to FILE, print nothing")
    parser.add_argument("--measured", metavar="FILE",
                        help="print the table of figures a --measure-only run wrote")
    args = parser.parse_args()
    reps = args.reps
    runs = []
    for path in args.rust:
        with open(path, encoding="utf-8") as f:
            runs.append(json.load(f))
    rust = best_of_runs(runs)
    if args.measured:
        with open(args.measured, encoding="utf-8") as f:
            m = json.load(f)
    else:
        m = measure(args, reps, rust)
    if args.measure_only:
        with open(args.measure_only, "w", encoding="utf-8") as f:
            json.dump(m, f)
        return
    py, par, totals = m["py"], m["par"], tuple(m["totals"])
    build_s, call_s, read_s = m["build_s"], m["call_s"], m["read_s"]
    load_before, load_after = m["load_before"], m["load_after"]
    rp = rust["preview"]
    if totals != (rp["records"], rp["texts"], rp["skipped"], rp["message_units"]):
        sys.exit(f"preview: Python and Rust previewed different work: {totals} vs "
                 f"{(rp['records'], rp['texts'], rp['skipped'], rp['message_units'])}")
    fast = hasattr(sms_text.count_segments, "__wrapped__")

    # The table: figure, Python, Rust, FFI overhead (Python time / Rust time), target, met.
    table = []

    def rate_row(label, python, rust_rate, target, met):
        overhead = f"{rust_rate / python:.2f}x" if rust_rate else "-"
        table.append((label, fmt_rate(python), fmt_rate(rust_rate) if rust_rate else "-",
                      overhead, target, met))

    def yes(ok):
        return "yes" if ok else "NO"

    for name, label in (("all", "workload"), ("short", f"short (<{SHORT_BELOW} chars)")):
        p, r = py[name], rust[name]
        n = r["messages"]
        vs = p["per_call"] / p["smsutil"]
        rate_row(f"count_segments per call, {label} ({n:,})", p["per_call"],
                 r["count_segments"]["calls_per_s"],
                 f">= {PER_CALL_TARGET:,}/s, >= 3x smsutil ({vs:.1f}x), 100% parity",
                 yes(p["per_call"] >= PER_CALL_TARGET and vs >= PER_CALL_VS_SMSUTIL
                     and par["sms_text"] == 100))
        rate_row(f"smsutil per message, {label}", p["smsutil"], None, "baseline (~31,000/s)", "")
        rate_row(f"count_segments_many, {label} ({n:,})", p["many"],
                 r["count_segments_packed"]["messages_per_s"], f">= {BATCH_TARGET:,}/s",
                 yes(p["many"] >= BATCH_TARGET))
        rate_row(f"count_segments_many, {label} x10 ({10 * n:,})", p["many_x10"],
                 r["count_segments_packed_x10"]["messages_per_s"], f">= {BATCH_TARGET:,}/s",
                 yes(p["many_x10"] >= BATCH_TARGET))
    total_s = build_s + call_s
    for label, python, rust_s, target, met in (
        (f"preview {RECIPIENTS:,}: (a) build Recipients", build_s, rp["build_seconds"], "", ""),
        (f"preview {RECIPIENTS:,}: (b) preview call", call_s, rp["call_seconds"], "", ""),
        (f"preview {RECIPIENTS:,}: (a)+(b)", total_s, rp["build_seconds"] + rp["call_seconds"],
         f"< {PREVIEW_TARGET} s", yes(total_s < PREVIEW_TARGET)),
        (f"preview {RECIPIENTS:,}: (c) read every item", read_s, None, "", ""),
    ):
        ratio = f"{python / rust_s:.2f}x" if rust_s else "-"
        table.append((label, fmt_s(python), fmt_s(rust_s) if rust_s else "-", ratio, target, met))
    # Interleaved in this process: the ratios that hold when the load changes.
    for name, label in (("all", "workload"), ("short", f"short (<{SHORT_BELOW} chars)")):
        python, rust_alone = py[name]["many_pair"]
        n = rust[name]["messages"]
        table.append((f"count_segments_many, {label}, vs Rust alone in this run",
                      fmt_rate(n / python), fmt_rate(n / rust_alone),
                      f"{python / rust_alone:.2f}x", "", ""))
    table.append((f"preview {RECIPIENTS:,}: (b), vs Rust alone in this run", fmt_s(call_s),
                  fmt_s(m["rust_call_s"]), f"{call_s / m['rust_call_s']:.2f}x", "", ""))
    table.append((f"parity sms_text ({par['records']:,} vectors)",
                  f"{par['sms_text']:.2f}% (many: {par['sms_text_many']:.2f}%)", "-", "-",
                  "100%", yes(par["sms_text"] == 100 and par["sms_text_many"] == 100)))
    table.append((f"parity smsutil ({par['records']:,} vectors)", f"{par['smsutil']:.2f}%",
                  "-", "-", "", ""))

    header = ("figure", "Python", "Rust", "Python/Rust", "target", "met")
    widths = [max(len(str(row[i])) for row in (header, *table)) for i in range(len(header))]
    print(f"sms_text benchmark: Python {platform.python_version()}, smsutil {smsutil_version()}, "
          f"count_segments {'ctypes fast path' if fast else 'generated uniffi path'}, "
          f"best of {reps} ({min(reps, 3)} for smsutil and preview; Rust: best of "
          f"{rust['repetitions']}, of {len(runs)} runs)")
    print(f"machine: {os.cpu_count()} CPUs, load average (1/5/15 min) "
          f"before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in load_after)}")
    print(f"preview: {totals[0]:,} records, {totals[1]:,} texts, {totals[2]:,} skipped, "
          f"{totals[3]:,} segments (the same in Rust)")
    line = "  ".join("{:<%d}" % w for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in table:
        print(line.format(*row))


def smsutil_version():
    try:
        from importlib.metadata import version
        return version("smsutil")
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
