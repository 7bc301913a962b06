"""The password policy (PWD-2): composition by default, length-only on request, reasons per rule."""

import pytest

from plugins.identity import passwords
from plugins.identity.passwords import common_passwords, problems


@pytest.mark.spec("PWD-2")
@pytest.mark.parametrize(
    "password, reason",
    [
        ("Sh0rt!", "Use at least 8 characters."),
        ("lowercase-only-9", "Add an upper-case letter (A-Z)."),
        ("UPPERCASE-ONLY-9", "Add a lower-case letter (a-z)."),
        ("No-Digits-Here", "Add a digit (0-9)."),
        ("NoSpecial2026", "Add a special character: one of ! @ # $ % ^ & *."),
    ],
)
def test_composition_policy_names_each_missing_rule(password, reason):
    assert reason in problems(password, "composition")


@pytest.mark.spec("PWD-2")
def test_composition_policy_accepts_a_password_that_meets_every_rule():
    assert problems("Harbour-Lights-7!", "composition") == []
    assert len(problems("abc", "composition")) == 1  # too short says only that


@pytest.mark.spec("PWD-2")
def test_length_policy_asks_only_for_length():
    assert problems("harbour lights", "length") == []
    assert problems("short", "length") == ["Use at least 8 characters."]


@pytest.mark.spec("PWD-2")
@pytest.mark.parametrize("policy", ["composition", "length"])
def test_long_passphrases_are_accepted_under_both_policies(policy):
    passphrase = (
        "the quick brown fox jumps over the lazy dog and keeps running along the "
        "harbour wall until the lighthouse keeper waves back at dusk tonight"
    )
    assert len(passphrase) >= 128
    assert problems(passphrase, policy) == []
    assert problems("x" * 5 + passphrase * 6, policy) == []  # far longer still
    assert problems("a" * 1025, policy) == ["Use at most 1024 characters."]


@pytest.mark.spec("PWD-2")
@pytest.mark.parametrize("policy", ["composition", "length"])
@pytest.mark.parametrize(
    "password", ["password1", "qwertyuiop", "Password1!", "Sunshine2024!", "iloveyou", "P@ssw0rd"]
)
def test_common_passwords_are_refused(policy, password):
    reasons = problems(password, policy)
    assert "This password is too common and easy to guess; choose another." in reasons


def test_the_shipped_list_holds_the_most_common_ten_thousand():
    common = common_passwords()
    assert len(common) == 10_000
    assert {"123456", "password", "qwerty", "letmein"} <= common
    assert passwords.COMMON_FILE.stat().st_size < 200_000


def test_the_email_address_is_not_a_password():
    assert "Do not use your email address as your password." in problems(
        "alice.smith@example.com", "length", email="alice.smith@example.com"
    )


@pytest.mark.spec("PWD-2")
def test_operator_switches_policy_in_settings(make_app):
    from engine.core.demo import seed
    from engine.testing import Client

    app = make_app(security={"password_policy": "length"})
    seed(app, {})
    client = Client(app)
    client.login("alice@example.com")
    answer = client.post(
        "/api/v1/account/password",
        json={"current_password": "Portico-demo-2026!", "new_password": "harbour lights at dusk"},
    )
    assert answer.status_code == 200, answer.text
    app2 = make_app()  # the default policy refuses the same password, field by field
    client2 = Client(app2)
    client2.login("alice@example.com", "harbour lights at dusk")
    refused = client2.post(
        "/api/v1/account/password",
        json={"current_password": "harbour lights at dusk", "new_password": "lowercase words 1"},
    )
    assert refused.status_code == 422
    assert refused.json["errors"]["new_password"] == [
        "Add an upper-case letter (A-Z).",
        "Add a special character: one of ! @ # $ % ^ & *.",
    ]
