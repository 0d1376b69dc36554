#!/usr/bin/env bash
# Every test: formatting, lints, and the whole workspace's tests (unit, property, integration,
# CLI golden files, doc tests). Reference data is read from ../shared/data.
set -euo pipefail
cd "$(dirname "$0")"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# Benchmarks are type-checked by clippy --all-targets above; they are timed with `cargo bench`, not in CI.
