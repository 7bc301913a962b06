"""Staff: staff sign-in with two-step sign-in, the staff console and API, and impersonation
(ACC-2, IMP-1..5, SEC-5)."""

from __future__ import annotations

from engine import hookimpl
from engine.registry import ANY_STAFF, PUBLIC, Route


@hookimpl
def plugin_requires():
    return ["identity"]


@hookimpl
def plugin_optional():
    # billing: invoices and payments on the console's customer page, and the invoice number
    # in its search; account: the activity log's sentences
    return ["billing", "account"]


@hookimpl
def register_settings():
    from plugins.staff.settings import StaffSettings

    return StaffSettings


@hookimpl(wrapper=True)
def authenticate_request(app, req):
    """A staff member who must still set up two-step sign-in reaches only the set-up (SEC-5)."""
    principal = yield
    from plugins.staff.twofactor import gate

    gate(app, req, principal)
    return principal


@hookimpl
def register_models():
    from plugins.staff.models import MODELS

    return list(MODELS)


@hookimpl
def register_routes(app):
    from plugins.staff import resources as r

    # SEC-5: each staff route says who may call it; docs/identity.md lists the permissions.
    sign_in, staff, impersonate = PUBLIC, ANY_STAFF, "can_impersonate"
    return [
        Route("/staff/login", r.StaffLoginPage(), permission=sign_in),
        Route("/staff/logout", r.StaffLogoutPage(), permission=sign_in),
        Route("/staff", r.ConsolePage(), permission=staff),
        Route("/staff/2fa", r.TwoFactorPage(), permission=staff),
        Route("/staff/2fa/off", r.TwoFactorOffPage(), permission=staff),
        Route("/staff/2fa/backup-codes", r.BackupCodesPage(), permission=staff),
        Route("/staff/customers/{customer_id}", r.CustomerPage(), permission=staff),
        Route(
            "/staff/customers/{customer_id}/impersonate",
            r.ImpersonatePage(),
            permission=impersonate,
        ),
        Route("/impersonate/{token}", r.OpenImpersonation()),
        Route("/impersonation/end", r.EndImpersonation()),
        Route("/api/v1/staff/auth/login", r.StaffLoginAPI(), permission=sign_in),
        Route("/api/v1/staff/auth/logout", r.StaffLogoutAPI(), permission=staff),
        Route("/api/v1/staff/me", r.StaffMeAPI(), permission=staff),
        Route("/api/v1/staff/2fa", r.StaffTwoFactorAPI(), permission=staff),
        Route("/api/v1/staff/2fa/setup", r.StaffTwoFactorSetupAPI(), permission=staff),
        Route("/api/v1/staff/2fa/enable", r.StaffTwoFactorEnableAPI(), permission=staff),
        Route("/api/v1/staff/2fa/backup-codes", r.StaffBackupCodesAPI(), permission=staff),
        Route("/api/v1/staff/customers", r.CustomersAPI(), permission=staff),
        Route("/api/v1/staff/customers/{customer_id}", r.CustomerAPI(), permission=staff),
        Route(
            "/api/v1/staff/customers/{customer_id}/contacts",
            r.CustomerContactsAPI(),
            permission=staff,
        ),
        Route(
            "/api/v1/staff/customers/{customer_id}/sites", r.CustomerSitesAPI(), permission=staff
        ),
        Route(
            "/api/v1/staff/customers/{customer_id}/services",
            r.CustomerServicesAPI(),
            permission=staff,
        ),
        # Anyone may list (their own; admins everyone's) and end their own; starting needs more.
        Route(
            "/api/v1/staff/impersonations",
            r.ImpersonationsAPI(),
            permission={"GET": staff, "POST": impersonate},
        ),
        Route(
            "/api/v1/staff/impersonations/{impersonation_id}",
            r.ImpersonationAPI(),
            permission=staff,
        ),
    ]


@hookimpl
def register_commands(cli, app_factory):
    from plugins.staff.commands import staff_group

    cli.add_command(staff_group(app_factory))
