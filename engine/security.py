"""Secrets at rest: argon2 for passwords, SHA-256 for random tokens, constant-time checks, and
sealing (authenticated encryption) for the few secrets that must be read back."""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_hasher = PasswordHasher()
# A real hash to verify against when the account does not exist, so a missing
# email costs the same time as a wrong password (no enumeration by timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Check a password; always does the argon2 work, even when ``stored`` is empty."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and bool(stored)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def new_token(nbytes: int = 32) -> str:
    """A random URL-safe token (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """How tokens are stored: only their SHA-256 (they are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def sign(secret_key: str, message: str) -> str:
    return hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time equality of two texts. Compares their UTF-8 bytes: ``compare_digest`` on
    ``str`` raises TypeError for non-ASCII text, and a client chooses one of the two."""
    return hmac.compare_digest(a.encode(), b.encode())


SEALED = "sealed1:"


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    # A key of its own, derived from secret_key: the signing key itself never encrypts.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"portico seal v1").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret_key: str, plaintext: str) -> str:
    """``plaintext`` encrypted and authenticated (Fernet) under a key derived from
    ``secret_key``: for secrets the app must read back, such as a TOTP seed."""
    return SEALED + _fernet(secret_key).encrypt(plaintext.encode()).decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED)


class UnsealError(ValueError):
    """A sealed value that this secret_key cannot open (the key changed, or the value did)."""


def unseal(secret_key: str, stored: str) -> str:
    """The plaintext of ``seal()``; a value stored before sealing existed comes back as is."""
    if not is_sealed(stored):
        return stored
    try:
        return _fernet(secret_key).decrypt(stored[len(SEALED):].encode()).decode()
    except InvalidToken:
        raise UnsealError("cannot open a sealed value: was secret_key changed?") from None
