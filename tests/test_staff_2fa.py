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
    assert setup.json["otpauth_uri"].startswith("otpauth://totp/") and \
        setup.json["qr_svg"].startswith("data:image/svg+xml")
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
    assert agent.delete(off, json={"password": "Wrong-Pass-2026!", "code": code(seed, -1)}
                        ).status_code == 401
    assert agent.delete(off, json={"password": DEMO_PASSWORD, "code": "999999"}).status_code == 401
    assert StaffTwoFactor.select().count() == 1
    with time_machine.travel(timedelta(seconds=90)):  # a code newer than the one used to sign in
        done = agent.delete(off, json={"password": DEMO_PASSWORD, "code": code(seed)})
    assert done.status_code == 200 and done.json == {"enabled": False}
    assert StaffTwoFactor.select().count() == 0
    assert sign_in(core_demo).status_code == 200  # the password alone again


@pytest.mark.spec("ACC-2")
def test_an_administrator_resets_a_lost_authenticator_from_the_shell(core_demo):
    turn_on(core_demo)
    run = CliRunner().invoke(staff_group(lambda: core_demo), ["reset-2fa", AGENT])
    assert run.exit_code == 0, run.output
    assert StaffTwoFactor.select().count() == 0 and sign_in(core_demo).status_code == 200
    assert AuditEvent.get(AuditEvent.action == "staff.2fa_reset").staff_id == \
        StaffUser.get(StaffUser.email == AGENT).id
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
    assert on.status_code == 303 and on.headers["location"] == "/staff/2fa?done=on"
    assert "Two-step sign-in is on" in browser.get("/staff/2fa?done=on").text

    again = Client(core_demo)
    asked = again.post("/staff/login", form={"email": AGENT, "password": DEMO_PASSWORD})
    assert asked.status_code == 401 and "Enter the 6-digit code" in asked.text
    assert again.post("/staff/login", form={"email": AGENT, "password": DEMO_PASSWORD,
                                            "otp": code(seed, 1)}).status_code == 303
    assert again.get("/staff").status_code == 200
    assert Client(core_demo).get("/staff/2fa").status_code == 303  # signed out: to the sign-in

    refused = again.post("/staff/2fa/off", form={"password": DEMO_PASSWORD, "code": "000000"})
    assert refused.status_code == 422 and "That code is not right." in refused.text
    with time_machine.travel(timedelta(seconds=90)):
        off = again.post("/staff/2fa/off", form={"password": DEMO_PASSWORD, "code": code(seed)})
    assert off.status_code == 303 and off.headers["location"] == "/staff/2fa?done=off"
    assert StaffTwoFactor.select().count() == 0
