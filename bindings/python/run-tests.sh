#!/usr/bin/env bash
# The Python suite: a venv with the pinned tools (target/py-venv, rebuilt when
# requirements-dev.txt or the Python version changes), the package built by maturin as a wheel
# and installed into it (the same wheel `pip install ./bindings/python` builds), then pytest.
#
# SMS_FFI_PROFILE=release builds the library optimised (for the benchmarks); the default, dev,
# shares most of its build with `cargo test`. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/venv.sh"
here="$repo_root/bindings/python"
venv="$repo_root/target/py-venv"
wheels="$repo_root/target/py-wheels"

ensure_python_venv "$venv"

# One wheel, built from this checkout; --force-reinstall: the version does not change between
# builds, the library does.
rm -rf "$wheels"
(cd "$here" && "$venv/bin/maturin" build --locked --quiet --profile "$sms_ffi_profile" --out "$wheels")
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheels"/sms_text-*.whl

# pytest (not `python -m pytest`, which puts the current folder on sys.path): `import sms_text`
# must find the installed package, not the source folder without its built library.
cd "$repo_root"
"$venv/bin/pytest" -q -p no:cacheprovider "$here/tests" "$@"
