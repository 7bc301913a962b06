"""Per-request work: database connection, who is asking, CSRF, locale, security headers."""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import quote

import falcon

from engine import bodies, db
from engine.errors import Problem
from engine.forms import read_form
from engine.i18n import N_
from engine.observe.health import BARE_PATHS
from engine.registry import ANY_STAFF, PUBLIC, request_kind
from engine.security import sign, signed

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_COOKIE = "portico_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

# APPSEC: one strict policy for every response; pages load only our own assets.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(self)",
}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'{extra}; "
    "frame-src 'self'{extra}; connect-src 'self'{extra}; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class RequestMiddleware:
    """Opens the database, authenticates, enforces auth/scope/CSRF, sets headers."""

    def __init__(self, app):
        self.app = app
        self.csp = CSP.format(extra="".join(f" {o}" for o in app.settings.get("csp_extra", [])))
        self.hsts = app.settings.base_url.startswith("https://")
        self.max_body = app.settings.web.max_body_bytes
        self.trusted_proxies = Proxies(app.settings.web.forwarded_allow_ips)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method == "HEAD":
            # NOTE: answer HEAD like GET; the WSGI server drops the body.
            req.method = "GET"
        ctx = req.context
        ctx.app = self.app
        ctx.kind = request_kind(req.path)
        bodies.cap(req, self.max_body)  # before anything (the CSRF check too) reads the body
        ctx.ip = client_ip(req, self.trusted_proxies)
        if req.path in BARE_PATHS:
            return  # health and metrics: no database, cookies or sign-in (OPS-4)
        ctx.user_agent = (req.user_agent or "")[:300]
        db.database.connect(reuse_if_open=True)
        cookie = req.cookies.get(CSRF_COOKIE)
        # JSON and machine paths get no CSRF cookie unless they ask (API login hands one out).
        if not cookie and ctx.kind.page:
            # Issue the CSRF cookie on first contact so any form rendered now can carry the token.
            cookie, ctx.extra["csrf_set"] = new_csrf_cookie(), True
        ctx.extra["csrf_cookie"] = cookie or ""
        ctx.csrf_token = csrf_token(self.app, cookie) if cookie else ""

    def process_resource(self, req, resp, resource, params) -> None:
        if resource is None or getattr(resource, "bare", False):
            return
        ctx = req.context
        ctx.principal = self.app.plugins.hook.authenticate_request(app=self.app, req=req)
        ctx.locale = self.app.translator.negotiate(req, ctx.principal)
        ctx.timezone = (
            ctx.principal and ctx.principal.timezone
        ) or self.app.settings.default_timezone
        auth = getattr(resource, "auth", "customer")
        page = not ctx.kind.api
        # SEC-5: a staff route's own declaration (engine.registry.Route) decides who may call it.
        permission = self.app.permission_for(req.uri_template, req.method)
        if permission is not None:
            auth = "public" if permission == PUBLIC else "staff"
        if auth == "customer" and not (ctx.principal and ctx.principal.is_customer):
            self._unauthorized(req, page)
        if auth == "staff" and not (ctx.principal and ctx.principal.is_staff):
            self._unauthorized(req, page, "/staff/login")
        # INT-1: service tokens open the operator API (auth "service") and nothing else; no
        # person's session or key opens it.
        service = bool(ctx.principal and ctx.principal.is_service)
        if (auth == "service" and not service) or (service and auth != "service"):
            self._unauthorized(req, page)
        if permission not in (None, PUBLIC, ANY_STAFF) and not ctx.principal.can(permission):
            # Before the input is read: staff without the permission get a 403, not a 422.
            raise Problem(
                403,
                N_("You need the %(permission)s permission", permission=permission),
                type="forbidden",
            )
        if (
            req.method in UNSAFE
            and ctx.principal
            and not ctx.principal.is_service
            and "write" not in ctx.principal.scopes
        ):  # a service route checks its own scope
            raise Problem(
                403,
                N_("This API key is read-only"),
                N_("Create a read-write key to make changes."),
                type="read-only-key",
            )
        self._check_csrf(req, resource, page)

    @staticmethod
    def _unauthorized(req, page: bool, login: str = "/login") -> None:
        # The staff console sends every method to its sign-in page; the portal only GETs.
        if page and (req.method == "GET" or req.context.kind.staff):
            raise falcon.HTTPSeeOther(login + "?next=" + quote(req.relative_uri, safe=""))
        raise falcon.HTTPUnauthorized(
            title=N_("Sign in required"),
            description=N_("Sign in, or send a valid bearer token or API key."),
        )

    def _check_csrf(self, req, resource, page: bool) -> None:
        """Unsafe requests that ride on cookies must carry the CSRF token."""
        if req.method not in UNSAFE or getattr(resource, "csrf", True) is False:
            return
        principal = req.context.principal
        if not page and (principal is None or principal.via != "session"):
            return  # bearer tokens and API keys cannot be sent by a third-party page
        sent = req.get_header(CSRF_HEADER) or (read_form(req).get(CSRF_FIELD, "") if page else "")
        if (
            req.context.extra.get("csrf_set")
            or not sent
            or not csrf_valid(self.app, req.context.extra["csrf_cookie"], str(sent))
        ):
            raise Problem(
                403,
                N_("The form has expired"),
                N_("Reload the page and submit it again."),
                type="csrf",
            )

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        ctx = req.context
        if ctx.extra.get("csrf_set"):
            resp.set_cookie(
                CSRF_COOKIE,
                ctx.extra["csrf_cookie"],
                http_only=True,
                same_site="Lax",
                path="/",
                max_age=60 * 60 * 24 * 7,
                secure=self.app.settings.security.cookie_secure,
            )
        for name, value in SECURITY_HEADERS.items():
            if not resp.get_header(name):
                resp.set_header(name, value)
        if not resp.get_header("Content-Security-Policy"):
            resp.set_header("Content-Security-Policy", self.csp)
        if self.hsts:
            resp.set_header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if ctx.principal is not None and not resp.get_header("Cache-Control"):
            resp.set_header("Cache-Control", "no-store")
        try:
            if req_succeeded:
                self.app.tasks.relay_after_request(ctx)
        finally:
            if not db.database.is_closed() and not db.database.in_transaction():
                db.database.close()


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(app, cookie: str) -> str:
    """The token forms carry: an HMAC of the browser's CSRF cookie under the (first) secret key."""
    return sign(app.settings.secret_key, "csrf:" + cookie)


def csrf_valid(app, cookie: str, sent: str) -> bool:
    """Whether ``sent`` is the token of ``cookie`` under any of the secret keys: a form
    rendered before a key rotation still posts (SEC-6)."""
    return bool(cookie) and signed(app.settings.secret_keys, "csrf:" + cookie, sent)


class Proxies:
    """``web.forwarded_allow_ips``: ``*``, addresses and networks (``10.0.0.0/8``)."""

    def __init__(self, spec: str):
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        self.everyone = "*" in entries
        self.networks = [ipaddress.ip_network(e) for e in entries if e != "*"]

    def __contains__(self, address: str) -> bool:
        if self.everyone:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # a hostname or garbage in X-Forwarded-For: not one of ours
            return False
        return any(ip in net for net in self.networks)


def client_ip(req, trusted) -> str:
    """The customer's address: ``X-Forwarded-For`` is believed only from a trusted proxy.

    APPSEC: walking the header right to left and stopping at the first address
    that is not one of our proxies means a client cannot choose its own IP
    (rate limits, lockout notices and the activity log rely on it).
    """
    remote = req.remote_addr or ""
    if remote not in trusted:
        return remote
    hops = [h.strip() for h in (req.get_header("X-Forwarded-For") or "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else remote
