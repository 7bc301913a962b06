"""Auto top-up of monetary credit (TOP-3): below the customer's threshold, buy credit with the
default card in the background, once per crossing; a failed charge switches it off with an alert.

Usage is rated through the real rating code: prepaid data without an allowance is charged to
credit at 1p per MB (the usage plugin's default rates).
"""

from __future__ import annotations

import pytest

from billing_helpers import customer, sandbox_card
from engine.models import AuditEvent
from engine.registry import Credit
from engine.testing import PrincipalHeader, problem, run_tasks
from plugins.billing.models import Payment, PaymentMethod
from plugins.email.models import EmailDelivery
from plugins.sandbox.models import SandboxCharge
from plugins.topups.models import AutoTopup, TopupPurchase
from plugins.usage.models import Bucket
from plugins.usage.rating import rate
from topups_helpers import api_for, service_of, topup_catalogue
from usage_helpers import event

MB = 10**6


@pytest.fixture
def app(make_app):
    return make_app(plugins=[("test-auth", PrincipalHeader())], topups={"auto_daily_limit": 3})


@pytest.fixture
def world(app):
    """Alice's prepaid line with £10.00 of credit, a default card and the demo catalogue."""
    c, user = customer("alice")
    service = service_of(c, "prepaid")
    app.plugins.hook.credit_balance(
        app=app, service=service, credit=Credit("monetary", 1000, "GBP", reference="start")
    )
    topup_catalogue(app)
    return {
        "customer": c,
        "user": user,
        "service": service,
        "api": api_for(app, user),
        "card": sandbox_card(app, c.id),
    }


def switch_on(world, threshold=500, amount=1000):
    return world["api"].put(
        f"/api/v1/services/{world['service'].id}/auto-topup",
        json={"enabled": True, "threshold": threshold, "amount": amount},
    )


def credit_of(service) -> int:
    return sum(
        b.remaining
        for b in Bucket.select().where((Bucket.service == service.id) & (Bucket.type == "monetary"))
    )


def use(app, service, megabytes: int) -> None:
    """Data with no allowance: charged to credit at 1p per MB."""
    rate(app, [event(service, megabytes * MB)])


# -- setting it up ------------------------------------------------------------------------------


@pytest.mark.spec("TOP-3", "USE-6")
def test_the_customer_sets_a_threshold_and_an_amount(app, world):
    api, service = world["api"], world["service"]
    path = f"/api/v1/services/{service.id}/auto-topup"
    assert api.get(path).json["enabled"] is False
    bad = problem(api.put(path, json={"enabled": True, "threshold": 0, "amount": 1000}))
    assert set(bad["errors"]) == {"threshold"}
    bad = problem(api.put(path, json={"enabled": True, "threshold": 500, "amount": 30000}))
    assert set(bad["errors"]) == {"amount"}  # more than the custom amount's maximum
    assert problem(api.put(path, json={"enabled": True}))["status"] == 422
    r = switch_on(world, 500, 2000)
    assert r.status_code == 200, r.text
    assert (r.json["enabled"], r.json["threshold"], r.json["amount"]) == (True, 500, 2000)
    assert r.json["amounts"]["presets"] == [500, 1000, 2000, 5000, 10000]
    assert switch_on(world, 500, 1250).json["amount"] == 1250  # within the custom bounds
    usage = api.get(f"/api/v1/services/{service.id}/usage").json["balances"]
    credit = next(g for g in usage if g["type"] == "monetary")
    assert credit["auto_topup"] == {
        "enabled": True,
        "threshold": 500,
        "amount": 1250,
        "currency": "GBP",
    }
    assert AuditEvent.select().where(AuditEvent.action == "topup.auto_on").count() == 2
    off = api.put(path, json={"enabled": False})
    assert off.json["enabled"] is False and off.json["amount"] == 1250
    assert TopupPurchase.select().count() == 0  # credit is above the threshold: nothing bought


def test_auto_topup_needs_a_default_card_and_a_service_that_buys_credit(app, world):
    PaymentMethod.delete().execute()
    assert "enabled" in problem(switch_on(world))["errors"]
    broadband = service_of(world["customer"], "broadband")
    r = world["api"].put(
        f"/api/v1/services/{broadband.id}/auto-topup",
        json={"enabled": True, "threshold": 500, "amount": 1000},
    )
    assert problem(r)["type"] == "/problems/auto-topup-unavailable"
    assert world["api"].get(f"/api/v1/services/{broadband.id}/auto-topup").status_code == 409
    assert AutoTopup.select().count() == 0


# -- the background top-up ----------------------------------------------------------------------


