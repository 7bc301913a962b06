"""``/livez``, ``/readyz`` and ``/metrics``: for load balancers, orchestrators and Prometheus.

They skip the portal's session, CSRF and locale work (``bare``), need no sign-in and
are not rate-limited; their bodies name checks, never hosts, URLs or messages.
"""

from __future__ import annotations

from typing import Any, Callable

import falcon

from engine import db
from engine.errors import Problem
from engine.i18n import N_
from engine.observe import metrics

#: Paths the request middleware leaves alone (no database, cookies or authentication).
BARE_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


class Livez:
    """``GET /livez``: 200 while the process answers; touches nothing else."""

    auth = "public"
    bare = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", "no-store")
        resp.media = {"status": "ok"}


class Readyz:
    """``GET /readyz``: 200 when the database answers, else 503 problem+json.

    A broker outage makes the status ``degraded`` but stays 200: the outbox keeps the
    work until the broker is back, so web nodes stay in service meanwhile.
    """

    auth = "public"
    bare = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        app = req.context.app
        resp.set_header("Cache-Control", "no-store")
        database = _check(lambda: db.database.execute_sql("SELECT 1").fetchone(), connect=True)
        if database != "ok":
            raise Problem(
                503,
                N_("The database does not answer"),
                N_("This node cannot serve requests until the database is back."),
                type="unavailable",
                checks={"database": database},
                headers={"Cache-Control": "no-store", "Retry-After": "5"},
            )
        broker = _check(lambda: app.tasks.ping())
        resp.media = {
            "status": "ok" if broker == "ok" else "degraded",
            "checks": {"database": database, "broker": broker},
        }


class Metrics:
    """``GET /metrics``: Prometheus text, for a bearer token or an allowed address only
    (``[metrics]``); 404 while neither is configured."""

    auth = "public"
    bare = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        app = req.context.app
        refused = metrics.refusal(app.settings, req.context.ip, req.get_header("Authorization"))
        if refused == 404:
            raise falcon.HTTPNotFound(title=N_("Page not found"))
        if refused == 401:
            raise Problem(
                401,
                N_("A metrics token is required"),
                type="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        if refused == 403:
            raise Problem(403, N_("This address may not read the metrics"), type="forbidden")
        resp.set_header("Cache-Control", "no-store")
        resp.content_type = metrics.CONTENT_TYPE
        resp.data = metrics.exposition(app)


def _check(fn: Callable[[], Any], connect: bool = False) -> str:
    try:
        if connect:
            db.database.connect(reuse_if_open=True)
        fn()
        return "ok"
    except Exception as exc:  # report the kind only: messages can name hosts and users
        return f"error: {type(exc).__name__}"
