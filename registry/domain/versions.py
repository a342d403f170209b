"""Versioned records: optimistic concurrency and the history of every change."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import Principal
from registry.domain.errors import Conflict, NotFound
from registry.db.tables import RecordVersion


def snapshot(row: Any) -> dict[str, Any]:
    """The row's columns as JSON-ready values."""
    out: dict[str, Any] = {}
    for column in inspect(row).mapper.column_attrs:
        value = getattr(row, column.key)
        if isinstance(value, (uuid.UUID, date, datetime)):
            value = value.isoformat() if not isinstance(value, uuid.UUID) else str(value)
        out[column.key] = value
    return out


async def load_for_update(
    session: AsyncSession, model: Any, record_id: uuid.UUID, scope: Any, expected_version: int | None
) -> Any:
    """Lock one in-scope row; refuse a stale `expectedVersion` so no update is ever lost."""
    row = (
        await session.execute(select(model).where(model.id == record_id, scope).with_for_update())
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{model.__name__} {record_id} not found")
    if expected_version is not None and row.version != expected_version:
        raise Conflict(
            f"{model.__name__} is at version {row.version}, not {expected_version}; reload and retry",
            currentVersion=row.version,
        )
    return row


async def record(
    session: AsyncSession, row: Any, principal: Principal, changed_fields: list[str]
) -> None:
    """Keep this version of the row (written after every insert and update)."""
    await session.flush()
    session.add(
        RecordVersion(
            record_type=type(row).__name__,
            record_id=row.id,
            version=row.version,
            data=snapshot(row),
            changed_fields=sorted(changed_fields),
            changed_by=principal.name,
        )
    )


def apply_changes(row: Any, changes: dict[str, Any], principal: Principal) -> list[str]:
    """Set the fields that really change, bump the version; return the changed field names."""
    changed = [k for k, v in changes.items() if getattr(row, k) != v]
    for key in changed:
        setattr(row, key, changes[key])
    if changed:
        row.version += 1
        row.updated_by = principal.name
        row.updated_at = datetime.now().astimezone()
    return changed


async def history(session: AsyncSession, record_type: str, record_ids: list[uuid.UUID]) -> list[RecordVersion]:
    rows = await session.execute(
        select(RecordVersion)
        .where(RecordVersion.record_type == record_type, RecordVersion.record_id.in_(record_ids))
        .order_by(RecordVersion.record_id, RecordVersion.version)
    )
    return list(rows.scalars())


def restore(model: Any, data: dict[str, Any]) -> Any:
    """A detached copy of a past version, typed as the record is today (for `history`)."""
    values = {}
    for column in inspect(model).columns:
        value = data.get(column.key)
        if isinstance(value, str):
            python_type = column.type.python_type
            if python_type is uuid.UUID:
                value = uuid.UUID(value)
            elif python_type is datetime:
                value = datetime.fromisoformat(value)
            elif python_type is date:
                value = date.fromisoformat(value)
        values[column.key] = value
    return model(**values)
