"""INT-7: a fresh, empty install brought to a working portal for a real customer with only the
operator's tools (INT-1..6), end to end, every part real.

An empty PostgreSQL database of its own, migrated by ``portico migrate``; an administrator
made by ``portico staff add`` and a service token by ``portico token create``; then
``portico serve`` (no demo) and ``portico worker`` as separate processes, with real SMTP
(aiosmtpd), Stripe as the payment provider (localstripe) and a real HTTPS webhook receiver.
Only the operator API sets up the catalogue, the customer, their line and its balances.
The invited contact takes the emailed link, signs in, sees the balances, watches usage
taken promo bucket first, and buys a top-up by card; the receiver gets each signed event
once, verified with the recipe in docs/integration.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from engine.testing import ensure_database, need_service
from https_service import HTTPSService
from mailserver import Inbox, SMTPServer, body_text, free_port
from stripe_fixtures import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET
from tests.browser.conftest import _stop, portico_command

pytestmark = pytest.mark.browser
GB = 1000**3  # the portal shows data in SI units
MSISDN = "447700900777"
ADMIN = "ops-admin@operator.example"
CONTACT = "dana@dunes.example"
PASSWORD = "Dunes-portal-2026!"
STAFF_PASSWORD = "Operator-admin-2026!"
START_TIMEOUT = 90  # seconds for a process to answer (a loaded CI machine)
DEADLINE = 90  # seconds for the worker to send a mail or a webhook


def documented_verify():
    """The receiver's ``verify`` exactly as docs/integration.md (Webhooks) prints it."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "integration.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", doc, re.S) if "def verify" in b)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own documentation, run as a reader would
    return namespace["verify"]


