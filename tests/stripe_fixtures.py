"""localstripe for the Stripe tests: one real server per session on a free loopback port.

Fixtures (imported by ``tests/conftest.py``):

- ``localstripe``: the running server (``.url``, ``.js_url``), emptied before each test
  with ``DELETE /_config/data``. Helpers do what Stripe.js does in a browser:
  ``confirm_setup(...)`` (``confirmCardSetup``) and ``authenticate(...)`` (3-D Secure).
- ``stripe_settings(localstripe)``: ``make_app`` keywords that point the Stripe plugin at it.

The real ``stripe`` client talks to it with ``max_network_retries=0``; localstripe
ignores ``Idempotency-Key``, so our own records must guarantee one charge.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from engine.testing import need_service

LAUNCHER = Path(__file__).with_name("localstripe_server.py")
SECRET_KEY, PUBLISHABLE_KEY = "sk_test_portico", "pk_test_portico"
WEBHOOK_SECRET = "whsec_portico_test"


@dataclass
class LocalStripe:
    url: str
    process: subprocess.Popen

    @property
    def js_url(self) -> str:
        return f"{self.url}/js.stripe.com/v3/"

    def reset(self) -> None:
        requests.delete(f"{self.url}/_config/data", timeout=10).raise_for_status()

    def settings(self, **stripe) -> dict:
        """``make_app(**localstripe.settings())``: Stripe as the provider, pointed here."""
        return {
            "billing": {"provider": "stripe"},
            "stripe": {
                "secret_key": SECRET_KEY,
                "publishable_key": PUBLISHABLE_KEY,
                "webhook_secret": WEBHOOK_SECRET,
                "api_base": self.url,
                "js_url": self.js_url,
                "max_network_retries": 0,
                **stripe,
            },
        }

    def client(self):
        import stripe

        return stripe.StripeClient(
            SECRET_KEY, base_addresses={"api": self.url}, max_network_retries=0
        )

    def confirm_setup(
        self,
        setup_id: str,
        client_secret: str,
        number: str,
        exp_month: int = 12,
        exp_year: int = 2034,
    ) -> requests.Response:
        """What ``stripe.confirmCardSetup`` sends from the browser (the card goes to Stripe).

        A card that asks for 3-D Secure is then confirmed again, as Stripe.js does when
        the cardholder completes the challenge.
        """
        url = f"{self.url}/v1/setup_intents/{setup_id}/confirm"
        answer = requests.post(
            url,
            json={
                "key": PUBLISHABLE_KEY,
                "use_stripe_sdk": True,
                "client_secret": client_secret,
                "payment_method_data": {
                    "type": "card",
                    "card": {
                        "number": number,
                        "exp_month": str(exp_month),
                        "exp_year": str(exp_year),
                        "cvc": "123",
                    },
                },
            },
            timeout=10,
        )
        if answer.status_code == 200 and answer.json().get("status") == "requires_action":
            answer = requests.post(
                url,
                json={
                    "key": PUBLISHABLE_KEY,
                    "use_stripe_sdk": True,
                    "client_secret": client_secret,
                },
                timeout=10,
            )
        return answer

    def authenticate(self, intent_id: str, client_secret: str, success: bool = True):
        """The cardholder's answer to 3-D Secure (what ``confirmCardPayment`` does)."""
        return requests.post(
            f"{self.url}/v1/payment_intents/{intent_id}/_authenticate",
            params={"success": "true" if success else "false"},
            json={"key": PUBLISHABLE_KEY, "client_secret": client_secret},
            timeout=10,
        )

    def register_webhook(self, url: str, secret: str = WEBHOOK_SECRET) -> None:
        requests.post(
            f"{self.url}/_config/webhooks/portico", json={"url": url, "secret": secret}, timeout=10
        ).raise_for_status()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory):
    try:
        import localstripe  # noqa: F401
    except ImportError as exc:
        need_service("localstripe (pip install localstripe)", exc)
    folder = tmp_path_factory.mktemp("localstripe")
    port = free_port()
    log = (folder / "localstripe.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(LAUNCHER), str(port), str(folder / "state.pickle")],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ},
        start_new_session=True,
    )
    server = LocalStripe(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while True:
        try:
            if (
                requests.get(
                    f"{server.url}/v1/customers", auth=(SECRET_KEY, ""), timeout=2
                ).status_code
                == 200
            ):
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            need_service("localstripe", RuntimeError((folder / "localstripe.log").read_text()))
        time.sleep(0.1)
    yield server
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def localstripe(localstripe_server) -> LocalStripe:
    localstripe_server.reset()
    return localstripe_server
