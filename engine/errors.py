"""Errors as RFC 9457 ``application/problem+json``; HTML pages get a themed page.

A problem has a stable ``type`` (a URI under the operator's base URL), a human
``title``, the ``status``, and for bad input ``errors``: field → messages. Titles,
details and messages are written as ``N_("...")`` message ids and answered in the
request's language (``problem_body``). No stack trace ever reaches a user.
"""

from __future__ import annotations

import json
import logging
from typing import Callable

import falcon
from marshmallow import ValidationError

from engine.i18n import N_, translate
from engine.registry import request_kind

log = logging.getLogger("portico.errors")

PROBLEM_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    410: "gone",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "too-many-requests",
    500: "server-error",
    502: "provider-error",
    503: "unavailable",
}

#: The title of an error raised without one (Falcon's own 404s and 405s): the status's
#: reason phrase, as Falcon writes it, marked for translation.
STATUS_TITLES = {
    400: N_("Bad Request"),
    401: N_("Unauthorized"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    405: N_("Method Not Allowed"),
    406: N_("Not Acceptable"),
    409: N_("Conflict"),
    410: N_("Gone"),
    411: N_("Length Required"),
    413: N_("Content Too Large"),
    414: N_("URI Too Long"),
    415: N_("Unsupported Media Type"),
    422: N_("Unprocessable Entity"),
    429: N_("Too Many Requests"),
    431: N_("Request Header Fields Too Large"),
    500: N_("Internal Server Error"),
    502: N_("Bad Gateway"),
    503: N_("Service Unavailable"),
}


class Problem(falcon.HTTPError):
    """An HTTP error with a stable problem ``type`` slug and optional field ``errors``."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type: str | None = None,
        errors: dict | None = None,
        headers=None,
        **extra,
    ):
        super().__init__(
            falcon.code_to_http_status(status), title=title, description=detail, headers=headers
        )
        self.slug = type or PROBLEM_TYPES.get(status, "error")
        self.errors = errors
        self.extra = extra


def invalid(errors: dict, title: str = N_("Some fields are not valid")) -> Problem:
    """422 with field messages, the shape every form and API call uses."""
    return Problem(
        422, title, N_("Correct the fields listed in 'errors' and try again."), errors=errors
    )


def in_words(error: falcon.HTTPError) -> str:
    """A problem as one line of a form's messages ("Title. Detail."), translated where shown."""
    if not error.description:
        return error.title
    return N_("%(title)s. %(detail)s", title=error.title, detail=error.description)


def problem_body(req: falcon.Request, error: falcon.HTTPError) -> dict:
    """The problem document, its title, detail and field messages in the request's language."""
    status = int(error.status_code)
    slug = getattr(error, "slug", None) or PROBLEM_TYPES.get(status, "error")
    body = {
        "type": f"/problems/{slug}",
        "title": error.title or STATUS_TITLES.get(status) or str(error.status)[4:],
        "status": status,
    }
    if error.description:
        body["detail"] = error.description
    errors = getattr(error, "errors", None)  # a Problem's field messages
    if errors:
        body["errors"] = errors
    gettext = _gettext(req)
    if gettext is not None:
        body.update(
            translate({k: body[k] for k in ("title", "detail", "errors") if k in body}, gettext)
        )
    body.update(getattr(error, "extra", None) or {})
    return body


def _gettext(req: falcon.Request) -> Callable[[str], str] | None:
    """The request's catalogue's ``gettext`` (its language negotiated now if no route did:
    a 404, a body too large), or None outside an app."""
    ctx = req.context
    app = getattr(ctx, "app", None)
    if app is None:
        return None
    if not ctx.extra.get("locale_negotiated"):
        ctx.locale = app.translator.negotiate(req, getattr(ctx, "principal", None))
    return app.translator.get(ctx.locale).gettext


def wants_html(req: falcon.Request) -> bool:
    """Portal pages answer HTML; the API, webhooks and anything asking JSON get problem+json."""
    if not request_kind(req.path).page:
        return False
    accept = req.get_header("Accept") or ""
    return "json" not in accept


def _recognise(app, req: falcon.Request) -> None:
    """A page no route matched (a 404) never ran sign-in: recognise the visitor now, so the
    error page shows a signed-in customer their navigation and "Sign out", not "Sign in"."""
    ctx = req.context
    if getattr(ctx, "principal", None) is not None or not hasattr(ctx, "csrf_token"):
        return
    try:
        ctx.principal = app.plugins.hook.authenticate_request(app=app, req=req)
        ctx.locale = app.translator.negotiate(req, ctx.principal)
        ctx.timezone = (ctx.principal and ctx.principal.timezone) or app.settings.default_timezone
    except Exception:  # an error page must render whatever happened: signed out it is
        log.exception("could not recognise the visitor on an error page")


def serialize_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Falcon error serializer: problem+json, or a themed error page for browsers."""
    body = problem_body(req, error)
    app = getattr(req.context, "app", None)
    if app is not None and wants_html(req):
        try:
            _recognise(app, req)
            resp.content_type = falcon.MEDIA_HTML
            resp.text = app.render(req, "error.html", problem=body)
            return
        except Exception:  # the error page must never raise: fall back to JSON
            log.exception("error page failed to render")
    resp.content_type = "application/problem+json"
    resp.text = json.dumps(body)


def handle_validation_error(req, resp, ex: ValidationError, params) -> None:
    messages = ex.messages if isinstance(ex.messages, dict) else {"_schema": ex.messages}
    raise invalid(messages)


#: One log line a minute while the database is down, not one per request (OPS-3).
_outage_log = logging.getLogger("portico.errors.outage")


def handle_uncaught(req, resp, ex: Exception, params) -> None:
    """Last resort: log it with the request id, answer a bare 500 problem.

    An unreachable database (or broker) is not our bug: 503 with ``Retry-After``.
    """
    if isinstance(ex, falcon.HTTPError):
        raise ex
    from engine import faults

    if faults.is_unreachable(ex):
        import peewee

        app = getattr(req.context, "app", None)
        if app is not None and isinstance(ex, (peewee.OperationalError, peewee.InterfaceError)):
            _outage_log.warning("%s", faults.describe("database", app.settings.database_url, ex))
        else:
            _outage_log.warning("a service is unreachable: %s", faults.reason(ex))
        raise Problem(
            503,
            N_("The service is temporarily unavailable"),
            N_("Please try again in a moment."),
            headers={"Retry-After": "30"},
        )
    from engine.observe import reporting

    reporting.capture(req, ex)  # first: the log line's own event is then a duplicate, dropped
    log.exception("unhandled error on %s %s", req.method, req.path)
    raise Problem(
        500,
        N_("Something went wrong on our side"),
        N_("The error has been logged. Please try again in a moment."),
    )


def _quiet_outages() -> None:
    from engine.faults import OncePerOutage

    if not any(isinstance(f, OncePerOutage) for f in _outage_log.filters):
        _outage_log.addFilter(OncePerOutage())


def install(app: falcon.App) -> None:
    _quiet_outages()
    app.set_error_serializer(serialize_error)
    app.add_error_handler(Exception, handle_uncaught)
    app.add_error_handler(ValidationError, handle_validation_error)