@dataclass
class Install:
    """The running install: its URL, the service token, and what reaches the outside world."""

    url: str
    token: str
    inbox: Inbox
    receiver: HTTPSService
    logs: list[Path]

    def api(self, method: str, path: str, body: dict | None = None):
        """One operator API call with the service token; anything but 200/201 fails the test."""
        answer = requests.request(
            method,
            f"{self.url}/api/v1/operator{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert answer.status_code in (200, 201), (
            f"{method} {path}: {answer.status_code} {answer.text}\n{self.log_tail()}"
        )
        return answer.json()

    def until(self, what: str, found, timeout: float = DEADLINE):
        """Poll ``found()`` until it answers something truthy (work of the worker process)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = found()
            if answer:
                return answer
            time.sleep(0.1)
        raise AssertionError(f"still waiting for {what} after {timeout}s\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-3000:] for log in self.logs)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    """The operator's webhook receiver: real HTTPS on 127.0.0.1 with a CA of its own."""
    server = HTTPSService(tmp_path_factory.mktemp("receiver"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def mail():
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


def run(env: dict, cwd: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [*portico_command(), *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"portico {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def start(env: dict, cwd: Path, log: Path, *args: str) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*portico_command(), *args],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its children
        )


@pytest.fixture(scope="module")
def install(postgres_server, tmp_path_factory, localstripe_server, receiver, mail):
    """A production-shaped install on a new, empty PostgreSQL database: no demo data."""
    need_service("PostgreSQL", postgres_server.error)
    database_url = postgres_server.new_database()
    ensure_database(database_url)
    folder = tmp_path_factory.mktemp("install")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(
        PORTICO_DATABASE_URL=database_url,
        PORTICO_DATA_DIR=str(folder / "var"),
        PORTICO_BASE_URL=url,
        PORTICO_SECRET_KEY="end-to-end-" + "k" * 40,
        PORTICO_MAIL_BACKEND="smtp",
        PORTICO_MAIL_SMTP_HOST="127.0.0.1",
        PORTICO_MAIL_SMTP_PORT=str(mail.port),
        PORTICO_PLUGINS_DISABLED="sandbox",  # fake cards have no place in production
        PORTICO_BILLING_PROVIDER="stripe",
        PORTICO_STRIPE_SECRET_KEY=SECRET_KEY,
        PORTICO_STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
        PORTICO_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        PORTICO_STRIPE_API_BASE=localstripe_server.url,
        PORTICO_STRIPE_JS_URL=localstripe_server.js_url,
        PORTICO_STRIPE_MAX_NETWORK_RETRIES="0",
        # The receiver listens on 127.0.0.1 (SEC-2 refuses loopback otherwise) and its CA is
        # the test's own.
        PORTICO_OUTBOUND_UNSAFE_ALLOW_LOOPBACK_FOR_TESTS="true",
        REQUESTS_CA_BUNDLE=str(receiver.ca_file),
        PYTHONUNBUFFERED="1",
    )
    assert "migrations applied" in run(env, folder, "migrate")
    run(
        env,
        folder,
        "staff",
        "add",
        ADMIN,
        "--name",
        "Olu Operator",
        "--permissions",
        "admin",
        "--password-stdin",
        stdin=STAFF_PASSWORD + "\n",
    )
    token = run(
        env,
        folder,
        "token",
        "create",
        "--name",
        "CRM and network",
        *("--scope", "read", "--scope", "customers:write", "--scope", "services:write"),
        *("--scope", "usage:write", "--scope", "billing:write", "--scope", "catalogue:write"),
        *("--scope", "balances:write", "--scope", "webhooks:write"),
        "--by",
        ADMIN,
    ).strip()
    assert token.startswith("pst_"), token
    logs = [folder / "serve.log", folder / "worker.log"]
    processes = [
        start(
            env,
            folder,
            logs[0],
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ),
        start(env, folder, logs[1], "worker", "--threads", "2"),
    ]
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for process, log in zip(processes, logs):
                assert process.poll() is None, log.read_text(errors="replace")[-4000:]
            try:
                if requests.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, logs[0].read_text(errors="replace")[-4000:]
            time.sleep(0.1)
        yield Install(url, token, mail.inbox, receiver, logs)
    finally:
        for process in processes:
            _stop(process)
        postgres_server.drop_database(database_url)


def operator_sets_up_the_customer(install: Install) -> dict:
    """Everything an operator's systems push, through the operator API only."""
    api = install.api
    for kind in ("customers", "services", "products", "buckets", "invoices"):
        assert api("GET", f"/{kind}")["items"] == [], f"{kind}: the install is not empty"
    hook = api(
        "POST",
        "/webhooks",
        {
            "url": install.receiver.url_for("127.0.0.1", "/portico"),
            "event_types": ["topup.purchased", "payment.succeeded", "invoice.paid"],
        },
    )
    assert hook["secret"].startswith("whsec_")
    plan = {
        "name": "Mobile 20 GB",
        "code": "mobile-20gb",
        "service_type": "mobile",
        "monthly_fee": 1500,
        "currency": "GBP",
        "period_days": 30,
    }
    assert api("PUT", "/products/PLAN-20GB", plan)["change"] == "created"
    assert api("PUT", "/products/PLAN-20GB", plan)["change"] == "unchanged"
    api("PUT", "/customers/ACC-2001", {"name": "Dunes Surf Ltd", "kind": "business"})
    api(
        "PUT",
        "/contacts/CRM-1",
        {
            "customer_external_id": "ACC-2001",
            "first_name": "Dana",
            "last_name": "Dune",
            "email": CONTACT,
            "is_primary": True,
            "portal_access": True,
        },
    )
    other = api(
        "PUT",
        "/contacts/CRM-2",
        {
            "customer_external_id": "ACC-2001",
            "first_name": "Sam",
            "last_name": "Sands",
            "email": "sam@dunes.example",
            "role": "Accounts",
        },
    )
    assert other["portal"] == "none"
    api(
        "PUT",
        "/sites/SITE-1",
        {"customer_external_id": "ACC-2001", "line1": "2 Beach Road", "city": "Newquay"},
    )
    api(
        "PUT",
        f"/services/{MSISDN}",
        {
            "customer_external_id": "ACC-2001",
            "product": "mobile-20gb",
            "site_external_id": "SITE-1",
            "name": "Mobile - +44 7700 900777",
            "identifier": "+" + MSISDN,
        },
    )
    buckets = {
        "B-PROMO": {
            "type": "data",
            "allowance": 1 * GB,
            "name": "Welcome data",
            "weight": 10,
            "source": "promo",
        },
        "B-PLAN": {
            "type": "data",
            "allowance": 20 * GB,
            "name": "Plan data",
            "weight": 30,
            "source": "plan",
            "renewable": True,
        },
        "B-CREDIT": {"type": "monetary", "allowance": 500, "name": "Credit"},
    }
    for external_id, bucket in buckets.items():
        made = api("PUT", f"/buckets/{external_id}", {"service_external_id": MSISDN, **bucket})
        assert made["remaining"] == bucket["allowance"]
    now = datetime.now(timezone.utc)
    api(
        "PUT",
        "/invoices/INV-1",
        {
            "customer_external_id": "ACC-2001",
            "number": "DS-2026-0001",
            "issued_at": now.isoformat(),
            "due_at": (now + timedelta(days=14)).isoformat(),
            "currency": "GBP",
            "lines": [
                {
                    "description": "Mobile 20 GB",
                    "quantity": 1,
                    "unit_amount": 1500,
                    "tax_rate": 2000,
                    "tax_amount": 300,
                }
            ],
            "subtotal": 1500,
            "tax_total": 300,
            "total": 1800,
        },
    )
    create_topup_product(install)
    return hook


def create_topup_product(install: Install) -> None:
    install.api(
        "PUT",
        "/topup-products/TOP-1GB",
        {
            "code": "mobile-data-1gb",
            "service_type": "mobile",
            "name": "1 GB data",
            "kind": "data",
            "quantity": GB,
            "price": 300,
            "currency": "GBP",
            "validity_days": 30,
        },
    )


def accept_the_invitation(page, install: Install) -> None:
    message = install.until("the invitation email", lambda: install.inbox.to(CONTACT))[0]
    link = re.search(r"https?://\S+/invitation\?token=\S+", body_text(message)).group(0)
    assert link.startswith(install.url + "/invitation?token=")
    page.goto(link)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create my login").click()
    page.wait_for_url(install.url + "/")


def sign_in(page, install: Install) -> None:
    page.goto(install.url + "/login")
    page.get_by_label("Email address").fill(CONTACT)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(install.url + "/")


def received(install: Install, hook: dict) -> dict[str, list[dict]]:
    """The events the receiver got, by type, each checked as the operator's receiver does."""
    verify = documented_verify()
    seen: dict[str, list[dict]] = {}
    for headers, body in list(install.receiver.received):
        headers = {k.lower(): v for k, v in headers.items()}
        assert verify(hook["secret"], headers["portico-signature"], body), headers
        assert not verify(hook["secret"], headers["portico-signature"], body + b" ")
        assert not verify("whsec_someone-else", headers["portico-signature"], body)
        event = json.loads(body)
        assert headers["portico-event-id"] == event["id"]
        assert headers["portico-event-type"] == event["type"]
        seen.setdefault(event["type"], []).append(event)
    return seen


def delivered(install: Install, hook: dict) -> list[dict] | None:
    """The endpoint's deliveries once all four are delivered."""
    items = install.api("GET", f"/webhooks/{hook['id']}/deliveries")["items"]
    done = len(items) == 4 and all(d["status"] == "delivered" for d in items)
    return items if done else None


def fill_card(page, number: str = "4242424242424242") -> None:
    """localstripe's card Element, as in test_billing_browser.py."""
    element = page.locator("#card-element")
    element.get_by_placeholder("number").fill(number)
    element.get_by_placeholder("exp_month").fill("12")
    element.get_by_placeholder("exp_year").fill("34")
    element.get_by_placeholder("cvc").fill("123")
    element.get_by_placeholder("postal_code").fill("TR7 1")


@pytest.mark.spec("INT-7", "INT-1", "INT-2", "INT-3", "INT-4", "INT-6", "TOP-1")
def test_int7_an_empty_install_brought_to_a_working_portal_by_the_operator_tools(
    install, page, console_errors
):
    hook = operator_sets_up_the_customer(install)

    # INT-2: the invited contact sets a password from the emailed link, then signs in.
    accept_the_invitation(page, install)
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(re.compile(r".*/login"))
    sign_in(page, install)
    assert install.api("GET", "/contacts/CRM-1")["portal"] == "active"

    # The balances the operator granted, promo data listed (and used) first.
    page.get_by_role("link", name="Services", exact=True).first.click()
    card = page.locator("article.service-card", has_text="Mobile - +44 7700 900777")
    card.get_by_role("link", name="View usage").click()
    page.wait_for_url(re.compile(r".*/services/\d+/usage$"))
    usage_url = page.url
    data = page.locator('section[data-balance="data"]')
    rows = data.locator("table.buckets tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Welcome data")
    expect(rows.nth(1)).to_contain_text("Plan data")
    expect(page.locator('section[data-balance="monetary"]')).to_contain_text("£5.00")

    # INT-4: the invoice the billing system pushed is in the customer's list.
    page.goto(install.url + "/billing")
    invoice = page.locator('tr[data-invoice="DS-2026-0001"]')
    expect(invoice).to_contain_text("£18.00")

    # INT-3: the network's usage by MSISDN; 1.5 GB empties the promo bucket, then the plan's.
    rated = install.api(
        "POST",
        "/usage",
        {
            "events": [
                {
                    "id": "cdr-e2e-1",
                    "service_external_id": MSISDN,
                    "type": "data",
                    "quantity": GB + GB // 2,
                    "occurred_at": datetime.now(timezone.utc).isoformat(),
                }
            ]
        },
    )
    assert rated["rated"] == 1, rated
    assert install.api("GET", "/buckets/B-PROMO")["remaining"] == 0
    assert install.api("GET", "/buckets/B-PLAN")["remaining"] == 20 * GB - GB // 2
    page.goto(usage_url)
    expect(rows.nth(0)).to_contain_text("Welcome data")
    expect(rows.nth(0).locator("td").first).to_have_text(re.compile(r"^0\b"))
    expect(rows.nth(1).locator("td").first).to_contain_text("19.5 GB")

    # TOP-1: a top-up bought with a new card through Stripe (localstripe).
    page.get_by_role("link", name="Services", exact=True).first.click()
    card.get_by_role("link", name="Top up").click()
    page.wait_for_url(re.compile(r".*/services/\d+/topup$"))
    page.locator(".topup-option", has_text="1 GB data").first.click()
    page.get_by_role("button", name="Review").click()
    page.wait_for_url(re.compile(r".*/topup/review\?.*"))
    expect(page.locator("[data-review-price]")).to_have_text("£3.00")
    fill_card(page)  # a new customer has no saved card: the card form is all there is
    page.get_by_role("button", name="Pay £3.00").click()
    page.wait_for_url(re.compile(r".*/services/\d+/topup/purchases/\d+$"))
    expect(page.locator("[data-purchase-status]")).to_have_text("Added")
    page.goto(usage_url)
    expect(rows).to_have_count(3)  # a top-up is used after promo data, before the plan's
    for row, name in zip(rows.all(), ("Welcome data", "1 GB data", "Plan data")):
        expect(row.locator("th")).to_have_text(name)
    expect(rows.nth(1).locator("td").first).to_have_text("1 GB / 1 GB")

    # INT-4: the pushed invoice paid by card, with the card the top-up saved.
    page.goto(install.url + "/billing")
    invoice.get_by_role("link", name="Pay now").click()
    page.wait_for_url(re.compile(r".*/billing/invoices/\d+/pay$"))
    expect(page.get_by_label(re.compile("Visa •••• 4242"))).to_be_checked()
    page.locator("[data-pay-button]").click()
    page.wait_for_url(re.compile(r".*/billing/invoices/\d+\?done=paid$"))
    assert install.api("GET", "/invoices/INV-1")["status"] == "paid"

    # INT-6: each event once, signed with the endpoint's secret.
    wanted = {"topup.purchased", "payment.succeeded", "invoice.paid"}
    install.until(
        "every event type at the receiver", lambda: wanted <= set(received(install, hook))
    )
    deliveries = install.until("every delivery marked delivered", lambda: delivered(install, hook))
    assert all(d["attempts"] == 1 for d in deliveries), deliveries
    seen = received(install, hook)
    counts = {t: len(e) for t, e in seen.items()}
    assert counts == {"topup.purchased": 1, "payment.succeeded": 2, "invoice.paid": 1}, counts
    topup = seen["topup.purchased"][0]["data"]
    assert (topup["service_external_id"], topup["customer_external_id"]) == (MSISDN, "ACC-2001")
    assert (topup["quantity"], topup["price"], topup["currency"]) == (GB, 300, "GBP")
    payments = {e["data"]["purpose"]: e["data"] for e in seen["payment.succeeded"]}
    assert (payments["topup"]["amount"], payments["topup"]["provider"]) == (300, "stripe")
    assert payments["invoice"]["amount"] == 1800
    # How the operator's systems know whose money it was, and which of their invoices.
    assert {p["customer_external_id"] for p in payments.values()} == {"ACC-2001"}
    paid = seen["invoice.paid"][0]["data"]
    assert (paid["number"], paid["customer_external_id"]) == ("DS-2026-0001", "ACC-2001")
    # Only the contact given portal access was invited.
    assert not [m for m in install.inbox.to("sam@dunes.example") if "/invitation" in body_text(m)]
    assert console_errors == [], console_errors
