"""Add-ons (ADD-1, ADD-2): a catalogue per service type, ordering with review, provisioning in
the background through the ``provision_addon`` hook, recurring charges, removal."""

from __future__ import annotations

from engine import hookimpl
from engine.registry import Route


@hookimpl
def register_hookspecs():
    from plugins.addons import hookspecs

    return [hookspecs]


@hookimpl
def plugin_requires():
    return ["billing", "services"]


@hookimpl
def register_settings():
    from plugins.addons.schemas import AddonSettings

    return AddonSettings


@hookimpl
def register_models():
    from plugins.addons.models import MODELS

    return list(MODELS)


@hookimpl
def register_routes(app):
    from plugins.addons import resources as r

    api, svc = "/api/v1", "/services/{service_id}"
    return [
        Route(f"{api}{svc}/addons", r.AddonsAPI()),
        Route(f"{api}{svc}/addons/review", r.ReviewAPI()),
        Route(f"{api}{svc}/addons/{{addon_id}}", r.AddonAPI()),
        Route(f"{api}/staff/addon-products", r.StaffProductsAPI(), permission="catalogue"),
        Route(
            f"{api}/staff/addon-products/{{product_id}}",
            r.StaffProductAPI(),
            permission="catalogue",
        ),
        Route(f"{svc}/addons", r.AddonsPage()),
        Route(f"{svc}/addons/review", r.ReviewPage()),
        Route(f"{svc}/addons/order", r.OrderPage()),
        Route(f"{svc}/addons/{{addon_id}}", r.AddonPage()),
        Route(f"{svc}/addons/{{addon_id}}/remove", r.RemovePage()),
    ]


@hookimpl
def register_actors():
    from plugins.addons import tasks

    return [tasks.provision, tasks.refund, tasks.charge_recurring]


@hookimpl(trylast=True)
def provision_addon(app, service, addon, action):
    from plugins.addons.provisioners import builtin

    return builtin(app, service, addon, action)


@hookimpl
def service_actions(app, ctx, service):
    from plugins.addons.cards import addons_action

    return addons_action(app, ctx, service)


@hookimpl
def dashboard_cards(app, ctx):
    from plugins.addons.cards import addons_card

    card = addons_card(app, ctx) if ctx.customer_id else None
    return [card] if card else []


@hookimpl
def portal_alerts(app, ctx):
    from plugins.addons.cards import addons_alerts

    return addons_alerts(app, ctx) if ctx.customer_id else []


@hookimpl
def payment_succeeded(app, payment):
    if payment.purpose == "addon":
        from plugins.addons.service import paid

        paid(app, payment)


@hookimpl
def payment_failed(app, payment):
    if payment.purpose == "addon":
        from plugins.addons.service import not_paid

        not_paid(app, payment)


@hookimpl(trylast=True)  # after billing's demo, as billing's is after the services'
def demo_data(app, demo):
    from plugins.addons.demo import seed

    seed(app, demo)
