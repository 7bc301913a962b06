"""The password policy (PWD-2), with a reason for every rule a password breaks.

Default ("composition"): at least 8 characters with an upper-case letter, a
lower-case letter, a digit and one of ``!@#$%^&*``. The operator may switch to
"length" (``security.password_policy``): at least 8 characters, nothing else,
as OWASP ASVS 5.0 asks. Under both, a passphrase of 20 characters or more
needs no particular characters, anything up to 1024 characters is accepted,
and the most common passwords (a shipped list of 10,000) are refused.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from engine.i18n import N_

MIN_LENGTH = 8
PASSPHRASE_LENGTH = 20  # from here on, a passphrase: length is its strength
MAX_LENGTH = 1024  # far above any passphrase; bounds the argon2 work per attempt
SPECIALS = "!@#$%^&*"
COMMON_FILE = Path(__file__).parent / "data" / "common-passwords.txt"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def is_common(password: str) -> bool:
    """In the list as typed, or once trailing digits and symbols are taken off ("Summer2024!")."""
    lowered = password.lower()
    common = common_passwords()
    if lowered in common:
        return True
    core = re.sub(r"[\d\W_]+$", "", lowered)
    return len(core) >= 4 and core in common


def problems(password: str, policy: str = "composition", *, email: str = "") -> list[str]:
    """Why ``password`` is refused (an empty list when it is fine)."""
    if len(password) < MIN_LENGTH:
        return [f"Use at least {MIN_LENGTH} characters."]
    if len(password) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    reasons = []
    if policy == "composition" and len(password) < PASSPHRASE_LENGTH:
        if not re.search(r"[A-Z]", password):
            reasons.append(N_("Add an upper-case letter (A-Z)."))
        if not re.search(r"[a-z]", password):
            reasons.append(N_("Add a lower-case letter (a-z)."))
        if not re.search(r"\d", password):
            reasons.append(N_("Add a digit (0-9)."))
        if not any(c in SPECIALS for c in password):
            reasons.append("Add a special character: one of " + " ".join(SPECIALS) + ".")
    if is_common(password):
        reasons.append(N_("This password is too common and easy to guess; choose another."))
    if email and password.lower() in (email.lower(), email.split("@")[0].lower()):
        reasons.append(N_("Do not use your email address as your password."))
    return reasons


def describe(policy: str) -> str:
    """The rules in one sentence, for the form hint."""
    if policy == "length":
        return (
            f"At least {MIN_LENGTH} characters; long passphrases are welcome. "
            "Common passwords are refused."
        )
    return (
        f"At least {MIN_LENGTH} characters with an upper-case letter, a lower-case letter, "
        f"a digit and one of {SPECIALS} — or a passphrase of {PASSPHRASE_LENGTH}+ characters. "
        "Common passwords are refused."
    )
