"""Who may subscribe a browser to push, and forgetting every browser of a login."""

from __future__ import annotations

from engine import audit
from engine.context import require_in_person
from engine.i18n import N_
from plugins.webpush.models import PushSubscription

IMPERSONATION_MESSAGE = N_(
    "Staff cannot turn on push notifications for the customer while "
    "impersonating: the customer does that in their own session."
)
API_KEY_MESSAGE = N_(
    "Push notifications are turned on in the portal, in the account holder's "
    "own session, not with an API key."
)


def require_subscriber(ctx) -> None:
    """IMP-6: only the account holder, signed in in person, may add a browser to their login."""
    ctx.require_customer()
    require_in_person(ctx, IMPERSONATION_MESSAGE, API_KEY_MESSAGE)


def remove_all(ctx, user, reason: str) -> int:
    """SEC-4: forget every browser of ``user`` (inside the sign-out's transaction), audited."""
    gone = PushSubscription.delete().where(PushSubscription.user == user.id).execute()
    if gone:
        audit.record(
            ctx,
            "push.subscriptions_removed",
            f"user:{user.id}",
            {"count": gone, "reason": reason},
            customer_id=user.contact.customer_id,
            user_id=user.id,
        )
    return gone
