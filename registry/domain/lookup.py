"""Hit/no-hit: tells a partner whether a file exists and whom to contact, nothing more."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.tables import Subject
from registry.domain import national_number


async def lookup(session: AsyncSession, number: str) -> tuple[uuid.UUID, str] | None:
    """The subject's id (for the audit trail only) and owning agency on a hit, None otherwise."""
    digits = national_number.normalize(number)
    row = (await session.execute(select(Subject.id, Subject.agency_code).where(Subject.national_number == digits))).first()
    return (row.id, row.agency_code) if row else None
