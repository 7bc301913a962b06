# Shared by scripts/demo and scripts/test: a project virtualenv with Portico installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi

# pip_install ARGS...: quiet unless it fails (its full log is then printed).
pip_install() {
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q "$@" >"$log" 2>&1; then
    cat "$log"; rm -f "$log"; return 1
  fi
  rm -f "$log"
}

# Every dependency at the version constraints.txt pins (scripts/update-constraints writes it).
stamp=.venv/.portico-installed${EXTRAS:-}
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ] ||
   [ -n "${PORTICO_REINSTALL:-}" ]; then
  echo "Installing Portico${EXTRAS:-} into .venv ..." >&2
  pip_install -c constraints.txt -e ".${EXTRAS:-}"
  touch "$stamp"
fi
