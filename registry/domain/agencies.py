"""Agencies: the organisations that own files and write records."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import AGENCY_KINDS, Principal
from registry.db.tables import Agency
from registry.domain.errors import Forbidden


async def ensure(session: AsyncSession, code: str, name: str, kind: str) -> None:
    """Register an agency of `kind` (AGENCY_KINDS) unless its code is known already."""
    if kind not in AGENCY_KINDS:
        raise ValueError(f"unknown agency kind {kind!r} (known: {', '.join(AGENCY_KINDS)})")
    await session.execute(insert(Agency).values(code=code, name=name, kind=kind).on_conflict_do_nothing())


async def require_own(session: AsyncSession, principal: Principal) -> str:
    """The caller's agency code; records are written only on behalf of a registered agency."""
    if principal.agency and await session.scalar(select(Agency.code).where(Agency.code == principal.agency)):
        return principal.agency
    raise Forbidden("the caller's agency is not registered in the registry")
