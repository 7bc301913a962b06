"""The small value types plugins return from hooks."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, TypeVar, cast

T = TypeVar("T")


#: Staff routes live under these paths; each must declare who may call it (SEC-5).
STAFF_PREFIXES = ("/staff", "/api/v1/staff")
#: What a staff route may declare instead of a permission name: anyone (the staff sign-in)...
PUBLIC = "public"
#: ...or any signed-in staff member, whatever their permissions.
ANY_STAFF = "any-staff"
_PERMISSION_NAME = re.compile(r"[a-z][a-z0-9_]*")


#: JSON API routes live under this prefix (the staff API under ``/api/v1/staff``).
API_PREFIX = "/api/"
#: Machine endpoints: no cookies, no HTML pages, no sign-in.
MACHINE_PREFIXES = ("/webhooks/", "/healthz", "/livez", "/readyz", "/metrics", "/static/")


def is_staff_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in STAFF_PREFIXES)


@dataclass(frozen=True)
class RequestKind:
    """What a request is, from its path alone: the one place that decides it.

    ``api``: the JSON API (customer or staff), answered with JSON and problem+json.
    ``staff``: the staff console or the staff API (its own session cookie, SEC-5).
    ``machine``: webhooks, health (``/healthz``, ``/livez``, ``/readyz``), ``/metrics`` and
    static files.
    A portal or staff *page* is everything that is neither API nor machine.
    """

    api: bool
    staff: bool
    machine: bool

    @property
    def page(self) -> bool:
        return not (self.api or self.machine)

    @property
    def name(self) -> str:
        """ "api", "staff-api", "staff", "portal" or "machine" (for logs and metrics)."""
        if self.machine:
            return "machine"
        if self.api:
            return "staff-api" if self.staff else "api"
        return "staff" if self.staff else "portal"


def request_kind(path: str) -> RequestKind:
    return RequestKind(
        api=path.startswith(API_PREFIX),
        staff=is_staff_path(path),
        machine=path.startswith(MACHINE_PREFIXES),
    )


@dataclass(frozen=True)
class Route:
    """A URI template and the Falcon resource that answers it.

    ``permission`` is mandatory on a staff route (``is_staff_path``) and means nothing
    elsewhere: a staff permission name (``"billing"``; ``admin`` has every one),
    ``ANY_STAFF``, ``PUBLIC``, or a dict of them by HTTP method (``{"GET": ANY_STAFF,
    "POST": "can_impersonate"}``). The middleware checks it before the handler runs.
    """

    path: str
    resource: Any
    suffix: str | None = None
    permission: str | dict[str, str] | None = None

    def permission_for(self, method: str) -> str | None:
        """What ``method`` needs here; a method a dict leaves out needs a signed-in staff member."""
        if isinstance(self.permission, dict):
            return self.permission.get(method.upper(), ANY_STAFF)
        return self.permission

    def permission_problem(self) -> str | None:
        """Why this route's declaration is not valid, or None."""
        staff = is_staff_path(self.path)
        if self.permission is None:
            return (
                "a staff route must declare who may call it: Route(..., permission=...) "
                "with a permission name, ANY_STAFF or PUBLIC (engine.registry)"
                if staff
                else None
            )
        if not staff:
            return "permission is only for staff routes (under /staff or /api/v1/staff)"
        if getattr(type(self.resource), "permission", None) is not None:
            return "declare the permission on the Route, not on the resource"
        values = (
            self.permission.values() if isinstance(self.permission, dict) else [self.permission]
        )
        for value in values:
            if value not in (PUBLIC, ANY_STAFF) and not (
                isinstance(value, str) and _PERMISSION_NAME.fullmatch(value)
            ):
                return (
                    f"permission {value!r} is not a permission name (lower-case letters, "
                    "digits and _), ANY_STAFF or PUBLIC"
                )
        return None


@dataclass(frozen=True)
class Section:
    """A navigation entry (ACC-3). ``order`` sorts the menu, lowest first.

    ``primary`` marks one of the portal's main destinations: a phone shows up to five
    sections as tabs in its bottom bar, primary ones first (then the others by ``order``
    while there is room); the rest are listed under "More" in the header.
    """

    id: str
    title: str
    path: str
    icon: str = "circle"
    order: int = 100
    primary: bool = False


@dataclass(frozen=True)
class Card:
    """A dashboard card (DASH-1): a template rendered with ``data``."""

    id: str
    title: str
    template: str
    data: dict[str, Any] = field(default_factory=dict)
    order: int = 100


@dataclass(frozen=True)
class Alert:
    """An in-portal alert (NOT-2). ``level`` is info, warning or danger."""

    id: str
    level: str
    message: str
    link: str | None = None
    dismissible: bool = True


@dataclass(frozen=True)
class Action:
    """A link offered on a service card (SVC-3)."""

    id: str
    label: str
    href: str
    order: int = 100


@dataclass(frozen=True)
class Balance:
    """One balance row of a service (USE-1), as the API outline shapes it."""

    id: Any
    type: str  # data, voice, sms, mms, monetary
    remaining: int
    initial: int
    unit: str  # bytes, seconds, messages, or an ISO currency
    weight: int
    expires_at: datetime | None
    name: str = ""


@dataclass(frozen=True)
class Credit:
    """Something to add to a service's balances (a top-up, a refund, a renewal)."""

    type: str
    amount: int
    unit: str
    weight: int = 20
    expires_at: datetime | None = None
    reference: str = ""
    name: str = ""


class PluginState:
    """What plugins build once per app (a rate limiter, a cache), kept on ``app.state``.

    Keyed by the object's class, which the plugin owns, so a plugin reaches only its own
    state and the type checker knows what comes back::

        limits = app.state.get(RateLimits, lambda: RateLimits(app))

    Never set attributes on the app object itself.
    """

    def __init__(self) -> None:
        self._items: dict[type, object] = {}
        self._lock = threading.Lock()

    def get(self, kind: type[T], make: Callable[[], T]) -> T:
        """The app's ``kind`` object, built with ``make()`` the first time (once per app)."""
        found = self._items.get(kind)
        if found is None:
            with self._lock:  # two threads of a fresh app: one builds, the other waits
                found = self._items.get(kind)
                if found is None:
                    found = self._items[kind] = make()
        return cast(T, found)
