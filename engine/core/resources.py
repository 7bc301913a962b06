"""Core HTTP resources: health, OpenAPI, static files, language and appearance switches."""

from __future__ import annotations

import falcon

from engine import db, downloads
from engine.audit import record
from engine.forms import read_form
from engine.i18n import LOCALES, N_
from engine.models import User
from engine.redirects import local_path
from engine.theming import SCHEMES


class Health:
    """``GET /healthz``: 200 when the database and the broker answer, else 503."""

    auth = "public"

    def on_get(self, req, resp):
        app = req.context.app
        checks = {
            "database": _check(lambda: db.database.execute_sql("SELECT 1").fetchone()),
            "broker": _check(lambda: _ping_broker(app.tasks.broker)),
        }
        ok = all(v == "ok" for v in checks.values())
        resp.status = falcon.HTTP_200 if ok else falcon.HTTP_503
        resp.set_header("Cache-Control", "no-store")
        resp.media = {
            "status": "ok" if ok else "degraded",
            **checks,
            "outbox_pending": _safe(app.tasks.pending),
            "version": app.version,
        }


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
    from engine.tasks import ping_broker

    ping_broker(broker)  # Redis, RabbitMQ or the embedded queue


class OpenAPI:
    """``GET /api/v1/openapi.json``: the API as OpenAPI 3.1, each operation tagged by plugin."""

    auth = "public"

    def on_get(self, req, resp):
        resp.media = req.context.app.openapi_document


class Static:
    """``GET /static/{path}``: theme → default theme → plugin static files, fingerprinted.

    A URL carrying the file's current fingerprint (``?v=``, from ``static_url``) is
    cached for a year; any other gets five minutes and revalidates by ETag.
    """

    auth = "public"

    def on_get(self, req, resp, path):
        found = req.context.app.theme.static_file(path)
        if found is None:
            raise falcon.HTTPNotFound()
        cache = (
            ("public", "max-age=31536000", "immutable")
            if req.get_param("v") == found.digest
            else ("public", "max-age=300")
        )
        if downloads.not_modified(req, resp, found.digest, None, cache):
            return  # no body, so no Content-Type either
        resp.content_type = found.content_type
        resp.data = found.data


class Language:
    """``POST /lang``: the language switcher.

    Remembers the choice in a cookie; a signed-in customer's choice also becomes
    their preference (and is audited). Staff acting as a customer change only
    their own cookie, never the customer's preference.
    """

    auth = "public"

    def on_post(self, req, resp):
        form = read_form(req)
        lang = form.get("lang", "")
        if lang not in LOCALES:
            raise falcon.HTTPBadRequest(
                title=N_("Unknown language"),
                description=N_("Choose one of: %(choices)s.", choices=", ".join(LOCALES)),
            )
        ctx = req.context
        principal = ctx.principal
        if (
            principal is not None
            and principal.user_id
            and not principal.impersonated
            and principal.locale != lang
        ):
            with db.database.atomic():
                User.update(locale=lang).where(User.id == principal.user_id).execute()
                record(
                    ctx,
                    "account.language_changed",
                    f"user:{principal.user_id}",
                    {"from": principal.locale, "to": lang},
                )
        _remember(req, resp, "lang", lang)
        raise falcon.HTTPSeeOther(local_path(form.get("next")))


class Appearance:
    """``POST /appearance``: light, dark or the device's setting (``system``), remembered in
    this browser for a year (``engine.theming.scheme_of`` reads it back)."""

    auth = "public"

    def on_post(self, req, resp):
        form = read_form(req)
        scheme = form.get("scheme", "")
        if scheme not in SCHEMES:
            raise falcon.HTTPBadRequest(
                title=N_("Unknown appearance"),
                description=N_("Choose one of: %(choices)s.", choices=", ".join(SCHEMES)),
            )
        _remember(req, resp, "scheme", scheme)
        raise falcon.HTTPSeeOther(local_path(form.get("next")))


def _remember(req, resp, name: str, value: str) -> None:
    """A visitor's choice, kept in a cookie for a year (no account needed)."""
    resp.set_cookie(
        name,
        value,
        max_age=60 * 60 * 24 * 365,
        path="/",
        same_site="Lax",
        http_only=True,
        secure=req.context.app.settings.security.cookie_secure,
    )
