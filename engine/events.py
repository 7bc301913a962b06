"""Business events for the operator's systems (INT-6): ``emit(app, type, data)``.

A plugin calls ``emit`` inside its own transaction when something the operator may want to
hear about happened (a payment went through, an add-on was ordered). The engine only checks
the type and passes it on through the ``event_emitted`` hook; the webhooks plugin writes the
event and one delivery per subscribed endpoint in that same transaction, so an event exists
exactly when the change does. Without a listener, emitting costs nothing.

``EVENT_TYPES`` is the catalogue (docs/integration.md, Webhooks); ``data`` is plain JSON
(ids, amounts in minor units, ISO times), never a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    from engine.app import Portico

#: Every event type, with what it means (the catalogue a webhook endpoint subscribes from).
EVENT_TYPES: dict[str, str] = {
    "payment.succeeded": "A payment went through (card or recorded offline).",
    "payment.failed": "A payment was declined or failed.",
    "invoice.paid": "An invoice was paid in full.",
    "topup.purchased": "A top-up was bought and credited to its service.",
    "addon.ordered": "An add-on was ordered (and paid, when it has a one-off price): "
    "it is ready to be set up.",
    "addon.provisioned": "An add-on was set up and is active.",
    "addon.failed": "An add-on could not be set up (any payment for it is refunded).",
    "addon.cancelled": "An add-on was taken off its service.",
    "plan_change.requested": "A customer asked to change a service's plan.",
    "service.cancelled": "A customer cancelled a service in the portal.",
    "contact.changed": "A contact's details (phone, language, time zone) changed.",
    "login.new_device": "A login signed in from a device it had not used before.",
}


def emit(
    app: Portico, event_type: str, data: dict[str, Any], customer_id: int | None = None
) -> None:
    """Announce ``event_type`` with ``data`` (call it inside the transaction of the change)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}: add it to engine.events")
    app.plugins.hook.event_emitted(
        app=app, event_type=event_type, data=data, customer_id=customer_id
    )


__all__ = ["EVENT_TYPES", "emit"]
