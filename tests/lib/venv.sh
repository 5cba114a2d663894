# The virtualenv of a Python suite: made once, its pinned packages (the suite's requirements.txt)
# installed again only when that file changes. Sourced by tests/lib/embedded-default.sh, and by
# .ci/run, which makes the suites' virtualenvs while the Rust builds run.
#   make_venv SUITE_DIR VENV_DIR
make_venv() {
  local here=$1 venv=$2 stamp wanted
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  stamp="$venv/.requirements.sha256"
  wanted=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$here/requirements.txt"
    echo "$wanted" >"$stamp"
  fi
}
