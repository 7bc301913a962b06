"""Services (SVC-1..4, MOB-2): a customer's services, their actions, cancellation, renewal."""

from __future__ import annotations

from engine import hookimpl
from engine.i18n import N_
from engine.registry import Action, Route, Section


@hookimpl
def register_hookspecs():
    from plugins.services import hookspecs

    return [hookspecs]


@hookimpl
def plugin_optional():
    # billing: an upgrade's prorated charge goes on the account (SVC-3)
    return ["billing"]


@hookimpl
def register_settings():
    from plugins.services.schemas import ServicesSettings

    return ServicesSettings


@hookimpl
def register_sections(app):
    return [
        Section("services", N_("Services"), "/services", icon="services", order=20, primary=True)
    ]


@hookimpl
def register_routes(app):
    from plugins.services import resources as r

    return [
        Route("/api/v1/services", r.ServicesAPI()),
        Route("/api/v1/services/{service_id}", r.ServiceAPI()),
        Route("/api/v1/services/{service_id}/cancel", r.ServiceCancelAPI()),
        Route("/api/v1/services/{service_id}/plan-options", r.PlanOptionsAPI()),
        Route("/api/v1/services/{service_id}/plan-change", r.PlanChangeAPI()),
        Route("/services", r.ServicesPage()),
        Route("/services/{service_id}", r.ServicePage()),
        Route("/services/{service_id}/cancel", r.ServiceCancelPage()),
        Route("/services/{service_id}/modify", r.ServiceModifyPage()),
        Route("/services/{service_id}/plan", r.ServicePlanPage()),
        Route("/services/{service_id}/plan/cancel", r.ServicePlanCancelPage()),
    ]


@hookimpl
def service_actions(app, ctx, service):
    from plugins.services.service import modify_allowed

    actions = [Action("details", N_("View details"), f"/services/{service.id}", order=90)]
    if modify_allowed(service):
        actions.append(Action("modify", N_("Modify"), f"/services/{service.id}/modify", order=80))
    return actions


@hookimpl
def dashboard_cards(app, ctx):
    from plugins.services.cards import services_card

    card = services_card(app, ctx) if ctx.customer_id else None
    return [card] if card else []


@hookimpl
def portal_alerts(app, ctx):
    from plugins.services.cards import service_alerts

    return service_alerts(app, ctx) if ctx.customer_id else []


@hookimpl
def register_actors():
    from plugins.services.tasks import renew_services

    return [renew_services]


@hookimpl
def demo_data(app, demo):
    from plugins.services.demo import seed

    seed(app, demo)
