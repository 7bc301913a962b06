# Shared by scripts/demo and scripts/test: a project virtualenv with Portico installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=.venv/.portico-installed
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ -n "${PORTICO_REINSTALL:-}" ]; then
  .venv/bin/python -m pip install -q -e ".${EXTRAS:-}" 2>&1 | grep -v "^WARNING: Location" || true
  touch "$stamp"
fi
