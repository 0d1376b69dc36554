#!/usr/bin/env bash
# A bounded run of every fuzz target (about a minute in all), as ./test.sh runs it: each target
# starts from its committed corpus, explores for FUZZ_SECONDS (default 8) and fails on a crash.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); runs on the stable toolchain, without
# the address sanitizer (which needs nightly). Longer runs: see README.md.
#
# Usage: fuzz/run.sh [TARGET...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-8}"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(recipients_csv template phone webhook segments keywords jsonl)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "error: cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

cargo fuzz build --sanitizer none

# New inputs go to a scratch folder, so a run never changes the committed corpus.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in "${targets[@]}"; do
  echo "== fuzz $target (${seconds}s)"
  mkdir -p "$scratch/$target"
  # -timeout: an input taking 30 s is a hang, a failure like a crash (the first phone input
  # builds the fast path's table: under a second, but a loaded machine stretches it).
  # `timeout`: when libFuzzer's own timeout fires in the middle of Rust code holding a lock,
  # its handler can deadlock; the outer limit turns that hang into a failure too.
  if ! timeout --kill-after=10 "$((seconds + 120))" \
      cargo fuzz run "$target" --sanitizer none "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=30 -print_final_stats=1 2>"$scratch/$target.log"; then
    failed+=("$target")
    # What failed, and where libFuzzer saved the input (artifacts/TARGET/).
    grep -a -A4 -e 'panicked at' -e 'ERROR: libFuzzer' "$scratch/$target.log" | head -n 20 >&2 || true
    grep -a -e 'Test unit written to' "$scratch/$target.log" >&2 || true
  else
    grep -E '^stat::number_of_executed_units|^Done ' "$scratch/$target.log" || true
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "error: fuzz targets failed: ${failed[*]} (inputs in fuzz/artifacts/; see fuzz/README.md)" >&2
  exit 1
fi
echo "fuzz: no crash in ${#targets[@]} targets"
