"""The staff console (ACC-2, IMP-1, SEC-5; issue 18): one search box that finds a customer by
name, email, number or external id, MSISDN or invoice number; a customer's page with contacts,
services, balances, invoices, payments and activity; the console's own navigation, never the
customer's; read-only but for what the staff member's permissions allow."""

import re
from urllib.parse import quote

import pytest

from engine.db import connection, utcnow
from engine.models import AuditEvent, Contact, Customer, Service, StaffUser
from engine.security import hash_password
from engine.testing import DEMO_PASSWORD, Client, problem
from plugins.staff.search import phone_forms

API = "/api/v1/staff/customers"
CUSTOMER_NAV = re.compile(r'data-section="')


def staff(app, email: str = "admin@example.com") -> Client:
    client = Client(app)
    client.login(email, staff=True)
    return client


def add_staff(email: str, permissions: str) -> None:
    with connection():
        StaffUser.create(
            email=email,
            name=email.split("@")[0].title(),
            permissions=permissions,
            password_hash=hash_password(DEMO_PASSWORD),
        )


def customer(number: str) -> Customer:
    return Customer.get(Customer.number == number)


def found(client: Client, q: str) -> list[str]:
    answer = client.get(API, params={"q": q})
    assert answer.status_code == 200, answer.text[:300]
    return sorted(c["number"] for c in answer.json["items"])


def console_found(client: Client, q: str) -> list[str]:
    page = client.get("/staff", params={"q": q})
    assert page.status_code == 200, page.text[:300]
    return sorted(set(re.findall(r">(C-\d+)</a>", page.text)))


ALICE, BOB = "C-100001", "C-100002"


@pytest.mark.spec("ACC-2", "IMP-1")
def test_one_box_finds_a_customer_by_each_kind_of_field_and_no_other(demo_app):
    from plugins.billing.public import Invoice

    with connection():
        Customer.update(external_id="CRM-BOB-42").where(Customer.number == BOB).execute()
        bob_line = Service.get(Service.identifier == "+447700900457")
        Service.update(external_id="SIM-8934-0001").where(Service.id == bob_line.id).execute()
        invoice = Invoice.select().where(Invoice.customer == customer(ALICE).id).first()
    admin = staff(demo_app)
    cases = {
        "alice exam": [ALICE],  # the name, any case
        "BIKES": [BOB],
        "CAROL@EXAMPLE": [BOB],  # a contact's email
        "C-100001": [ALICE],  # the customer number
        "CRM-BOB-42": [BOB],  # the customer's external id, exactly
        "CRM-BOB": [],
        "07700 900457": [BOB],  # the MSISDN as people say it
        "+44 7700 900555": [ALICE],
        "447700900457": [BOB],
        "FTTP-LDN": [ALICE],  # a service's identifier
        "SIM-8934-0001": [BOB],  # a service's external id, exactly
        "SIM-8934": [],
        invoice.number: [ALICE],  # an invoice number, exactly
        invoice.number.lower(): [ALICE],
        invoice.number[:-1]: [],
        "nobody-like-this": [],
        "%": [],  # LIKE's wildcards are only characters
        "_": [],
    }
    for q, expected in cases.items():
        assert found(admin, q) == expected, q
        assert console_found(admin, q) == expected, q
    assert found(admin, "  alice exam  ") == [ALICE]  # spaces around are not part of it


def test_phone_forms():
    assert phone_forms("07700 900123") == ["07700900123", "7700900123"]
    assert phone_forms("+44 (7700) 900-123") == ["447700900123"]
    assert phone_forms("447700900123") == []  # already digits: the query itself
    assert phone_forms("12345") == [] and phone_forms("alice") == []


@pytest.mark.spec("ACC-2")
def test_search_results_are_paged_newest_first(demo_app):
    with connection():
        for n in range(30):
            Customer.create(number=f"P-{n:04d}", name=f"Paged Person {n}")
    admin = staff(demo_app)
    first = admin.get(API, params={"q": "paged person", "limit": 20}).json
    assert [c["number"] for c in first["items"]] == [f"P-{n:04d}" for n in range(29, 9, -1)]
    rest = admin.get(API, params={"q": "paged person", "limit": 20, "cursor": first["next"]}).json
    assert len(rest["items"]) == 10 and rest["next"] is None
    page = admin.get("/staff", params={"q": "Paged person"})
    assert page.text.count('data-customer="') == 25
    more = re.search(r'href="(/staff\?q=[^"]+)">', page.text).group(1).replace("&amp;", "&")
    assert more.startswith("/staff?q=Paged%20person&cursor=")
    second = admin.get(more)
    assert second.status_code == 200 and second.text.count('data-customer="') == 5
    assert "P-0004" in second.text and "P-0029" not in second.text


