"""Batched writes of customers and services for the bulk import (INT-5, issue 19).

The same rules as the service layer's upserts (``service.prepare_customer``,
``service.prepare_service``: validation against the database, defaults, 422 and 409,
``updated_at``, one audit event per changed object, ``unchanged`` on a re-run), but a constant
number of statements per batch instead of about seven per row: one ``SELECT ... FOR UPDATE``
of the batch's existing rows, one read of what the rows refer to (``BatchLookups``), one
multi-row INSERT of the new rows and one of their audit events. Only the rows that change are
updated one by one (a re-run changes none).

A row that breaks a rule is answered with its ``Problem`` and the others are written. If the
batch meets a database error (a concurrent writer took an external id or a number, a value
the database refuses) its savepoint is rolled back and the batch goes through the per-row
path (``fallback``) instead, so nothing is lost or written twice. So does a batch naming one
external id twice (the second row is an update of the first).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import peewee
from peewee import fn

from engine import audit
from engine.db import database, insert_rows, lock_rows
from engine.errors import Problem
from engine.models import Customer, Product, Site
from engine import upserts as rules

log = logging.getLogger("portico.operator")
Write = Callable[[Any, list[tuple[str, dict]]], list[Any]]


class BatchLookups(rules.Lookups):
    """``service.Lookups`` answered from rows read once for the batch."""

    def __init__(self) -> None:
        self.customers: dict[str, int] = {}
        self.products: dict[str, Product] = {}
        self.sites: dict[str, Site] = {}
        self.taken: set[str] = set()  # customer numbers in use (of those read, and the batch's)
        self.first_number = 0  # what ``next_number`` answers before this batch creates any
        self.checked_to = 0  # numbers below C-{checked_to} were read into ``taken``
        self.created = 0  # customers the batch creates so far

    def customer(self, external_id: str) -> int | None:
        return self.customers.get(external_id)

    def number_taken(self, number: str) -> bool:
        return number in self.taken

    def next_number(self) -> str:
        # As ``service.next_number`` after each earlier create: the highest id moved on by one.
        n = self.first_number + self.created
        while f"C-{n}" in self.taken or (n >= self.checked_to and super().number_taken(f"C-{n}")):
            n += 1
        return f"C-{n}"

    def product(self, code: str) -> Product | None:
        return self.products.get(code)

    def site(self, external_id: str) -> Site | None:
        return self.sites.get(external_id)


def customer_lookups(rows: list[tuple[str, dict]], existing: dict) -> BatchLookups:
    """The numbers the new customers quote or would be given, read in one query."""
    look = BatchLookups()
    new = [values for key, values in rows if key not in existing]
    if not new:
        return look
    look.first_number = (Customer.select(fn.MAX(Customer.id)).scalar() or 0) + 100001
    look.checked_to = look.first_number + 2 * len(new)  # room for some numbers already taken
    wanted = {v["number"] for v in new if v.get("number")}
    wanted.update(f"C-{n}" for n in range(look.first_number, look.checked_to))
    found = Customer.select(Customer.number).where(Customer.number.in_(sorted(wanted)))
    look.taken = {number for (number,) in found.tuples()}
    return look


def service_lookups(rows: list[tuple[str, dict]], existing: dict) -> BatchLookups:
    """The customers, products and sites the rows name, a query each."""
    look = BatchLookups()
    names = {v["customer_external_id"] for _, v in rows if "customer_external_id" in v}
    if names:
        found = Customer.select(Customer.external_id, Customer.id)
        look.customers = dict(found.where(Customer.external_id.in_(sorted(names))).tuples())
    codes = sorted({v["product"] for _, v in rows if "product" in v})
    if codes:
        look.products = {p.code: p for p in Product.select().where(Product.code.in_(codes))}
    sites = sorted({v["site_external_id"] for _, v in rows if v.get("site_external_id")})
    if sites:
        look.sites = {s.external_id: s for s in Site.select().where(Site.external_id.in_(sites))}
    return look


def writer(
    model,
    kind: str,
    prepare: Callable[[Any, dict, rules.Lookups], dict],
    lookups: Callable[[list[tuple[str, dict]], dict], BatchLookups],
    fallback: Write,
    changed_hook: Callable[[Any], Callable[[Any, dict], None]] | None = None,
) -> Write:
    """A bulk ``Kind.write`` for ``model``: the batch in one savepoint, else ``fallback``."""

    def write(ctx, rows):
        if len({key for key, _ in rows}) < len(rows):
            log.info("%s batch names an external id twice: row by row", kind)
            return fallback(ctx, rows)
        try:
            with database.atomic():
                return _write(ctx, rows)
        except peewee.DatabaseError as exc:
            log.info("%s batch met a database error, row by row: %s", kind, exc)
            return fallback(ctx, rows)

    def _write(ctx, rows):
        keys = [key for key, _ in rows]
        found = lock_rows(model.select().where(model.external_id.in_(keys)))
        existing = {row.external_id: row for row in found}
        look = lookups(rows, existing)
        done: list[Any] = []
        new: list[tuple[int, Any]] = []
        changes: list[tuple[int, Any, list[str], dict]] = []
        for i, (key, values) in enumerate(rows):
            row = existing.get(key)
            try:
                columns = prepare(row, dict(values), look)
            except Problem as exc:
                done.append(exc)
                continue
            if row is None:
                new.append((i, model(external_id=key, **columns)))
                if "number" in columns:  # a customer's: no later row of the batch may take it
                    look.taken.add(columns["number"])
                look.created += 1
                done.append(rules.CREATED)
                continue
            changed = sorted(k for k, v in columns.items() if row.__data__.get(k) != v)
            if changed:
                changes.append((i, row, changed, dict(row.__data__)))
                for name in changed:
                    setattr(row, name, columns[name])
            done.append(rules.UPDATED if changed else rules.UNCHANGED)
        # (action, row, data) by the row's place in the batch: the events keep the rows' order.
        events: dict[int, tuple[str, Any, dict]] = {}
        for (i, row), new_id in zip(new, insert_rows(model, [r.__data__ for _, r in new])):
            row.id = new_id
            events[i] = ("created", row, {"external_id": row.external_id})
        hook = changed_hook(ctx) if changed_hook is not None else None
        for i, row, changed, before in changes:
            row.save()
            if hook is not None:
                hook(row, before)
            events[i] = ("updated", row, {"external_id": row.external_id, "fields": changed})
        audit.record_many(
            ctx,
            [
                (f"{kind}.{action}", f"{kind}:{row.id}", data, rules._customer_of(row))
                for action, row, data in (events[i] for i in sorted(events))
            ],
        )
        return done

    return write
