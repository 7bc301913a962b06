"""One login, several customer accounts (SUP-2): which accounts a login has, and switching.

A login (``User``) is made for one contact, its own; each further account is a
``LinkedContact`` row naming the login's contact at that customer. A session acts for one
account at a time: ``Session.contact`` (null for the login's own). Authentication joins the
current account's contact (``auth._SESSION_USER``), so every other page and API call keeps
working off ``ctx.customer_id`` unchanged: tenant isolation stays where it was.

Switching is the account holder's own act in their own session: an API key belongs to the
customer it was made for, and staff impersonating a contact stay on that contact's account.
"""

from __future__ import annotations

from typing import Any, Callable

from engine import audit
from engine.api import operation
from engine.context import as_id, in_person_refusal
from engine.db import database
from engine.i18n import N_
from engine.errors import Problem
from engine.forms import validate_form
from engine.models import Contact, Customer, LinkedContact, User
from plugins.identity.models import Session
from plugins.identity.schemas import CustomerAccountOut, CustomerAccountsOut, SwitchBody

IMPERSONATION_MESSAGE = (
    "Staff stay on the account they opened; open the other one from the console."
)
API_KEY_MESSAGE = "An API key belongs to one customer account: use a key made on the other account."


def accounts_of(user_id: int) -> list[Contact]:
    """The login's contacts, its own first, then the linked ones by customer number; each with
    its ``customer`` loaded."""
    own = (
        Contact.select(Contact, Customer)
        .join(Customer)
        .switch(Contact)
        .join(User, on=(User.contact == Contact.id))
        .where(User.id == user_id)
    )
    linked = (
        Contact.select(Contact, Customer)
        .join(Customer)
        .switch(Contact)
        .join(LinkedContact, on=(LinkedContact.contact == Contact.id))
        .where(LinkedContact.user == user_id)
        .order_by(Customer.number)
    )
    return list(own) + list(linked)


def lister(ctx, user_id: int) -> Callable[[], list[dict[str, Any]]]:
    """``ctx.extra["accounts"]``: the login's accounts for the header's switcher, read on first
    use (only logins with linked accounts get one: ``auth._SESSION_USER`` says which)."""

    def accounts() -> list[dict[str, Any]]:
        return ctx.once("identity.accounts", lambda: describe(ctx, accounts_of(user_id)))

    return accounts


def describe(ctx, contacts: list[Contact]) -> list[dict[str, Any]]:
    current = ctx.customer_id
    return [
        {
            "id": c.customer.id,
            "number": c.customer.number,
            "name": c.customer.name,
            "kind": c.customer.kind,
            "contact_id": c.id,
            "current": c.customer.id == current,
        }
        for c in contacts
    ]


def contact_at(user_id: int, customer_id: int) -> Contact | None:
    """The login's contact at ``customer_id`` (its own or a linked one), or None."""
    for contact in accounts_of(user_id):
        if contact.customer_id == customer_id:
            return contact
    return None


def load_user_at(user_id: int, customer_id: int) -> User | None:
    """The login acting for ``customer_id``: ``user.contact`` is its contact there (never
    ``save()`` it), or None when the login has no contact there (any more)."""
    user = User.get_or_none(User.id == user_id)
    contact = contact_at(user_id, customer_id) if user is not None else None
    if contact is None:
        return None
    user.contact = contact
    return user


def login_of(contact_id: int) -> User | None:
    """The login that speaks for a contact: the contact's own, or the one linked to it."""
    own = User.get_or_none(User.contact == contact_id)
    if own is not None:
        return own
    return (
        User.select()
        .join(LinkedContact, on=(LinkedContact.user == User.id))
        .where(LinkedContact.contact == contact_id)
        .first()
    )


