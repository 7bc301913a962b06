"""Rating (USE-3, USE-7): apply usage events to a service's buckets, each event once.

The rules are plain functions over in-memory buckets (``apply``), so they can
be read and property-tested on their own; ``rate`` runs them for a batch
inside one locked transaction and writes the events, the ledger and the new
balances with a handful of bulk statements.

Concurrency: every writer of a service's buckets first locks the service's
row (``lock_services``), in id order, so concurrent batches, top-ups and
renewals on one service queue up instead of losing updates; on SQLite the
``BEGIN IMMEDIATE`` transaction already serialises writers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Iterator

import peewee

from engine.audit import record_system
from engine.db import (
    UTCDateTimeField,
    copy_escape,
    copy_text,
    database,
    is_postgres,
    locked_transaction,
    utcnow,
)
from engine.models import Service
from engine.registry import Balance
from plugins.usage.models import Bucket, LedgerEntry, UsageEvent
from plugins.usage.settings import Policy, settings

CHUNK = 500  # rows per statement: well under SQLite's and PostgreSQL's parameter limits


@dataclass
class UsageIn:
    """One validated usage event (the API, the CSV import and the demo all build these)."""

    id: str
    service_id: int
    type: str
    quantity: int
    occurred_at: datetime
    destination: str = ""
    international: bool = False
    counterparty: str = ""


@dataclass
class Outcome:
    """What rating did with one event. ``status`` is "rated" or "duplicate"."""

    id: str
    service_id: int
    status: str
    covered: int = 0
    charged: int = 0
    overage: int = 0


@dataclass
class Slot:
    """A bucket in memory while a batch is rated."""

    id: int
    type: str
    scope: str
    weight: int
    expires_at: datetime | None
    remaining: int
    initial: int
    unit: str
    key: tuple = field(default=(), compare=False)


class UnknownService(ValueError):
    """Events name services that do not exist."""

    def __init__(self, ids: Iterable[int]):
        self.ids = sorted(ids)
        super().__init__(f"unknown service ids: {', '.join(map(str, self.ids))}")


# -- the rules -------------------------------------------------------------------------


def scope_of(event: UsageIn) -> str:
    """Which allowances may pay: "international", "special" (only "any" buckets) or "domestic"."""
    if event.type == "voice":
        if event.destination == "international":
            return "international"
        return "special" if event.destination == "special" else "domestic"
    if event.type in ("sms", "mms"):
        return "international" if event.international else "domestic"
    return "any"


SCOPES_FOR = {
    "international": ("any", "international"),
    "special": ("any",),
    "domestic": ("any", "domestic"),
    "any": ("any", "domestic", "international"),
}


def types_for(event_type: str, policy: Policy) -> tuple[str, ...]:
    if event_type == "mms" and policy.mms_uses_sms:
        return ("mms", "sms")
    return (event_type,)


def eligible(event: UsageIn, slots: list[Slot], policy: Policy, now: datetime) -> Iterator[Slot]:
    """The buckets that may pay for ``event``, in consumption order (``slots`` come sorted)."""
    types = types_for(event.type, policy)
    scopes = SCOPES_FOR[scope_of(event)]
    for slot in slots:
        if (
            slot.remaining > 0
            and slot.type in types
            and slot.scope in scopes
            and (slot.expires_at is None or slot.expires_at > now)
        ):
            yield slot


def price(event: UsageIn, quantity: int, rates: dict) -> int:
    """Minor units for ``quantity`` of ``event`` charged to credit, rounded up."""
    if event.type == "data":
        return math.ceil(quantity * rates["data_per_mb"] / 1_000_000)
    if event.type == "voice":
        per_minute = rates[f"voice_{event.destination or 'offnet'}_per_minute"]
        return math.ceil(quantity * per_minute / 60)
    if event.type in ("sms", "mms"):
        return (
            quantity * rates[f"{event.type}_international" if event.international else event.type]
        )
    return quantity  # monetary events are already money


def take(slots: Iterable[Slot], amount: int, kind: str, moves: list) -> int:
    """Consume up to ``amount`` from ``slots`` in order; returns what is still unpaid."""
    for slot in slots:
        if amount <= 0:
            break
        part = min(slot.remaining, amount)
        slot.remaining -= part
        amount -= part
        moves.append((slot, -part, kind))
    return amount


def apply(
    event: UsageIn, slots: list[Slot], policy: Policy, overage_mode: str, now: datetime
) -> tuple[Outcome, list]:
    """Rate one event against one service's sorted buckets; returns the outcome and the moves.

    Allowances pay first, in USE-3 order, split across buckets; what they do
    not cover is charged to monetary credit where the overage mode is "credit",
    and whatever is still unpaid is recorded as overage.
    """
    moves: list = []
    left = take(eligible(event, slots, policy, now), event.quantity, "usage", moves)
    outcome = Outcome(
        event.id, event.service_id, "rated", covered=event.quantity - left, overage=left
    )
    if left and event.type != "monetary" and overage_mode == "credit":
        cost = price(event, left, policy.rates)
        if cost == 0:
            outcome.overage = 0  # free at the configured rate
        else:
            credit = (
                s
                for s in slots
                if s.type == "monetary"
                and s.remaining > 0
                and (s.expires_at is None or s.expires_at > now)
            )
            unpaid = take(credit, cost, "charge", moves)
            outcome.charged = cost - unpaid
            outcome.overage = math.ceil(left * unpaid / cost)
    return outcome, moves


def totals(slots: Iterable[Slot], now: datetime) -> dict[str, tuple[int, int, str]]:
    """Per balance type: (remaining, initial, unit) of the buckets still valid at ``now``."""
    out: dict[str, list] = {}
    for s in slots:
        if s.expires_at is not None and s.expires_at <= now:
            continue
        t = out.setdefault(s.type, [0, 0, s.unit])
        t[0] += s.remaining
        t[1] += s.initial
    return {k: tuple(v) for k, v in out.items()}


def is_low(balance_type: str, remaining: int, initial: int, threshold: int) -> bool:
    """Below the threshold: percent of the initial amount, or minor units for credit."""
    if balance_type == "monetary":
        return remaining < threshold
    return initial > 0 and remaining * 100 < threshold * initial


def threshold_for(app, customer_id: int, balance_type: str) -> int:
    """The customer's threshold (``balance_threshold`` hook), else the operator's default."""
    answer = app.plugins.hook.balance_threshold(
        app=app, customer_id=customer_id, balance_type=balance_type
    )
    if answer is not None:
        return int(answer)
    return settings(app)["low_balance"][balance_type]


# -- the batch ---------------------------------------------------------------------------


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def unknown_services(ids: set[int]) -> set[int]:
    """The ids among ``ids`` that name no service."""
    found: set[int] = set()
    for part in chunks(sorted(ids)):
        found.update(r[0] for r in Service.select(Service.id).where(Service.id.in_(part)).tuples())
    return set(ids) - found


def lock_services(ids: Iterable[int]) -> dict[int, Service]:
    """Lock the rows of these services, in id order (so two writers never deadlock)."""
    lock = " FOR UPDATE" if is_postgres() else ""  # SQLite: BEGIN IMMEDIATE holds the lock
    sql = f'SELECT * FROM "{Service._meta.table_name}" WHERE "id" {{in_}} ORDER BY "id"{lock}'
    found: dict[int, Service] = {}
    for cursor in select_in(sql, sorted(set(ids))):
        names = [d[0] for d in cursor.description]
        fields = [Service._meta.columns[n] for n in names]
        for row in cursor.fetchall():
            service = model_of(Service, fields, row)
            found[service.id] = service
    return found


def model_of(model, fields: list, row: tuple):
    """A model instance from a row of ``SELECT *``.

    PERF: peewee's row wrapper sets each field through its descriptor, and each
    stored UTC time goes through ``UTCDateTimeField.python_value`` (together about
    60 µs a service row, a fifth of a batch's time); this fills the same data.
    """
    obj = model.__new__(model)
    obj.__data__ = {
        f.name: (
            v.replace(tzinfo=timezone.utc)
            if type(v) is datetime and isinstance(f, UTCDateTimeField)
            else f.python_value(v)
        )
        for f, v in zip(fields, row)
    }
    obj._dirty = set()
    obj.__rel__ = {}
    return obj


def load_slots(service_ids: Iterable[int], policy: Policy, now: datetime) -> dict[int, list[Slot]]:
    """The unexpired buckets of these services, each list in consumption order."""
    by_service: dict[int, list[Slot]] = defaultdict(list)
    expiry = Bucket.expires_at
    columns = ", ".join(
        f'"{f.column_name}"'
        for f in (
            Bucket.id,
            Bucket.service,
            Bucket.type,
            Bucket.scope,
            Bucket.weight,
            expiry,
            Bucket.remaining,
            Bucket.initial,
            Bucket.unit,
        )
    )
    sql = (
        f'SELECT {columns} FROM "{Bucket._meta.table_name}" WHERE "service_id" {{in_}} '
        f'AND ("expires_at" IS NULL OR "expires_at" > {marks(1)})'
    )
    for cursor in select_in(sql, sorted(set(service_ids)), [expiry.db_value(now)]):
        for (
            bid,
            sid,
            kind,
            scope,
            weight,
            expires_at,
            remaining,
            initial,
            unit,
        ) in cursor.fetchall():
            expires_at = expiry.python_value(expires_at)
            slot = Slot(bid, kind, scope, weight, expires_at, remaining, initial, unit)
            slot.key = policy.order_key(weight, expires_at, bid)
            by_service[sid].append(slot)
    for slots in by_service.values():
        slots.sort(key=lambda s: s.key)
    return by_service


def already_rated(event_ids: list[str]) -> set[str]:
    """The event ids among these that were rated before."""
    sql = f'SELECT "event_id" FROM "{UsageEvent._meta.table_name}" WHERE "event_id" {{in_}}'
    return {r[0] for cursor in select_in(sql, event_ids) for r in cursor.fetchall()}


def select_in(sql: str, values: list, after: list | None = None) -> Iterator:
    """Run ``sql`` with its ``{in_}`` as a test of membership in ``values``; yields cursors.

    PostgreSQL: one statement, ``= ANY(%s)`` with the values as one array
    parameter (PERF: one round trip per batch, whatever its size). SQLite: an
    ``IN (?, ...)`` list per chunk (its parameter limit), no round trips to save.
    ``after`` are the parameters that follow the list in ``sql``.
    """
    after = after or []
    if is_postgres():
        yield database.execute_sql(sql.format(in_="= ANY(%s)"), [list(values), *after])
        return
    for part in chunks(values):
        yield database.execute_sql(sql.format(in_=f"IN ({marks(len(part))})"), [*part, *after])


def marks(n: int) -> str:
    """``n`` parameter placeholders for the open database (``?`` or ``%s``).

    PERF: the hot statements of a batch are written as SQL text: peewee builds
    a 500-value ``IN`` list or ``CASE`` value by value, which costs more than
    running it.
    """
    return ", ".join([database.obj.param] * n)


def rate(
    app, events: list[UsageIn], *, now: datetime | None = None, quiet: bool = False
) -> list[Outcome]:
    """Rate a batch in one locked transaction; returns one outcome per event, in input order.

    An event id already rated (now or in an earlier batch) is a "duplicate" and
    changes nothing. ``quiet`` skips the event hooks (the demo's history).
    """
    now = now or utcnow()
    first: dict[str, UsageIn] = {}
    for e in events:
        first.setdefault(e.id, e)
    unique = list(first.values())
    for attempt in range(3):
        try:
            with locked_transaction():
                done = _rate_locked(app, unique, Policy.of(app), now, quiet)
            break
        except peewee.IntegrityError:
            # Only when another batch wrote one of these event ids for a service we did
            # not lock (a malformed feed): try again, now they count as duplicates.
            if attempt == 2:
                raise
    out, seen = [], set()
    for e in events:
        if e.id in seen:
            out.append(Outcome(e.id, e.service_id, "duplicate"))
        else:
            seen.add(e.id)
            out.append(done[e.id])
    return out


def _rate_locked(
    app, events: list[UsageIn], policy: Policy, now: datetime, quiet: bool
) -> dict[str, Outcome]:
    services = lock_services(e.service_id for e in events)
    missing = {e.service_id for e in events} - set(services)
    if missing:
        raise UnknownService(missing)
    existing = already_rated([e.id for e in events])
    done = {e.id: Outcome(e.id, e.service_id, "duplicate") for e in events if e.id in existing}
    fresh = sorted((e for e in events if e.id not in existing), key=lambda e: e.occurred_at)
    if not fresh:
        return done
    slots = load_slots({e.service_id for e in fresh}, policy, now)
    before = {sid: totals(slots[sid], now) for sid in {e.service_id for e in fresh}}
    event_rows, ledger_rows, changed = [], [], {}
    for e in fresh:
        mode = policy.overage_mode(services[e.service_id].service_type)
        outcome, moves = apply(e, slots[e.service_id], policy, mode, now)
        done[e.id] = outcome
        abroad = e.international or e.destination == "international"
        event_rows.append(
            (
                e.id,
                e.service_id,
                e.type,
                e.quantity,
                e.occurred_at,
                e.destination,
                abroad,
                e.counterparty,
                outcome.covered,
                outcome.charged,
                outcome.overage,
                now,
            )
        )
        for slot, delta, kind in moves:
            ledger_rows.append((slot.id, kind, delta, e.id, now))
            changed[slot.id] = slot
    write(event_rows, ledger_rows, changed.values())
    if not quiet:
        after_events(app, services, before, slots, now)
    return done


EVENT_FIELDS = [
    UsageEvent.event_id,
    UsageEvent.service,
    UsageEvent.type,
    UsageEvent.quantity,
    UsageEvent.occurred_at,
    UsageEvent.destination,
    UsageEvent.international,
    UsageEvent.counterparty,
    UsageEvent.covered,
    UsageEvent.charged,
    UsageEvent.overage,
    UsageEvent.rated_at,
]
LEDGER_FIELDS = [
    LedgerEntry.bucket,
    LedgerEntry.kind,
    LedgerEntry.delta,
    LedgerEntry.reference,
    LedgerEntry.created_at,
]


def write(event_rows: list, ledger_rows: list, changed: Iterable[Slot]) -> None:
    """The bulk writes of a batch: events, ledger rows, then each changed bucket's new balance.

    Changed buckets are written in id order, so two writers that ever met on the
    same buckets would take their row locks in one order (the service lock already
    queues them).
    """
    buckets = sorted(changed, key=lambda s: s.id)
    if is_postgres():
        write_postgres(event_rows, ledger_rows, buckets)
        return
    bulk_insert(UsageEvent, EVENT_FIELDS, event_rows)
    bulk_insert(LedgerEntry, LEDGER_FIELDS, ledger_rows)
    p = database.obj.param
    for part in chunks(buckets):
        sql = (
            f'UPDATE "{Bucket._meta.table_name}" SET "remaining" = CASE "id" '
            + " ".join([f"WHEN {p} THEN {p}"] * len(part))
            + f' END WHERE "id" IN ({marks(len(part))})'
        )
        database.execute_sql(
            sql, [v for s in part for v in (s.id, s.remaining)] + [s.id for s in part]
        )


#: Statements a batch sends on PostgreSQL: lock the services, find the event ids already
#: rated, load the buckets, COPY the events, COPY the ledger, UPDATE the buckets (tests pin it).
POSTGRES_STATEMENTS = 6


def write_postgres(event_rows: list, ledger_rows: list, buckets: list[Slot]) -> None:
    """Three statements whatever the batch size: ``COPY`` the events, ``COPY`` the ledger
    rows, one ``UPDATE ... FROM unnest(ids, balances)`` of the buckets.

    PERF: the COPY text is written here row by row with the columns' types known
    (one f-string a row) rather than value by value; the batch's own time
    (``rated_at``, ``created_at``) is converted once.
    """
    if event_rows:
        now = UsageEvent.rated_at.db_value(event_rows[0][-1]).isoformat()
        when = UsageEvent.occurred_at.db_value
        copy(
            UsageEvent,
            EVENT_FIELDS,
            "".join(
                f"{copy_escape(e)}\t{sid}\t{copy_escape(t)}\t{q}\t{when(at).isoformat()}\t"
                f"{copy_escape(dest)}\t{'t' if abroad else 'f'}\t{copy_escape(cp)}\t"
                f"{cov}\t{chg}\t{ovr}\t{now}\n"
                for e, sid, t, q, at, dest, abroad, cp, cov, chg, ovr, _ in event_rows
            ),
        )
    if ledger_rows:
        now = LedgerEntry.created_at.db_value(ledger_rows[0][-1]).isoformat()
        copy(
            LedgerEntry,
            LEDGER_FIELDS,
            "".join(
                f"{bid}\t{kind}\t{delta}\t{copy_escape(ref)}\t{now}\n"
                for bid, kind, delta, ref, _ in ledger_rows
            ),
        )
    if buckets:
        database.execute_sql(
            f'UPDATE "{Bucket._meta.table_name}" AS b SET "remaining" = v.remaining '
            "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, remaining) WHERE b.id = v.id",
            [[s.id for s in buckets], [s.remaining for s in buckets]],
        )


def copy(model, fields: list, body: str) -> None:
    """``COPY`` ``body`` into ``model``'s table."""
    copy_text(model._meta.table_name, [f.column_name for f in fields], body)


def bulk_insert(model, fields: list, rows: list) -> None:
    """Multi-row ``INSERT ... VALUES (...), (...)`` of plain rows (times through ``db_value``),
    on SQLite (PostgreSQL copies, see ``write_postgres``).

    PERF: peewee builds an ``insert_many`` statement value by value (about
    0.1 ms a row); this writes the same SQL with a flat parameter list.
    """
    if not rows:
        return
    # Rows come from rating with plain ints, strings and bools; only times need converting.
    times = [i for i, f in enumerate(fields) if isinstance(f, peewee.DateTimeField)]

    def plain(row):
        row = list(row)
        for i in times:
            row[i] = fields[i].db_value(row[i])
        return row

    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    one = f"({marks(len(fields))})"
    for part in chunks(rows):
        params = [v for row in part for v in plain(row)]
        database.execute_sql(
            f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES '
            + ", ".join([one] * len(part)),
            params,
        )


def after_events(
    app, services: dict[int, Service], before: dict, slots: dict, now: datetime
) -> None:
    """Tell other plugins what changed: ``usage_rated`` per service, ``balance_low`` per crossing."""
    hook = app.plugins.hook
    candidates = []  # (service, type, after, before) falls that may cross a threshold
    for sid, old in before.items():
        service, new = services[sid], totals(slots[sid], now)
        hook.usage_rated(
            app=app,
            service=service,
            before={k: v[0] for k, v in old.items()},
            after={k: v[0] for k, v in new.items()},
        )
        for kind, after in new.items():
            was = old.get(kind)
            if (
                was is not None
                and after[0] < was[0]
                and may_cross(kind, after[0], was[0], after[1])
            ):
                candidates.append((service, kind, after, was))
    by_type: dict[str, set[int]] = defaultdict(set)
    for service, kind, _, _ in candidates:
        by_type[kind].add(service.customer_id)
    thresholds = {kind: thresholds_for(app, ids, kind) for kind, ids in by_type.items()}
    for service, kind, (remaining, initial, unit), was in candidates:
        threshold = thresholds[kind][service.customer_id]
        if is_low(kind, remaining, initial, threshold) and not is_low(
            kind, was[0], was[1], threshold
        ):
            balance = Balance(
                id=None,
                type=kind,
                remaining=remaining,
                initial=initial,
                unit=unit,
                weight=0,
                expires_at=None,
                name="",
            )
            # On the customer's record (rare: once per crossing), which also refreshes a
            # dashboard kept between visits, so the low-balance alert shows at once.
            record_system(
                app,
                "usage.balance_low",
                f"service:{service.id}",
                {"type": kind, "remaining": remaining, "threshold": threshold},
                customer_id=service.customer_id,
            )
            hook.balance_low(app=app, service=service, balance=balance, threshold=threshold)


def thresholds_for(app, customer_ids: Iterable[int], balance_type: str) -> dict[int, int]:
    """Thresholds of many customers: one bulk ``balance_thresholds`` call, then one by one."""
    ids = sorted(set(customer_ids))
    found = dict(
        app.plugins.hook.balance_thresholds(app=app, customer_ids=ids, balance_type=balance_type)
        or {}
    )
    for cid in ids:
        if found.get(cid) is None:
            found[cid] = threshold_for(app, cid, balance_type)
    return {cid: int(found[cid]) for cid in ids}


def may_cross(kind: str, after: int, before: int, initial: int) -> bool:
    """Whether a fall from ``before`` to ``after`` can cross any whole-number threshold.

    PERF: thresholds are whole percents (whole minor units for credit), so a fall
    that stays between two whole percents cannot cross one; most batches take
    a sliver of a balance, and this spares the threshold lookup.
    """
    if kind == "monetary":
        return True
    if initial <= 0:
        return False
    # Some whole t in 0..100 with after*100 < t*initial <= before*100?
    lowest = after * 100 // initial + 1
    return lowest <= 100 and lowest * initial <= before * 100
