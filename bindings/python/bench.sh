#!/usr/bin/env bash
# The Python benchmark, in one run and one table: the package sms_text built in release,
# beside the same facade functions called from Rust (no FFI) and beside the Python peer
# smsutil, on tests/data/segments/bench_workload.jsonl.gz, with the issue's targets.
#
#   bindings/python/bench.sh [--reps N]
#
# Its own venv, target/py-bench-venv (the same pinned tools as the tests'): the release wheel
# installed there never replaces the dev wheel the Python suite runs against in
# target/py-venv, so the suite and the benchmark can run one after the other, or at once,
# without rebuilding each other's package. Its own wheel folder for the same reason.
set -euo pipefail
export SMS_FFI_PROFILE=release
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/venv.sh"
here="$repo_root/bindings/python"
venv="$repo_root/target/py-bench-venv"
wheels="$repo_root/target/py-bench-wheels"
workload="$repo_root/tests/data/segments/bench_workload.jsonl.gz"
vectors="$repo_root/tests/data/segments/public.jsonl"
reps=5
if [ "${1:-}" = "--reps" ]; then reps="${2:?--reps takes a number}"; fi

ensure_python_venv "$venv"

echo "bench: building the package (release)" >&2
rm -rf "$wheels"
(cd "$here" && "$venv/bin/maturin" build --locked --quiet --profile "$sms_ffi_profile" --out "$wheels")
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheels"/sms_text-*.whl

# The Rust baseline runs before and after the Python side, and each Rust figure is the best of
# the two: the machine is shared, and its load changes during the minutes Python takes.
echo "bench: the Rust baseline (release)" >&2
rust_before="$(mktemp)"
rust_after="$(mktemp)"
trap 'rm -f "$rust_before" "$rust_after"' EXIT
(cd "$repo_root" && cargo build --locked --quiet --profile "$sms_ffi_profile" -p sms-ffi --example ffi_baseline)
baseline="$repo_root/target/$sms_ffi_profile_dir/examples/ffi_baseline"
"$baseline" "$workload" --reps "$reps" >"$rust_before"

echo "bench: Python" >&2
# From the repository root, not bindings/python: `import sms_text` must find the installed
# package, not the source folder without its built library.
cd "$repo_root"
python_table="$(mktemp)"
trap 'rm -f "$rust_before" "$rust_after" "$python_table"' EXIT
# Python measures first; the table is printed once the second Rust run is in.
"$venv/bin/python" "$here/bench/bench_ffi.py" --workload "$workload" --vectors "$vectors" \
  --rust "$rust_before" --reps "$reps" --measure-only "$python_table"
echo "bench: the Rust baseline again" >&2
"$baseline" "$workload" --reps "$reps" >"$rust_after"
"$venv/bin/python" "$here/bench/bench_ffi.py" --workload "$workload" --vectors "$vectors" \
  --rust "$rust_before" --rust "$rust_after" --reps "$reps" --measured "$python_table"
