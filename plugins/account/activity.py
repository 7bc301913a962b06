"""The activity log as the customer reads it (ACCT-5): one sentence per event in the customer's
language, the device by name, newest first, filtered by kind; what the viewer's role may read
(ACCT-7).

An event's kind comes from its action's first word (``payment`` in ``payment.succeeded``), so
a plugin's new action lands in the right kind and, until it has a sentence here, reads as the
kind's general sentence, never as its raw id.
"""

from __future__ import annotations

import re
from functools import reduce
from operator import or_

from peewee import fn

from engine import roles
from engine.devices import SYSTEM, device_name
from engine.i18n import N_
from engine.models import AuditEvent, StaffUser, User
from engine.theming import Formatter

#: The kinds a reader may filter by, in the order the page offers them.
KINDS = {
    "signins": N_("Sign-ins"),
    "security": N_("Security"),
    "payments": N_("Payments"),
    "services": N_("Services"),
    "account": N_("Account changes"),
}

#: An action's first word → its kind.
GROUPS = {
    "login": "signins",
    "logout": "signins",
    "session": "signins",
    "sessions": "signins",
    "password": "security",
    "2fa": "security",
    "api_key": "security",
    "email": "security",
    "push": "security",
    "impersonation": "security",
    "payment": "payments",
    "payment_method": "payments",
    "payment_link": "payments",
    "invoice": "payments",
    "transaction": "payments",
    "service": "services",
    "addon": "services",
    "topup": "services",
    "bucket": "services",
    "usage": "services",
    "account": "account",
    "customer": "account",
    "contact": "account",
    "site": "account",
    "invitation": "account",
    "notifications": "account",
    "alert": "account",
    "webhook": "account",
}

#: What an action of no known sentence reads as, by kind.
GENERAL = {
    "signins": N_("Sign-in activity"),
    "security": N_("Security settings changed"),
    "payments": N_("Billing activity"),
    "services": N_("A service changed"),
    "account": N_("Account changed"),
    None: N_("Account activity"),
}

