"""The activity log (ACCT-5, IMP-3): every change records who, what, when, from where."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.models import AuditEvent

if TYPE_CHECKING:
    from engine.app import Portico
    from engine.context import Context


def record(
    ctx: Context,
    action: str,
    target: str = "",
    data: dict[str, Any] | None = None,
    *,
    customer_id: int | None = None,
    user_id: int | None = None,
) -> AuditEvent:
    """Write one audit event for the request's principal (call inside the change's transaction).

    Under impersonation the event carries both the customer's user and the staff
    member, and is flagged, so the customer sees it in their activity log. A service token's
    change carries the token (``data["service_token"]``: its id and name).
    Never put secrets (passwords, tokens, card data) in ``data``.
    """
    columns = _columns(ctx, action, target, data, customer_id, user_id)
    if not ctx.audited:  # the demo seed (``Context.audited``)
        return AuditEvent(**columns)
    event: AuditEvent = AuditEvent.create(**columns)
    ctx.app.plugins.hook.audit_recorded(app=ctx.app, event=event)
    return event


def _columns(
    ctx: Context,
    action: str,
    target: str,
    data: dict[str, Any] | None,
    customer_id: int | None,
    user_id: int | None,
) -> dict[str, Any]:
    p = ctx.principal
    if p is not None and p.is_service:  # INT-1: a system's change names its service token
        data = {**(data or {}), "service_token": ctx.extra["service_token"]}
    return {
        "customer": customer_id if customer_id is not None else (p.customer_id if p else None),
        "user": user_id if user_id is not None else (p.user_id if p else None),
        "staff": (p.impersonator_id or p.staff_id) if p else None,
        "impersonated": bool(p and p.impersonated),
        "action": action,
        "target": target,
        "data": data or {},
        "ip": ctx.ip,
        "user_agent": ctx.user_agent,
    }


def record_many(
    ctx: Context, events: list[tuple[str, str, dict[str, Any], int | None]]
) -> list[AuditEvent]:
    """``record`` for many changes at once (a bulk import's batch): (action, target, data,
    customer_id) each, written with one multi-row INSERT on PostgreSQL; the same events, in
    the same order, and the same ``audit_recorded`` hook for each."""
    from engine.db import insert_rows

    rows = [AuditEvent(**_columns(ctx, *e, None)) for e in events]
    if not ctx.audited:
        return rows
    for row, new_id in zip(rows, insert_rows(AuditEvent, [r.__data__ for r in rows])):
        row.id = new_id
        ctx.app.plugins.hook.audit_recorded(app=ctx.app, event=row)
    return rows


def record_system(
    app: Portico,
    action: str,
    target: str = "",
    data: dict[str, Any] | None = None,
    *,
    customer_id: int | None = None,
    user_id: int | None = None,
    staff_id: int | None = None,
) -> AuditEvent:
    """An audit event with no request behind it (a background job, a CLI command)."""
    event: AuditEvent = AuditEvent.create(
        customer=customer_id,
        user=user_id,
        staff=staff_id,
        action=action,
        target=target,
        data=data or {},
        ip="",
        user_agent="system",
    )
    app.plugins.hook.audit_recorded(app=app, event=event)
    return event


def describe(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "action": event.action,
        "target": event.target,
        "data": event.data,
        "at": event.created_at,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "impersonated": event.impersonated,
        "staff_id": event.staff_id,
    }
