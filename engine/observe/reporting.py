"""Optional error reporting through Sentry's SDK (``pip install portico[sentry]``).

On when ``[sentry] dsn`` is set. Events never carry cookies, authorization or API-key
headers, request bodies, local variables or the customer's address: a request's event
keeps its method, path (no query string), a few harmless headers and the request id.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import falcon

import engine
from engine.observe.logs import request_id
from engine.settings import Settings, SettingsError

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

log = logging.getLogger("portico.reporting")
#: Only these request headers go into an event (an allow-list: new secrets stay out).
SAFE_HEADERS = (
    "Accept",
    "Accept-Language",
    "Content-Type",
    "Content-Length",
    "Host",
    "User-Agent",
    "X-Request-ID",
)
#: Removed wherever they appear in an event, whatever the SDK collected.
SECRET_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-csrf-token",
}
_enabled = False


def check(settings: Settings) -> None:
    """Raise ``SettingsError`` when a DSN is set but the SDK is missing (``portico check``)."""
    if not settings.sentry.dsn:
        return
    try:
        import sentry_sdk  # noqa: F401
    except ImportError:
        raise SettingsError(
            "sentry.dsn is set but sentry-sdk is not installed: pip install 'portico[sentry]'"
        ) from None


def init(settings: Settings, component: str) -> bool:
    """Start reporting for this process (``web``, ``worker`` or ``scheduler``); False if off."""
    global _enabled
    check(settings)
    if not settings.sentry.dsn:
        return False
    import sentry_sdk
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    denylist = [
        *DEFAULT_DENYLIST,
        "csrf_token",
        "secret_key",
        "secret_keys",
        "otp",
        "client_secret",
        "database_url",
        "broker_url",
    ]
    sentry_sdk.init(
        dsn=settings.sentry.dsn,
        environment=settings.sentry.environment,
        release=f"portico@{engine.__version__}",
        sample_rate=settings.sentry.sample_rate,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        auto_enabling_integrations=False,
        traces_sample_rate=None,
        event_scrubber=EventScrubber(denylist=denylist, recursive=True),
        before_send=scrub,
    )
    sentry_sdk.get_global_scope().set_tag("component", component)  # every thread's events
    _enabled = True
    log.info("reporting errors to Sentry (%s)", settings.sentry.environment)
    return True


def capture(req: falcon.Request, exc: BaseException) -> None:
    """Report an unhandled error of a web request (no-op when reporting is off)."""
    if not _enabled:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("request_id", request_id.get() or "-")
        scope.set_tag("route", req.uri_template or "unmatched")
        scope.add_event_processor(
            lambda event, hint: {
                **event,
                "request": {
                    "method": req.method,
                    "url": req.forwarded_prefix + req.path,
                    "headers": {h: req.get_header(h) for h in SAFE_HEADERS if req.get_header(h)},
                },
            }
        )
        sentry_sdk.capture_exception(exc)


def scrub(event: Event, hint: Hint) -> Event:
    """``before_send``: drop secrets an integration may have collected; tag the request id."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        request.pop("data", None)
        request.pop("query_string", None)
        request.pop("env", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                k: v for k, v in headers.items() if k.lower() not in SECRET_HEADERS
            }
    event.pop("user", None)
    rid = request_id.get()
    if rid:
        event.setdefault("tags", {}).setdefault("request_id", rid)
    return event
