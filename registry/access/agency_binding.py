"""Roles bound to agencies: a token may carry only roles that its agency's kind may hold.

The policy says which kinds of agency may hold each role (`agencies` per role); the agency table
says what kind each agency is. An identity provider that hands a caseworker role to a police
officer, or every role to one account, is refused here, before anything runs. The kinds are
read once and kept: read again after a minute, and at once for an agency not known yet.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from registry.access.policy import Policy
from registry.access.principal import Principal

MAX_AGE_SECONDS = 60.0


class AgencyBinding:
    def __init__(self, policy: Policy, engine: AsyncEngine) -> None:
        self._policy = policy
        self._engine = engine
        self._kinds: dict[str, str | None] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refusal(self, principal: Principal) -> str | None:
        """Why the principal's roles cannot be held by its agency; None when they can."""
        if self._policy.misheld_role(principal, None) is None:
            return None  # only roles any agency may hold: nothing to look up
        kind = await self._kind(principal.agency)
        role = self._policy.misheld_role(principal, kind)
        if role is None:
            return None
        if principal.agency is None:
            return f"role {role!r} needs an agency claim"
        if principal.agency not in self._kinds:
            return f"role {role!r} cannot be held by agency {principal.agency!r}: the agency is not registered"
        return f"role {role!r} cannot be held by agency {principal.agency!r} ({kind or 'no kind'})"

    def known(self, principal: Principal) -> bool:
        """Whether `refusal` can answer without reading the database."""
        if self._policy.misheld_role(principal, None) is None or principal.agency is None:
            return True
        return principal.agency in self._kinds and time.monotonic() - self._loaded_at < MAX_AGE_SECONDS

    async def _kind(self, code: str | None) -> str | None:
        if code is None:
            return None
        fresh = time.monotonic() - self._loaded_at < MAX_AGE_SECONDS
        if not fresh or code not in self._kinds:
            async with self._lock:
                if time.monotonic() - self._loaded_at >= MAX_AGE_SECONDS or code not in self._kinds:
                    await self.reload()
        return self._kinds.get(code)

    async def reload(self) -> None:
        """Read every agency's kind now."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text("SELECT code, kind FROM agency"))).all()
        self._kinds = {row.code: row.kind for row in rows}
        self._loaded_at = time.monotonic()
