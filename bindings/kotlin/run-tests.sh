#!/usr/bin/env bash
# The Kotlin check: kotlinc from the npm package kotlin-compiler (pinned with its hash in
# tools/package-lock.json, installed under target/), JNA from Debian's libjna-java, the Kotlin
# bindings generated from the built library, compiled with src/Main.kt and run on OpenJDK; the
# program exits non-zero on a failed check and its output must equal expected-output.txt.
#
# SMS_FFI_LIB: the library to load (default: built here, see ../lib.sh).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
here="$repo_root/bindings/kotlin"
work="$repo_root/target/kotlin-test"
jna=/usr/share/java/jna.jar

# kotlinc: reinstalled when the lock file changes.
tools="$repo_root/target/kotlin-tools"
kotlinc="$tools/node_modules/kotlin-compiler/bin/kotlinc"
if ! cmp -s "$here/tools/package-lock.json" "$tools/package-lock.json" || [ ! -x "$kotlinc" ]; then
  echo "kotlin: installing kotlinc (npm kotlin-compiler) into $tools"
  rm -rf "$tools"
  mkdir -p "$tools"
  cp "$here/tools/package.json" "$here/tools/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
fi

# JNA: Debian's package (CI runs as root; sudo otherwise).
if [ ! -f "$jna" ]; then
  echo "kotlin: installing libjna-java"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q libjna-java; then
    $sudo apt-get update -q
    $sudo apt-get install -y -q libjna-java
  fi
fi

lib="${SMS_FFI_LIB:-$(build_sms_ffi)}"
mkdir -p "$work"
rm -rf "$work/generated"
uniffi_bindgen generate --no-format --library "$lib" --language kotlin --out-dir "$work/generated" >/dev/null

# Compile (skipped when the generated bindings, the program and the compiler are unchanged).
sources=("$work"/generated/uniffi/sms_ffi/*.kt "$here"/src/*.kt)
key="$(cat "$tools/package-lock.json" "${sources[@]}" | sha256sum | cut -d' ' -f1)"
jar="$work/main-$key.jar"
if [ ! -f "$jar" ]; then
  rm -f "$work"/main-*.jar
  echo "kotlin: compiling ${#sources[@]} files"
  # -nowarn: the generated code's warnings are uniffi's, not ours.
  "$kotlinc" -nowarn -classpath "$jna" -include-runtime -d "$jar.tmp.jar" "${sources[@]}"
  mv "$jar.tmp.jar" "$jar"
fi

status=0
java -Djna.library.path="$(dirname "$lib")" -cp "$jar:$jna" MainKt >"$work/output.txt" 2>&1 || status=$?
if [ "$status" -ne 0 ] || ! diff -u "$here/expected-output.txt" "$work/output.txt"; then
  echo "error: the Kotlin program failed (exit $status); its output:" >&2
  cat "$work/output.txt" >&2
  exit 1
fi
echo "kotlin: $(grep -c '^ok: ' "$work/output.txt") checks passed"
