"""Two-step sign-in for staff: set up by API and page, asked for at staff sign-in, refused when
wrong or replayed (and counted toward the lock), turned off with password and code, reset by
an administrator from the shell. Staff can open any customer's portal, so their sign-in
deserves the customers' second factor too."""

import time
from datetime import timedelta

import pyotp
import pytest
import time_machine
from click.testing import CliRunner

from engine.models import AuditEvent, StaffUser
from engine.testing import DEMO_PASSWORD, Client, problem
from identity_support import core_demo  # noqa: F401
from plugins.identity import lockout, twofactor
from plugins.staff.commands import staff_group
from plugins.staff.models import StaffTwoFactor

AGENT = "agent@example.com"


def staff_api(app, email=AGENT, otp=None):
    token = Client(app).login(email, otp=otp, staff=True)["token"]
    return Client(app, headers={"Authorization": f"Bearer {token}"})


def sign_in(app, otp=None, email=AGENT):
    body = {"email": email, "password": DEMO_PASSWORD, **({"otp": otp} if otp else {})}
    return Client(app).post("/api/v1/staff/auth/login", json=body)


def code(seed: str, steps: int = 0) -> str:
    return pyotp.TOTP(seed).at(int(time.time()) + 30 * steps)


def turn_on(app) -> str:
    """Set up and turn on the agent's authenticator through the API; returns its seed."""
    agent = staff_api(app)
    setup = agent.post("/api/v1/staff/2fa/setup")
    assert setup.status_code == 200, setup.text
    assert setup.json["otpauth_uri"].startswith("otpauth://totp/") and setup.json[
        "qr_svg"
    ].startswith("data:image/svg+xml")
    seed = setup.json["secret"]
    wrong = agent.post("/api/v1/staff/2fa/enable", json={"code": "000000"})
    assert problem(wrong)["errors"]["code"] == ["That code is not right."]
    assert not agent.get("/api/v1/staff/2fa").json["enabled"]
    assert agent.post("/api/v1/staff/2fa/enable", json={"code": code(seed)}).json["enabled"]
    assert agent.get("/api/v1/staff/2fa").json["enabled"]
    return seed


@pytest.mark.spec("ACC-2", "ACCT-6")
def test_once_on_staff_sign_in_needs_a_current_code(core_demo):
    seed = turn_on(core_demo)
    stored = StaffTwoFactor.get().secret
    assert stored.startswith("sealed1:") and seed not in stored  # sealed at rest
    assert AuditEvent.select().where(AuditEvent.action == "staff.2fa_enabled").count() == 1

    missing = sign_in(core_demo)
    assert missing.status_code == 401 and problem(missing)["type"] == "/problems/otp-required"
    wrong = sign_in(core_demo, "123456")
    assert wrong.status_code == 401 and problem(wrong)["type"] == "/problems/otp-invalid"
    good = code(seed, 1)
    assert sign_in(core_demo, good).status_code == 200
    replayed = sign_in(core_demo, good)
    assert problem(replayed)["type"] == "/problems/otp-invalid"
    assert "already used" in problem(replayed)["title"]
    failures = AuditEvent.select().where(AuditEvent.action == "staff.login_failed")
    assert [e.data["factor"] for e in failures] == ["code", "replayed code"]
    # Another staff member without 2FA signs in as before.
    assert sign_in(core_demo, email="admin@example.com").status_code == 200


@pytest.mark.spec("PWD-3")
def test_wrong_codes_lock_the_staff_email_like_wrong_passwords(core_demo):
    turn_on(core_demo)
    answers = [sign_in(core_demo, "000000").status_code for _ in range(lockout.MAX_FAILURES)]
    assert answers[-1] == 429 and set(answers[:-1]) == {401}
    assert lockout.locked_until(lockout.guard_key("staff", AGENT)) is not None


@pytest.mark.spec("ACC-2")
def test_turning_it_off_needs_the_password_and_a_code(core_demo):
    seed = turn_on(core_demo)
    agent = staff_api(core_demo, otp=code(seed, 1))
    off = "/api/v1/staff/2fa"
    assert (
        agent.delete(off, json={"password": "Wrong-Pass-2026!", "code": code(seed, -1)}).status_code
        == 401
    )
    assert agent.delete(off, json={"password": DEMO_PASSWORD, "code": "999999"}).status_code == 401
    assert StaffTwoFactor.select().count() == 1
    with time_machine.travel(timedelta(seconds=90)):  # a code newer than the one used to sign in
        done = agent.delete(off, json={"password": DEMO_PASSWORD, "code": code(seed)})
    assert done.status_code == 200 and done.json == {
        "enabled": False,
        "required": False,
        "backup_codes_left": 0,
    }
    assert StaffTwoFactor.select().count() == 0
    assert sign_in(core_demo).status_code == 200  # the password alone again


