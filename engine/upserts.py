"""Customers, contacts, sites, products and services written by the operator's external id
(INT-1): the one path every feed of Portico takes.

The operator API, its bulk import and the demo seed all call these functions, with values
validated by the operator plugin's schemas (the demo's are written to pass them). They
live in the engine, not in the operator plugin, so the demo seeds the same way while that
plugin is disabled. Each upsert is one transaction: the row, its audit event and any hook
run together, or nothing is written. Sending the same values again changes nothing,
records nothing and answers ``unchanged``. Fields left out keep their value (on create:
their default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, cast

import peewee
from peewee import fn

from engine import audit
from engine.context import Context
from engine.db import lock_rows, locked_transaction, utcnow
from engine.errors import Problem, invalid
from engine.i18n import N_
from engine.models import Contact, Customer, Product, Service, Site

#: A catalogue entry's code (top-ups, add-ons): what the portal and past purchases name it by.
CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,59}\Z")  # \Z: "$" lets a last "\n" by
CODE_RULE = N_("Lower-case letters, digits, '.', '_' and '-' (up to 60).")

#: ``prepare(row or None, values)``: the columns to write (see ``upsert``).
Prepare = Callable[[Any, dict[str, Any]], dict[str, Any]]

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
#: Statuses a service may be put in, and those it never leaves (a new service is a new row).
LIVE, ENDED = ("active", "suspended"), ("cancelled", "expired")


@dataclass
class Upserted:
    row: Any
    change: str  # created, updated or unchanged


def upsert(
    ctx: Context,
    model: Any,
    kind: str,
    external_id: str,
    values: dict[str, Any],
    prepare: Prepare,
    changed_hook: Callable[[Any, dict[str, Any]], None] | None = None,
) -> Upserted:
    """Create or change ``model``'s row with this external id, in one transaction.

    ``prepare(row or None, values)`` checks the values against the database (422 or 409 on
    a problem) and returns the column values to write (defaults added on create).
    ``changed_hook(row, before)`` runs in the transaction after an update (``before``: the
    old column values).
    """
    for attempt in range(2):
        try:
            with locked_transaction():
                row = lock_rows(model.select().where(model.external_id == external_id)).first()
                columns = prepare(row, dict(values))
                if row is None:
                    row = model.create(external_id=external_id, **columns)
                    audit.record(
                        ctx,
                        f"{kind}.created",
                        f"{kind}:{row.id}",
                        {"external_id": external_id},
                        customer_id=_customer_of(row),
                    )
                    return Upserted(row, CREATED)
                changed = sorted(k for k, v in columns.items() if row.__data__.get(k) != v)
                if not changed:
                    return Upserted(row, UNCHANGED)
                before = dict(row.__data__)
                for name in changed:
                    setattr(row, name, columns[name])
                row.save()
                if changed_hook is not None:
                    changed_hook(row, before)
                audit.record(
                    ctx,
                    f"{kind}.updated",
                    f"{kind}:{row.id}",
                    {"external_id": external_id, "fields": changed},
                    customer_id=_customer_of(row),
                )
                return Upserted(row, UPDATED)
        except peewee.IntegrityError:
            # Another request created this external id (or took the same number) meanwhile:
            # once more, and it is an update.
            if attempt:
                raise Problem(
                    409,
                    N_("This %(kind)s changed while it was being saved", kind=kind),
                    N_("Send the request again."),
                    type="conflict",
                ) from None
    raise AssertionError("unreachable")


def _customer_of(row: Any) -> int | None:
    """Whose activity log the change is in: none for a product; a bucket's service's."""
    if isinstance(row, Customer):
        return cast(int, row.id)
    if hasattr(row, "customer_id"):
        return cast(int | None, row.customer_id)
    if hasattr(row, "service_id"):
        found: int | None = (
            Service.select(Service.customer).where(Service.id == row.service_id).scalar()
        )
        return found
    return None


def customer_id(external_id: str, field: str = "customer_external_id") -> int:
    """Portico's id of the operator's customer; 422 on ``field`` if there is none."""
    found: int | None = (
        Customer.select(Customer.id).where(Customer.external_id == external_id).scalar()
    )
    if found is None:
        raise invalid({field: [N_("No such customer.")]})
    return found


def _same_customer(row: Any, customer: int) -> None:
    if row is not None and row.customer_id != customer:
        raise invalid(
            {
                "customer_external_id": [
                    N_(
                        "This belongs to another customer; it cannot move. Give it a new external id."
                    )
                ]
            }
        )


def next_number() -> str:
    """A free customer number (``C-100001`` onwards, after the highest row id); call inside
    the transaction."""
    n = (Customer.select(fn.MAX(Customer.id)).scalar() or 0) + 100001
    while Customer.select().where(Customer.number == f"C-{n}").exists():
        n += 1
    return f"C-{n}"


# -- customers, contacts, sites ------------------------------------------------------


def upsert_customer(ctx: Context, external_id: str, values: dict[str, Any]) -> Upserted:
    """``values``: name, kind, and on create optionally the customer ``number`` they quote."""
    return upsert(ctx, Customer, "customer", external_id, values, prepare_customer)


class Lookups:
    """What the ``prepare_*`` rules ask the database, one query per question (the API's one
    row at a time). A bulk import answers them from rows read once per batch
    (``batched.BatchLookups``), so both paths share the same rules."""

    def customer(self, external_id: str) -> int | None:
        found: int | None = (
            Customer.select(Customer.id).where(Customer.external_id == external_id).scalar()
        )
        return found

    def number_taken(self, number: str) -> bool:
        return bool(Customer.select().where(Customer.number == number).exists())

    def next_number(self) -> str:
        return next_number()

    def product(self, code: str) -> Product | None:
        found: Product | None = Product.get_or_none(Product.code == code)
        return found

    def site(self, external_id: str) -> Site | None:
        found: Site | None = Site.get_or_none(Site.external_id == external_id)
        return found


ONE_BY_ONE = Lookups()


def prepare_customer(row: Any, v: dict[str, Any], look: Lookups = ONE_BY_ONE) -> dict[str, Any]:
    """``upsert``'s ``prepare`` for customers: the number is given once or made up."""
    number = v.pop("number", None)
    if row is not None:
        if number is not None and number != row.number:
            raise invalid({"number": [N_("A customer's number cannot change.")]})
        return v
    if number is not None and look.number_taken(number):
        raise invalid({"number": [N_("Another customer has this number.")]})
    v["number"] = number or look.next_number()
    return v


