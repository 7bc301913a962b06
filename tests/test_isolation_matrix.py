"""Every route with an object id × every kind of caller gets exactly the expected answer.

LIM-2 (tenant isolation, no admin function for customers), API-2/API-3 (keys reach what
the portal shows; read-only keys change nothing), IMP-2/IMP-5 (impersonation is the
customer, minus credentials; staff need a permission), ACCT-7 (the account's other
contacts: a member and a manager meet the primary contact's rows as their role allows). Routes come from ``app.routes``
through ``test_isolation``'s discovery, so a new plugin's routes are checked without
editing this file. Ids are the target customer's (Bob's Bikes, C-100002) rows.

Refused calls run first and must change nothing of the target's (a digest of every row
it owns, before and after). The calls that may act then run each inside a transaction that
is rolled back, so every caller meets the same data: an owner's DELETE cannot turn the
next caller's answer into a 404. Deviations are counted and listed, and must be zero.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from datetime import timedelta

import pytest

from engine.context import owned
from engine.db import database, utcnow
from engine.models import AuditEvent, Contact, Customer, Service, StaffUser, User
from engine.registry import ANY_STAFF, PUBLIC
from engine.security import hash_password
from engine.testing import DEMO_PASSWORD, Client
from plugins.identity import apikeys
from test_isolation import (
    MISSING_ID,
    PARAM,
    all_routes,
    call,
    fingerprint,
    foreign_values,
    scoped_models,
)

# Customer routes that change credentials: refused to API keys and under impersonation
# (plugins/identity/guards.py; IMP-5, API-3). Method and path, as in app.routes.
CREDENTIALS = {
    ("delete", "/api/v1/account/api-keys/{key_id}"),
    ("post", "/account/api-keys/{key_id}/revoke"),
    ("delete", "/api/v1/account/sessions/{session_id}"),  # SEC-4: the holder's alone
    # ACCT-7: who manages the account, and signing a contact out, need the person too.
    ("put", "/api/v1/account/contacts/{contact_id}/manage"),
    ("delete", "/api/v1/account/contacts/{contact_id}/manage"),
    ("post", "/api/v1/account/contacts/{contact_id}/sign-out"),
    ("post", "/account/contacts/{contact_id}/manage"),
    ("post", "/account/contacts/{contact_id}/sign-out"),
}
# ACCT-7: what the target account's other contacts meet on its first rows, which are the
# primary contact's (Bob: his contact, his API keys, his sessions) or the account's (cards).
# A member sees neither the primary's keys nor anyone's sessions (404); a manager sees the
# keys but may not act over the primary (403); only the primary grants "manage".
ROLE = (403, "role-forbidden")
ROLE_REFUSED = {
    ("delete", "/api/v1/account/api-keys/{key_id}"): {"member": (404, None), "manager": ROLE},
    ("post", "/account/api-keys/{key_id}/revoke"): {"member": (404, None), "manager": ROLE},
    ("delete", "/api/v1/payment-methods/{method_id}"): {"member": ROLE},
    ("post", "/api/v1/payment-methods/{method_id}/default"): {"member": ROLE},
    ("post", "/billing/payment-methods/{method_id}/default"): {"member": ROLE},
    ("post", "/billing/payment-methods/{method_id}/delete"): {"member": ROLE},
    ("put", "/api/v1/account/contacts/{contact_id}/manage"): {"member": ROLE, "manager": ROLE},
    ("delete", "/api/v1/account/contacts/{contact_id}/manage"): {"member": ROLE, "manager": ROLE},
    ("post", "/account/contacts/{contact_id}/manage"): {"member": ROLE, "manager": ROLE},
    ("post", "/api/v1/account/contacts/{contact_id}/sign-out"): {"member": ROLE, "manager": ROLE},
    ("post", "/account/contacts/{contact_id}/sign-out"): {"member": ROLE, "manager": ROLE},
    # SVC-3: changing a service's plan is for the primary contact and managers.
    ("delete", "/api/v1/services/{service_id}/plan-change"): {"member": ROLE},
    ("get", "/services/{service_id}/plan"): {"member": ROLE},
    ("post", "/services/{service_id}/plan/cancel"): {"member": ROLE},
    # Sessions belong to one login, whatever the role.
    ("delete", "/api/v1/account/sessions/{session_id}"): {
        "member": (404, None),
        "manager": (404, None),
    },
}
# IMP-6: paying with the customer's saved cards is refused under impersonation (an empty
# body pays with the default card; the other pay routes answer 422 to an empty body first).
IMPERSONATION_REFUSED = {("post", "/api/v1/invoices/{invoice_id}/pay")}
# What the owner (and so keys and impersonation) is refused on purpose: (status, problem type).
OWNER_REFUSED = {
    # LIM-1 / SVC-4: cancelling is for staff unless the operator enables it.
    ("post", "/api/v1/services/{service_id}/cancel"): (403, "cancel-not-allowed"),
}
# Staff routes whose rule is not a resource's ``permission``: another agent's impersonation
# is not theirs to end (a 404) unless they are an admin.
STAFF_PERMISSION = {"/api/v1/staff/impersonations/{impersonation_id}": "admin"}
PRINCIPALS = (
    "owner",
    "other_customer",
    "anonymous",
    "read_only_key",
    "read_write_key",
    "staff_without_permission",
    "impersonating_staff",
    "member",
    "manager",
)


def is_staff_route(path: str) -> bool:
    return path.startswith(("/staff", "/api/v1/staff"))


def needed_permission(app, path: str, method: str) -> str:
    """What a staff route needs: the permission its ``Route`` declares (checked by the
    middleware); "" when any signed-in staff member may call it."""
    if path in STAFF_PERMISSION:
        return STAFF_PERMISSION[path]
    need = app.permission_for(path, method)
    return "" if need in (PUBLIC, ANY_STAFF) else need


@contextlib.contextmanager
def rolled_back():
    """Run the block in a transaction and undo it: each cell meets the same data."""
    with database.atomic() as txn:
        yield
        txn.rollback()


def first_row(app, plugin: str, param: str, target: Customer):
    """The target's first row of the table ``param`` names; for tables no tenant owns (staff
    catalogues), the first row of the route's plugin's table."""
    name = param[:-3]
    named = [
        m
        for m in scoped_models(app)
        if m._meta.table_name == name or m._meta.table_name.endswith("_" + name)
    ]
    for model in named:
        row = owned(model, target.id).order_by(model.id).first()
        if row is not None:
            return row
    for model in app.models.get(plugin, []):
        if model._meta.table_name.endswith(name):
            return model.select().order_by(model.id).first()
    return None


def path_values(app, plugin: str, params: list[str], target: Customer) -> dict[str, str]:
    """Ids for a path's parameters that belong together: the last one's row names its parents
    (``/services/{service_id}/addons/{addon_id}`` gets the add-on's own service)."""
    last = params[-1]
    row = first_row(app, plugin, last, target)
    values = {
        last: str(row.id)
        if row is not None
        else (foreign_values(app, last, target) or [MISSING_ID])[0]
    }
    for p in params[:-1]:
        parent = getattr(row, p, None) if row is not None else None
        values[p] = (
            str(parent)
            if parent is not None
            else str(target.id)
            if p == "customer_id"
            else (foreign_values(app, p, target) or [MISSING_ID])[0]
        )
    return values


def id_routes(app, target: Customer):
    """(plugin, path, method, concrete path) of every route with only ``{..._id}`` parameters."""
    for plugin, path, auth, methods in all_routes(app):
        params = PARAM.findall(path)
        if not params or not all(p.endswith("_id") for p in params):
            continue  # tokens, file paths, provider names: no object of a tenant in the path
        if auth == "public" and not is_staff_route(path):
            continue  # e.g. the guest payment page: a capability URL, not a tenant's object
        if auth == "service":
            continue  # the operator API: no tenant's, and no person opens it (test_operator_*)
        if params == ["customer_id"]:
            values = {"customer_id": str(target.id)}
        else:
            values = path_values(app, plugin, params, target)
        for method in methods:
            yield plugin, path, method, PARAM.sub(lambda m: values[m.group(1)], path)


class Principals:
    """One signed-in client per kind of caller; the target's data belongs to Bob's Bikes."""

    def __init__(self, app, target: Customer):
        bob = User.get(User.email == "bob@example.com")
        StaffUser.create(
            email="nobody-staff@example.com",
            name="No Permissions",
            permissions="",
            password_hash=hash_password(DEMO_PASSWORD),
        )
        expires = utcnow() + timedelta(days=30)
        ro, _ = apikeys.create(target.id, bob.id, "read-only", "read", expires)
        rw, _ = apikeys.create(target.id, bob.id, "read-write", "read_write", expires)
        # ACCT-7: Carol is a plain member of Bob's Bikes; Dave manages it.
        dave = Contact.create(
            customer=target.id, first_name="Dave", email="dave@example.com", can_manage=True
        )
        User.create(
            contact=dave, email="dave@example.com", password_hash=hash_password(DEMO_PASSWORD)
        )
        self.clients = {
            "owner": self._session(app, "bob@example.com"),
            "other_customer": self._session(app, "alice@example.com"),
            "anonymous": Client(app),
            "read_only_key": Client(app, headers={"Authorization": f"Bearer {ro}"}),
            "read_write_key": Client(app, headers={"Authorization": f"Bearer {rw}"}),
            "staff_without_permission": self._session(app, "nobody-staff@example.com", True),
            "impersonating_staff": self._impersonation(app, bob),
            "member": self._session(app, "carol@example.com"),
            "manager": self._session(app, "dave@example.com"),
            "staff_owner": self._session(app, "admin@example.com", True),
        }
        for client in self.clients.values():
            client.csrf_token()  # a browser has the CSRF cookie from its first page
        self._make_rows(self.clients["owner"], target)

    @staticmethod
    def _make_rows(owner: Client, target: Customer) -> None:
        """A top-up purchase and a guest payment link, so their routes have an id of the target's."""
        for service in Service.select().where(Service.customer == target.id).order_by(Service.id):
            catalogue = owner.get(f"/api/v1/services/{service.id}/topups").json.get("items")
            if catalogue:
                bought = owner.post(
                    f"/api/v1/services/{service.id}/topups",
                    json={"product_id": catalogue[0]["id"]},
                    headers={"Idempotency-Key": "isolation-matrix"},
                )
                assert bought.status_code == 201, bought.text
                break
        unpaid = [i for i in owner.get("/api/v1/invoices").json["items"] if i["status"] != "paid"]
        link = owner.post(f"/api/v1/invoices/{unpaid[0]['id']}/payment-links", json={})
        assert link.status_code == 201, link.text

    @staticmethod
    def _session(app, email, staff=False) -> Client:
        client = Client(app)
        client.login(email, staff=staff)
        client.csrf_token()
        return client

    @staticmethod
    def _impersonation(app, user: User) -> Client:
        agent = Principals._session(app, "agent@example.com", staff=True)
        made = agent.post(
            "/api/v1/staff/impersonations",
            json={"contact_id": user.contact_id, "reason": "Isolation matrix"},
        )
        assert made.status_code == 201, made.text
        browser = Client(app)
        opened = browser.get(made.json["url"].replace("http://portal.test", ""))
        assert opened.status_code == 303, opened.text
        return browser


def gist(answer) -> str:
    """An answer in one line: a problem's title, a page's <title>, or the start of the body."""
    title = re.search(r"<title>([^<]*)</title>", answer.text)
    return f"{answer.status_code} {answer.headers.get('location', '')} " + (
        title.group(1).strip() if title else answer.text[:120]
    )


def login_required(answer, page: bool, method: str, login: str) -> str | None:
    if not page:
        return None if answer.status_code == 401 else f"expected 401, got {gist(answer)}"
    if method == "get" or login == "/staff/login":  # the staff console redirects every method
        location = answer.headers.get("location", "")
        if answer.status_code == 303 and location.startswith(login + "?next="):
            return None
        return f"expected 303 to {login}, got {gist(answer)}"
    return None if answer.status_code == 401 else f"expected 401, got {gist(answer)}"


def refused(answer, status: int, kind: str | None = None) -> str | None:
    if answer.status_code != status:
        return f"expected {status}, got {gist(answer)}"
    if (
        kind
        and answer.headers.get("content-type", "").startswith("application/problem+json")
        and answer.json.get("type") != f"/problems/{kind}"
    ):
        return f"expected problem type {kind}, got {answer.json.get('type')}"
    return None


def allowed(answer, page: bool, method: str) -> str | None:
    """Reached the object: a 2xx or 3xx, or an answer about the request's input (400, 409,
    410, 422: an empty form, a paid invoice); never a refusal, a 404 or a 5xx."""
    status, location = answer.status_code, answer.headers.get("location", "")
    if status >= 500 or status in (401, 403, 404) or "login" in location:
        return f"expected access, got {gist(answer)}"
    if status >= 400 and status not in (400, 409, 410, 422):
        return f"expected access, got {gist(answer)}"
    return None


def expectation(app, principal: str, path: str, method: str) -> tuple[str, bool]:
    """(what the answer must be, whether it must leave the target's data as it was)."""
    unsafe = method != "get"
    if is_staff_route(path):
        if principal == "owner":  # a staff member with every permission
            return "allowed", False
        if principal == "staff_without_permission":
            permission = needed_permission(app, path, method)
            if not permission:
                return "allowed", False
            return ("not_found" if path in STAFF_PERMISSION else "forbidden"), True
        return "staff_login", True  # customers, keys, impersonation: no admin function (LIM-2)
    credential = (method, path) in CREDENTIALS
    if (method, path) in OWNER_REFUSED and principal in (
        "owner",
        "read_write_key",
        "impersonating_staff",
        "member",
        "manager",
    ):
        return "owner_refused", True
    if principal in ("member", "manager"):
        refusal = ROLE_REFUSED.get((method, path), {}).get(principal)
        return (f"role:{refusal[0]}:{refusal[1] or ''}", True) if refusal else ("allowed", False)
    if principal == "owner":
        return "allowed", False
    if principal == "other_customer":
        return "isolated", True
    if principal in ("anonymous", "staff_without_permission"):
        return "login", True  # a staff session is no customer session
    if principal == "read_only_key":
        return ("read_only" if unsafe else "allowed"), unsafe
    if principal == "read_write_key":
        return ("key_forbidden", True) if credential else ("allowed", False)
    if principal == "impersonating_staff":
        refused = credential or (method, path) in IMPERSONATION_REFUSED
        return ("impersonation_forbidden", True) if refused else ("allowed", False)
    raise AssertionError(principal)


def check(expected: str, answer, made_up, page: bool, method: str, path: str) -> str | None:
    if expected == "owner_refused":
        return refused(answer, *OWNER_REFUSED[(method, path)])
    if expected.startswith("role:"):
        _, status, kind = expected.split(":")
        return refused(answer, int(status), kind or None)
    if expected == "allowed":
        return allowed(answer, page, method)
    if expected == "isolated":  # LIM-2: a foreign id is a 404, or what a made-up id gets
        if answer.status_code == 404 or (
            answer.status_code in (400, 405, 409, 415, 422)
            and (answer.status_code, answer.text) == (made_up.status_code, made_up.text)
        ):
            return None
        return f"expected 404, got {gist(answer)}"
    if expected == "login":
        return login_required(answer, page, method, "/login")
    if expected == "staff_login":
        if page:
            return login_required(answer, page, method, "/staff/login")
        return None if answer.status_code == 401 else f"expected 401, got {gist(answer)}"
    kinds = {
        "read_only": (403, "read-only-key"),
        "key_forbidden": (403, "api-key-forbidden"),
        "impersonation_forbidden": (403, "impersonation-forbidden"),
        "forbidden": (403, None),
        "not_found": (404, None),
    }
    return refused(answer, *kinds[expected])


def changed_by(app, target: Customer, skip: tuple[str, ...], refusals: list, run) -> list[str]:
    """Which refused calls change the target's data (run again, one by one, each undone)."""
    found = []
    for cell in refusals:
        with rolled_back():
            before = fingerprint(app, target, skip)
            run(cell)
            if fingerprint(app, target, skip) != before:
                found.append(f"{cell[1]} {cell[0][2].upper()} {cell[0][3]}")
    return found


# Answers to these must carry nothing of the target's: the caller is not the target.
OUTSIDERS = ("isolated", "login", "staff_login")


def customer_markers(customer: Customer) -> list[str]:
    emails = [c.email for c in Contact.select().where(Contact.customer == customer.id)]
    return [customer.number, customer.name, *emails]


def seed_staff_objects() -> None:
    """What the demo has none of, so staff routes reach a real row: a webhook endpoint with
    one delivery, and a service token."""
    from plugins.operator.models import ServiceToken
    from plugins.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

    ServiceToken.create(
        name="matrix",
        prefix="pst_matrix",
        token_hash="0" * 64,
        scopes="read",
        expires_at=utcnow() + timedelta(days=1),
    )

    endpoint = WebhookEndpoint.create(
        url="https://hooks.example.com/portico", event_types="invoice.paid", secret="whsec_x"
    )
    event = WebhookEvent.create(uid="evt_matrix", type="invoice.paid", data="{}")
    WebhookDelivery.create(event=event, endpoint=endpoint, retry_until=utcnow(), status="failed")


@pytest.mark.spec("LIM-2", "API-2", "API-3", "IMP-2", "IMP-5", "ACCT-7")
def test_every_route_with_an_id_answers_every_caller_as_expected(demo_app):
    app = demo_app
    target = Customer.get(Customer.number == "C-100002")
    principals = Principals(app, target)
    seed_staff_objects()
    markers = customer_markers(target)
    routes = list(id_routes(app, target))
    cells = [
        (route, principal, *expectation(app, principal, route[1], route[2]))
        for route in routes
        for principal in PRINCIPALS
    ]
    deviations: list[str] = []

    def run(cell) -> None:
        (plugin, path, method, concrete), principal, expected, _ = cell
        page = not path.startswith("/api/")
        client = principals.clients[
            "staff_owner" if is_staff_route(path) and principal == "owner" else principal
        ]
        answer = call(client, method, concrete, page)
        made_up = (
            call(client, method, PARAM.sub(MISSING_ID, path), page)
            if expected == "isolated"
            else None
        )
        problem = check(expected, answer, made_up, page, method, path)
        if problem is None and expected in OUTSIDERS:
            leaked = [m for m in markers if m in answer.text]
            problem = f"shows {leaked}" if leaked else None
        if problem:
            deviations.append(
                f"{principal:24} {method.upper():6} {concrete} ({plugin}): {expected}: {problem}"
            )

    # Refusals first, without a rollback: one digest of the target's data before and after
    # each group proves none of them changed anything (a refused but recorded action under
    # impersonation writes its audit row, IMP-3, so that group leaves audit rows aside).
    for group, skip in (("impersonating_staff", (AuditEvent._meta.table_name,)), ("", ())):
        refusals = [c for c in cells if c[3] and (c[1] == "impersonating_staff") == bool(group)]
        before = fingerprint(app, target, skip)
        for cell in refusals:
            run(cell)
        if fingerprint(app, target, skip) != before:
            deviations.append(
                f"refused calls ({group or 'others'}) changed the target's data: "
                f"{changed_by(app, target, skip, refusals, run)}"
            )
    # Then the calls that may act, each undone, so every caller meets the same data.
    for cell in cells:
        if not cell[3]:
            with rolled_back():
                run(cell)
    per = Counter(c[1] for c in cells)
    print(
        f"isolation matrix: {len(routes)} route-methods x {len(PRINCIPALS)} callers = "
        f"{len(cells)} cells ({sum(c[3] for c in cells)} refusals), {len(deviations)} "
        f"deviations; per caller {dict(per)}"
    )
    assert len(routes) >= 60 and len(cells) == len(routes) * len(PRINCIPALS)
    assert not deviations, f"{len(deviations)} of {len(cells)} cells deviate:\n" + "\n".join(
        deviations
    )
