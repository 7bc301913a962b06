"""SEC-2: requests to URLs customers give (web push endpoints; webhooks next) go only over
https to public addresses, checked when the URL is registered and again when sending, and
sent to the address that was checked (the outside probe of issue 14).

Pushes go to a real HTTPS server on loopback (``https_service.HTTPSService``) with the
test-only ``outbound.unsafe_allow_loopback_for_tests``. Names no DNS here can answer
(``push.test``, ``rebind.test``) are resolved through ``engine.outbound.resolve_host``, the
module's one seam; ``localhost`` goes through the machine's real resolver.
"""

from __future__ import annotations

import pytest
import requests
from click.testing import CliRunner

from engine import outbound
from engine.cli import cli
from engine.db import utcnow
from engine.models import User
from engine.notify import Notice, notify
from engine.testing import Client, PrincipalHeader, as_user, problem, run_tasks, seed_people
from plugins.webpush.models import PushDelivery, PushSubscription
from https_service import PUBLIC
from test_webpush import b64, browser_keys, push_service, vapid  # noqa: F401 - fixtures


#: Addresses a customer's URL must never reach, with what they are.
REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "shared",
    "100.127.255.254": "shared",
    "169.254.169.254": "link-local",
    "169.254.0.1": "link-local",
    "fe80::1": "link-local",
    "fe80::1%1": "scoped",
    "fd00:ec2::254": "unique local",
    "fc00::1": "unique local",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "::": "unspecified",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "192.0.2.7": "documentation",
    "198.51.100.7": "documentation",
    "203.0.113.7": "documentation",
    "2001:db8::1": "documentation",
    "198.18.0.1": "benchmarking",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "link-local",
    "64:ff9b::a00:1": "private",
    "64:ff9b::7f00:1": "loopback",
    "64:ff9b:1::1": "NAT64",
    "2002:a00:1::1": "private",
    "2002:7f00:1::": "loopback",
    "2002:a9fe:a9fe::1": "link-local",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "private",  # Teredo: client 10.0.0.1
    "::127.0.0.1": "IPv4-compatible",
    "100::1": "discard",
}
#: Public addresses, bare and carried inside IPv6.
ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    PUBLIC,
    "2606:4700:4700::1111",
    "2a00:1450:4009:81f::200a",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.spec("SEC-2")
def test_sec2_every_address_that_is_not_public_is_refused():
    for address, kind in REFUSED.items():
        why = outbound.refusal(address)
        assert why, (address, kind)
    assert outbound.refusal("169.254.169.254").startswith("a link-local address (the cloud")
    assert [a for a in ALLOWED if outbound.refusal(a)] == []
    # The test-only switch lets loopback through, and nothing else.
    assert outbound.refusal("127.0.0.1", allow_loopback=True) is None
    assert outbound.refusal("::1", allow_loopback=True) is None
    assert outbound.refusal("10.0.0.1", allow_loopback=True)
    assert outbound.refusal("169.254.169.254", allow_loopback=True)


def push_app(make_app, vapid, loopback: bool):  # noqa: F811 - the fixture's value
    app = make_app(
        plugins=[("test-auth", PrincipalHeader())],
        webpush=vapid,
        outbound={"unsafe_allow_loopback_for_tests": loopback},
    )
    seed_people(app)
    return app


def subscribe(app, endpoint: str):
    user = User.get(User.email == "alice@example.com")
    _, public, auth = browser_keys()
    return as_user(Client(app), user).post(
        "/api/v1/push/subscriptions",
        json={"endpoint": endpoint, "keys": {"p256dh": public, "auth": b64(auth)}},
    )


def push(app, key: str) -> list[str]:
    """Raise a notice for alice and run the tasks: the status of each delivery, by browser."""
    user = User.get(User.email == "alice@example.com")
    with app.database.atomic():
        notify(
            app,
            Notice(
                kind="service_expiring",
                key=key,
                category="service",
                mandatory=True,
                user_id=user.id,
                data={"service": "TV", "service_id": 1, "days": 1, "ends_at": utcnow().isoformat()},
            ),
        )
    run_tasks(app)
    return [
        d.status
        for d in PushDelivery.select()
        .where(PushDelivery.key == key)
        .order_by(PushDelivery.subscription)
    ]


@pytest.mark.spec("SEC-2")
def test_sec2_a_push_endpoint_must_be_https_to_a_public_address(make_app, vapid, dns):  # noqa: F811
    app = push_app(make_app, vapid, loopback=False)
    dns.table.update(
        {
            "metadata.test": ["169.254.169.254"],
            "mixed.test": [PUBLIC, "10.0.0.7"],
            "nat64.test": ["64:ff9b::a9fe:a9fe"],
            "push.test": [PUBLIC],
        }
    )
    for endpoint, says in (
        ("http://push.test/x", "Not a valid URL"),  # the schema: https only
        ("https://127.0.0.1/x", "loopback"),
        ("https://[::1]:8443/x", "loopback"),
        ("https://localhost/x", "loopback"),  # the machine's own resolver
        ("https://10.0.0.1/x", "private"),
        ("https://2130706433/x", "loopback"),
        ("https://[::ffff:a9fe:a9fe]/x", "link-local"),
        ("https://metadata.test/x", "169.254.169.254"),
        ("https://mixed.test/x", "10.0.0.7"),
        ("https://nat64.test/x", "link-local"),
        ("https://user:pw@push.test/x", "password"),
        ("https://nowhere.invalid/x", "could not be found"),
    ):
        answer = subscribe(app, endpoint)
        assert answer.status_code == 422, (endpoint, answer.text)
        message = problem(answer)["errors"]["endpoint"][0]
        assert says in message, (endpoint, message)
    assert PushSubscription.select().count() == 0
    assert subscribe(app, "https://push.test/x").status_code == 201


