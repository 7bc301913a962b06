"""Tenant isolation (LIM-2), checked on every customer route the app has, found from ``app.routes``.

A new plugin's routes are covered without editing this test: each ``{..._id}`` in a
path is filled with another customer's row of the table named like the parameter
(``service_id`` → ``service``, ``key_id`` → ``api_key``), or another customer's alert
id. The answer must be a 404 (or the very same 4xx answer a made-up id gets),
carry none of the other customer's data, and change none of it.
"""

from __future__ import annotations

import hashlib
import json
import re

from datetime import timedelta

import pytest

from engine.context import Context, Principal, owned
from engine.db import utcnow
from engine.models import Customer, User
from engine.registry import PUBLIC
from engine.testing import Client
from plugins.identity import apikeys

PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")
METHODS = ("get", "post", "put", "patch", "delete")
MISSING_ID = "987654321"


def all_routes(app):
    """(plugin, path, auth, [methods]) of every route the app has."""
    for plugin, route in app.routes:
        resource = route.resource
        suffix = f"_{route.suffix}" if route.suffix else ""
        methods = [m for m in METHODS if hasattr(resource, f"on_{m}{suffix}")]
        auth = getattr(resource, "auth", "customer")
        if route.permission is not None:  # a staff route: its declaration decides (SEC-5)
            auth = "public" if route.permission == PUBLIC else "staff"
        yield plugin, route.path, auth, methods


def customer_routes(app):
    """(plugin, path, [methods]) of every route a signed-in customer may call."""
    for plugin, path, auth, methods in all_routes(app):
        if auth == "customer" and "/staff" not in path:
            yield plugin, path, methods


def scoped_models(app):
    for models in app.models.values():
        for model in models:
            if hasattr(model, "for_customer") or "customer" in model._meta.fields:
                yield model


def foreign_values(app, param: str, victim: Customer) -> list[str]:
    """Ids of ``victim``'s rows that ``param`` names; [] when the victim has none."""
    if param == "alert_id":
        victim_user = (
            User.select()
            .join_from(User, User.contact.rel_model)
            .where(User.contact.rel_model.customer == victim.id)
            .first()
        )
        ctx = Context(
            app=app,
            principal=Principal(kind="customer", user_id=victim_user.id, customer_id=victim.id),
        )
        # Alerts about one of the victim's rows ("low-data-5"), dismissible ones first; a
        # general alert id ("invoices-unpaid") names nothing of the victim's.
        alerts = [
            a
            for _, a in app.plugins.collect("portal_alerts", app=app, ctx=ctx)
            if any(c.isdigit() for c in a.id)
        ]
        return [a.id for a in sorted(alerts, key=lambda a: not a.dismissible)][:2]
    name = param[:-3]
    values = []
    for model in scoped_models(app):
        table = model._meta.table_name
        if table == name or table.endswith("_" + name):
            values += [str(r.id) for r in owned(model, victim.id).limit(2)]
    return values


# Bookkeeping a mere visit updates (session idle clock, API key last use): not the customer's data.
VOLATILE = frozenset({"last_seen_at", "last_used_at", "last_used_ip"})


def fingerprint(app, customer: Customer, skip: tuple[str, ...] = ()) -> str:
    """A digest of every row the customer owns (but tables in ``skip``), to prove nothing changed."""
    digest = hashlib.sha256()
    for model in sorted(scoped_models(app), key=lambda m: m._meta.table_name):
        if model._meta.table_name in skip:
            continue
        for row in owned(model, customer.id).order_by(model._meta.primary_key).dicts():
            row = {k: v for k, v in row.items() if k not in VOLATILE}
            digest.update(json.dumps(row, default=str, sort_keys=True).encode())
    return digest.hexdigest()


def call(client, method, path, page):
    if method == "get":
        return client.get(path)
    if page:
        return client.request(method.upper(), path, form={})
    return client.request(method.upper(), path, json={})


