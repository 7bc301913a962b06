"""Core HTTP resources: health, OpenAPI, static files, language switch."""
from __future__ import annotations

import falcon

from engine import db
from engine.api import build_openapi
from engine.forms import read_form
from engine.i18n import LOCALES


class Health:
    """``GET /healthz``: 200 when the database and the broker answer, else 503."""
    auth = "public"

    def on_get(self, req, resp):
        app = req.context.app
        checks = {"database": _check(lambda: db.database.execute_sql("SELECT 1").fetchone()),
                  "broker": _check(lambda: _ping_broker(app.tasks.broker))}
        ok = all(v == "ok" for v in checks.values())
        resp.status = falcon.HTTP_200 if ok else falcon.HTTP_503
        resp.set_header("Cache-Control", "no-store")
        resp.media = {"status": "ok" if ok else "degraded", **checks,
                      "outbox_pending": _safe(app.tasks.pending), "version": app.version}


def _check(fn) -> str:
    try:
        fn()
        return "ok"
    except Exception as exc:  # report, don't raise: health must answer
        return f"error: {type(exc).__name__}"


def _safe(fn):
    try:
        return fn()
    except Exception:
        return None


def _ping_broker(broker) -> None:
    client = getattr(broker, "client", None)
    if client is not None and hasattr(client, "ping"):
        client.ping()  # Redis
    elif hasattr(broker, "connection"):
        broker.connection  # RabbitMQ: opens (or reuses) the connection
    elif hasattr(broker, "pending"):
        broker.pending()  # embedded SQLite


class OpenAPI:
    """``GET /api/v1/openapi.json``: the API as OpenAPI 3.1, each operation tagged by plugin."""
    auth = "public"

    def on_get(self, req, resp):
        app = req.context.app
        if not hasattr(app, "_openapi"):
            app._openapi = build_openapi(app)
        resp.media = app._openapi


class Static:
    """``GET /static/{path}``: theme → default theme → plugin static files, fingerprinted."""
    auth = "public"

    def on_get(self, req, resp, path):
        found = req.context.app.theme.static_bytes(path)
        if found is None:
            raise falcon.HTTPNotFound()
        data, ctype, digest = found
        resp.content_type = ctype
        resp.etag = digest
        if req.get_param("v") == digest:
            resp.cache_control = ["public", "max-age=31536000", "immutable"]
        else:
            resp.cache_control = ["public", "max-age=300"]
        if req.if_none_match and any(getattr(t, "strip", lambda: t)() == digest
                                     for t in req.if_none_match):
            resp.status = falcon.HTTP_304
            return
        resp.data = data


class Language:
    """``POST /lang``: the language switcher; remembers the choice in a cookie."""
    auth = "public"

    def on_post(self, req, resp):
        form = read_form(req)
        lang = form.get("lang", "")
        if lang not in LOCALES:
            raise falcon.HTTPBadRequest(title="Unknown language")
        resp.set_cookie("lang", lang, max_age=60 * 60 * 24 * 365, path="/", same_site="Lax",
                        http_only=True, secure=req.context.app.settings.security.cookie_secure)
        target = form.get("next", "/")
        raise falcon.HTTPSeeOther(target if target.startswith("/") and not target.startswith("//")
                                  else "/")
