# Sourced by the bindings scripts (python/run-tests.sh, kotlin/run-tests.sh, generate.sh,
# check-generated.sh): one way to build sms-ffi's shared library and one way to run the
# generator, so that the scripts share one build.
#
# SMS_FFI_PROFILE: the cargo profile of the library the hosts load: `dev` (default; what the
# tests need, and most of it is already built by `cargo test`) or `release` (the benchmarks).

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sms_ffi_profile="${SMS_FFI_PROFILE:-dev}"
case "$sms_ffi_profile" in
  dev) sms_ffi_profile_dir=debug ;;
  *) sms_ffi_profile_dir="$sms_ffi_profile" ;;
esac

# Builds the library (a no-op when it is up to date) and prints its path. In the dev profile it
# builds the whole workspace with every target, as `cargo test --workspace` and clippy resolve
# it: `-p sms-ffi` alone would unify other features and rebuild some 130 dependencies a second
# time (about 4 minutes of CI from cold). The release build (benchmarks) is sms-ffi's alone.
build_sms_ffi() {
  if [ "$sms_ffi_profile" = dev ]; then
    (cd "$repo_root" && cargo build --locked --quiet --workspace --all-targets) >&2
  else
    (cd "$repo_root" && cargo build --locked --quiet -p sms-ffi --profile "$sms_ffi_profile") >&2
  fi
  echo "$repo_root/target/$sms_ffi_profile_dir/libsms_ffi.so"
}

# The workspace generator, run exactly as maturin runs it (`cargo run --bin uniffi-bindgen` from
# the workspace root, so with the root's default members and features): one build of it serves
# maturin and these scripts alike.
uniffi_bindgen() {
  (cd "$repo_root" && cargo run --locked --quiet --bin uniffi-bindgen -- "$@")
}

# generate_bindings LIB OUT: the Python module, the Kotlin file and the Swift files of LIB, laid
# out under OUT as they are committed under bindings/ (OUT/python/generated,
# OUT/kotlin/generated, OUT/swift/generated). --no-format: the output must not depend on which
# formatters (ktlint, swiftformat) happen to be installed.
generate_bindings() {
  local lib="$1" out="$2" language
  for language in python kotlin swift; do
    mkdir -p "$out/$language/generated"
    uniffi_bindgen generate --no-format --library "$lib" --language "$language" \
      --out-dir "$out/$language/generated" >/dev/null
  done
}
