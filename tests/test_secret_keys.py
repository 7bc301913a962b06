"""SEC-6: the signing key can be rotated. ``secret_keys``: the first key signs and seals, every
key in the list verifies and opens; a key taken out of the list opens nothing more.

Every use of the secret key is covered: CSRF tokens, sealed 2FA seeds (customers' and
staff's), backup codes, guest payment links. Each value is made by a portal running on the
old key, then checked by the same database under the rotated list and under the list
without the old key (a restart with new settings is a new app on the same database).
"""

from __future__ import annotations

import pyotp
import pytest
from click.testing import CliRunner

from engine import db
from engine.cli import cli
from engine.middleware import CSRF_COOKIE, csrf_token
from engine.models import Customer
from engine.security import UnsealError, sign, unseal
from engine.settings import SECRET_MASK, SettingsError, load_settings
from engine.testing import (
    DEMO_PASSWORD,
    TEST_ALLOWANCES,
    TEST_ENVIRON,
    Client,
    ensure_database,
    seed_people,
)
from billing_helpers import invoice_for
from identity_support import enable_2fa, signed_in, user
from plugins.identity.models import TwoFactor
from plugins.staff.models import StaffTwoFactor
from test_staff_2fa import code, sign_in as staff_sign_in, staff_api, turn_on

OLD, NEW = "old-signing-key-" + "o" * 32, "new-signing-key-" + "n" * 32


def settings(**values):
    return load_settings(
        None,
        environ=values.pop("environ", {}),
        overrides={
            "data_dir": "/nonexistent",
            "base_url": "http://portal.test",
            **TEST_ALLOWANCES,
            **values,
        },
    )


@pytest.mark.spec("SEC-6")
def test_secret_keys_lists_the_keys_and_secret_key_is_a_list_of_one():
    one = settings(secret_key=OLD)
    assert one.secret_keys == [OLD] and one.secret_key == OLD
    both = settings(secret_key=OLD, secret_keys=[NEW, OLD])
    assert both.secret_keys == [NEW, OLD] and both.secret_key == NEW
    # Both set: secret_keys wins, secret_key is ignored (docs/configuration.md says so).
    assert settings(secret_key=OLD, secret_keys=[NEW]).secret_keys == [NEW]
    from_env = settings(environ={"PORTICO_SECRET_KEYS": f"{NEW},{OLD}"})
    assert from_env.secret_keys == [NEW, OLD]
    assert from_env.redacted()["secret_keys"] == [SECRET_MASK, SECRET_MASK]
    with pytest.raises(SettingsError, match="secret_keys.1: Shorter than minimum length 32"):
        settings(secret_keys=[NEW, "short"])
    with pytest.raises(SettingsError, match="secret_key: required outside demo mode"):
        settings()


def login(app, email: str, otp: str):
    body = {"email": email, "password": DEMO_PASSWORD, "otp": otp}
    return Client(app).post("/api/v1/auth/login", json=body)