@pytest.mark.spec("ACC-2")
def test_an_empty_huge_or_odd_query_is_answered_never_a_500(demo_app):
    with connection():
        Customer.create(number="C-900001", name="北京 Zoë Ünïcode ‮RTL")
    admin = staff(demo_app)
    everyone = admin.get(API, params={"q": ""}).json["items"]  # nothing typed: everyone
    assert len(everyone) == Customer.select().count() and everyone[0]["number"] == "C-900001"
    assert found(admin, "北京") == ["C-900001"] and found(admin, "Zoë") == ["C-900001"]
    assert found(admin, "🦄") == []
    long = admin.get(API, params={"q": "x" * 101})
    assert long.status_code == 422 and "q" in problem(long)["errors"]
    assert found(admin, "x" * 100) == []
    nul = admin.get(API, params={"q": "ali\x00ce"})
    assert nul.status_code == 422 and "q" in problem(nul)["errors"]
    page = admin.get("/staff", params={"q": "x" * 101})
    assert page.status_code == 422 and 'class="field-error"' in page.text
    assert 'aria-invalid="true"' in page.text and "x" * 101 in page.text  # to shorten it
    page = admin.get("/staff", params={"q": "a\x00"})
    assert page.status_code == 422 and "\x00" not in page.text
    for path in (
        "/staff?q=%ED%A0%80",  # a lone surrogate, as UTF-8 would spell it
        "/staff?q=%FF%FE",
        "/staff?q=a&q=b",
        "/staff?cursor=not-a-cursor",
        "/staff?cursor=" + quote("eyJ4IjoxfQ"),
        f"{API}?q=%ED%A0%80",
        f"{API}?cursor=zzz",
    ):
        answer = admin.get(path)
        assert answer.status_code in (200, 422), (path, answer.status_code, answer.text[:200])


@pytest.mark.spec("IMP-1", "SEC-5")
def test_the_customer_page_shows_each_section(demo_app):
    add_staff("billing@example.com", "billing can_impersonate")
    alice = customer(ALICE)
    page = staff(demo_app, "billing@example.com").get(f"/staff/customers/{alice.id}")
    assert page.status_code == 200
    html = page.text
    for section in ("contacts", "sites", "services", "invoices", "payments", "activity"):
        assert f'id="{section}"' in html, section
    assert "alice@example.com" in html and "1 High Street" in html
    assert "Mobile - +44 7700 900123" in html and "Mobile 20GB" in html  # the service, its plan
    assert 'data-indicator="active"' in html
    assert 'data-balance="data"' in html  # the usage plugin's buckets
    from plugins.billing.public import Invoice, Payment

    newest = Invoice.select().where(Invoice.customer == alice.id).order_by(Invoice.id.desc()).get()
    assert f'data-invoice="{newest.number}"' in html
    assert Payment.select().where(Payment.customer == alice.id).exists()
    assert 'data-payment="' in html
    assert 'class="activity-item' in html
    assert "Log in as user" in html and 'id="read-only"' not in html
    bob = customer(BOB)
    assert "alice@example.com" not in staff(demo_app).get(f"/staff/customers/{bob.id}").text


@pytest.mark.spec("ACCT-5", "IMP-1")
def test_the_activity_log_is_newest_first_and_paged(demo_app):
    alice = customer(ALICE)
    with connection():
        AuditEvent.delete().where(AuditEvent.customer == alice.id).execute()
        for n in range(25):
            AuditEvent.create(
                customer=alice.id,
                action="account.updated",
                target=f"mark-{n:02d}",
                ip=f"192.0.2.{n}",
                created_at=utcnow(),
            )
    admin = staff(demo_app)
    page = admin.get(f"/staff/customers/{alice.id}")
    ips = re.findall(r"192\.0\.2\.(\d+)", page.text)
    assert ips == [str(n) for n in range(24, 4, -1)]  # 20 a page, newest first
    assert "Account details changed" in page.text  # the customer's own log's sentence
    older = re.search(r'href="(/staff/customers/\d+\?cursor=[^"#]+)#activity"', page.text).group(1)
    rest = admin.get(older)
    assert re.findall(r"192\.0\.2\.(\d+)", rest.text) == ["4", "3", "2", "1", "0"]
    assert admin.get(f"/staff/customers/{alice.id}?cursor=junk").status_code == 422


