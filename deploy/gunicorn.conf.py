"""gunicorn configuration for Portico: ``gunicorn -c deploy/gunicorn.conf.py``.

Bind address, workers, threads and the rest come from Portico's own settings ([web] in
portico.toml or PORTICO_WEB_* variables), exactly as ``portico serve`` uses them, so both
ways of starting the portal behave alike. Command-line flags and GUNICORN_CMD_ARGS still
win over this file. Run ``portico migrate`` first (see docs/operations.md).
"""

from engine.serve import gunicorn_options
from engine.settings import load_settings

wsgi_app = "engine.wsgi:application"

# Every option `portico serve` would pass (bind, workers, worker_class, timeouts, logs, ...).
for _name, _value in gunicorn_options(load_settings()).items():
    if _value is not None:
        globals()[_name] = _value

# Each worker builds its own app (and database pool) after the fork.
preload_app = False
