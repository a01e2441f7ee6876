"""Password hashing with argon2id (argon2-cffi), rehashing when the parameters change."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.settings import get_settings


@cache
def _hasher() -> PasswordHasher:
    if get_settings().argon2_fast:
        # Tests log in hundreds of times; the production parameters would cost them minutes.
        return PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    return PasswordHasher()  # RFC 9106 low-memory profile: argon2id, t=3, m=64 MiB


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


# Verified against when the username is unknown, so a wrong username costs as long as a wrong password
# (no user enumeration by timing).
@cache
def dummy_hash() -> str:
    return hash_password("not-a-real-password")