@pytest.mark.spec("IMP-1")
def test_with_billing_off_the_page_renders_without_its_sections(make_app):
    from engine.demo import seed_demo

    app = make_app(disabled=["billing", "topups", "addons"])
    seed_demo(app)
    admin = staff(app)
    alice = customer(ALICE)
    page = admin.get(f"/staff/customers/{alice.id}")
    assert page.status_code == 200
    assert 'id="invoices"' not in page.text and 'id="payments"' not in page.text
    assert 'id="services"' in page.text and 'data-balance="' in page.text
    assert found(admin, "INV-000001") == []  # no invoices to search: no error either
    assert found(admin, "alice") == [ALICE]


@pytest.mark.spec("IMP-1")
def test_with_usage_off_the_services_show_no_balances(make_app):
    from engine.demo import seed_demo

    app = make_app(disabled=["usage", "topups"])
    seed_demo(app)
    page = staff(app).get(f"/staff/customers/{customer(ALICE).id}")
    assert page.status_code == 200 and 'id="services"' in page.text
    assert 'data-balance="' not in page.text and 'id="invoices"' in page.text


@pytest.mark.spec("IMP-2", "SEC-5")
def test_a_staff_member_sees_and_does_only_what_their_permissions_allow(demo_app):
    add_staff("viewer@example.com", "")
    bob = customer(BOB)
    viewer = staff(demo_app, "viewer@example.com")
    page = viewer.get(f"/staff/customers/{bob.id}")
    assert page.status_code == 200
    assert "Log in as user" not in page.text and "/impersonate" not in page.text
    assert 'id="read-only"' in page.text
    # Invoices and payments need `billing`: the section says so instead.
    assert 'id="payments"' not in page.text and "needs the billing permission" in page.text
    contact = Contact.get(Contact.email == "carol@example.com")
    refused = viewer.post(
        f"/staff/customers/{bob.id}/impersonate",
        form={"contact_id": str(contact.id), "reason": "Just looking around"},
    )
    assert refused.status_code == 403
    agent = staff(demo_app, "agent@example.com")  # can_impersonate, no billing
    page = agent.get(f"/staff/customers/{bob.id}")
    assert "Log in as user" in page.text and 'id="payments"' not in page.text
    visitor = Client(demo_app)
    for path in (f"/staff/customers/{bob.id}", "/staff?q=bob"):
        answer = visitor.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/staff/login?next=" + quote(path, safe="")
    assert visitor.get(API, params={"q": "bob"}).status_code == 401


@pytest.mark.spec("ACC-3", "SEC-5")
def test_the_console_has_its_own_navigation_never_the_customers(demo_app):
    both = Client(demo_app)
    both.login("alice@example.com")  # a customer's session in the same browser...
    assert CUSTOMER_NAV.search(both.get("/account").text)
    both.login("agent@example.com", staff=True)  # ...and a staff member's
    for path in ("/staff", f"/staff/customers/{customer(ALICE).id}", "/staff/2fa"):
        html = both.get(path).text
        assert not CUSTOMER_NAV.search(html), path
        assert 'aria-label="Staff console"' in html and 'data-console="/staff"' in html
        # an agent is no administrator: no tokens, no webhooks
        assert 'data-console="/staff/tokens"' not in html
        assert 'data-console="/staff/webhooks"' not in html
    html = staff(demo_app).get("/staff").text
    assert 'data-console="/staff/tokens"' in html and 'data-console="/staff/webhooks"' in html
    assert 'data-console="/staff" aria-current="page"' in html
    signed_out = Client(demo_app).get("/staff/login").text
    assert 'aria-label="Staff console"' not in signed_out and not CUSTOMER_NAV.search(signed_out)