#: action → its sentence, or (sentence with details, sentence without them). Details are
#: %(name)s (what the event names: a key, a card, a service), %(device)s, %(amount)s, %(number)s
#: (an invoice's) and %(email)s; the plain sentence is used when the event lacks one.
SENTENCES: dict[str, str | tuple[str, str]] = {
    # sign-ins
    "login": (N_("Signed in from %(device)s"), N_("Signed in")),
    "logout": N_("Signed out"),
    "login.linked": N_("An existing login was linked to a contact"),
    "account.switched": N_("Switched to this account"),
    "login.failed": (N_("Failed sign-in attempt from %(device)s"), N_("Failed sign-in attempt")),
    "login.locked": N_("Sign-in paused after failed attempts"),
    "session.revoked": N_("Session signed out"),
    "sessions.ended_others": N_("Signed out other sessions"),
    # security
    "password.changed": N_("Password changed"),
    "password.reset": N_("Password reset by email link"),
    "email.change_requested": (
        N_("Change of email address to %(email)s requested"),
        N_("Email change requested"),
    ),
    "email.changed": N_("Email address changed"),
    "2fa.enabled": N_("Two-step verification turned on"),
    "2fa.disabled": N_("Two-step verification turned off"),
    "2fa.backup_codes_renewed": N_("New backup codes"),
    "2fa.backup_code_used": N_("Backup code used"),
    "2fa.replay_refused": N_("A reused verification code was refused"),
    "api_key.created": (N_("API key “%(name)s” generated"), N_("API key generated")),
    "api_key.revoked": (N_("API key “%(name)s” revoked"), N_("API key revoked")),
    "push.subscribed": N_("Push notifications turned on for a browser"),
    "push.unsubscribed": N_("Push notifications turned off for a browser"),
    "push.subscriptions_removed": N_("Push notifications turned off on every browser"),
    "impersonation.started": N_("Support staff opened your account"),
    "impersonation.ended": N_("Support staff left your account"),
    "impersonation.action": N_("Support staff made a change"),
    # payments
    "payment.succeeded": (N_("Payment of %(amount)s received"), N_("Payment received")),
    "payment.failed": N_("Payment failed"),
    "payment.recorded": (N_("Payment of %(amount)s recorded"), N_("Payment recorded")),
    "payment.refund": N_("Refund requested"),
    "payment.refunded": N_("Payment refunded"),
    "payment_method.added": (N_("Card %(name)s saved"), N_("Card saved")),
    "payment_method.default": (N_("Card %(name)s made the default"), N_("Default card changed")),
    "payment_method.deleted": (N_("Card %(name)s removed"), N_("Card removed")),
    "payment_method.refused": (N_("Card %(name)s was declined"), N_("A card was declined")),
    "payment_link.created": N_("Payment link created"),
    "payment_link.revoked": N_("Payment link withdrawn"),
    "invoice.created": (N_("Invoice %(number)s issued"), N_("Invoice issued")),
    "invoice.issued": (N_("Invoice %(number)s issued"), N_("Invoice issued")),
    "invoice.updated": N_("Invoice updated"),
    "invoice.overdue": (N_("Invoice %(number)s is overdue"), N_("An invoice is overdue")),
    "invoice.pay": N_("Invoice payment started"),
    "invoice.pay_all": N_("Payment of all unpaid invoices started"),
    "invoice.payment_recorded": N_("Payment recorded against an invoice"),
    "transaction.created": N_("Transaction added"),
    "transaction.recorded": N_("Transaction added"),
    "transaction.updated": N_("Transaction changed"),
    "transaction.reversed": N_("Charge reversed"),
    # services
    "service.created": N_("Service added"),
    "service.updated": N_("Service updated"),
    "service.cancelled": (N_("Service “%(name)s” cancelled"), N_("Service cancelled")),
    "service.auto_renew_changed": (
        N_("Auto-renew changed for “%(name)s”"),
        N_("Auto-renew changed"),
    ),
    "service.renewed": N_("Service renewed"),
    "service.expired": N_("Service expired"),
    "service.plan_change_requested": N_("Plan change requested"),
    "service.plan_change_applied": N_("Plan changed"),
    "service.plan_change_scheduled": N_("Plan change scheduled for the next renewal"),
    "service.plan_change_cancelled": N_("Scheduled plan change cancelled"),
    "service.plan_change_dropped": N_("Scheduled plan change not made"),
    "addon.ordered": N_("Add-on ordered"),
    "addon.paid": N_("Add-on paid"),
    "addon.active": N_("Add-on activated"),
    "addon.failed": N_("Add-on could not be activated"),
    "addon.refunded": N_("Add-on refunded"),
    "addon.remove": N_("Add-on removal requested"),
    "addon.removed": N_("Add-on removed"),
    "addon.remove_failed": N_("Add-on could not be removed"),
    "addon.settled_by_operator": N_("Add-on order settled by support"),
    "topup.purchase": N_("Top-up bought"),
    "topup.credited": N_("Top-up added to your service"),
    "topup.credit_failed": N_("Top-up could not be added"),
    "topup.refunded": N_("Top-up refunded"),
    "topup.auto_on": N_("Automatic top-up turned on"),
    "topup.auto_off": N_("Automatic top-up turned off"),
    "topup.auto_triggered": N_("Automatic top-up bought"),
    "bucket.created": N_("Allowance added"),
    "bucket.updated": N_("Allowance changed"),
    "bucket.adjusted": N_("Allowance adjusted"),
    "bucket.expired": N_("Allowance expired"),
    "usage.balance_low": N_("Balance running low"),
    # account
    "account.updated": N_("Account details changed"),
    "account.language_changed": N_("Language changed"),
    "customer.created": N_("Account opened"),
    "customer.updated": N_("Account details updated"),
    "contact.created": N_("Contact added"),
    "contact.updated": N_("Contact details updated"),
    "contact.manage_granted": (
        N_("%(name)s may now manage the account"),
        N_("A contact may now manage the account"),
    ),
    "contact.manage_revoked": (
        N_("%(name)s may no longer manage the account"),
        N_("A contact may no longer manage the account"),
    ),
    "contact.signed_out": N_("A contact was signed out everywhere"),
    "site.created": N_("Site added"),
    "site.updated": N_("Site details updated"),
    "invitation.sent": (N_("Invitation sent to %(email)s"), N_("Invitation sent")),
    "invitation.revoked": N_("Invitation withdrawn"),
    "invitation.accepted": N_("Invitation accepted"),
    "notifications.preferences_changed": N_("Notification settings changed"),
    "alert.dismissed": N_("Alert dismissed"),
    "webhook.created": N_("Webhook added"),
    "webhook.updated": N_("Webhook changed"),
    "webhook.deleted": N_("Webhook removed"),
    "webhook.replayed": N_("Webhook delivery sent again"),
}

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def kind_of(action: str) -> str | None:
    return GROUPS.get(action.split(".", 1)[0])


