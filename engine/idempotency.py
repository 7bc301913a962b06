"""Idempotency for money-moving requests: a repeated ``Idempotency-Key`` returns the first result.

A client that lost the answer to ``POST /invoices/7/pay`` sends it again with
the same key and gets the first answer back; the money moved once. Records
live in the database (never in process memory), so any web process answers the
retry. The table belongs to the engine (the core plugin's migration 0002).

JSON responders use the decorator, outside ``@operation``::

    class InvoicePay:
        @idempotent
        @operation("Pay an invoice", body=PayIn, response=PaymentOut, money=True)
        def on_post(self, req, resp, invoice_id, body): ...

HTML forms carry a key generated when the form was rendered (a double click
submits it twice) and call ``once()`` directly (billing's ``checkout.submit`` does).

Every key, header or form field, follows one rule (``KEY_RULE``): 1 to 255 printable ASCII
characters. Keys are scoped per owner (``owner_of``); answers are kept for ``KEEP_FOR``.

The work may create something (a purchase) and then fail before its answer is stored: the
process dies, or the provider does not answer. So that a retry with the same key settles
that thing instead of buying again, the work names it on the running claim, in the
transaction that creates it::

    claim = idempotency.current()
    earlier = claim.earlier(TopupPurchase)  # what a failed first attempt created, or None
    ...
    with db.database.atomic():
        purchase = TopupPurchase.create(...)
        claim.remember(purchase)

A record that names something is kept when the work fails (state ``failed``): the next
request with the key takes it over and finds it; ``purge()`` keeps that name after the
answer is forgotten. Without a key, ``current()`` is a claim that remembers nothing.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import falcon
import peewee
from peewee import CharField, IntegerField

from engine.bodies import read_json
from engine.db import BaseModel, UTCDateTimeField, database, utcnow
from engine.errors import Problem, problem_body
from engine.i18n import N_

HEADER = "Idempotency-Key"
#: How long a key is remembered. Clients retry within minutes; a day is generous.
KEEP_FOR = timedelta(hours=24)
#: A "running" record older than this belongs to a process that died: the retry takes over.
#: Safe because the operations below it reconcile with the provider instead of charging again.
TAKE_OVER_AFTER = timedelta(minutes=2)
#: The one rule for every idempotency key, the API's header and a form's hidden field alike:
#: 1 to 255 printable ASCII characters (no spaces), e.g. a UUID.
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}\Z")
KEY_RULE = N_("Use 1 to 255 printable ASCII characters, e.g. a UUID.")


class IdempotencyRecord(BaseModel):
    """One remembered request: who sent it, its key, what it was, and the first answer."""

    owner = CharField(max_length=64)  # "customer:12", "staff:3", "guest:7"
    key = CharField(max_length=255)
    request = CharField(max_length=100)  # method, path and a hash of the body
    state = CharField(max_length=10, default="running")  # running, done, failed
    status = IntegerField(null=True)
    body = peewee.JSONField(null=True)
    problem = peewee.BooleanField(default=False)
    started_at = UTCDateTimeField(default=utcnow)
    finished_at = UTCDateTimeField(null=True, index=True)
    ref = CharField(max_length=100, null=True)  # what the work created: "<table>:<id>"

    class Meta:
        indexes = ((("owner", "key"), True),)


class Claim:
    """The running request's hold on its key: what its work created, for a retry to find."""

    def __init__(self, record_id: int | None = None, ref: str | None = None):
        self.record_id, self.ref = record_id, ref

    def earlier(self, model: type[peewee.Model]):
        """The ``model`` row a failed earlier attempt with this key created, or None."""
        table, _, row_id = (self.ref or "").partition(":")
        if table != model._meta.table_name or not row_id.isdigit():
            return None
        return model.get_or_none(model._meta.primary_key == int(row_id))

    def remember(self, row: peewee.Model) -> None:
        """Name ``row`` as this request's work; call it in the transaction that creates it."""
        if self.record_id is None:
            return
        self.ref = f"{row._meta.table_name}:{row.get_id()}"
        (
            IdempotencyRecord.update(ref=self.ref)
            .where(IdempotencyRecord.id == self.record_id)
            .execute()
        )


_current: contextvars.ContextVar[Claim | None] = contextvars.ContextVar(
    "portico_idempotency_claim", default=None
)


def current() -> Claim:
    """The claim of the ``once()`` running now; outside one (no key), a claim of nothing."""
    return _current.get() or Claim()


@dataclass(frozen=True)
class Outcome:
    status: int
    body: Any
    problem: bool = False
    replayed: bool = False


def owner_of(ctx) -> str:
    """Whose keys these are: keys are scoped per customer (or staff member, or guest link)."""
    p = ctx.principal
    if p is not None and p.is_customer:
        return f"customer:{p.customer_id}"
    if p is not None and p.is_staff:
        return f"staff:{p.staff_id}"
    return str(ctx.extra.get("idempotency_owner") or "anonymous")


def request_id(method: str, path: str, payload: Any) -> str:
    """A short fingerprint of a request: the same key with another request is refused."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"{method} {path}"[:60] + " " + digest[:32]


def valid_key(key: str) -> bool:
    """Whether ``key`` follows ``KEY_RULE``."""
    return bool(KEY_PATTERN.match(key))


def check_key(key: str | None, field: str = HEADER) -> str | None:
    """The header's key, or None when absent; a key breaking ``KEY_RULE`` is a 422."""
    if key is None or key == "":
        return None
    if not valid_key(key):
        raise Problem(422, N_("Invalid idempotency key"), KEY_RULE, errors={field: [KEY_RULE]})
    return key


