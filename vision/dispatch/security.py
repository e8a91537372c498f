"""Passwords (argon2 via pwdlib) and random bearer tokens (stored as SHA-256)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from pwdlib import PasswordHash


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return _hasher().verify(password, password_hash)
    except Exception:  # malformed stored hash: treat as a failed login, never a 500
        return False


# A dummy hash so an unknown user costs the same time as a wrong password.
_DUMMY: list[str] = []


def burn_time(password: str) -> None:
    if not _DUMMY:
        _DUMMY.append(hash_password("not-a-real-password"))
    verify_password(password, _DUMMY[0])


def new_token(prefix: str) -> str:
    """A random credential; the prefix tells what it is when it shows up in a log."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def csrf_token(session_token: str) -> str:
    """Form token bound to a UI session (double-submit without extra state)."""
    return hmac.new(session_token.encode(), b"csrf", hashlib.sha256).hexdigest()
