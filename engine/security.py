"""Secrets at rest: argon2 for passwords, SHA-256 for random tokens, constant-time checks, and
sealing (authenticated encryption) for the few secrets that must be read back.

Signing and sealing take ``settings.secret_keys`` (SEC-6): the first key signs and seals,
every key in the list verifies and opens, so a new key goes in first and an old one comes
out later (docs/configuration.md)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from typing import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
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
    """The HMAC-SHA256 of ``message`` under one key (sign under the first of ``secret_keys``)."""
    return hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed(keys: Sequence[str], message: str, signature: str, length: int | None = None) -> bool:
    """Whether ``signature`` is ``sign(key, message)`` (cut to ``length``) under any of ``keys``.

    SEC-6: the first key signs, every key in the list still verifies, a key taken out of
    the list verifies nothing more."""
    return any(same(signature, sign(key, message)[:length]) for key in _key_list(keys))


def same(a: str, b: str) -> bool:
    """Constant-time equality of two texts. Compares their UTF-8 bytes: ``compare_digest`` on
    ``str`` raises TypeError for non-ASCII text, and a client chooses one of the two."""
    return hmac.compare_digest(a.encode(), b.encode())


def _key_list(keys: str | Sequence[str]) -> tuple[str, ...]:
    # One key is a list of one (a partner plugin may still pass settings.secret_key).
    return (keys,) if isinstance(keys, str) else tuple(keys)


SEALED = "sealed1:"


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    # A key of its own, derived from secret_key: the signing key itself never encrypts.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"portico seal v1").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


@functools.lru_cache(maxsize=8)
def _multi(keys: tuple[str, ...]) -> MultiFernet:
    """Seals under the first key, opens under any (SEC-6)."""
    return MultiFernet([_fernet(k) for k in keys])


def seal(keys: str | Sequence[str], plaintext: str) -> str:
    """``plaintext`` encrypted and authenticated (Fernet) under a key derived from the first
    of ``keys`` (``settings.secret_keys``): for secrets the app must read back, such as a
    TOTP seed."""
    return SEALED + _multi(_key_list(keys)).encrypt(plaintext.encode()).decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED)


class UnsealError(ValueError):
    """A sealed value that none of the secret keys can open (a key changed, or the value did)."""


def unseal(keys: str | Sequence[str], stored: str) -> str:
    """The plaintext of ``seal()`` under any of ``keys``; a value stored before sealing existed
    comes back as is."""
    if not is_sealed(stored):
        return stored
    try:
        return _multi(_key_list(keys)).decrypt(stored[len(SEALED) :].encode()).decode()
    except InvalidToken:
        raise UnsealError(
            "cannot open a sealed value: was its secret key removed from secret_keys?"
        ) from None


def reseal(keys: str | Sequence[str], stored: str) -> str | None:
    """``stored`` sealed under the first key, or None when it already is.

    For a value sealed under an older key (or stored before sealing existed); raises
    ``UnsealError`` when no key opens it. Run after adding a new first key, before taking
    the old one out (``portico reseal``)."""
    keys = _key_list(keys)
    if is_sealed(stored):
        try:
            _fernet(keys[0]).decrypt(stored[len(SEALED) :].encode())
            return None
        except InvalidToken:
            pass
    return seal(keys, unseal(keys, stored))


def reseal_stored(app) -> tuple[int, int]:
    """Seal every stored sealed value under the first secret key: the columns each model names
    in ``SEALED_FIELDS`` (2FA seeds). Returns (resealed, unreadable): an unreadable value was
    sealed under a key no longer in ``secret_keys``."""
    resealed = unreadable = 0
    keys = app.settings.secret_keys
    for models in app.models.values():
        for model in models:
            for name in getattr(model, "SEALED_FIELDS", ()):
                field = getattr(model, name)
                for row in model.select(model.id, field).order_by(model.id).iterator():
                    try:
                        fresh = reseal(keys, getattr(row, name))
                    except UnsealError:
                        unreadable += 1
                        continue
                    if fresh is not None:
                        model.update({field: fresh}).where(model.id == row.id).execute()
                        resealed += 1
    return resealed, unreadable
