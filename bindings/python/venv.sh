# Sourced by bindings/python/run-tests.sh and bench.sh: one way to make the Python venv with the
# pinned tools of requirements-dev.txt (maturin, pytest, smsutil).

# ensure_python_venv VENV: creates VENV, or re-creates it when requirements-dev.txt or the
# Python version changed since it was made.
ensure_python_venv() {
  local venv="$1" requirements key
  requirements="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/requirements-dev.txt"
  key="$(python3 --version 2>&1) $(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ "$(cat "$venv/.requirements-key" 2>/dev/null)" != "$key" ]; then
    echo "python: creating $venv ($key)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$key" >"$venv/.requirements-key"
  fi
}
