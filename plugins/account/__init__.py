"""The Account section: details, contacts, sites, activity log, password, email; the support page."""

from __future__ import annotations

from engine import hookimpl
from engine.registry import Route, Section


@hookimpl
def plugin_requires():
    return ["identity"]


@hookimpl
def register_models():
    from plugins.account.models import MODELS

    return list(MODELS)


@hookimpl
def register_sections(app):
    return [Section("account", "Account", "/account", icon="user", order=80, primary=True)]


@hookimpl
def dashboard_cards(app, ctx):
    if ctx.customer_id is None:
        return []
    from plugins.account.cards import activity_card

    return [activity_card(app, ctx)]


@hookimpl
def register_routes(app):
    from plugins.account import resources as r

    return [
        Route("/account", r.AccountPage()),
        Route("/account/edit/{field}", r.EditPage()),
        Route("/account/email", r.EmailPage()),
        Route("/account/email/verify", r.EmailVerifyPage()),
        Route("/account/password", r.PasswordPage()),
        Route("/account/contacts", r.ContactsPage()),
        Route("/account/contacts/{contact_id}/manage", r.ContactManagePage()),
        Route("/account/contacts/{contact_id}/sign-out", r.ContactSignOutPage()),
        Route("/account/sites", r.SitesPage()),
        Route("/account/activity", r.ActivityPage()),
        Route("/support", r.SupportPage()),
        Route("/api/v1/me", r.MeAPI()),
        Route("/api/v1/account", r.AccountAPI()),
        Route("/api/v1/account/email", r.EmailAPI()),
        Route("/api/v1/account/email/verify", r.EmailVerifyAPI()),
        Route("/api/v1/account/password", r.PasswordAPI()),
        Route("/api/v1/account/contacts", r.ContactsAPI()),
        Route("/api/v1/account/contacts/{contact_id}/manage", r.ContactManageAPI()),
        Route("/api/v1/account/contacts/{contact_id}/sign-out", r.ContactSignOutAPI()),
        Route("/api/v1/account/sites", r.SitesAPI()),
        Route("/api/v1/account/activity", r.ActivityAPI()),
        Route("/api/v1/support", r.SupportAPI()),
    ]
