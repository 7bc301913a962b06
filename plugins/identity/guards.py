"""Who may change credentials: the customer in person, in a signed-in session.

Password, email, 2FA and API-key changes, and signing sessions out, are refused
under impersonation (IMP-5) and through API keys (a leaked key must not mint
more keys, take over the login or sign its owner out). Each refusal is a 403
problem with a stable type (``engine.context.in_person_refusal``).
"""

from __future__ import annotations

from engine.context import in_person_refusal, require_in_person
from engine.errors import Problem
from engine.i18n import N_

IMPERSONATION_MESSAGE = N_(
    "Staff cannot change the customer's password, email address, "
    "two-step verification or API keys while impersonating."
)
API_KEY_MESSAGE = N_("Sign in as the account holder to change credentials.")
SESSIONS_IMPERSONATION_MESSAGE = N_(
    "Staff cannot sign the customer out of their sessions while impersonating."
)
SESSIONS_API_KEY_MESSAGE = N_("Sign in as the account holder to sign out sessions.")


def refusal(ctx) -> Problem | None:
    return in_person_refusal(ctx, IMPERSONATION_MESSAGE, API_KEY_MESSAGE)


def require_account_holder(ctx) -> None:
    require_in_person(ctx, IMPERSONATION_MESSAGE, API_KEY_MESSAGE)


def require_account_holder_for_sessions(ctx) -> None:
    require_in_person(ctx, SESSIONS_IMPERSONATION_MESSAGE, SESSIONS_API_KEY_MESSAGE)