def upsert_contact(ctx: Context, external_id: str, values: dict[str, Any]) -> Upserted:
    """``values``: customer_external_id, names, email, phone, role, is_primary. Making a
    contact primary makes the customer's other contacts not primary (one primary, ACCT-7)."""

    def prepare(row: Any, v: dict[str, Any]) -> dict[str, Any]:
        customer = customer_id(v.pop("customer_external_id"))
        _same_customer(row, customer)
        v["customer"] = customer
        if v.get("is_primary"):
            others = Contact.update(is_primary=False, updated_at=utcnow()).where(
                (Contact.customer == customer)
                & Contact.is_primary
                & (Contact.external_id.is_null() | (Contact.external_id != external_id))
            )
            others.execute()
        return v

    return upsert(ctx, Contact, "contact", external_id, values, prepare)


def upsert_site(ctx: Context, external_id: str, values: dict[str, Any]) -> Upserted:
    """``values``: customer_external_id, label, address lines, city, postcode, country."""

    def prepare(row: Any, v: dict[str, Any]) -> dict[str, Any]:
        customer = customer_id(v.pop("customer_external_id"))
        _same_customer(row, customer)
        v["customer"] = customer
        return v

    return upsert(ctx, Site, "site", external_id, values, prepare)


# -- products and services -----------------------------------------------------------------


def upsert_product(ctx: Context, external_id: str, values: dict[str, Any]) -> Upserted:
    """``values`` (as the operator plugin's ``OperatorProductIn`` validates them): name, code, service_type,
    monthly_fee, currency, period_days, allow_cancel, allow_modify, description,
    compatible_plans. A fee change applies to services that switch to the plan from now
    on, not to those on it (their fee was agreed when they started)."""

    def prepare(row: Any, v: dict[str, Any]) -> dict[str, Any]:
        if row is None:
            v.setdefault("code", external_id)
            if len(v["code"]) > 50:
                raise invalid({"code": [N_("Give a code of at most 50 characters.")]})
        code = v.get("code")
        if code is not None and (row is None or code != row.code):
            if Product.select().where(Product.code == code).exists():
                raise invalid({"code": [N_("Another product has this code.")]})
        if "compatible_plans" in v:
            plans = list(dict.fromkeys(v["compatible_plans"]))  # once each, in their order
            if external_id in plans:
                raise invalid({"compatible_plans": [N_("A plan is not compatible with itself.")]})
            v["compatible_plans"] = plans
        return v

    return upsert(ctx, Product, "product", external_id, values, prepare)


def upsert_service(ctx: Context, external_id: str, values: dict[str, Any]) -> Upserted:
    """``values``: customer_external_id, product (its code), site_external_id (or null), name,
    identifier, status, suspended_reason, renews_at, expires_at, auto_renew.

    The status is how the operator suspends (``suspended``), resumes (``active``), cancels
    (``cancelled``) or ends (``expired``) a service; an ended service does not start again.
    A new service takes its type, fee and period from its product.
    """
    return upsert(ctx, Service, "service", external_id, values, prepare_service, status_hook(ctx))


