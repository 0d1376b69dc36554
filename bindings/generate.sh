#!/usr/bin/env bash
# Regenerates the committed bindings from the current sms-ffi: bindings/python/generated/sms_ffi.py,
# bindings/kotlin/generated/uniffi/sms_ffi/sms_ffi.kt, bindings/swift/generated/ (the .swift file,
# the C header and the modulemap). Run it after changing sms-ffi's API, and commit the result;
# bindings/check-generated.sh (in ./test.sh) fails until you do.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

lib="${SMS_FFI_LIB:-$(build_sms_ffi)}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
generate_bindings "$lib" "$tmp"
for language in python kotlin swift; do
  rm -rf "$repo_root/bindings/$language/generated"
  mkdir -p "$repo_root/bindings/$language"
  cp -R "$tmp/$language/generated" "$repo_root/bindings/$language/generated"
done
echo "bindings regenerated from $lib; review and commit bindings/*/generated/"
