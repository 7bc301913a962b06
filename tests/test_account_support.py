"""Support and limits (SUP-1, SUP-2, LIM-1): how to reach support, the ID to quote, staff-only work."""

import pytest

from engine.models import Contact, Customer, User
from engine.security import hash_password
from engine.testing import DEMO_PASSWORD, Client
from identity_support import core_demo, signed_in  # noqa: F401


@pytest.mark.spec("SUP-1", "LIM-1")
def test_support_page_shows_contacts_customer_id_and_staff_only_operations(make_app):
    from engine.core.demo import seed

    app = make_app(
        support={
            "phone": "+44 161 496 0000",
            "email": "help@acme.example",
            "chat_url": "https://chat.acme.example/",
            "hours": "8am-8pm",
        }
    )
    seed(app, {})
    page = signed_in(app, "bob@example.com").get("/support").text
    assert 'href="tel:+441614960000"' in page and 'href="mailto:help@acme.example"' in page
    assert 'href="https://chat.acme.example/"' in page and "8am-8pm" in page
    assert "C-100002" in page
    for op in (
        "customer_type",
        "move_services",
        "cancel_services",
        "disputes",
        "refunds",
        "primary_contact",
        "configuration",
    ):
        assert f'data-op="{op}"' in page
    anonymous = Client(app).get("/support")
    assert anonymous.status_code == 200 and "C-100002" not in anonymous.text


@pytest.mark.spec("SUP-1", "LIM-1")
def test_support_api(core_demo):
    body = signed_in(core_demo, "alice@example.com").get("/api/v1/support").json
    assert body["customer_number"] == "C-100001" and body["phone"] and body["email"]
    assert {"refunds", "disputes", "customer_type"} <= {op["id"] for op in body["staff_only"]}


@pytest.mark.spec("SUP-1")
def test_every_page_footer_shows_the_customer_id(core_demo):
    assert "C-100001" in signed_in(core_demo, "alice@example.com").get("/account").text


@pytest.mark.spec("SUP-2", "LIM-2")
def test_a_person_with_two_customer_accounts_sees_each_separately(core_demo):
    second = Customer.create(number="C-200001", name="Alice's Bakery", kind="business")
    contact = Contact.create(customer=second, first_name="Alice", email="alice@bakery.example")
    User.create(
        contact=contact, email="alice@bakery.example", password_hash=hash_password(DEMO_PASSWORD)
    )
    home = signed_in(core_demo, "alice@example.com").get("/api/v1/account").json
    shop = signed_in(core_demo, "alice@bakery.example").get("/api/v1/account").json
    assert home["customer"]["number"] == "C-100001" and shop["customer"]["number"] == "C-200001"
    assert home["customer"]["kind"] == "individual" and shop["customer"]["kind"] == "business"
