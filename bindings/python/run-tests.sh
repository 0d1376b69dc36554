#!/usr/bin/env bash
# The Python suite: a venv with the pinned tools (target/py-venv, rebuilt when
# requirements-dev.txt or the Python version changes), the package built by maturin as a wheel
# and installed into it (the same wheel `pip install ./bindings/python` builds), then pytest.
#
# SMS_FFI_PROFILE=release builds the library optimised (for the benchmarks); the default, dev,
# shares most of its build with `cargo test`. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
here="$repo_root/bindings/python"
venv="$repo_root/target/py-venv"
wheels="$repo_root/target/py-wheels"

key="$(python3 --version 2>&1) $(sha256sum "$here/requirements-dev.txt" | cut -d' ' -f1)"
if [ "$(cat "$venv/.requirements-key" 2>/dev/null)" != "$key" ]; then
  echo "python: creating $venv ($key)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements-dev.txt"
  echo "$key" >"$venv/.requirements-key"
fi

# One wheel, built from this checkout; --force-reinstall: the version does not change between
# builds, the library does.
rm -rf "$wheels"
(cd "$here" && "$venv/bin/maturin" build --locked --quiet --profile "$sms_ffi_profile" --out "$wheels")
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheels"/sms_text-*.whl

# pytest (not `python -m pytest`, which puts the current folder on sys.path): `import sms_text`
# must find the installed package, not the source folder without its built library.
cd "$repo_root"
"$venv/bin/pytest" -q -p no:cacheprovider "$here/tests" "$@"
