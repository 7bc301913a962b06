"""Serve one benchmark app under gunicorn: ``python bench/serve.py {raw,falcon,portico} --port N``.

Every app gets the same options from ``engine.serve.gunicorn_options`` (the
ones ``portico serve`` uses), so a comparison differs only in the app.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apps import APPS  # noqa: E402

from engine.serve import Gunicorn, gunicorn_options  # noqa: E402
from engine.settings import load_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", required=True, help="the run's own folder (harness.Bench)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--data-dir", default=None, help="default: a folder of this server's own in the workdir"
    )
    parser.add_argument("--storage", default="local", help="[storage] backend")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(args.workdir) / f"data-{args.app}-{args.port}"
    settings = load_settings(
        None,
        environ={},
        overrides={
            "data_dir": str(data_dir),
            "secret_key": "bench-secret-key-" + "x" * 32,
            "database_url": args.database_url,
            "plugins": {"entry_points": False},
            "storage": {"backend": args.storage},
            "base_url": f"http://127.0.0.1:{args.port}",
            "mail": {"allow_file_backend": True},
            "sandbox": {"allow_outside_demo": True},
        },
    )  # as the demo (OPS-2)
    options = gunicorn_options(settings, "127.0.0.1", args.port, args.workers, args.threads)
    app = APPS[args.app](settings)
    if hasattr(app, "database"):
        options["post_fork"] = lambda server, worker: app.database.close_all()
    Gunicorn(app, options).run()


if __name__ == "__main__":
    main()