@pytest.mark.spec("SEC-6", "ACCT-6", "BILL-6")
def test_values_made_under_the_old_key_verify_after_rotation_and_not_once_it_is_removed(make_app):
    old = make_app(secret_keys=[OLD])
    seed_people(old)
    # Made under the old key: a browser's CSRF token, two customers' and a staff member's
    # 2FA (sealed seeds and backup codes), and a guest payment link.
    browser = Client(old)
    old_token = browser.csrf_token()
    assert old_token == sign(OLD, "csrf:" + browser.cookies[CSRF_COOKIE])
    alice, bob = user("alice@example.com"), user("bob@example.com")
    enable_2fa(signed_in(old, "alice@example.com"), alice)
    bob_codes = enable_2fa(signed_in(old, "bob@example.com"), bob)
    agent_seed = turn_on(old)
    alice_seed, bob_seed = (
        unseal([OLD], TwoFactor.get(TwoFactor.user == u.id).secret) for u in (alice, bob)
    )
    invoice = invoice_for(old, Customer.get(Customer.number == "C-100001").id, 1500)
    admin = staff_api(old, "admin@example.com")
    link = admin.post(f"/api/v1/staff/invoices/{invoice.id}/payment-links", json={})
    assert link.status_code == 201, link.text
    pay_path = "/pay/" + link.json["url"].rsplit("/pay/", 1)[1]

    def post_with_old_token(app):
        again = Client(app)
        again.cookies[CSRF_COOKIE] = browser.cookies[CSRF_COOKIE]
        return again.post("/lang", form={"lang": "en", "csrf_token": old_token}, csrf=False)

    # Rotated: the new key signs, the old one still verifies every value.
    rotated = make_app(secret_keys=[NEW, OLD])
    assert csrf_token(rotated, "cookie") == sign(NEW, "csrf:cookie")
    assert post_with_old_token(rotated).status_code == 303
    assert Client(rotated).get(pay_path).status_code == 303  # swapped for the /pay cookie
    assert (
        login(
            rotated, "alice@example.com", pyotp.TOTP(alice_seed).at(_step_after(alice))
        ).status_code
        == 200
    )
    # Her seed was sealed again under the new key when it was used.
    assert unseal([NEW], TwoFactor.get(TwoFactor.user == alice.id).secret) == alice_seed
    assert login(rotated, "bob@example.com", bob_codes[0]).status_code == 200  # backup code
    fresh = Client(rotated)
    assert fresh.csrf_token() == sign(NEW, "csrf:" + fresh.cookies[CSRF_COOKIE])

    # The old key removed: nothing it made verifies any more.
    removed = make_app(secret_keys=[NEW])
    refused = post_with_old_token(removed)
    assert refused.status_code == 403 and "expired" in refused.text
    assert Client(removed).get(pay_path).status_code == 404
    assert login(removed, "bob@example.com", bob_codes[1]).status_code == 401
    with pytest.raises(UnsealError):
        unseal([NEW], TwoFactor.get(TwoFactor.user == bob.id).secret)
    assert (
        login(removed, "bob@example.com", pyotp.TOTP(bob_seed).at(_step_after(bob))).status_code
        == 401
    )
    assert staff_sign_in(removed, code(agent_seed, 1)).status_code == 401
    # What the rotated portal sealed again under the new key still opens.
    assert unseal([NEW], TwoFactor.get(TwoFactor.user == alice.id).secret) == alice_seed


def _step_after(u) -> int:
    """A time in the next 30 s step after the user's last accepted one (no replay)."""
    return (TwoFactor.get(TwoFactor.user == u.id).last_step + 1) * 30


@pytest.mark.spec("SEC-6")
def test_portico_reseal_moves_sealed_seeds_to_the_first_key(make_app, database_url, tmp_path):
    old = make_app(secret_keys=[OLD])
    seed_people(old)
    enable_2fa(signed_in(old, "alice@example.com"), user("alice@example.com"))
    agent_seed = turn_on(old)
    ensure_database(database_url)
    environ = {
        **TEST_ENVIRON,
        "PORTICO_DATABASE_URL": database_url,
        "PORTICO_DATA_DIR": str(tmp_path / "data"),
        "PORTICO_SECRET_KEYS": f"{NEW},{OLD}",
        "PORTICO_PLUGINS_ENTRY_POINTS": "false",
    }
    run = CliRunner().invoke(cli, ["reseal"], env=environ, catch_exceptions=False)
    assert run.exit_code == 0, run.output
    assert "2 sealed values moved to the first secret key" in run.output
    with db.connection():
        for row in list(TwoFactor.select()) + list(StaffTwoFactor.select()):
            unseal([NEW], row.secret)  # opens under the new key alone
    again = CliRunner().invoke(cli, ["reseal"], env=environ, catch_exceptions=False)
    assert "0 sealed values moved" in again.output
    # With the old key gone after the reseal, the agent still signs in.
    removed = make_app(secret_keys=[NEW])
    assert staff_sign_in(removed, code(agent_seed, 1)).status_code == 200
    # A value whose key is gone is reported, and the command fails.
    gone = CliRunner().invoke(
        cli,
        ["reseal"],
        env={**environ, "PORTICO_SECRET_KEYS": "another-key-" + "a" * 32},
        catch_exceptions=False,
    )
    assert gone.exit_code == 1 and "2 sealed values open under none of secret_keys" in gone.output