@pytest.mark.spec("TOP-3")
def test_falling_below_the_threshold_tops_up_once_per_crossing(app, world):
    service = world["service"]
    switch_on(world, 500, 1000)
    use(app, service, 600)  # £10.00 → £4.00: crosses £5.00
    use(app, service, 100)  # still below: the same crossing
    [purchase] = TopupPurchase.select()
    assert purchase.auto and purchase.status == "pending" and credit_of(service) == 300
    run_tasks(app)
    purchase = TopupPurchase.get_by_id(purchase.id)
    assert purchase.status == "credited" and credit_of(service) == 1300
    payment = Payment.get_by_id(purchase.payment_id)
    assert payment.off_session and payment.via == "auto" and payment.method_id == world["card"].id
    assert SandboxCharge.get().off_session
    delivery = EmailDelivery.get(EmailDelivery.kind == "topup_confirmed")
    assert delivery.address == "alice@example.com"
    use(app, service, 700)  # £13.00 → £6.00: above the threshold, nothing to do
    assert TopupPurchase.select().count() == 1
    use(app, service, 200)  # → £4.00: a new crossing
    assert TopupPurchase.select().count() == 2
    run_tasks(app)
    assert credit_of(service) == 1400 and SandboxCharge.select().count() == 2
    run_tasks(app)  # redelivered tasks charge nothing more
    assert SandboxCharge.select().count() == 2


@pytest.mark.spec("TOP-3")
def test_switching_on_below_the_threshold_buys_at_once(app, world):
    use(app, world["service"], 800)  # £2.00 left
    assert switch_on(world, 500, 500).status_code == 200
    assert TopupPurchase.select().count() == 1
    run_tasks(app)
    assert credit_of(world["service"]) == 700


@pytest.mark.spec("TOP-3", "NOT-2")
@pytest.mark.parametrize("number", ["4000000000000341", "4000002500003155"])
def test_a_failed_charge_switches_auto_topup_off_with_an_alert_and_an_email(app, world, number):
    card = sandbox_card(app, world["customer"].id, number=number, default=True)
    assert switch_on(world).status_code == 200
    use(app, world["service"], 600)
    run_tasks(app)
    purchase = TopupPurchase.get()
    assert purchase.status == "failed" and credit_of(world["service"]) == 400
    payment = Payment.get_by_id(purchase.payment_id)
    assert payment.method_label == card.label  # it says which card; the card, never
    # having paid, is not kept (BILL-2)
    assert PaymentMethod.get_or_none(PaymentMethod.id == card.id) is None
    rule = AutoTopup.get()
    assert rule.enabled is False and rule.disabled_reason
    alerts = world["api"].get("/api/v1/alerts").json["items"]
    [alert] = [a for a in alerts if a["id"] == f"auto-topup-off-{world['service'].id}"]
    assert alert["level"] == "danger" and "Auto top-up" in alert["message"]
    assert EmailDelivery.select().where(EmailDelivery.kind == "auto_topup_failed").count() == 1
    use(app, world["service"], 300)  # off: nothing more is bought
    assert TopupPurchase.select().count() == 1
    # Switching it on again clears the alert (and, being below the threshold, buys at once).
    sandbox_card(app, world["customer"].id, default=True)
    assert switch_on(world).json["disabled_reason"] == ""
    assert not [
        a
        for a in world["api"].get("/api/v1/alerts").json["items"]
        if a["id"].startswith("auto-topup-off")
    ]


@pytest.mark.spec("TOP-3")
def test_a_runaway_feed_stops_at_the_daily_limit(app, world):
    switch_on(world, 500, 500)
    for _ in range(3):
        use(app, world["service"], credit_of(world["service"]) - 400)
        run_tasks(app)
    assert TopupPurchase.select().where(TopupPurchase.status == "credited").count() == 3
    use(app, world["service"], credit_of(world["service"]) - 400)
    assert TopupPurchase.select().count() == 3  # the fourth crossing buys nothing
    rule = AutoTopup.get()
    assert rule.enabled is False and "limit" in rule.disabled_reason


def test_hook_auto_topup_status(app, world):
    service = world["service"]
    assert app.plugins.hook.auto_topup_status(app=app, service=service)["enabled"] is False
    switch_on(world, 700, 2000)
    status = app.plugins.hook.auto_topup_status(app=app, service=service)
    assert (status["enabled"], status["threshold"], status["amount"]) == (True, 700, 2000)
    broadband = service_of(world["customer"], "broadband")
    assert app.plugins.hook.auto_topup_status(app=app, service=broadband) is None


@pytest.mark.spec("TOP-3", "NOT-1")
def test_one_email_when_an_auto_topup_answers_low_credit(app, world):
    """The same fall crosses the low-credit threshold and the auto top-up's (both £5.00):
    the customer hears of the top-up, not also of low credit."""
    service = world["service"]
    switch_on(world, 500, 1000)
    use(app, service, 600)  # £10.00 → £4.00
    run_tasks(app)
    kinds = [d.kind for d in EmailDelivery.select()]
    assert "topup_confirmed" in kinds and "balance_low" not in kinds
    world["api"].put(f"/api/v1/services/{service.id}/auto-topup", json={"enabled": False})
    use(app, service, 1000)  # £14.00 → £4.00, nothing tops it up: now low credit is news
    run_tasks(app)
    assert [d.kind for d in EmailDelivery.select()].count("balance_low") == 1
