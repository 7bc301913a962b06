"""Two-step verification (ACCT-6, PWD-4): set-up, sign-in, replay refusal, backup codes, removal."""

import time

import pyotp
import pytest

from engine.models import AuditEvent
from engine.security import token_hash
from engine.testing import DEMO_PASSWORD, Client, problem
from identity_support import core_demo, enable_2fa, signed_in, totp_code, user  # noqa: F401
from plugins.identity import twofactor
from plugins.identity.models import BackupCode, Session, TwoFactor


@pytest.mark.spec("ACCT-6")
def test_setup_shows_a_qr_code_and_the_manual_key_then_a_code_turns_it_on(core_demo):
    client = signed_in(core_demo, "alice@example.com")
    page = client.get("/account/2fa/setup")
    assert page.status_code == 200
    assert 'src="data:image/svg+xml' in page.text  # segno's QR code, no external request
    row = TwoFactor.get(TwoFactor.user == user("alice@example.com").id)
    secret = twofactor.seed(core_demo, row)
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in page.text
    wrong = client.post("/account/2fa/setup", form={"code": "123456"})
    assert wrong.status_code == 422 and "That code is not right" in wrong.text
    assert not client.get("/api/v1/account/2fa").json["enabled"]
    done = client.post("/account/2fa/setup", form={"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and "shown only this once" in done.text
    codes = [c for c in done.text.split("<code>")[1:]]
    assert len(codes) == 10
    status = client.get("/api/v1/account/2fa").json
    assert status == {"enabled": True, "backup_codes_left": 10, "pending_setup": False}
    assert AuditEvent.select().where(AuditEvent.action == "2fa.enabled").count() == 1


@pytest.mark.spec("ACCT-6")
def test_the_api_setup_answers_secret_uri_and_qr(core_demo):
    client = signed_in(core_demo, "bob@example.com")
    setup = client.post("/api/v1/account/2fa/setup").json
    assert (
        setup["otpauth_uri"].startswith("otpauth://totp/")
        and setup["secret"] in setup["otpauth_uri"]
    )
    assert setup["qr_svg"].startswith("data:image/svg+xml")
    codes = client.post(
        "/api/v1/account/2fa/enable", json={"code": pyotp.TOTP(setup["secret"]).now()}
    ).json["backup_codes"]
    assert len(set(codes)) == 10
    stored = [b.code_hash for b in BackupCode.select()]
    assert not any(c.replace("-", "") in h or c in h for c in codes for h in stored)
    again = client.post("/api/v1/account/2fa/setup")
    assert again.status_code == 409


@pytest.mark.spec("ACC-1", "ACCT-6")
def test_sign_in_asks_for_the_code_and_issues_a_new_token_after_it(core_demo):
    alice = user("alice@example.com")
    enable_2fa(signed_in(core_demo, "alice@example.com"), alice)
    client = Client(core_demo)
    first = client.post("/login", form={"email": "alice@example.com", "password": DEMO_PASSWORD})
    assert first.headers["location"] == "/login/2fa"
    pending_token = client.cookies["portico_session"]
    assert client.get("/api/v1/me").status_code == 401  # a password alone opens nothing
    assert client.get("/login/2fa").status_code == 200
    bad = client.post("/login/2fa", form={"otp": "000000"})
    assert bad.status_code == 401 and "That code is not right." in bad.text
    done = client.post("/login/2fa", form={"otp": totp_code(core_demo, alice, 1)})
    assert done.status_code == 303
    assert client.cookies["portico_session"] != pending_token
    assert Session.get(Session.token_hash == token_hash(pending_token)).revoked_at is not None
    assert client.get("/api/v1/me").json["email"] == "alice@example.com"
    assert (
        AuditEvent.select()
        .where(AuditEvent.action == "login")
        .order_by(AuditEvent.id.desc())
        .first()
        .data["method"]
        == "password+totp"
    )


@pytest.mark.spec("ACCT-6")
def test_a_replayed_code_is_refused_and_logged(core_demo):
    alice = user("alice@example.com")
    enable_2fa(signed_in(core_demo, "alice@example.com"), alice)
    code = totp_code(core_demo, alice, 1)
    body = {"email": "alice@example.com", "password": DEMO_PASSWORD, "otp": code}
    assert Client(core_demo).post("/api/v1/auth/login", json=body).status_code == 200
    replay = Client(core_demo).post("/api/v1/auth/login", json=body)
    assert replay.status_code == 401
    assert problem(replay)["errors"]["otp"] == [
        "That code was already used. Wait for the next code."
    ]
    logged = AuditEvent.get(AuditEvent.action == "2fa.replay_refused")
    assert logged.user_id == alice.id and logged.customer_id == alice.contact.customer_id


@pytest.mark.spec("PWD-4", "ACCT-6")
def test_lost_device_backup_code_then_disable_and_set_up_again(core_demo):
    alice = user("alice@example.com")
    codes = enable_2fa(signed_in(core_demo, "alice@example.com"), alice)
    client = Client(core_demo)
    client.post("/login", form={"email": "alice@example.com", "password": DEMO_PASSWORD})
    done = client.post("/login/2fa", form={"otp": codes[0]})
    assert done.headers["location"] == "/account/security?notice=backup"
    assert "You signed in with a backup code" in client.get(done.headers["location"]).text
    # Each backup code works once.
    reuse = Client(core_demo).post(
        "/api/v1/auth/login",
        json={"email": "alice@example.com", "password": DEMO_PASSWORD, "otp": codes[0]},
    )
    assert reuse.status_code == 401
    # Turn 2FA off with the password and another backup code, then set it up on a new phone.
    off = client.post("/account/2fa/disable", form={"password": DEMO_PASSWORD, "code": codes[1]})
    assert off.headers["location"] == "/account/security?notice=disabled"
    assert not client.get("/api/v1/account/2fa").json["enabled"]
    new_codes = enable_2fa(client, alice)
    assert codes[2] not in new_codes
    assert (
        Client(core_demo)
        .post(
            "/api/v1/auth/login",
            json={"email": "alice@example.com", "password": DEMO_PASSWORD, "otp": codes[2]},
        )
        .status_code
        == 401
    )  # the old set is gone


@pytest.mark.spec("ACCT-6")
def test_turning_2fa_off_needs_the_password_and_a_code(core_demo):
    alice = user("alice@example.com")
    client = signed_in(core_demo, "alice@example.com")
    enable_2fa(client, alice)
    no_password = client.post(
        "/api/v1/account/2fa/disable",
        json={"password": "Wrong-Pass-2026!", "code": totp_code(core_demo, alice, 1)},
    )
    assert no_password.json["errors"] == {"password": ["This is not your current password."]}
    no_code = client.post(
        "/api/v1/account/2fa/disable", json={"password": DEMO_PASSWORD, "code": "000000"}
    )
    assert no_code.json["errors"] == {"code": ["That code is not right."]}
    missing = client.post("/api/v1/account/2fa/disable", json={})
    assert set(missing.json["errors"]) == {"password", "code"}
    assert client.get("/api/v1/account/2fa").json["enabled"]
    off = client.post(
        "/api/v1/account/2fa/disable",
        json={"password": DEMO_PASSWORD, "code": totp_code(core_demo, alice, 1)},
    )
    assert off.status_code == 200 and not client.get("/api/v1/account/2fa").json["enabled"]
    assert AuditEvent.select().where(AuditEvent.action == "2fa.disabled").count() == 1


def test_backup_codes_can_be_renewed_with_password_and_code(core_demo):
    alice = user("alice@example.com")
    client = signed_in(core_demo, "alice@example.com")
    old = enable_2fa(client, alice)
    renewed = client.post(
        "/api/v1/account/2fa/backup-codes", json={"password": DEMO_PASSWORD, "code": old[0]}
    )
    assert renewed.status_code == 200 and len(renewed.json["backup_codes"]) == 10
    assert client.get("/api/v1/account/2fa").json["backup_codes_left"] == 10


@pytest.mark.spec("ACCT-6")
def test_the_seed_is_sealed_at_rest_and_an_older_plaintext_one_is_sealed_on_use(core_demo, caplog):
    alice = user("alice@example.com")
    enable_2fa(signed_in(core_demo, "alice@example.com"), alice)
    row = TwoFactor.get(TwoFactor.user == alice.id)
    seed = twofactor.seed(core_demo, row)
    assert len(seed) == 32 and seed not in row.secret and row.secret.startswith("sealed1:")

    # A seed stored before sealing (plaintext) still works, and is sealed by its first code.
    TwoFactor.update(secret=seed).where(TwoFactor.id == row.id).execute()
    body = {
        "email": "alice@example.com",
        "password": DEMO_PASSWORD,
        "otp": totp_code(core_demo, alice, 1),
    }
    assert Client(core_demo).post("/api/v1/auth/login", json=body).status_code == 200
    stored = TwoFactor.get_by_id(row.id).secret
    assert stored.startswith("sealed1:") and stored != row.secret
    assert twofactor.seed(core_demo, TwoFactor.get_by_id(row.id)) == seed

    # Under another secret_key the seal does not open: every code is refused, and logged.
    core_demo.settings.secret_keys = ["another-key-" + "x" * 40]
    body["otp"] = pyotp.TOTP(seed).at(int(time.time()) + 60)
    assert Client(core_demo).post("/api/v1/auth/login", json=body).status_code == 401
    assert "cannot be opened with any of the secret keys" in caplog.text
