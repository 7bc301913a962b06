"""Contact roles on a customer account (ACCT-7): who may see and do what. One rule set, which
the JSON API and the portal both go through (each plugin's service functions call it).

- ``primary``: the primary contact (``Contact.is_primary``; only staff change it, LIM-1).
- ``manager``: a contact the primary granted "manage" (``Contact.can_manage``).
- ``member``: every other contact with a login.

Everyone runs their own login (password, email, 2FA, sessions) and their own API keys, and
uses the account (services, top-ups, add-ons, invoices, paying). ``POWERS`` says who may do
more. Acting on another contact's login or keys also needs a higher role than theirs
(``require_over``): managers over members, the primary over everyone, nobody over the primary.
"""

from __future__ import annotations

from engine.errors import Problem
from engine.i18n import N_

PRIMARY, MANAGER, MEMBER = "primary", "manager", "member"
ROLES = (PRIMARY, MANAGER, MEMBER)
_RANK = {MEMBER: 0, MANAGER: 1, PRIMARY: 2}

#: What each power lets a role do beyond its own login; docs/identity.md has the same table.
POWERS: dict[str, frozenset[str]] = {
    # every contact's login (its email, whether it is active, whether 2FA is on)
    "see_logins": frozenset({PRIMARY, MANAGER}),
    # sign another contact out of every session
    "end_sessions": frozenset({PRIMARY, MANAGER}),
    # every API key of the account (others see and revoke only their own)
    "all_api_keys": frozenset({PRIMARY, MANAGER}),
    # the whole activity log (others see only what they did, or staff did as them)
    "all_activity": frozenset({PRIMARY, MANAGER}),
    # delete the account's saved cards and choose the default one (anyone may add one and pay)
    "payment_methods": frozenset({PRIMARY, MANAGER}),
    # change a service's plan (SVC-3): it changes what the account is charged
    "change_plan": frozenset({PRIMARY, MANAGER}),
    # grant or take back "manage"
    "grant_manage": frozenset({PRIMARY}),
}


def of(contact) -> str:
    """The role of a ``Contact``."""
    if contact.is_primary:
        return PRIMARY
    return MANAGER if contact.can_manage else MEMBER


def may(principal, power: str) -> bool:
    """Whether the signed-in customer's role has ``power`` (staff impersonating a contact have
    that contact's role)."""
    return principal is not None and principal.is_customer and principal.role in POWERS[power]


def forbidden() -> Problem:
    return Problem(
        403,
        N_("Your role on this account does not allow this"),
        N_("Ask the account's primary contact, or a contact who manages the account."),
        type="role-forbidden",
    )


def require(principal, power: str) -> None:
    """403 ``role-forbidden`` unless the principal's role has ``power``."""
    if not may(principal, power):
        raise forbidden()


def mine_unless(query, principal, power: str, user_field):
    """``query`` as ``principal`` may see it: all of it with ``power``, else only the rows
    whose ``user_field`` is their own login."""
    return query if may(principal, power) else query.where(user_field == principal.user_id)


def may_act_over(principal, power: str, contact) -> bool:
    """May ``principal`` act on ``contact``'s login or keys? Their own, always; another's with
    ``power`` and a higher role than that contact's."""
    if contact.id == principal.contact_id:
        return True
    return may(principal, power) and _RANK[principal.role] > _RANK[of(contact)]


def require_over(principal, power: str, contact) -> None:
    """``may_act_over``, or 403 ``role-forbidden``."""
    if not may_act_over(principal, power, contact):
        raise forbidden()
