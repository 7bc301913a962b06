"""SEC-3: request bodies are capped before anything reads them, and bad input answers a 4xx
problem with a field message, never a 500 (the outside probe of issue 14, "Medium"/"Low").

Each test sends what the probe sent. Bodies go through the real WSGI app, with a
``wsgi.input`` that counts what the app read; chunked bodies also go through a real
gunicorn.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import falcon.testing
import pytest

from engine.bodies import MAX_DEPTH
from engine.db import database, utcnow
from engine.models import Customer, User
from engine.payments import ChargeRequest
from engine.testing import (
    TEST_ENVIRON,
    DEMO_PASSWORD,
    Client,
    PrincipalHeader,
    as_user,
    problem,
    seed_people,
)
from identity_support import enable_2fa
from plugins.identity import reset
from plugins.identity.models import ApiKey
from plugins.sandbox.models import SandboxCharge
from plugins.sandbox.provider import token_for
from test_security_auth import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 4096  # the cap the tests set (web.max_body_bytes), so over-limit bodies stay small


@pytest.fixture
def app(make_app):
    app = make_app(plugins=[("test-auth", PrincipalHeader())], web={"max_body_bytes": LIMIT})
    seed_people(app)
    Customer.update(api_access=True).execute()
    return app


def alice(app) -> Client:
    return as_user(Client(app), User.get(User.email == "alice@example.com"))


class CountingInput:
    """``wsgi.input`` that counts the bytes the app read from it."""

    def __init__(self, data: bytes):
        self.stream, self.taken = io.BytesIO(data), 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.taken += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        chunk = self.stream.readline(size)
        self.taken += len(chunk)
        return chunk


def send(app, method: str, path: str, body: bytes, headers: dict, chunked: bool = False):
    """One request through the WSGI app: (status code, headers, body, bytes the app read).
    ``chunked``: no Content-Length, as a server hands on a chunked body."""
    env = falcon.testing.create_environ(path=path, method=method, headers=headers)
    env["wsgi.input"] = counting = CountingInput(body)
    env.pop("CONTENT_LENGTH", None)
    if chunked:
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        env["CONTENT_LENGTH"] = str(len(body))
    start = falcon.testing.StartResponseMock()
    answer = b"".join(app.wsgi(env, start))
    return (
        int(start.status.split()[0]),
        {k.lower(): v for k, v in start.headers},
        answer,
        counting.taken,
    )


# -- body size ----------------------------------------------------------------------------------

BIG = b'{"name": "' + b"x" * (3 * LIMIT) + b'"}'
JSON_POST = {"Content-Type": "application/json", "Accept": "application/json"}


@pytest.mark.spec("SEC-3")
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_sec3_a_body_over_the_limit_is_refused_before_it_is_read(app, chunked):
    """JSON API, a form the CSRF check reads, a webhook: 413 problem+json, the body unread
    (with a Content-Length) or read to one byte past the limit (chunked)."""
    user = str(User.get(User.email == "alice@example.com").id)
    cases = [
        ("PATCH", "/api/v1/account", BIG, {**JSON_POST, "X-Test-User": user}),
        ("POST", "/api/v1/auth/login", BIG, JSON_POST),
        (
            "POST",
            "/login",
            b"email=a&password=" + b"x" * (3 * LIMIT),
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        ),
        ("POST", "/webhooks/sandbox", BIG, JSON_POST),
    ]
    for method, path, body, headers in cases:
        status, answer_headers, answer, taken = send(app, method, path, body, headers, chunked)
        assert status == 413, (path, answer[:300])
        assert answer_headers["content-type"] == "application/problem+json"
        assert json.loads(answer)["type"] == "/problems/too-large"
        assert taken <= (LIMIT + 1 if chunked else 0), (path, taken)
    # A body within the limit is read and answered as usual (here: a wrong password).
    small = json.dumps({"email": "alice@example.com", "password": "wrong"}).encode()
    status, _, answer, taken = send(app, "POST", "/api/v1/auth/login", small, JSON_POST, chunked)
    assert status == 401 and taken == len(small), answer[:300]


@pytest.mark.spec("SEC-3")
def test_sec3_the_limit_is_one_mebibyte_by_default(make_app):
    app = make_app()
    exact = b'{"email": "' + b"x" * (2**20 - 24) + b'", "x": 1}'
    body = exact + b" " * (2**20 - len(exact))
    assert len(body) == 2**20
    assert send(app, "POST", "/api/v1/auth/login", body, JSON_POST)[0] == 422  # read, refused
    assert send(app, "POST", "/api/v1/auth/login", body + b" ", JSON_POST)[0] == 413


SERVE = """
import sys
from engine import migrations
from engine.app import create_app
from engine.core.demo import seed
from engine.serve import Gunicorn, gunicorn_options
from engine.settings import load_settings
settings = load_settings(None)
app = create_app(settings)
migrations.migrate(app)
seed(app, {})
app.database.close_all()
Gunicorn(app, gunicorn_options(settings, "127.0.0.1", int(sys.argv[1]), 1, 1)).run()
"""


def chunked_post(port: int, path: str, chunks: list[bytes]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for chunk in chunks:
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered before taking it all: read that answer
    answer = conn.getresponse()
    try:
        return answer.status, answer.read()
    finally:
        conn.close()


@pytest.mark.spec("SEC-3")
def test_sec3_chunked_bodies_through_gunicorn_are_read_and_capped(tmp_path):
    """A real gunicorn de-chunks the body and gives no Content-Length: it used to be read as
    empty (a login answered 422 "missing fields"); now it is read, up to the limit."""
    port = free_port()
    env = {
        **os.environ,
        **TEST_ENVIRON,
        "PORTICO_DATA_DIR": str(tmp_path),
        "PORTICO_DEMO_PASSWORD": DEMO_PASSWORD,
        "PORTICO_SECRET_KEY": "chunked-test-" + "k" * 32,
        "PORTICO_WEB_MAX_BODY_BYTES": "65536",
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
    }
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], cwd=ROOT, env=env)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", server)
        body = json.dumps({"email": "alice@example.com", "password": DEMO_PASSWORD}).encode()
        status, answer = chunked_post(port, "/api/v1/auth/login", [body[:10], body[10:]])
        assert status == 200 and b'"token"' in answer, answer[:300]
        status, answer = chunked_post(
            port, "/api/v1/auth/login", [b'{"email": "', *[b"x" * 8192] * 10, b'"}']
        )
        assert status == 413 and b"too-large" in answer, answer[:300]
    finally:
        server.terminate()
        server.wait(30)


# -- JSON: nesting, media type ---------------------------------------------------------------


@pytest.mark.spec("SEC-3")
def test_sec3_deeply_nested_json_is_a_400_even_before_sign_in(make_app):
    """The parser used to raise RecursionError (a 500) on an anonymous login."""
    app = make_app()
    seed_people(app)
    user = str(User.get(User.email == "alice@example.com").id)
    for depth in (MAX_DEPTH + 1, 5000, 100_000):
        deep = "[" * depth + "]" * depth
        for body in (deep, '{"email": ' + deep + ', "password": "x"}'):
            answer = Client(app).post(
                "/api/v1/auth/login", body=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 400, answer.text[:300]
            assert problem(answer)["errors"] == {
                "_schema": [f"Nested more than {MAX_DEPTH} levels deep."]
            }
    # As deep as allowed: parsed, and the field refused by its own rule.
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    answer = Client(app).post(
        "/api/v1/auth/login",
        body='{"email": ' + ok + ', "password": "x"}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 422 and "email" in problem(answer)["errors"], answer.text
    # A money route reads the body first for its Idempotency-Key: the same answer there.
    answer = Client(app, headers={"X-Test-User": user}).post(
        "/api/v1/invoices/1/pay",
        body="[" * 3000 + "]" * 3000,
        headers={"Content-Type": "application/json", "Idempotency-Key": "k" * 20},
    )
    assert answer.status_code in (400, 401), answer.text[:300]


@pytest.mark.spec("SEC-3")
def test_sec3_a_body_without_content_type_is_not_taken_for_json(app):
    """415, like any other type: a page on another site can send a body with no type and no
    CORS preflight, so guessing JSON would let it sign a browser in (the API login takes no
    CSRF token because it takes JSON only)."""
    body = json.dumps({"email": "alice@example.com", "password": DEMO_PASSWORD})
    for headers in ({}, {"Content-Type": "text/plain"}):
        answer = Client(app).post("/api/v1/auth/login", body=body, headers=headers)
        assert answer.status_code == 415, answer.text[:300]
        assert problem(answer)["type"] == "/problems/unsupported-media-type"
        assert "portico_session" not in answer.cookies
        answer = alice(app).patch("/api/v1/account", body='{"locale": "zh_Hans"}', headers=headers)
        assert answer.status_code == 415, answer.text[:300]
    assert User.get(User.email == "alice@example.com").locale != "zh_Hans"


# -- text no field takes -------------------------------------------------------------------------

LONE = ["\ud800", "a\udfffb", "\udc80"]


@pytest.mark.spec("SEC-3")
@pytest.mark.parametrize("text", LONE)
def test_sec3_a_lone_surrogate_in_any_string_is_a_field_error(app, text):
    """JSON's "\\ud800" escape decodes to text no database or page can hold: it was a 500 when
    stored (an API key's name) and when shown again (a form re-rendered with it)."""
    api = alice(app)
    expires = (utcnow() + timedelta(days=30)).date().isoformat()
    for field, body in (
        ("name", {"name": text, "access": "read", "expires_at": expires}),
        ("access", {"name": "k", "access": text, "expires_at": expires}),
        ("_schema", {text: 1, "name": "k", "access": "read", "expires_at": expires}),
    ):
        raw = json.dumps(body)  # ensure_ascii: the surrogate travels as a \\u escape
        answer = api.post(
            "/api/v1/account/api-keys", body=raw, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, answer.text[:300]
        assert "surrogate" in problem(answer)["errors"][field][0]
    answer = api.put(
        "/api/v1/account/notification-preferences",
        headers={"Content-Type": "application/json"},
        body=json.dumps(
            {
                "frequency": "immediate",
                "channels": {"service": [text]},
                "thresholds": {"data": 10, "voice": 10, "sms": 10, "monetary": 100},
            }
        ),
    )
    assert answer.status_code == 422 and "channels" in problem(answer)["errors"], answer.text
    assert ApiKey.select().count() == 0


@pytest.mark.spec("SEC-3")
def test_sec3_secrets_in_other_scripts_are_refused_not_crashed(app):
    """Found by fuzzing the forms: ``compare_digest`` raises on non-ASCII text, so a CSRF token,
    a 3-D Secure client secret or a 2FA code in another script (``\\d`` matches "٣") was a
    500. Secrets are now compared as bytes (``engine.security.same``)."""
    for token in ("é" * 64, "٣" * 64):
        answer = Client(app).post(
            "/login", form={"email": "a@example.com", "password": "x", "csrf_token": token}
        )
        assert answer.status_code == 403, answer.text[:300]
        answer = Client(app).request(
            "POST",
            "/password/forgot",
            form={"email": "a@b.example"},
            csrf=False,
            headers={"X-CSRF-Token": token},
        )
        assert answer.status_code == 403, answer.text[:300]
    sandbox = app.providers["sandbox"]
    cus = sandbox.ensure_customer(app, Customer.get(Customer.number == "C-100001"), "")
    card = sandbox.finish_setup(
        app, cus, sandbox.start_setup(app, cus).ref, token_for("4000002500003155", 12, 2040)
    )
    charge = sandbox.charge(app, ChargeRequest(cus, card.ref, 1000, "GBP", "k-secret"))
    answer = Client(app).post(
        f"/api/v1/sandbox/charges/{charge.ref}/authenticate",
        json={"client_secret": "é" * 32, "success": True},
    )
    assert answer.status_code == 404, answer.text[:300]
    bob = Client(app)
    bob.login("bob@example.com")
    enable_2fa(bob, User.get(User.email == "bob@example.com"))
    answer = Client(app).post(
        "/api/v1/auth/login",
        json={"email": "bob@example.com", "password": DEMO_PASSWORD, "otp": "٣" * 6},
    )
    assert answer.status_code == 401 and "portico_session" not in answer.cookies, answer.text


# -- redirects and private pages -------------------------------------------------------------


@pytest.mark.spec("SEC-3")
def test_sec3_the_3ds_page_goes_back_only_into_the_portal(app):
    """The sandbox's challenge page redirected wherever ``return_to`` said (a forged form could
    send the cardholder to another site) and passed CR/LF on to the Location header."""
    sandbox = app.providers["sandbox"]
    cus = sandbox.ensure_customer(
        app, Customer.get(Customer.number == "C-100001"), "alice@example.com"
    )
    page = as_user(
        Client(app, headers={"Accept": "text/html"}), User.get(User.email == "alice@example.com")
    )
    pending = []
    for n in range(8):  # one payment waiting for 3-D Secure per attempt
        setup = sandbox.start_setup(app, cus)
        card = sandbox.finish_setup(app, cus, setup.ref, token_for("4000002500003155", 12, 2040))
        pending.append(sandbox.charge(app, ChargeRequest(cus, card.ref, 1000, "GBP", f"k-{n}")))
    bad = [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/\r\nSet-Cookie: x=1",
        "/\n/evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ]
    for charge, target in zip(pending, bad):
        answer = page.post(
            f"/sandbox/charges/{charge.ref}/authenticate",
            form={"client_secret": charge.client_secret, "result": "complete", "return_to": target},
        )
        assert answer.status_code == 422, (target, answer.status_code, answer.headers)
        assert "location" not in answer.headers
        assert SandboxCharge.get(SandboxCharge.ref == charge.ref).status == "requires_action"
    last = pending[-1]
    answer = page.post(
        f"/sandbox/charges/{last.ref}/authenticate",
        form={
            "client_secret": last.client_secret,
            "result": "complete",
            "return_to": "/billing?paid=1",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"].endswith("/billing?paid=1")
    assert SandboxCharge.get(SandboxCharge.ref == last.ref).status == "succeeded"


@pytest.mark.spec("PWD-1")
def test_the_password_reset_page_is_never_cached(app):
    """The link's token is in the page's URL and its form: no cache may keep the page."""
    with database.atomic():
        token = reset.issue(app, User.get(User.email == "bob@example.com"))
    for path in (f"/password/reset?token={token}", "/password/reset?token=unknown"):
        answer = Client(app).get(path)
        assert answer.headers.get("cache-control") == "no-store", (path, answer.headers)
    answer = Client(app).post(
        "/password/reset", form={"token": token, "password": "x", "password_confirm": "y"}
    )
    assert answer.status_code == 422 and answer.headers.get("cache-control") == "no-store"


def test_no_anchored_pattern_lets_a_trailing_newline_through():
    """SEC-3: ``$`` also matches before a final newline, so ``^[A-Z]{3}$`` accepts "GBP\\n";
    whole-value patterns end in ``\\Z``."""
    import re as re_
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    loose = re_.compile(r"""r["']\^[^"'\n]*\$["']""")
    found = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("engine", "plugins")
        for path in (root / folder).rglob("*.py")
        if "migrations" not in path.parts and path.name != "pwa.py"  # pwa.py: JavaScript's
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if loose.search(line)
    ]
    assert found == []
