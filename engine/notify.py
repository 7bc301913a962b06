"""Telling people things: one call for every feature, channels decide how.

Feature code calls ``notify(app, Notice(...))`` inside its transaction. The
engine fires the ``notification_requested`` hook; each channel plugin (email
built in; SMS, web push from partners) records what it will deliver and
enqueues it through the outbox, so a crash or an SMTP/broker outage delays a
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


def notify(app, notice: Notice) -> None:
    """Hand a notice to every channel (call inside the business transaction)."""
    if notice.category not in CATEGORIES:
        raise ValueError(f"notice category must be one of {CATEGORIES}, not {notice.category!r}")
    app.plugins.hook.notification_requested(app=app, event=notice)
