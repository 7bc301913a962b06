"""Who may change credentials: the customer in person, in a signed-in session.

Password, email, 2FA and API-key changes are refused under impersonation
(IMP-5) and through API keys (a leaked key must not mint more keys or take
over the login). Each refusal is a 403 problem with a stable type.
"""
from __future__ import annotations

from engine.errors import Problem

IMPERSONATION_MESSAGE = ("Staff cannot change the customer's password, email address, "
                         "two-step verification or API keys while impersonating.")


def refusal(ctx) -> Problem | None:
    p = ctx.principal
    if p is not None and p.impersonated:
        return Problem(403, "Not allowed during impersonation", IMPERSONATION_MESSAGE,
                       type="impersonation-forbidden")
    if p is not None and p.via == "api_key":
        return Problem(403, "Not allowed with an API key",
                       "Sign in as the account holder to change credentials.",
                       type="api-key-forbidden")
    return None


def require_account_holder(ctx) -> None:
    problem = refusal(ctx)
    if problem is not None:
        raise problem