@pytest.mark.spec("LIM-2")
def test_no_customer_route_reveals_or_changes_another_customers_data(demo_app):
    app = demo_app
    attacker_email, victim = "alice@example.com", Customer.get(Customer.number == "C-100002")
    markers = [victim.number, victim.name, "bob@example.com", "carol@example.com", "Builder"]
    # The victim signs in and makes a key, so sessions and keys have foreign rows too.
    Client(app).login("bob@example.com")
    bob = User.get(User.email == "bob@example.com")
    apikeys.create(victim.id, bob.id, "Victim's key", "read_write", utcnow() + timedelta(days=9))
    client = Client(app)
    client.login(attacker_email)
    before = fingerprint(app, victim)
    checked, with_ids, missing_rows, unresolved = [], [], [], []
    for plugin, path, methods in customer_routes(app):
        params = PARAM.findall(path)
        id_params = [p for p in params if p.endswith("_id")]
        if not params:
            if "get" in methods:  # lists and pages of one's own: none of the victim's data
                answer = client.get(path)
                assert answer.status_code < 500, (path, answer.text[:300])
                leaked = [m for m in markers if m in answer.text]
                assert not leaked, f"{path} shows {leaked}"
                checked.append(("get", path))
            continue
        if len(id_params) != len(params):
            unresolved.append(path)  # e.g. /account/edit/{field}: no tenant data in the path
            continue
        values = {p: foreign_values(app, p, victim) for p in id_params}
        if not all(values.values()):
            missing_rows.append(path)
            continue
        page = not path.startswith("/api/")
        for method in methods:
            for n in range(max(len(v) for v in values.values())):
                concrete = PARAM.sub(
                    lambda m: values[m.group(1)][min(n, len(values[m.group(1)]) - 1)], path
                )
                answer = call(client, method, concrete, page)
                where = f"{method.upper()} {concrete} ({plugin})"
                leaked = [m for m in markers if m in answer.text]
                assert not leaked, f"{where} shows {leaked}"
                if answer.status_code != 404:
                    # Input checked before the lookup (a 422 for a missing field) is no leak
                    # as long as a made-up id gets exactly the same answer.
                    made_up = call(client, method, PARAM.sub(MISSING_ID, path), page)
                    assert answer.status_code in (400, 405, 409, 415, 422) and (
                        answer.status_code,
                        answer.text,
                    ) == (made_up.status_code, made_up.text), (
                        f"{where} answered {answer.status_code}: {answer.text[:300]}"
                    )
                with_ids.append((method, concrete))
    assert fingerprint(app, victim) == before, "a customer route changed another customer's data"
    assert len(with_ids) >= 10 and len(checked) >= 10, (checked, with_ids)
    print(
        f"checked {len(checked)} lists and {len(with_ids)} calls with foreign ids; "
        f"no foreign rows for {missing_rows}; skipped {unresolved}"
    )


@pytest.mark.spec("LIM-2")
def test_every_customer_route_needs_a_customer(demo_app):
    anonymous = Client(demo_app)
    for plugin, path, methods in customer_routes(demo_app):
        concrete = PARAM.sub("1", path)
        for method in methods:
            answer = anonymous.request(method.upper(), concrete, json=None)
            if concrete.startswith("/api/"):
                assert answer.status_code == 401, f"{method} {concrete} ({plugin})"
            elif method == "get":
                assert answer.status_code == 303 and answer.headers["location"].startswith(
                    "/login?next="
                ), f"{concrete} ({plugin})"
            else:
                assert answer.status_code in (401, 403), f"{method} {concrete} ({plugin})"


@pytest.mark.spec("LIM-2")
def test_staff_routes_need_staff_and_customers_are_refused(demo_app):
    customer = Client(demo_app)
    token = customer.login("alice@example.com")["token"]
    bearer = Client(demo_app, headers={"Authorization": f"Bearer {token}"})
    for plugin, path, auth, methods in all_routes(demo_app):
        if auth != "staff":
            continue
        path = PARAM.sub("1", path)
        for who in (customer, bearer):
            answer = who.get(path) if "get" in methods else who.post(path, json={})
            if path.startswith("/staff"):  # console pages send everyone else to their sign-in
                assert answer.status_code == 303 and answer.headers["location"].startswith(
                    "/staff/login?next="
                ), f"{path} ({plugin}): {answer.status_code}"
            else:
                assert answer.status_code in (401, 403), f"{path} ({plugin}): {answer.status_code}"
