"""Usage and balances (USE-1..7): buckets, the ledger, rating, usage views, low-balance alerts."""

from __future__ import annotations

from engine import hookimpl
from engine.i18n import N_
from engine.registry import Action, Route, Section


@hookimpl
def register_hookspecs():
    from plugins.usage import hookspecs

    return [hookspecs]


@hookimpl
def plugin_requires():
    return ["services"]


@hookimpl
def register_settings():
    from plugins.usage.settings import UsageSettings

    return UsageSettings


@hookimpl
def register_models():
    from plugins.usage.models import MODELS

    return list(MODELS)


@hookimpl
def register_archives(app):
    from plugins.usage.retention import archive

    return [archive()]


@hookimpl
def register_sections(app):
    return [Section("usage", N_("Usage"), "/usage", icon="usage", order=30, primary=True)]


@hookimpl
def register_routes(app):
    from plugins.usage import resources as r

    routes = [
        Route("/api/v1/services/{service_id}/balances", r.BalancesAPI()),
        Route("/api/v1/services/{service_id}/usage", r.UsageAPI()),
        Route("/api/v1/services/{service_id}/usage/events", r.UsageEventsAPI()),
        Route("/api/v1/services/{service_id}/usage/events.csv", r.UsageEventsCsvAPI()),
        Route("/api/v1/services/{service_id}/usage/history", r.UsageHistoryAPI()),
        Route("/api/v1/staff/usage", r.StaffUsageAPI(), permission="can_post_usage"),
        Route("/usage", r.UsagePage()),
        Route("/services/{service_id}/usage", r.ServiceUsagePage()),
        Route("/services/{service_id}/usage.csv", r.ServiceUsageCsvPage()),
    ]
    if r.calls_enabled(app):  # USE-4: call records only where the operator shows them
        routes += [
            Route("/api/v1/services/{service_id}/calls", r.CallsAPI()),
            Route("/services/{service_id}/calls", r.CallsPage()),
        ]
    return routes


@hookimpl
def service_actions(app, ctx, service):
    return [Action("usage", N_("View usage"), f"/services/{service.id}/usage", order=10)]


@hookimpl
def service_balances(app, service):
    from plugins.usage.service import balances

    # No buckets: no answer, so another plugin (a partner's charging adapter) may answer.
    return balances(app, service) or None


@hookimpl
def credit_balance(app, service, credit):
    from plugins.usage.service import credit as add_credit

    return add_credit(app, service, credit)


@hookimpl
def service_renewed(app, service, previous_period_start):
    from plugins.usage.service import refill_plan

    refill_plan(service)


@hookimpl
def dashboard_cards(app, ctx):
    from plugins.usage.cards import balances_card

    card = balances_card(app, ctx) if ctx.customer_id else None
    return [card] if card else []


@hookimpl
def portal_alerts(app, ctx):
    from plugins.usage.cards import low_balance_alerts

    return low_balance_alerts(app, ctx) if ctx.customer_id else []


@hookimpl
def register_commands(cli, app_factory):
    from plugins.usage.commands import usage_group

    cli.add_command(usage_group(app_factory))


@hookimpl
def demo_data(app, demo):
    from plugins.usage.demo import seed

    seed(app, demo)