@pytest.mark.spec("SEC-2")
def test_sec2_a_name_that_points_elsewhere_by_send_time_gets_nothing(
    make_app, vapid, dns, push_service
):  # noqa: F811
    """DNS rebinding: public when registered, loopback or metadata when the push goes out.
    The push is refused at send time (not retried) and nothing reaches the server."""
    app = push_app(make_app, vapid, loopback=False)
    dns.table["rebind.test"] = [PUBLIC]
    assert subscribe(app, push_service.url_for("rebind.test")).status_code == 201
    for n, now in enumerate((["127.0.0.1"], ["169.254.169.254"], [PUBLIC, "10.9.8.7"])):
        dns.table["rebind.test"] = now
        assert push(app, f"rebind-{n}") == ["refused"], now
    assert push_service.received == [] and push_service.server_names == []
    assert PushSubscription.select().count() == 1  # kept: the name may be fixed again


@pytest.mark.spec("SEC-2")
def test_sec2_a_push_goes_to_the_checked_address_with_its_name_for_tls(
    make_app, vapid, dns, push_service
):  # noqa: F811
    """``push.test`` exists only in this test's resolver: the push can arrive only if the
    connection went to the checked address (127.0.0.1) without another look-up, and TLS
    checked the certificate for ``push.test`` (the name the client sent by SNI)."""
    app = push_app(make_app, vapid, loopback=True)
    dns.table["push.test"] = ["127.0.0.1"]
    assert subscribe(app, push_service.url_for("push.test")).status_code == 201
    dns.calls.clear()
    assert push(app, "pinned") == ["sent"]
    [(headers, body)] = push_service.received
    headers = {k.lower(): v for k, v in headers.items()}
    assert push_service.server_names == ["push.test"] and dns.calls == ["push.test"]
    assert headers["host"] == f"push.test:{push_service.port}"
    assert push_service.paths == ["/push/"]
    assert headers["content-encoding"] == "aes128gcm" and body


@pytest.mark.spec("SEC-2")
def test_sec2_the_real_resolver_and_each_checked_address_in_turn(
    make_app, vapid, dns, push_service
):  # noqa: F811
    """``localhost`` through the machine's own resolver; then a name whose first address
    (::1, where nothing listens) takes no connection: the next checked address does."""
    app = push_app(make_app, vapid, loopback=True)
    assert subscribe(app, push_service.url_for("localhost")).status_code == 201
    assert push(app, "localhost") == ["sent"]
    dns.table["push.test"] = ["::1", "127.0.0.1"]
    assert subscribe(app, push_service.url_for("push.test")).status_code == 201
    assert push(app, "dual") == ["sent", "sent"]  # to both browsers
    assert sorted(push_service.server_names) == ["localhost", "localhost", "push.test"]


@pytest.mark.spec("SEC-2")
def test_sec2_a_certificate_for_another_name_is_refused(make_app, vapid, dns, push_service):  # noqa: F811
    """Pinning keeps TLS honest: ``other.test`` pinned to the server, whose certificate does
    not name it, fails verification."""
    app = push_app(make_app, vapid, loopback=True)
    dns.table["other.test"] = ["127.0.0.1"]
    with pytest.raises(Exception) as failed:
        with outbound.session(app, push_service.url_for("other.test")) as http:
            http.post(push_service.url_for("other.test"), data=b"x", timeout=10)
    assert "certificate" in str(failed.value).lower()
    assert push_service.received == []


@pytest.mark.spec("SEC-2")
def test_sec2_a_redirect_is_not_followed(make_app, vapid, dns, push_service):  # noqa: F811
    app = push_app(make_app, vapid, loopback=True)
    dns.table["push.test"] = ["127.0.0.1"]
    push_service.status, push_service.headers["Location"] = 307, "https://127.0.0.1:1/elsewhere"
    with pytest.raises(requests.TooManyRedirects):
        with outbound.session(app, push_service.url_for("push.test")) as http:
            http.post(push_service.url_for("push.test"), data=b"x", timeout=10)
    assert len(push_service.received) == 1


@pytest.mark.spec("SEC-2")
def test_sec2_portico_check_warns_about_the_test_only_switch(tmp_path):
    env = {
        "PORTICO_DEMO": "true",
        "PORTICO_DATA_DIR": str(tmp_path),
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
    }
    quiet = CliRunner().invoke(cli, ["check"], env=env)
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr, quiet.output
    loud = CliRunner().invoke(
        cli, ["check"], env={**env, "PORTICO_OUTBOUND_UNSAFE_ALLOW_LOOPBACK_FOR_TESTS": "true"}
    )
    assert loud.exit_code == 0, loud.output
    assert "warning: outbound.unsafe_allow_loopback_for_tests is on" in loud.stderr
