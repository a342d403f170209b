"""Per-request dataloaders: linked records load in one batched statement per kind, never N+1."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from typing import Any, Awaitable, Callable, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from registry.access.principal import Principal
from registry.db.tables import FollowUpNote, ThreatAssessment
from registry.domain import assessments, notes, referrals, subjects, versions


class Requester(Protocol):
    """What a loader needs of the request (api.context.Context): who asks, and its session."""

    @property
    def principal(self) -> Principal: ...

    def db(self) -> AbstractAsyncContextManager[AsyncSession]: ...


class Loaders:
    """Created fresh for every request (a loader caches what the caller may see)."""

    def __init__(self, ctx: Requester) -> None:
        self._ctx = ctx
        self._loaders: dict[Any, DataLoader] = {}

    def _get(self, key: Any, batch: Callable[[Any, list], Awaitable[dict]], default: Any) -> DataLoader:
        loader = self._loaders.get(key)
        if loader is None:
            ctx = self._ctx

            async def load(keys: list) -> list:
                async with ctx.db() as session:
                    found = await batch(session, list(keys))
                return [found.get(k, default) for k in keys]

            loader = self._loaders[key] = DataLoader(load_fn=load)
        return loader

    def subject(self) -> DataLoader:
        p = self._ctx.principal
        return self._get("subject", lambda s, ids: subjects.by_ids(s, p, ids), None)

    def referrals_by_subject(self) -> DataLoader:
        p = self._ctx.principal
        return self._get("referrals_by_subject", lambda s, ids: referrals.for_subjects(s, p, ids), [])

    def notes_by_subject(self, first: int) -> DataLoader:
        p = self._ctx.principal
        return self._get(
            ("notes_by_subject", first),
            lambda s, ids: notes.for_parents(s, p, FollowUpNote.subject_id, ids, first),
            [],
        )

    def notes_by_referral(self, first: int) -> DataLoader:
        p = self._ctx.principal
        return self._get(
            ("notes_by_referral", first),
            lambda s, ids: notes.for_parents(s, p, FollowUpNote.referral_id, ids, first),
            [],
        )

    def assessments_by_subject(self) -> DataLoader:
        p = self._ctx.principal
        return self._get(
            "assessments_by_subject",
            lambda s, ids: assessments.for_parents(s, p, ThreatAssessment.subject_id, ids),
            [],
        )

    def assessments_by_referral(self) -> DataLoader:
        p = self._ctx.principal
        return self._get(
            "assessments_by_referral",
            lambda s, ids: assessments.for_parents(s, p, ThreatAssessment.referral_id, ids),
            [],
        )

    def corrected_by(self) -> DataLoader:
        return self._get("corrected_by", notes.corrected_ids, None)

    def history(self, record_type: str) -> DataLoader:
        async def batch(session, ids: list[uuid.UUID]) -> dict:
            out: dict[uuid.UUID, list] = {i: [] for i in ids}
            for row in await versions.history(session, record_type, ids):
                out[row.record_id].append(row)
            return out

        return self._get(("history", record_type), batch, [])
