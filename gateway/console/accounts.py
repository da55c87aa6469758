"""Signing in, invitations and passwords: the rules, for the console's pages, ``gateway admin``
and ``gateway demo``."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg

from gateway.errors import BadRequest, NotFound, RateLimited, Unauthorized
from gateway.storage import console as console_store

from . import passwords
from .sessions import SIGN_IN_WINDOW_S, ConsoleSessions, SignInLimits

INVITATION_PATH = "/console/invite/"


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def sign_in(
    pool: asyncpg.Pool, limits: SignInLimits, name: str, password: str, address: str
) -> int:
    """The user whose name and password these are. Past the limit of wrong passwords for the
    account or the address, refused (429) without checking the password; a wrong name, a wrong
    password, a user without one and a disabled user get the same answer, in the same time."""
    if await limits.refused(name, address):
        raise RateLimited(
            "too many wrong passwords: wait a minute and try again",
            retry_after_s=SIGN_IN_WINDOW_S,
        )
    found = await console_store.sign_in_record(pool, name) if len(name) <= 128 else None
    hashed = found[1] if found else None
    if not await passwords.verify(hashed, password) or found is None or not found[2]:
        await limits.failed(name, address)
        raise Unauthorized("wrong user name or password")
    await limits.succeeded(name, address)
    return found[0]


async def set_password(pool: asyncpg.Pool, user_id: int, password: str) -> None:
    passwords.check_new(password, password)
    if not await console_store.set_password_hash(
        pool, user_id, await passwords.hash_password(password)
    ):
        raise NotFound(f"no user {user_id}")


async def change_password(
    pool: asyncpg.Pool,
    sessions: ConsoleSessions,
    user_id: int,
    current: str,
    new: str,
    confirmation: str,
) -> None:
    """A signed-in user's new password; every session of theirs ends (the caller starts a new
    one for the page that asked)."""
    if not await passwords.verify(await console_store.password_hash(pool, user_id), current):
        raise BadRequest("the current password is wrong")
    passwords.check_new(new, confirmation)
    await console_store.set_password_hash(pool, user_id, await passwords.hash_password(new))
    await sessions.end_all(user_id)


async def invite(pool: asyncpg.Pool, user_id: int, ttl_s: int) -> str:
    """A new invitation for the user: the token of its link (``INVITATION_PATH`` + token),
    shown once. It sets a password, so it also serves to reset a forgotten one."""
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    try:
        await console_store.add_invitation(pool, _token_hash(token), user_id, expires_at)
    except asyncpg.ForeignKeyViolationError:
        raise NotFound(f"no user {user_id}") from None
    return token


async def invited(pool: asyncpg.Pool, token: str) -> tuple[int, str]:
    """(user id, name) of a live invitation; NotFound when it is unknown, spent or expired."""
    found = await console_store.invitation_user(pool, _token_hash(token))
    if found is None:
        raise NotFound("this invitation is unknown, used or expired: ask for a new one")
    return found


async def accept_invitation(
    pool: asyncpg.Pool, sessions: ConsoleSessions, token: str, password: str, confirmation: str
) -> int:
    """Set the invited user's password, spending the invitation; the user's id. Every session
    the user had ends."""
    passwords.check_new(password, confirmation)
    hashed = await passwords.hash_password(password)
    user_id = await console_store.take_invitation(pool, _token_hash(token), hashed)
    if user_id is None:
        raise NotFound("this invitation is unknown, used or expired: ask for a new one")
    await sessions.end_all(user_id)
    return user_id
