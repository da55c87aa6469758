"""Every Redis key and channel name the gateway uses, with its lifetime and why.

All names start with the configured prefix, so several gateways (or test runs) can share one
Redis. Nothing here is the record of anything: Redis holds only coordination and hints, and
losing it loses no money and no task.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str

    @property
    def revoked_keys_channel(self) -> str:
        """Pub/sub channel carrying the hash (hex) of each revoked API key; no storage."""
        return f"{self.prefix}auth:revoked"

    @property
    def ended_answers_channel(self) -> str:
        """Pub/sub channel carrying the fetch answers of tasks that just ended, compressed, for
        every process's memory (``gateway.tasks.ended``); no storage. The answers went
        uncompressed on ``tasks:ended`` before: a new format takes a new name, so processes of
        two releases running side by side never take each other's messages."""
        return f"{self.prefix}tasks:ended:lz4"

    @property
    def channel_cooldowns(self) -> str:
        """Hash of channel id -> "<end of its cooldown, epoch ms> <reason>" (a ``CoolReason``
        value). Each write sets the hash to expire one rest (plus ten minutes) later, when every
        entry in it has ended; entries are overwritten, the few stale ones (one per channel at
        most) cost nothing. The previous format, "<end, epoch ms>" alone, lived under
        ``channels:cooldown``: a new format takes a new name, so processes of two releases
        running side by side never read each other's entries."""
        return f"{self.prefix}channels:cooldowns"

    @property
    def channel_failures(self) -> str:
        """Hash of channel id -> "<failed attempts in a row> <last one, epoch ms> <reason>"
        ("unreachable" or "failures"). Each failure sets the hash to expire one streak lifetime
        later; an entry older than that counts 0. The previous format, without the reason,
        lived under ``channels:failures``."""
        return f"{self.prefix}channels:failure-streaks"

    def key_requests(self, user_id: int, key_id: int) -> str:
        """Requests made with an API key in the current clock minute (by the Redis server's
        clock); expires when that minute ends. The ``{u<id>}`` hash tag keeps it in the same
        cluster slot as its user's counter, which one script reads and writes with it."""
        return f"{self.prefix}rl:{{u{user_id}}}:key:{key_id}"

    def user_requests(self, user_id: int) -> str:
        """Requests made with any of a user's keys in the current clock minute (by the Redis
        server's clock); expires when that minute ends."""
        return f"{self.prefix}rl:{{u{user_id}}}:user"

    def console_session(self, digest: str) -> str:
        """Hash of one web console session (user id, CSRF token, start, a message for the next
        page), under the SHA-256 of the cookie's token; expires when the session has been idle
        for its lifetime. Losing it signs the user out."""
        return f"{self.prefix}console:session:{digest}"

    def console_user_sessions(self, user_id: int) -> str:
        """Set of a user's session digests, so a new password or a disabled account ends them
        all; expires with the longest session."""
        return f"{self.prefix}console:user-sessions:{user_id}"

    def console_sign_in_failures(self, kind: str, who: str) -> str:
        """Wrong passwords in the current minute for one account or one address (``kind``);
        expires a minute after the first."""
        return f"{self.prefix}console:sign-in:{kind}:{who}"

    def activity(self, kind: str, minute: int) -> str:
        """Requests (or 5xx answers, ``kind``) answered by every process in one minute (epoch
        minutes); expires after two hours (``gateway.activity``)."""
        return f"{self.prefix}activity:{kind}:{minute}"
