#!/usr/bin/env bash
# Fails when the committed generated bindings (Python, Kotlin, Swift) differ from what the
# current sms-ffi generates: a host team that takes the committed files must get the real API.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

lib="${SMS_FFI_LIB:-$(build_sms_ffi)}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
generate_bindings "$lib" "$tmp"

stale=0
for language in python kotlin swift; do
  if ! diff -r "$repo_root/bindings/$language/generated" "$tmp/$language/generated" >"$tmp/$language.diff" 2>&1; then
    echo "error: bindings/$language/generated/ differs from what sms-ffi generates now:" >&2
    head -n 40 "$tmp/$language.diff" >&2
    stale=1
  fi
done
if [ "$stale" -ne 0 ]; then
  echo "error: the committed generated bindings are out of date; update them with" >&2
  echo "  bindings/generate.sh" >&2
  echo "and commit bindings/*/generated/." >&2
  exit 1
fi
echo "generated bindings: python, kotlin, swift up to date"