def switch(app, ctx, customer_id: Any) -> dict[str, Any]:
    """Make ``customer_id`` the session's current account (audited); 404 if the login has no
    contact there (a foreign customer is never told apart from a missing one)."""
    problem = in_person_refusal(ctx, IMPERSONATION_MESSAGE, API_KEY_MESSAGE)
    if problem is not None:
        raise problem
    principal = ctx.principal
    try:
        wanted = as_id(customer_id)
    except (TypeError, ValueError):
        wanted = None
    contacts = accounts_of(principal.user_id)
    target = next((c for c in contacts if c.customer_id == wanted), None)
    if target is None:
        raise Problem(404, N_("Not found"), N_("You have no account with this id."))
    session = ctx.extra.get("session")
    if session is None:  # a signed-in customer without a session row: nothing to switch
        raise Problem(404, N_("Not found"), N_("You have no account with this id."))
    own = contacts[0].id
    previous = next((c for c in contacts if c.customer_id == principal.customer_id), None)
    with database.atomic():
        Session.update(contact=None if target.id == own else target.id).where(
            Session.id == session.id
        ).execute()
        if target.customer_id != principal.customer_id:
            audit.record(
                ctx,
                "account.switched",
                f"customer:{target.customer_id}",
                {"from": previous.customer.number if previous else None},
                customer_id=target.customer_id,
            )
    ctx.extra["customer_number"] = target.customer.number
    return {
        "id": target.customer.id,
        "number": target.customer.number,
        "name": target.customer.name,
        "kind": target.customer.kind,
        "contact_id": target.id,
        "current": True,
    }


def link(ctx, user: User, contact: Contact) -> LinkedContact:
    """Let ``user`` speak for ``contact`` too (audited on the contact's customer). The caller
    checks the contact has no login yet; in the caller's transaction."""
    row = LinkedContact.create(user=user.id, contact=contact.id)
    audit.record(
        ctx,
        "login.linked",
        f"contact:{contact.id}",
        {"user": user.id, "contact": contact.id},
        customer_id=contact.customer_id,
        user_id=user.id,
    )
    return row


# -- web ---------------------------------------------------------------------------------


def _render(req, resp, status: int = 200, errors: dict | None = None) -> None:
    ctx = req.context
    ctx.extra["section"] = "account"
    ctx.app.page(
        req,
        resp,
        "identity/accounts.html",
        status,
        accounts=describe(ctx, accounts_of(ctx.principal.user_id)),
        errors=errors or {},
        refused=in_person_refusal(ctx, IMPERSONATION_MESSAGE, API_KEY_MESSAGE),
    )


class AccountsPage:
    """``/account/switch``: your customer accounts; choosing one makes it the session's (SUP-2)."""

    def on_get(self, req, resp):
        req.context.require_customer()
        _render(req, resp)

    def on_post(self, req, resp):
        from plugins.identity.resources import redirect

        req.context.require_customer()
        data, errors = validate_form(req, SwitchBody)
        if errors:
            return _render(req, resp, 422, errors)
        switch(req.context.app, req.context, data["customer_id"])
        redirect(resp, "/")


class AccountsAPI:
    """``GET /api/v1/me/accounts``."""

    @operation(
        "Your customer accounts: every customer your login has a contact at (SUP-2)",
        response=CustomerAccountsOut,
    )
    def on_get(self, req, resp):
        ctx = req.context
        ctx.require_customer()
        return {"items": describe(ctx, accounts_of(ctx.principal.user_id))}


class SwitchAPI:
    """``POST /api/v1/me/switch``."""

    @operation(
        "Switch this session to another of your customer accounts (SUP-2)",
        body=SwitchBody,
        response=CustomerAccountOut,
        errors={
            403: "With an API key, or under impersonation",
            404: "Not one of your accounts",
        },
        description="Every later request of this session (cookie or bearer token) acts for "
        "that customer. Audited as `account.switched` on the account switched to.",
    )
    def on_post(self, req, resp, body):
        ctx = req.context
        ctx.require_customer()
        return switch(ctx.app, ctx, body["customer_id"])
