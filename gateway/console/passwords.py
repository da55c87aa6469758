"""Console passwords: Argon2id (argon2-cffi's RFC 9106 low-memory profile: 64 MiB, 3 passes),
hashed and checked in a worker thread, one at a time per process, so sign-ins never stall the
event loop nor take more than 64 MiB at once."""

from __future__ import annotations

import functools

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import BadRequest

MIN_LENGTH = 10
MAX_LENGTH = 256

_HASHER = PasswordHasher()
_ONE_AT_A_TIME = anyio.Semaphore(1)


@functools.cache
def _stand_in() -> str:
    """A hash checked when the user is unknown or has no password, so that the answer takes as
    long; made on first use, not at import (a worker starts 0.1 s sooner)."""
    return _HASHER.hash("a password no one has")


def check_new(password: str, confirmation: str) -> None:
    if password != confirmation:
        raise BadRequest("the two passwords differ")
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise BadRequest(f"a password is {MIN_LENGTH} to {MAX_LENGTH} characters")


async def hash_password(password: str) -> str:
    async with _ONE_AT_A_TIME:
        return await anyio.to_thread.run_sync(_HASHER.hash, password)


async def verify(hashed: str | None, password: str) -> bool:
    """Whether ``password`` is the one ``hashed`` was made from (None: no password set, which
    takes as long to refuse)."""
    if len(password) > MAX_LENGTH:
        return False

    def check() -> bool:
        try:
            return _HASHER.verify(hashed or _stand_in(), password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False

    async with _ONE_AT_A_TIME:
        return await anyio.to_thread.run_sync(check)
