#!/usr/bin/env bash
# Every test: formatting, lints, and the whole workspace's tests (unit, property, integration,
# CLI golden files, doc tests, saved fuzz crashes), the Python and Kotlin bindings' suites and the
# committed generated bindings, then a bounded fuzz run of every target.
# Everything it reads is in this repository (tests/data/, fuzz/).
set -euo pipefail
cd "$(dirname "$0")"

# Each step prints how long it took, so that a slow CI run says where its time went.
step() {
  local started=$SECONDS
  "$@"
  echo "== test.sh: $((SECONDS - started)) s for: $*" >&2
}

# UPDATE_GOLDEN rewrites the golden files instead of comparing them: a run with it set would
# pass whatever the output is.
if [ -n "${UPDATE_GOLDEN+set}" ]; then
  echo "error: UPDATE_GOLDEN is set; unset it (it makes the golden tests rewrite, not check)" >&2
  exit 2
fi

# The tests must pass on a clone with nothing beside it: no file may read outside the repository.
if git grep -n -I -e '\.\./shared' -- ':!tests/data' ':!test.sh' >/dev/null 2>&1; then
  echo "error: these tracked files refer to the shared folder beside the project, which a clone does not have:" >&2
  git grep -n -I -e '\.\./shared' -- ':!tests/data' ':!test.sh' >&2
  exit 2
fi

step cargo fmt --all -- --check
step cargo clippy --workspace --all-targets --locked -- -D warnings
# The API docs, as docs.rs would build them: a broken intra-doc link or a bad code block fails.
# (missing_docs is warned in every library crate, so clippy above has refused undocumented items.)
RUSTDOCFLAGS="-D warnings" step cargo doc --workspace --no-deps --locked
# Every crate that may be published packages cleanly (metadata, license files, versions on path
# dependencies); the test and benchmark crates and uniffi-bindgen are publish = false.
# --no-verify: the build it would add is the one cargo test makes below; --allow-dirty: this
# script runs on work not committed yet; --offline: clippy has fetched every dependency, and the
# crates.io index update cargo would make otherwise costs some 17 s (1.6 s without).
step cargo package --workspace --exclude sms-tests --exclude sms-benches --exclude uniffi-bindgen \
  --no-verify --allow-dirty --locked --offline
# --no-fail-fast: report every failing test binary, not only the first. It also builds every
# example, which tests/tests/examples.rs then runs and checks.
step cargo test --workspace --locked --no-fail-fast

# The bindings, from real hosts: the Python package built by maturin and its pytest suite (a venv
# under target/py-venv with pinned tools), the Kotlin program compiled with kotlinc from npm and
# run on the JVM with Debian's JNA, then the committed generated bindings checked against what the
# library generates now. All three load one debug build of sms-ffi (bindings/lib.sh).
step bindings/python/run-tests.sh
step bindings/kotlin/run-tests.sh
step bindings/check-generated.sh

# A bounded fuzz run (fuzz/run.sh: every target from its committed corpus, 8 s each, about a
# minute in all; fails on a crash). It needs cargo-fuzz, built from crates.io the first time
# (about 3 minutes), so that this command works on a fresh machine.
if ! cargo fuzz --version >/dev/null 2>&1; then
  step cargo install cargo-fuzz --locked
fi
step fuzz/run.sh
echo "== test.sh: all green in $SECONDS s" >&2
# Benchmarks are type-checked by clippy --all-targets above; they are timed with `cargo bench`, not in CI.