def once(
    owner: str,
    key: str | None,
    request: str,
    fn: Callable[[], tuple[int, Any]],
    describe_error: Callable[[falcon.HTTPError], dict] | None = None,
) -> Outcome:
    """Run ``fn`` once per (owner, key); a repeat returns the stored ``(status, body)``.

    ``fn`` returns ``(status, body)``. A client error it raises (4xx) is stored
    and replayed too (a declined card stays declined for that key); anything
    else forgets the key, so a retry runs again, unless ``fn`` remembered what it
    created (``current().remember``): the retry then finds it.
    """
    if key is None:
        status, body = fn()
        return Outcome(status, body)
    record = _claim(owner, key, request)
    if isinstance(record, Outcome):
        return record
    token = _current.set(Claim(record.id, record.ref))
    try:
        status, body = fn()
    except falcon.HTTPError as exc:
        code = int(exc.status_code)
        if code < 500 and code != 409 and describe_error is not None:
            _finish(record, code, describe_error(exc), problem=True)
        else:
            _forget(record)
        raise
    except BaseException:
        _forget(record)
        raise
    finally:
        _current.reset(token)
    _finish(record, status, body)
    return Outcome(status, body)


def _claim(owner: str, key: str, request: str) -> IdempotencyRecord | Outcome:
    try:
        with database.atomic():
            return IdempotencyRecord.create(owner=owner, key=key, request=request)
    except peewee.IntegrityError:
        pass
    record = IdempotencyRecord.get_or_none(
        (IdempotencyRecord.owner == owner) & (IdempotencyRecord.key == key)
    )
    if record is None:  # forgotten between our insert and this read: claim it again
        return _claim(owner, key, request)
    if record.request != request:
        raise Problem(
            422,
            N_("This Idempotency-Key was used for a different request"),
            N_("Use a new key for a new request."),
            type="idempotency-key-reused",
            errors={HEADER: [N_("Already used for a different request.")]},
        )
    if record.state == "done":
        return Outcome(record.status, record.body, record.problem, replayed=True)
    if record.state == "failed" or record.started_at < utcnow() - TAKE_OVER_AFTER:
        # A failed attempt, or a running one whose process died: the retry takes over.
        taken = (
            IdempotencyRecord.update(state="running", started_at=utcnow())
            .where(
                (IdempotencyRecord.id == record.id)
                & (IdempotencyRecord.state == record.state)
                & (IdempotencyRecord.started_at == record.started_at)
            )
            .execute()
        )
        if taken:
            return IdempotencyRecord.get_by_id(record.id)
    raise Problem(
        409,
        N_("This request is still being processed"),
        N_("Wait a moment, then repeat it with the same Idempotency-Key to get the answer."),
        type="idempotency-in-progress",
        headers={"Retry-After": "2"},
    )


def _finish(record: IdempotencyRecord, status: int, body: Any, problem: bool = False) -> None:
    (
        IdempotencyRecord.update(
            state="done", status=status, body=body, problem=problem, finished_at=utcnow()
        )
        .where(IdempotencyRecord.id == record.id)
        .execute()
    )


def _forget(record: IdempotencyRecord) -> None:
    """Let a retry run again: drop the record, or keep the one naming what the work created."""
    (
        IdempotencyRecord.update(state="failed")
        .where((IdempotencyRecord.id == record.id) & IdempotencyRecord.ref.is_null(False))
        .execute()
    )
    (
        IdempotencyRecord.delete()
        .where((IdempotencyRecord.id == record.id) & IdempotencyRecord.ref.is_null())
        .execute()
    )


def purge(now=None) -> int:
    """Forget the answers older than ``KEEP_FOR`` (a periodic job calls this).

    A record naming what its work created keeps that name, not the answer: a retry with its
    key, however late, settles that purchase instead of buying again. Returns how many
    records were deleted.
    """
    old = IdempotencyRecord.started_at < (now or utcnow()) - KEEP_FOR
    (
        IdempotencyRecord.update(state="failed", status=None, body=None, problem=False)
        .where(old & IdempotencyRecord.ref.is_null(False) & (IdempotencyRecord.state == "done"))
        .execute()
    )
    return IdempotencyRecord.delete().where(old & IdempotencyRecord.ref.is_null()).execute()


def idempotent(responder: Callable) -> Callable:
    """Honour ``Idempotency-Key`` on a JSON responder (put it above ``@operation``)."""

    @functools.wraps(responder)
    def wrapper(self, req, resp, **params):
        key = check_key(req.get_header(HEADER))
        payload = read_json(req)
        request = request_id(req.method, req.path, payload)

        def run() -> tuple[int, Any]:
            responder(self, req, resp, **params)
            return resp.status_code, resp.media

        outcome = once(
            owner_of(req.context),
            key,
            request,
            run,
            describe_error=lambda exc: problem_body(req, exc),
        )
        if outcome.replayed:
            resp.status = falcon.code_to_http_status(outcome.status)
            resp.set_header("Idempotent-Replayed", "true")
            if outcome.problem:
                resp.content_type = "application/problem+json"
                resp.text = json.dumps(outcome.body)
            else:
                resp.media = outcome.body

    return wrapper


__all__ = [
    "Claim",
    "IdempotencyRecord",
    "Outcome",
    "current",
    "once",
    "idempotent",
    "owner_of",
    "request_id",
    "check_key",
    "valid_key",
    "purge",
    "HEADER",
    "KEY_PATTERN",
    "KEY_RULE",
]
