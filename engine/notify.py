"""Telling people things: one call for every feature, channels decide how.

Feature code calls ``notify(app, Notice(...))`` inside its transaction. The
engine fires the ``notification_requested`` hook, asks ``notification_route``
how each channel should get it (the customer's preferences: send now, keep
for the daily digest, or skip), and hands it to each channel that should send
it. A sensitive notice (SEC-1: it carries a secret or is a security notice)
skips all of that: it goes to the email channel alone, at once, and observers
see it without its data. A channel (email built in; SMS, web push from
partners) records what it will deliver and enqueues it through the outbox, so
a crash or an SMTP/broker outage delays a message but never loses or doubles
it (one delivery per notice key, channel and recipient).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace

log = logging.getLogger("portico.notify")

CATEGORIES = ("billing", "usage", "service", "security", "account")
#: The one channel a sensitive notice may take: email, to the address it was issued for.
SENSITIVE_CHANNEL = "email"


@dataclass(frozen=True)
class Notice:
    """Something a person may be told about.

    ``kind`` names the templates (``email/<kind>.txt`` and ``.html``; the first
    line of the text template is the subject). ``key`` makes it idempotent:
    the same key is delivered once per channel and recipient. Address it to a
    ``user_id`` (their locale and preferences apply) or to a bare ``email``
    (e.g. a new address being verified).

    ``sensitive`` (SEC-1): the notice carries a secret (a reset or verification
    link) or is a security notice; every ``security`` notice is. It goes by
    email only, never to push or a partner channel, whatever a channel or a
    preference says, and to exactly one address: the login's own address on
    record when it names a ``user_id`` (an address given with it is refused),
    else the bare ``email`` it was issued for: the new address a verification
    link must reach, or the old address told that it was replaced.
    ``mandatory`` sends a notice that is not sensitive to every channel, opt-outs
    ignored.
    """

    kind: str
    key: str
    category: str = "account"
    user_id: int | None = None
    customer_id: int | None = None
    email: str | None = None
    data: dict = field(default_factory=dict)
    locale: str | None = None
    mandatory: bool = False
    sensitive: bool = False

    def __post_init__(self):
        if self.category == "security":
            object.__setattr__(self, "sensitive", True)  # a security notice always is
        if self.sensitive and self.user_id is not None and self.email:
            raise ValueError(
                f"sensitive notice {self.kind!r} names a login and another address: "
                "it goes to the login's own address; address the other one bare"
            )

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
    found = app.plugins.hook.balance_threshold(
        app=app, customer_id=customer_id, balance_type=balance_type
    )
    return DEFAULT_THRESHOLD_PERCENT if found is None else found


def notify(app, notice: Notice) -> None:
    """Hand a notice to every channel it is routed to (call inside the business transaction)."""
    if notice.category not in CATEGORIES:
        raise ValueError(f"notice category must be one of {CATEGORIES}, not {notice.category!r}")
    if notice.sensitive:
        # APPSEC(SEC-1): no route hook, preference or partner channel sees a secret: observers
        # get the notice without its data, and only email carries it (never held for a digest).
        app.plugins.hook.notification_requested(app=app, event=replace(notice, data={}))
        channel = app.channels.get(SENSITIVE_CHANNEL)
        if channel is None:
            log.error("sensitive notice %s not sent: the email channel is disabled", notice.kind)
            return
        channel.accept(app, notice)
        return
    app.plugins.hook.notification_requested(app=app, event=notice)
    for channel_id, channel in app.channels.items():
        route = (
            "send"
            if notice.mandatory
            else (
                app.plugins.hook.notification_route(app=app, notice=notice, channel=channel_id)
                or "send"
            )
        )
        if route == "send":
            channel.accept(app, notice)


def customer_users(customer_id: int):
    """The active logins of a customer's contacts, primary contact first."""
    from engine.models import Contact, User

    return (
        User.select()
        .join(Contact)
        .where((Contact.customer == customer_id) & (User.is_active == True))  # noqa: E712
        .order_by(Contact.is_primary.desc(), User.id)
    )


def notify_customer(
    app, customer_id: int, kind: str, key: str, category: str, data: dict | None = None
) -> None:
    """Tell every login of a customer (each by their own preferences and language)."""
    for user in customer_users(customer_id):
        notify(
            app,
            Notice(
                kind=kind,
                key=key,
                category=category,
                user_id=user.id,
                customer_id=customer_id,
                data=data or {},
            ),
        )