@pytest.mark.spec("ACC-2")
def test_an_administrator_resets_a_lost_authenticator_from_the_shell(core_demo):
    turn_on(core_demo)
    run = CliRunner().invoke(staff_group(lambda: core_demo), ["reset-2fa", AGENT])
    assert run.exit_code == 0, run.output
    assert StaffTwoFactor.select().count() == 0 and sign_in(core_demo).status_code == 200
    assert (
        AuditEvent.get(AuditEvent.action == "staff.2fa_reset").staff_id
        == StaffUser.get(StaffUser.email == AGENT).id
    )
    unknown = CliRunner().invoke(staff_group(lambda: core_demo), ["reset-2fa", "no@example.com"])
    assert unknown.exit_code != 0 and "no staff user" in unknown.output


@pytest.mark.spec("ACC-2", "MOB-1")
def test_the_console_page_sets_it_up_and_the_login_form_asks_for_the_code(core_demo):
    browser = Client(core_demo)
    signed = browser.post("/staff/login", form={"email": AGENT, "password": DEMO_PASSWORD})
    assert signed.status_code == 303
    page = browser.get("/staff/2fa")
    assert page.status_code == 200 and 'src="data:image/svg+xml' in page.text
    seed = twofactor.seed(core_demo, StaffTwoFactor.get())  # what the page shows as the key
    refused = browser.post("/staff/2fa", form={"code": "000000"})
    assert refused.status_code == 422 and "That code is not right." in refused.text
    on = browser.post("/staff/2fa", form={"code": code(seed)})
    assert on.status_code == 200 and "Two-step sign-in is on" in on.text
    assert "shown only this once" in on.text and len(on.text.split("<li><code>")) == 11
    assert "10 backup codes left." in browser.get("/staff/2fa").text

    again = Client(core_demo)
    asked = again.post("/staff/login", form={"email": AGENT, "password": DEMO_PASSWORD})
    assert asked.status_code == 401 and "Enter the 6-digit code" in asked.text
    assert "A backup code works too." in asked.text
    assert (
        again.post(
            "/staff/login", form={"email": AGENT, "password": DEMO_PASSWORD, "otp": code(seed, 1)}
        ).status_code
        == 303
    )
    assert again.get("/staff").status_code == 200
    assert Client(core_demo).get("/staff/2fa").status_code == 303  # signed out: to the sign-in

    refused = again.post("/staff/2fa/off", form={"password": DEMO_PASSWORD, "code": "000000"})
    assert refused.status_code == 422 and "That code is not right." in refused.text
    with time_machine.travel(timedelta(seconds=90)):
        off = again.post("/staff/2fa/off", form={"password": DEMO_PASSWORD, "code": code(seed)})
    assert off.status_code == 303 and off.headers["location"] == "/staff/2fa?done=off"
    assert StaffTwoFactor.select().count() == 0


# -- SEC-5: the operator can require it; staff get backup codes ---------------------------


@pytest.fixture
def required_app(make_app):
    """The core demo people on a portal whose operator requires two-step sign-in for staff."""
    from engine import db
    from engine.core.demo import seed

    app = make_app(staff={"require_2fa": True})
    with db.connection():
        seed(app, {})
    return app


@pytest.mark.spec("SEC-5")
def test_required_two_step_sign_in_holds_a_staff_token_to_the_setup(required_app, make_app):
    app = required_app
    answer = sign_in(app)
    assert answer.status_code == 200 and answer.json["setup_required"] is True
    agent = Client(app, headers={"Authorization": f"Bearer {answer.json['token']}"})
    # Until it is set up, the token reaches nothing but the set-up and sign-out.
    for method, path, body in (
        ("GET", "/api/v1/staff/customers", None),
        ("GET", "/api/v1/staff/me", None),
        ("GET", "/api/v1/staff/impersonations", None),
        ("POST", "/api/v1/staff/impersonations", {"contact_id": 1, "reason": "Checking the bill"}),
        ("POST", "/api/v1/staff/2fa/backup-codes", {"password": DEMO_PASSWORD, "code": "123456"}),
    ):
        refused = agent.request(method, path, json=body)
        assert refused.status_code == 403, f"{method} {path}: {refused.status_code}"
        assert problem(refused)["type"] == "/problems/2fa-setup-required"
    assert agent.get("/api/v1/staff/2fa").json == {
        "enabled": False,
        "required": True,
        "backup_codes_left": 0,
    }
    seed = agent.post("/api/v1/staff/2fa/setup").json["secret"]
    on = agent.post("/api/v1/staff/2fa/enable", json={"code": code(seed)})
    assert on.status_code == 200 and on.json["enabled"] and len(on.json["backup_codes"]) == 10
    assert agent.get("/api/v1/staff/customers").status_code == 200  # the same token, now whole
    assert sign_in(app).status_code == 401  # and the sign-in asks for the code
    assert sign_in(app, code(seed, 1)).json["setup_required"] is False
    assert [
        e.action
        for e in AuditEvent.select()
        .where(AuditEvent.action.startswith("staff."))
        .order_by(AuditEvent.id)
    ] == ["staff.login", "staff.2fa_enabled", "staff.login"]

    # Turned on later by the operator: a session that began without it is held at once.
    token = Client(make_app()).login("admin@example.com", staff=True)["token"]
    restarted = make_app(staff={"require_2fa": True})  # the same database, with the setting
    admin = Client(restarted, headers={"Authorization": f"Bearer {token}"})
    held = admin.get("/api/v1/staff/customers")
    assert held.status_code == 403 and problem(held)["type"] == "/problems/2fa-setup-required"
    assert admin.post("/api/v1/staff/auth/logout").status_code == 204


