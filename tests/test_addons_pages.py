"""The add-on portal pages (ADD-2, SVC-3, DASH-1): Services → a service → Add-ons → browse →
Add to service → review cost → confirm → provisioned in the background, status shown; removal."""

from __future__ import annotations

import uuid

import pytest

from billing_helpers import customer, sandbox_card
from engine.testing import PrincipalHeader, run_tasks
from plugins.addons.models import ServiceAddon
from plugins.sandbox.models import SandboxCharge
from topups_helpers import addon_catalogue, form_value, page_client, service_of


@pytest.fixture
def app(make_app):
    return make_app(plugins=[("test-auth", PrincipalHeader())])


@pytest.fixture
def world(app):
    c, user = customer("alice")
    return {
        "customer": c,
        "service": service_of(c, "broadband"),
        "card": sandbox_card(app, c.id),
        "products": addon_catalogue(app),
        "browser": page_client(app, user),
    }


def review(world, code):
    return world["browser"].get(
        f"/services/{world['service'].id}/addons/review",
        params={"product_id": world["products"][code].id},
    )


@pytest.mark.spec("ADD-2", "SVC-3")
def test_browse_review_confirm_and_follow_the_status(app, world):
    browser, service = world["browser"], world["service"]
    detail = browser.get(f"/services/{service.id}").text
    assert f'href="/services/{service.id}/addons" data-action="addons"' in detail
    listing = browser.get(f"/services/{service.id}/addons")
    assert listing.status_code == 200
    assert 'data-product="broadband-boost-900"' in listing.text and "£10.00 a month" in listing.text
    assert "£10.00 now + £5.00 a month" in listing.text  # the static IP's set-up and rent
    page = review(world, "broadband-boost-900")
    assert page.status_code == 200 and "Confirm and add" in page.text
    assert 'name="method"' not in page.text  # nothing to pay now: no card needed
    form = {
        "idempotency_key": form_value(page.text, "idempotency_key"),
        "product_id": form_value(page.text, "product_id"),
    }
    path = f"/services/{service.id}/addons/order"
    first, second = browser.post(path, form=form), browser.post(path, form=form)
    assert first.status_code == second.status_code == 303
    assert ServiceAddon.select().count() == 1  # the double click ordered once
    status = browser.get(first.headers["location"])
    assert 'data-addon-status="pending"' in status.text and 'http-equiv="refresh"' in status.text
    run_tasks(app)
    status = browser.get(first.headers["location"])
    assert 'data-addon-status="active"' in status.text and 'data-action="remove"' in status.text
    assert "Being set up" not in browser.get(f"/services/{service.id}/addons").text
    dashboard = browser.get("/").text
    assert "Speed boost to 900 Mb/s" in dashboard


@pytest.mark.spec("ADD-2", "BILL-2")
def test_a_one_off_price_is_paid_on_the_review_page(app, world):
    page = review(world, "broadband-static-ip")
    assert "Pay £10.00 and add" in page.text and world["card"].label in page.text
    r = world["browser"].post(
        f"/services/{world['service'].id}/addons/order",
        form={
            "idempotency_key": uuid.uuid4().hex,
            "product_id": form_value(page.text, "product_id"),
            "method": str(world["card"].id),
        },
    )
    assert r.status_code == 303 and SandboxCharge.select().count() == 1
    run_tasks(app)
    shown = world["browser"].get(r.headers["location"]).text
    assert "Your static IP address" in shown and 'data-addon-detail' in shown
    missing = world["browser"].post(
        f"/services/{world['service'].id}/addons/order",
        form={
            "idempotency_key": uuid.uuid4().hex,
            "product_id": form_value(page.text, "product_id"),
        },
    )
    assert missing.status_code == 422 and "Choose how to pay." in missing.text


@pytest.mark.spec("ADD-2", "LIM-3")
def test_remove_where_allowed_and_support_where_not(app, world):
    browser, service = world["browser"], world["service"]
    for code in ("broadband-boost-900", "broadband-router-wifi6"):
        page = review(world, code)
        browser.post(
            f"/services/{service.id}/addons/order",
            form={
                "idempotency_key": uuid.uuid4().hex,
                "product_id": form_value(page.text, "product_id"),
                "method": str(world["card"].id),
            },
        )
    run_tasks(app)
    boost, router = (
        ServiceAddon.get(ServiceAddon.name == n)
        for n in ("Speed boost to 900 Mb/s", "Wi-Fi 6 router rental")
    )
    router_page = browser.get(f"/services/{service.id}/addons/{router.id}/remove")
    assert (
        "contact support" in router_page.text
        and "<form" not in router_page.text.split("<main", 1)[1].split("</main>", 1)[0]
    )
    refused = browser.post(f"/services/{service.id}/addons/{router.id}/remove", form={})
    assert refused.status_code == 409 and ServiceAddon.get_by_id(router.id).status == "active"
    confirm = browser.get(f"/services/{service.id}/addons/{boost.id}/remove")
    assert confirm.status_code == 200
    removed = browser.post(f"/services/{service.id}/addons/{boost.id}/remove", form={})
    assert removed.status_code == 303
    assert "We are removing the add-on" in browser.get(removed.headers["location"]).text
    run_tasks(app)
    assert ServiceAddon.get_by_id(boost.id).status == "removed"


def test_bad_or_foreign_choices(app, world):
    browser, service = world["browser"], world["service"]
    r = browser.get(f"/services/{service.id}/addons/review", params={"product_id": "nope"})
    assert r.status_code == 422 and "Choose an add-on." in r.text
    sports = world["products"]["iptv-sports"]  # not for broadband
    r = browser.get(f"/services/{service.id}/addons/review", params={"product_id": sports.id})
    assert r.status_code == 422
    bob, bob_user = customer("bob")
    theirs = service_of(bob, "broadband")
    assert browser.get(f"/services/{theirs.id}/addons").status_code == 404
    assert ServiceAddon.select().count() == 0


@pytest.mark.spec("ADD-2", "BILL-2")
def test_form_keys_follow_the_one_key_rule(app, world):
    """Forms and the API share one rule: 1 to 255 printable ASCII characters (forms once
    asked for 8 to 100)."""
    browser, service = world["browser"], world["service"]
    product_id = str(world["products"]["broadband-boost-900"].id)
    path = f"/services/{service.id}/addons/order"
    for bad in ("", "has space", "k" * 256, "clé"):
        r = browser.post(path, form={"idempotency_key": bad, "product_id": product_id})
        assert r.status_code == 422, bad
    assert ServiceAddon.select().count() == 0
    short = browser.post(path, form={"idempotency_key": "k", "product_id": product_id})
    assert short.status_code == 303 and ServiceAddon.select().count() == 1
    paid = browser.post(
        path,
        form={
            "idempotency_key": "x" * 255,
            "method": str(world["card"].id),
            "product_id": str(world["products"]["broadband-static-ip"].id),
        },
    )
    assert paid.status_code == 303 and SandboxCharge.select().count() == 1