def prepare_service(row: Any, v: dict[str, Any], look: Lookups = ONE_BY_ONE) -> dict[str, Any]:
    """``upsert``'s ``prepare`` for services (see ``upsert_service``)."""
    customer = look.customer(v.pop("customer_external_id"))
    if customer is None:
        raise invalid({"customer_external_id": [N_("No such customer.")]})
    _same_customer(row, customer)
    v["customer"] = customer
    product = _product(v, look, required=row is None)
    if "site_external_id" in v:
        v["site"] = _site_of(v.pop("site_external_id"), customer, look)
    if product is None:  # left out on an update: the same product
        pass
    elif row is None:
        now = utcnow()
        v.setdefault("service_type", product.service_type)
        v.update(monthly_fee=product.monthly_fee, currency=product.currency, period_start=now)
        if v.get("auto_renew", True):
            v.setdefault("renews_at", now + timedelta(days=max(1, product.period_days)))
    elif row.product_id != product.id:
        v.update(monthly_fee=product.monthly_fee, currency=product.currency)
    _status_rules(row, v)
    return v


def _product(v: dict[str, Any], look: Lookups, required: bool) -> Product | None:
    """The product ``v`` names by its code (its id put in ``v``), or None if left out."""
    if "product" not in v:
        if required:
            raise invalid({"product": [N_("Missing data for required field.")]})
        return None
    product = look.product(v["product"])
    if product is None:
        raise invalid({"product": [N_("No such product.")]})
    v["product"] = product.id
    return product


def status_hook(ctx: Context) -> Callable[[Any, dict[str, Any]], None]:
    """``upsert``'s ``changed_hook`` for services: a status change reaches the other plugins
    (``service_status_changed``) in the same transaction."""

    def status_changed(row: Any, before: dict[str, Any]) -> None:
        if before["status"] != row.status:
            ctx.app.plugins.hook.service_status_changed(
                app=ctx.app,
                service=row,
                old_status=before["status"],
                new_status=row.status,
                reason=N_("Changed by the operator."),
            )

    return status_changed


def _site_of(site_external_id: str | None, customer: int, look: Lookups) -> int | None:
    if site_external_id is None:
        return None
    site = look.site(site_external_id)
    if site is None or site.customer_id != customer:
        raise invalid({"site_external_id": [N_("No such site of this customer.")]})
    return cast(int, site.id)


def _status_rules(row: Any, v: dict[str, Any]) -> None:
    status = v.get("status")
    old = row.status if row is not None else None
    if status is None or status == old:
        return
    if old in ENDED:
        raise Problem(
            409,
            N_("This service is %(status)s and cannot change status", status=old),
            N_("An ended service does not start again: create a new one with a new external id."),
            type="service-ended",
        )
    if status == "cancelled":
        v["auto_renew"] = False
    if status != "suspended" and row is not None and row.suspended_reason:
        v.setdefault("suspended_reason", "")


def entry_rules(
    model: Any, external_id: str, check: Callable[[dict[str, Any]], None] | None = None
) -> Prepare:
    """``prepare`` for a catalogue entry (a top-up, an add-on): the code is set once and
    unique (on create: the external id in lower case unless one is sent), and ``check``
    sees the entry as it would be saved."""

    def prepare(row: Any, v: dict[str, Any]) -> dict[str, Any]:
        if row is None:
            if "code" not in v:
                if not CODE.match(external_id.lower()):
                    raise invalid({"code": [N_("Give a code: %(rule)s", rule=CODE_RULE)]})
                v["code"] = external_id.lower()
            if model.select().where(model.code == v["code"]).exists():
                raise invalid({"code": [N_("Another catalogue entry has this code.")]})
        elif v.get("code", row.code) != row.code:
            raise invalid({"code": [N_("The code of an entry cannot change; create a new entry.")]})
        if check is not None:
            check({**(row.__data__ if row is not None else {}), **v})
        return v

    return prepare


# -- syncs --------------------------------------------------------------------------------


def changed_since(model: Any, since: Any = None, customer_external_id: str | None = None) -> Any:
    """Rows of ``model`` with what their answers show (the customer, a service's product),
    those changed at or after ``since`` when given (``updated_since``), one customer's when
    ``customer_external_id`` is given (models of no customer, like products, ignore it)."""
    if "service" in model._meta.fields and "customer" not in model._meta.fields:
        query = model.select(model, Service, Customer).join(Service).join(Customer)  # buckets
        if customer_external_id is not None:
            query = query.where(Customer.external_id == customer_external_id)
    elif "customer" not in model._meta.fields and model is not Customer:
        query = model.select()  # products
    elif model is Customer:
        query = Customer.select()
        if customer_external_id is not None:
            query = query.where(Customer.external_id == customer_external_id)
    else:
        query = model.select(model, Customer).join(Customer)
        if customer_external_id is not None:
            query = query.where(Customer.external_id == customer_external_id)
        if model is Service:
            query = query.select_extend(Product).switch(Service).join(Product)
    if since is not None:
        query = query.where(model.updated_at >= since)
    return query
