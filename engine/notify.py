"""Telling people things: one call for every feature, channels decide how.

Feature code calls ``notify(app, Notice(...))`` inside its transaction. The
engine fires the ``notification_requested`` hook, asks ``notification_route``
how each channel should get it (the customer's preferences: send now, keep
for the daily digest, or skip), and hands it to each channel that should send
it. A channel (email built in; SMS, web push from partners) records what it
will deliver and enqueues it through the outbox, so a crash or an SMTP/broker outage delays a
message but never loses or doubles it (one delivery per notice key, channel
and recipient).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

CATEGORIES = ("billing", "usage", "service", "security", "account")


@dataclass(frozen=True)
class Notice:
    """Something a person may be told about.

    ``kind`` names the templates (``email/<kind>.txt`` and ``.html``; the first
    line of the text template is the subject). ``key`` makes it idempotent:
    the same key is delivered once per channel and recipient. Address it to a
    ``user_id`` (their locale and preferences apply) or to a bare ``email``
    (e.g. a new address being verified).
    """
    kind: str
    key: str
    category: str = "account"
    user_id: int | None = None
    customer_id: int | None = None
    email: str | None = None
    data: dict = field(default_factory=dict)
    locale: str | None = None
    mandatory: bool = False  # security notices ignore opt-outs

    def to_dict(self) -> dict:
        return asdict(self)


class Channel:
    """What a notification channel plugin returns from ``notification_channels``.

    ``accept`` runs inside the caller's transaction: record the delivery
    (idempotent on ``notice.key`` and the recipient) and enqueue the sending
    with ``app.tasks.enqueue``. It must never send anything itself.
    """
    id = ""
    label = ""

    def accept(self, app, notice: Notice) -> None:  # pragma: no cover - interface
        raise NotImplementedError


DEFAULT_THRESHOLD_PERCENT = 10


def threshold(app, customer_id: int, balance_type: str) -> int:
    """The customer's low-balance threshold for a balance type (default 10%)."""
    found = app.plugins.hook.balance_threshold(app=app, customer_id=customer_id,
                                               balance_type=balance_type)
    return DEFAULT_THRESHOLD_PERCENT if found is None else found


def notify(app, notice: Notice) -> None:
    """Hand a notice to every channel it is routed to (call inside the business transaction)."""
    if notice.category not in CATEGORIES:
        raise ValueError(f"notice category must be one of {CATEGORIES}, not {notice.category!r}")
    app.plugins.hook.notification_requested(app=app, event=notice)
    for channel_id, channel in app.channels.items():
        route = "send" if notice.mandatory else (app.plugins.hook.notification_route(
            app=app, notice=notice, channel=channel_id) or "send")
        if route == "send":
            channel.accept(app, notice)


def customer_users(customer_id: int):
    """The active logins of a customer's contacts, primary contact first."""
    from engine.models import Contact, User
    return (User.select().join(Contact)
            .where((Contact.customer == customer_id) & (User.is_active == True))  # noqa: E712
            .order_by(Contact.is_primary.desc(), User.id))


def notify_customer(app, customer_id: int, kind: str, key: str, category: str,
                    data: dict | None = None) -> None:
    """Tell every login of a customer (each by their own preferences and language)."""
    for user in customer_users(customer_id):
        notify(app, Notice(kind=kind, key=key, category=category, user_id=user.id,
                           customer_id=customer_id, data=data or {}))
