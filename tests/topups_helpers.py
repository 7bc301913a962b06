"""Small builders for the top-up and add-on tests: the demo catalogues, services, API clients."""

from __future__ import annotations

from engine.models import Customer, Service
from engine.testing import Client, as_user
from plugins.topups.models import TopupProduct
from usage_helpers import product, service_for


def topup_catalogue(app) -> dict[str, TopupProduct]:
    """The demo top-up catalogue (every service type), by code."""
    from plugins.topups.demo import seed

    seed(app, {})
    return {p.code: p for p in TopupProduct.select()}


def addon_catalogue(app) -> dict:
    """The demo add-on catalogue (every service type), by code."""
    from plugins.addons.demo import seed
    from plugins.addons.models import AddonProduct

    seed(app, {})
    return {p.code: p for p in AddonProduct.select()}


def service_of(customer: Customer, kind: str = "prepaid", **values) -> Service:
    """A live service of ``kind`` (prepaid, mobile, broadband, iptv) for the customer."""
    values.setdefault("service_type", kind)
    return service_for(
        customer,
        product(service_type=kind, code=f"{kind}-{customer.id}-{Service.select().count()}"),
        **values,
    )


def api_for(app, user) -> Client:
    return as_user(Client(app), user)


def page_client(app, user) -> Client:
    return as_user(Client(app, headers={"Accept": "text/html"}), user)


def form_value(html: str, name: str) -> str:
    return html.split(f'name="{name}" value="', 1)[1].split('"', 1)[0]
