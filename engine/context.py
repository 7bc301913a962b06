"""Who is asking: the principal of a request, and tenant scoping (LIM-2).

Every customer query goes through ``owned()``/``get_owned()``, which filter by
the current customer, so another customer's id is a 404, never a 403 leak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypedDict, TypeVar, cast

import falcon
import peewee

from engine.errors import Problem
from engine.i18n import N_
from engine.registry import RequestKind, request_kind
from engine.roles import MEMBER

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from engine.models import User

T = TypeVar("T")


@dataclass(frozen=True)
class Principal:
    """The authenticated party. The identity plugin builds these.

    ``kind`` is "customer", "staff" or "service" (a system with an operator service token,
    INT-1: ``token_id``, and ``scopes`` such as ``customers:write``). A customer principal has
    ``customer_id``;
    under impersonation it also carries ``impersonator_id`` (the staff user).
    ``scopes`` is {"read"} for a read-only API key, {"read", "write"} otherwise.
    ``role`` is the contact's role on the account (``engine.roles``, ACCT-7): what they may
    see and do beyond their own login.
    """

    kind: str
    user_id: int | None = None
    customer_id: int | None = None
    contact_id: int | None = None
    staff_id: int | None = None
    impersonator_id: int | None = None
    permissions: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset({"read", "write"})
    session_id: Any = None
    via: str = "session"  # session, token, api_key
    locale: str = ""
    timezone: str = ""
    role: str = MEMBER
    token_id: int | None = None

    @property
    def is_customer(self) -> bool:
        return self.kind == "customer" and self.customer_id is not None

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff" and self.staff_id is not None

    @property
    def is_service(self) -> bool:
        return self.kind == "service" and self.token_id is not None

    @property
    def impersonated(self) -> bool:
        return self.impersonator_id is not None

    @property
    def in_person(self) -> bool:
        """The account holder in their own session: no staff member impersonating, no API key."""
        return not self.impersonated and self.via != "api_key"

    def can(self, permission: str) -> bool:
        return "admin" in self.permissions or permission in self.permissions


class Extra(TypedDict, total=False):
    """What the engine and plugins note on ``ctx.extra`` during one request: every key.

    For a value a plugin merely computes once per request, use ``ctx.once`` instead of a
    new key here.
    """

    csrf_cookie: str  # the CSRF cookie's value ("" before one is issued)
    csrf_set: bool  # a new CSRF cookie goes out with this response
    locale_negotiated: bool  # the page's language came from Accept-Language
    form: dict[str, Any]  # the posted form, read once (engine.forms.read_form)
    section: str  # the navigation section a page belongs to
    idempotency_owner: str  # who an Idempotency-Key belongs to, beyond the principal
    session: Any  # the identity plugin's Session row behind the principal
    api_key: Any  # the identity plugin's ApiKey row behind the principal
    service_token: dict[str, Any]  # the operator service token behind the principal: id, name
    user: User  # the signed-in customer login, loaded with the session (``contact``: the current
    # account's contact, SUP-2)
    accounts: Callable[[], list[dict[str, Any]]]  # a login's several accounts (SUP-2), on use
    customer_number: str
    customer_version: int  # the customer's change stamp (the dashboard cache's key)


@dataclass
class Context:
    """Per-request state handed to resources and hooks (``req.context``)."""

    app: Any = None
    principal: Principal | None = None
    locale: str = "en"
    timezone: str = "UTC"
    ip: str = ""
    user_agent: str = ""
    csrf_token: str = ""
    #: False only for the demo seed: it sets up a world that nobody changed, so its rows
    #: (made through the operator's upserts) have no creation events, as before.
    audited: bool = True
    #: API, staff, portal page or machine endpoint: set from the path by the middleware.
    kind: RequestKind = field(default_factory=lambda: request_kind("/"))
    extra: Extra = field(default_factory=lambda: Extra())
    _once: dict[str, object] = field(default_factory=dict, repr=False)

    def once(self, key: str, make: Callable[[], T]) -> T:
        """``make()``, computed once per request under ``key`` (start it with your plugin's name)."""
        if key not in self._once:
            self._once[key] = make()
        return cast(T, self._once[key])

    @property
    def customer_id(self) -> int | None:
        p = self.principal
        return p.customer_id if p and p.is_customer else None

    def require_customer(self) -> int:
        if self.customer_id is None:
            raise falcon.HTTPUnauthorized(
                title=N_("Sign in required"), description=N_("This needs a signed-in customer.")
            )
        return self.customer_id


IMPERSONATION_TITLE = N_("Not allowed during impersonation")
API_KEY_TITLE = N_("Not allowed with an API key")


def in_person_refusal(
    ctx: Context, impersonated: str, api_key: str = "Sign in as the account holder to do this."
) -> Problem | None:
    """The 403 problem for a request that only the account holder in person may make, or None.

    ``impersonated`` and ``api_key`` say what the refused caller should know. The types are
    stable: ``impersonation-forbidden`` and ``api-key-forbidden``.
    """
    p = ctx.principal
    if p is not None and p.impersonated:
        return Problem(403, IMPERSONATION_TITLE, impersonated, type="impersonation-forbidden")
    if p is not None and p.via == "api_key":
        return Problem(403, API_KEY_TITLE, api_key, type="api-key-forbidden")
    return None


def require_in_person(
    ctx: Context, impersonated: str, api_key: str = "Sign in as the account holder to do this."
) -> None:
    """Raise ``in_person_refusal``'s problem, if there is one."""
    problem = in_person_refusal(ctx, impersonated, api_key)
    if problem is not None:
        raise problem


def owned(model: type[peewee.Model], customer_id: int) -> peewee.Select:
    """``model``'s rows that belong to ``customer_id``.

    A model scopes itself with a ``customer`` foreign key, or by defining
    ``for_customer(customer_id)`` returning a query (e.g. through its service).
    """
    scoper = getattr(model, "for_customer", None)
    if scoper is not None:
        return scoper(customer_id)
    if "customer" not in model._meta.fields:
        raise TypeError(
            f"{model.__name__} has no customer field and no for_customer(); "
            "it cannot be scoped to a tenant"
        )
    return model.select().where(model.customer == customer_id)


#: The largest row id (PostgreSQL ``serial``); a bigger number would overflow the driver.
MAX_ID = 2**31 - 1


def as_id(value: Any) -> int:
    """``value`` (a path segment, a number) as a row id; ValueError if it cannot be one."""
    number = int(value)
    if not 0 < number <= MAX_ID:
        raise ValueError(f"{value!r} is not a row id")
    return number


def get_or_404(
    model: type[peewee.Model], obj_id: Any, query: peewee.Select | None = None
) -> peewee.Model:
    """The row of ``query`` (default: every row, as staff see them) with this path id, or 404.

    An id that is not a number, or too big for a row id, is simply not found.
    """
    try:
        return (model.select() if query is None else query).where(model.id == as_id(obj_id)).get()
    except (ValueError, TypeError, model.DoesNotExist):
        raise falcon.HTTPNotFound(title=N_("Not found")) from None


def get_owned(model: type[peewee.Model], obj_id: Any, ctx: Context) -> peewee.Model:
    """One row of the current customer's, or 404 (never a hint that it exists)."""
    return get_or_404(model, obj_id, owned(model, ctx.require_customer()))
