"""Follow-up notes: append-only. A correction is a new note; the corrected one stays, marked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import aliased
from sqlalchemy.ext.asyncio import AsyncSession

from registry.access.principal import Principal
from registry.access.scopes import AGENCY_ROLES, record_scope
from registry.db.tables import FollowUpNote, Referral
from registry.db.values import NoteVisibility, names
from registry.domain import agencies, subjects
from registry.domain.errors import BadUserInput, Conflict, NotFound
from registry.domain.text import TEXT_MAX, clean

VISIBILITIES = names(NoteVisibility)


@dataclass
class AddNote:
    subject_id: uuid.UUID
    body: str
    visibility: str = "SHARED"
    referral_id: uuid.UUID | None = None


@dataclass
class CorrectNote:
    note_id: uuid.UUID
    body: str


def _check_visibility(principal: Principal, visibility: str) -> None:
    if visibility not in VISIBILITIES:
        raise BadUserInput("visibility is not one of " + ", ".join(VISIBILITIES), field="visibility")
    if visibility == "AGENCY_INTERNAL" and not principal.has(*AGENCY_ROLES):
        raise BadUserInput("threat analysts add SHARED notes only", field="visibility")


async def add(session: AsyncSession, principal: Principal, command: AddNote) -> FollowUpNote:
    _check_visibility(principal, command.visibility)
    await subjects.require_writable(session, principal, command.subject_id)
    if command.referral_id is not None:
        referral_subject = await session.scalar(
            select(Referral.subject_id).where(
                Referral.id == command.referral_id, record_scope(Referral, principal)
            )
        )
        if referral_subject is None:
            raise NotFound(f"Referral {command.referral_id} not found")
        if referral_subject != command.subject_id:
            raise BadUserInput("the referral concerns another subject", field="referralId")
    return await _insert(session, principal, command.subject_id, command.referral_id, command.visibility, command.body, None)


async def correct(session: AsyncSession, principal: Principal, command: CorrectNote) -> FollowUpNote:
    """Add the corrected text as a new note; a note is corrected at most once (then correct the correction)."""
    original = await session.scalar(
        select(FollowUpNote)
        .where(FollowUpNote.id == command.note_id, record_scope(FollowUpNote, principal))
        .with_for_update()
    )
    if original is None:
        raise NotFound(f"FollowUpNote {command.note_id} not found")
    if original.author_id != principal.id:
        raise BadUserInput("only the author of a note corrects it", field="noteId")
    if await session.scalar(select(FollowUpNote.id).where(FollowUpNote.corrects_id == original.id)):
        raise Conflict("this note was already corrected; correct the latest correction instead")
    return await _insert(
        session, principal, original.subject_id, original.referral_id, original.visibility, command.body, original.id
    )


async def _insert(session, principal, subject_id, referral_id, visibility, body, corrects_id) -> FollowUpNote:
    note = FollowUpNote(
        id=uuid.uuid4(),
        subject_id=subject_id,
        referral_id=referral_id,
        corrects_id=corrects_id,
        author=principal.name,
        author_id=principal.id,
        agency_code=await agencies.require_own(session, principal),
        visibility=visibility,
        body=clean(body, "body", limit=TEXT_MAX, required=True, multiline=True),
    )
    session.add(note)
    await session.flush()
    return note


async def corrected_ids(session: AsyncSession, note_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """For each given note that was corrected, the id of the note that corrects it."""
    rows = await session.execute(
        select(FollowUpNote.corrects_id, FollowUpNote.id).where(FollowUpNote.corrects_id.in_(note_ids))
    )
    return {corrects: by for corrects, by in rows if corrects is not None}  # all, by the WHERE


async def for_parents(
    session: AsyncSession,
    principal: Principal,
    column,
    parent_ids: list[uuid.UUID],
    first: int,
) -> dict[uuid.UUID, list[FollowUpNote]]:
    """The `first` latest notes of each parent (subject or referral), in one statement."""
    rank = func.row_number().over(
        partition_by=column, order_by=(FollowUpNote.created_at.desc(), FollowUpNote.id.desc())
    ).label("rank")
    ranked = (
        select(FollowUpNote, rank)
        .where(column.in_(parent_ids), record_scope(FollowUpNote, principal))
        .subquery()
    )
    note = aliased(FollowUpNote, ranked)
    rows = await session.scalars(
        select(note).where(ranked.c.rank <= first).order_by(ranked.c.created_at.desc(), ranked.c.id.desc())
    )
    out: dict[uuid.UUID, list[FollowUpNote]] = {pid: [] for pid in parent_ids}
    key = column.key
    for row in rows:
        out[getattr(row, key)].append(row)
    return out
