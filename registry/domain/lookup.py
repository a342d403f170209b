"""Hit/no-hit: tells a partner whether a file exists and whom to contact, nothing more."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.tables import Subject
from registry.domain import national_number


async def lookup(session: AsyncSession, number: str) -> str | None:
    """The owning agency's code on a hit, None otherwise."""
    digits = national_number.normalize(number)
    return await session.scalar(select(Subject.agency_code).where(Subject.national_number == digits))