def activity_query(ctx, kind: str | None = None):
    """The activity log the viewer may read (ACCT-7): the whole account's for the primary
    contact and managers, otherwise only what they did (or staff did as them); of one kind."""
    query = AuditEvent.select().where(AuditEvent.customer == ctx.require_customer())
    if kind is not None:
        query = query.where(of_kind(kind))
    return roles.mine_unless(query, ctx.principal, "all_activity", AuditEvent.user)


def of_kind(kind: str):
    """The actions of ``kind``: a group's bare word (``login``) or anything under it
    (``login.failed``); compared exactly (LIKE would read ``_`` as a wildcard)."""
    groups = [g for g, k in GROUPS.items() if k == kind]
    under = [fn.SUBSTR(AuditEvent.action, 1, len(g) + 1) == g + "." for g in groups]
    return reduce(or_, under, AuditEvent.action.in_(groups))


def sentence(app, event: AuditEvent, fmt: Formatter) -> str:
    """The event as a sentence in the current language: "Signed in from Chrome on Android"."""
    _ = app.translator.gettext
    found = SENTENCES.get(event.action)
    if found is None:
        return _(GENERAL.get(kind_of(event.action), GENERAL[None]))
    if isinstance(found, str):
        return _(found)
    detailed, plain = found
    values = _details(app, event, fmt)
    wanted = _PLACEHOLDER.findall(detailed)
    if all(values.get(name) for name in wanted):
        return _(detailed, **{name: values[name] for name in wanted})
    return _(plain)


def _details(app, event: AuditEvent, fmt: Formatter) -> dict[str, str]:
    data = event.data if isinstance(event.data, dict) else {}
    values = {
        "name": _text(data.get("name") or data.get("label")),
        "email": _text(data.get("new_email") or data.get("email")),
        "number": _text(data.get("number")),
        "device": "",
        "amount": "",
    }
    if _real_device(event.user_agent):
        values["device"] = device_name(event.user_agent, app.translator.gettext)
    amount, currency = data.get("amount"), data.get("currency")
    if isinstance(amount, int) and not isinstance(amount, bool) and isinstance(currency, str):
        try:
            values["amount"] = fmt.money(amount, currency)
        except (ValueError, KeyError, TypeError):
            values["amount"] = ""
    return values


def _text(value) -> str:
    return value[:200] if isinstance(value, str) else ""


def _real_device(user_agent: str) -> bool:
    return bool(user_agent) and user_agent != SYSTEM


def describe_events(app, ctx, rows) -> list[dict]:
    """Activity rows for people: the sentence, who did it, when, from which device and where
    (ACCT-5), in the viewer's language and time zone."""
    _ = app.translator.gettext
    fmt = Formatter(ctx.locale, ctx.timezone)
    viewer_id = ctx.principal.user_id if ctx.principal else None
    rows = list(rows)
    user_ids = {r.user_id for r in rows if r.user_id}
    staff_ids = {r.staff_id for r in rows if r.staff_id}
    # No query for an empty set (most rows have no staff): the dashboard reads this per visit.
    users = (
        {u.id: u.email for u in User.select(User.id, User.email).where(User.id.in_(user_ids))}
        if user_ids
        else {}
    )
    staff = (
        {
            s.id: s.name
            for s in StaffUser.select(StaffUser.id, StaffUser.name).where(
                StaffUser.id.in_(staff_ids)
            )
        }
        if staff_ids
        else {}
    )
    out = []
    for r in rows:
        person = _("You") if viewer_id and r.user_id == viewer_id else users.get(r.user_id, "")
        staff_name = staff.get(r.staff_id) if r.staff_id else None
        if r.impersonated and staff_name:
            actor = _(
                "%(staff)s (support staff, acting as %(person)s)",
                staff=staff_name,
                person=users.get(r.user_id) or _("you"),
            )
        elif staff_name:
            actor = _("%(staff)s (support staff)", staff=staff_name)
        else:
            actor = person or _("Automatic")
        out.append(
            {
                "id": r.id,
                "action": r.action,
                "kind": kind_of(r.action),
                "description": sentence(app, r, fmt),
                "target": r.target,
                "data": r.data,
                "at": r.created_at,
                "actor": actor,
                "impersonated": r.impersonated,
                "staff": staff_name,
                "ip": r.ip,
                "device": device_name(r.user_agent, _) if _real_device(r.user_agent) else None,
                "user_agent": r.user_agent,
            }
        )
    return out