@pytest.mark.spec("SEC-5", "MOB-1")
def test_required_two_step_sign_in_sends_the_console_to_the_setup_first(required_app):
    browser = Client(required_app)
    signed = browser.post(
        "/staff/login",
        form={"email": AGENT, "password": DEMO_PASSWORD, "next": "/staff/customers/1"},
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/staff/2fa"
    for path in ("/staff", "/staff/customers/1"):
        held = browser.get(path)
        assert held.status_code == 303 and held.headers["location"] == "/staff/2fa", path
    posted = browser.post(
        "/staff/customers/1/impersonate", form={"contact_id": "1", "reason": "Checking the bill"}
    )
    assert posted.status_code == 403
    page = browser.get("/staff/2fa")
    assert page.status_code == 200 and "Staff accounts must use two-step sign-in" in page.text
    seed = twofactor.seed(required_app, StaffTwoFactor.get())
    on = browser.post("/staff/2fa", form={"code": code(seed)})
    assert on.status_code == 200 and len(on.text.split("<li><code>")) == 11
    assert browser.get("/staff").status_code == 200
    assert browser.post("/staff/logout", form={}).status_code == 303


@pytest.mark.spec("SEC-5", "PWD-4")
def test_staff_backup_codes_are_shown_once_stored_hashed_work_once_and_can_be_renewed(core_demo):
    from identity_support import deliveries
    from plugins.staff.models import StaffBackupCode

    agent = staff_api(core_demo)
    seed = agent.post("/api/v1/staff/2fa/setup").json["secret"]
    codes = agent.post("/api/v1/staff/2fa/enable", json={"code": code(seed)}).json["backup_codes"]
    assert len(set(codes)) == 10
    stored = [b.code_hash for b in StaffBackupCode.select()]
    assert len(stored) == 10 and not any(c.replace("-", "") in h for c in codes for h in stored)

    # A lost phone: a backup code instead of the app's code, once.
    assert sign_in(core_demo, codes[0]).status_code == 200
    spent = sign_in(core_demo, codes[0])
    assert spent.status_code == 401 and problem(spent)["type"] == "/problems/otp-invalid"
    assert AuditEvent.get(AuditEvent.action == "staff.2fa_backup_code_used").data == {"left": 9}
    assert [d.address for d in deliveries("backup_code_used")] == [AGENT]
    assert agent.get("/api/v1/staff/2fa").json["backup_codes_left"] == 9

    # New codes need the password and a code; the old ones stop working.
    renew = "/api/v1/staff/2fa/backup-codes"
    assert (
        agent.post(renew, json={"password": "Wrong-Pass-2026!", "code": codes[1]}).status_code
        == 401
    )
    fresh = agent.post(renew, json={"password": DEMO_PASSWORD, "code": codes[1]})
    assert fresh.status_code == 200 and set(fresh.json["backup_codes"]).isdisjoint(codes)
    assert sign_in(core_demo, codes[2]).status_code == 401
    assert agent.get("/api/v1/staff/2fa").json["backup_codes_left"] == 10
    assert (
        AuditEvent.select().where(AuditEvent.action == "staff.2fa_backup_codes_renewed").count()
        == 1
    )
    # Turned off with a backup code: the authenticator and the codes are gone.
    off = agent.delete(
        "/api/v1/staff/2fa", json={"password": DEMO_PASSWORD, "code": fresh.json["backup_codes"][0]}
    )
    assert off.status_code == 200 and off.json["enabled"] is False
    assert StaffBackupCode.select().count() == 0 and StaffTwoFactor.select().count() == 0
    assert agent.post(renew, json={"password": DEMO_PASSWORD, "code": "123456"}).status_code == 409


@pytest.mark.spec("SEC-5")
def test_the_console_page_renews_backup_codes(core_demo):
    seed = turn_on(core_demo)
    browser = Client(core_demo)
    browser.post(
        "/staff/login", form={"email": AGENT, "password": DEMO_PASSWORD, "otp": code(seed, 1)}
    )
    refused = browser.post(
        "/staff/2fa/backup-codes", form={"password": DEMO_PASSWORD, "code": "000000"}
    )
    assert refused.status_code == 422 and "That code is not right." in refused.text
    with time_machine.travel(timedelta(seconds=90)):
        renewed = browser.post(
            "/staff/2fa/backup-codes", form={"password": DEMO_PASSWORD, "code": code(seed)}
        )
    assert renewed.status_code == 200 and "shown only this once" in renewed.text
    assert len(renewed.text.split("<li><code>")) == 11
