"""Staff: staff sign-in, the staff console and API, and impersonation (ACC-2, IMP-1..5)."""
from __future__ import annotations

from engine import hookimpl
from engine.registry import Route


@hookimpl
def plugin_requires():
    return ["identity"]


@hookimpl
def register_models():
    from plugins.staff.models import MODELS
    return list(MODELS)


@hookimpl
def register_routes(app):
    from plugins.staff import resources as r
    return [
        Route("/staff/login", r.StaffLoginPage()),
        Route("/staff/logout", r.StaffLogoutPage()),
        Route("/staff", r.ConsolePage()),
        Route("/staff/2fa", r.TwoFactorPage()),
        Route("/staff/2fa/off", r.TwoFactorOffPage()),
        Route("/staff/customers/{customer_id}", r.CustomerPage()),
        Route("/staff/customers/{customer_id}/impersonate", r.ImpersonatePage()),
        Route("/impersonate/{token}", r.OpenImpersonation()),
        Route("/impersonation/end", r.EndImpersonation()),
        Route("/api/v1/staff/auth/login", r.StaffLoginAPI()),
        Route("/api/v1/staff/auth/logout", r.StaffLogoutAPI()),
        Route("/api/v1/staff/me", r.StaffMeAPI()),
        Route("/api/v1/staff/2fa", r.StaffTwoFactorAPI()),
        Route("/api/v1/staff/2fa/setup", r.StaffTwoFactorSetupAPI()),
        Route("/api/v1/staff/2fa/enable", r.StaffTwoFactorEnableAPI()),
        Route("/api/v1/staff/customers", r.CustomersAPI()),
        Route("/api/v1/staff/customers/{customer_id}", r.CustomerAPI()),
        Route("/api/v1/staff/customers/{customer_id}/contacts", r.CustomerContactsAPI()),
        Route("/api/v1/staff/customers/{customer_id}/sites", r.CustomerSitesAPI()),
        Route("/api/v1/staff/customers/{customer_id}/services", r.CustomerServicesAPI()),
        Route("/api/v1/staff/impersonations", r.ImpersonationsAPI()),
        Route("/api/v1/staff/impersonations/{impersonation_id}", r.ImpersonationAPI()),
    ]


@hookimpl
def register_commands(cli, app_factory):
    from plugins.staff.commands import staff_group
    cli.add_command(staff_group(app_factory))
