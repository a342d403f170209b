"""Per-request context: who asks, why, one database session, and fresh dataloaders."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.grants import Grants
from registry.access.policy import Policy
from registry.access.principal import Principal
from registry.api.loaders import Loaders
from registry.audit.trail import Actor, Change, Disclosure
from registry.domain.budget import RateLimiter
from registry.domain.errors import DuplicateNationalNumber


@dataclass
class Context:
    """Everything a resolver may use. The request's reads and writes share one transaction.

    Sibling resolvers run concurrently, so the session is handed out under a lock; dataloaders
    batch the reads, so the lock costs little and the request sees one consistent snapshot.
    """

    principal: Principal
    policy: Policy
    session: AsyncSession | None  # None for a compiled read, which needs no ORM session
    request_id: str
    purpose: str | None = None
    justification: str | None = None
    lookups: RateLimiter | None = None  # the lookup budget shared by every worker and instance
    # Set by api.purpose_guard when a justified BREAK_GLASS request reads a subject outside the
    # caller's row scope; the audit trail flags such requests for the DPO's review.
    break_glass: bool = False
    break_glass_subject: uuid.UUID | None = None
    operation: str | None = None
    # What the request returned and changed, written to the audit trail before it commits.
    disclosure: Disclosure = field(default_factory=Disclosure)
    changes: list[Change] = field(default_factory=list)
    lookups_answered: list[uuid.UUID | None] = field(default_factory=list)  # subject id on a hit
    duplicates_refused: list[uuid.UUID | None] = field(default_factory=list)  # the existing file's id
    searches: list[tuple[Any, list[uuid.UUID]]] = field(default_factory=list)  # (search, subjects found)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    grants: Grants = field(init=False)

    def __post_init__(self) -> None:
        self.principal = self.policy.bind(self.principal)  # row scopes come from the policy only
        self.grants = self.policy.grants_for(self.principal)

    @cached_property
    def loaders(self) -> Loaders:
        """Made on first use: a compiled read has none, and so leaves no reference cycle for the
        garbage collector to find (its full collections stalled every request)."""
        return Loaders(self)

    @property
    def orm(self) -> AsyncSession:
        """The request's ORM session; a compiled read, which has none, never asks for it."""
        if self.session is None:
            raise RuntimeError("this request has no ORM session")
        return self.session

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The request's session, for one read or one change at a time."""
        async with self.lock:
            yield self.orm

    @asynccontextmanager
    async def change(self, action: str) -> AsyncIterator[Change]:
        """One mutation: a savepoint, so a refused change leaves nothing behind; a change that
        succeeded is kept for the audit trail (the resolver must say which record changed)."""
        change = Change(action, self.orm)
        async with self.lock:
            try:
                async with self.orm.begin_nested():
                    yield change
            except DuplicateNationalNumber as duplicate:
                # The refusal says a file exists: audited, and paid for like a hit/no-hit lookup
                # (once the budget is spent, RATE_LIMITED replaces the CONFLICT).
                self.duplicates_refused.append(duplicate.existing_id)
                if self.lookups is not None:
                    await self.lookups.take(self.principal.id)
                raise
        if change.record is None:
            raise RuntimeError(f"mutation {action} did not report the record it changed")
        self.changes.append(change)

    def actor(self) -> Actor:
        return Actor(self.principal, self.request_id, self.operation, self.purpose, self.justification)
