"""Query root: each resolver parses, calls one domain read, converts."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Optional

import strawberry
from strawberry.types import Info

from registry.access.grants import MUTATION, QUERY, Grants
from registry.api.types import (
    LegalStatus,
    LookupOutcome,
    LookupResult,
    Me,
    Permissions,
    Referral,
    ReferralConnection,
    ReferralEdge,
    ReferralReason,
    ReferralStatus,
    Subject,
    SubjectConnection,
    SubjectEdge,
    SubjectSearchConnection,
    SubjectSearchEdge,
    TypeFields,
    page_info,
)
from registry.api import audit
from registry.api.audit import AuditEventConnection, AuditEventFilter
from registry.api.errors import CODES_DESCRIPTION
from registry.domain import lookup, referrals, search, subjects

SearchText = Annotated[
    str,
    strawberry.argument(
        description="Names (given, family, or both in any order; case, accents and small typos do not matter)"
        " or the start of a reference (S-...); at least 3 characters."
    ),
]
BornOn = Annotated[Optional[date], strawberry.argument(description="Only subjects born on this day.")]


@strawberry.input(description="Narrows a list of subjects.")
class SubjectFilter:
    reference: Optional[str] = strawberry.field(default=None, description="Exact reference.")
    institution: Optional[str] = strawberry.field(default=None, description="Placement unit code.")
    legal_status: Optional[LegalStatus] = strawberry.field(default=None, description="Legal status.")
    agency: Optional[str] = strawberry.field(default=None, description="Owning agency code.")


@strawberry.input(description="Narrows a list of referrals.")
class ReferralFilter:
    status: Optional[list[ReferralStatus]] = strawberry.field(default=None, description="Any of these statuses.")
    reason: Optional[ReferralReason] = strawberry.field(default=None, description="Reason.")
    subject_id: Optional[uuid.UUID] = strawberry.field(default=None, description="Subject concerned.")
    agency: Optional[str] = strawberry.field(default=None, description="Referring agency code.")


def _permissions(grants: Grants) -> Permissions:
    def table(rules) -> list[TypeFields]:
        return [
            TypeFields(type=name, fields=sorted(fields))
            for name, fields in sorted(rules.items())
            if fields and name not in (QUERY, MUTATION)
        ]

    return Permissions(
        queries=sorted(grants.queries),
        mutations=sorted(grants.mutations),
        purposes=sorted(grants.purposes),
        scopes=sorted(grants.scopes),
        read=table(grants.read),
        write=table(grants.write),
    )


@strawberry.type(
    description="Read access to the registry. Fields the caller may not call resolve to null. " + CODES_DESCRIPTION
)
class Query:
    @strawberry.field(description="The caller: identity, roles and what they may do.")
    def me(self, info: Info) -> Me:
        ctx = info.context
        p = ctx.principal
        return Me(
            id=p.id,
            name=p.name,
            agency=p.agency,
            roles=sorted(p.roles),
            unit=p.unit,
            mutations=sorted(ctx.grants.mutations),
            purposes=sorted(ctx.grants.purposes),
            permissions=_permissions(ctx.grants),
        )

    @strawberry.field(description="One subject by id; null when it does not exist or is outside the caller's scope.")
    async def subject(self, info: Info, id: uuid.UUID) -> Optional[Subject]:
        async with info.context.db() as session:
            row = await subjects.get(session, info.context.principal, id)
        return Subject.from_row(row) if row else None

    @strawberry.field(description="Subjects in the caller's scope, ordered by reference.")
    async def subjects(
        self, info: Info, first: int = 20, after: Optional[str] = None, filter: Optional[SubjectFilter] = None
    ) -> Optional[SubjectConnection]:
        f = filter or SubjectFilter()
        command = subjects.SubjectFilter(
            reference=f.reference,
            institution=f.institution,
            legal_status=f.legal_status.value if f.legal_status else None,
            agency=f.agency,
        )
        async with info.context.db() as session:
            page = await subjects.page(session, info.context.principal, first, after, command)
        cursors = [subjects.cursor(r) for r in page.rows]
        return SubjectConnection(
            edges=[SubjectEdge(cursor=c, node=Subject.from_row(r)) for c, r in zip(cursors, page.rows)],
            page_info=page_info(page, cursors),
        )

    @strawberry.field(
        description="Subjects in the caller's scope whose names match `text`, or whose reference starts with it;"
        " best match first, then by reference."
    )
    async def search_subjects(
        self, info: Info, text: SearchText, date_of_birth: BornOn = None, first: int = 20, after: Optional[str] = None
    ) -> Optional[SubjectSearchConnection]:
        ctx = info.context
        command = search.SearchSubjects(text=text, date_of_birth=date_of_birth)
        async with ctx.db() as session:
            page = await search.search(session, ctx.principal, command, first, after)
        ctx.searches.append((command, [m.subject.id for m in page.rows]))
        cursors = [search.cursor(m) for m in page.rows]
        return SubjectSearchConnection(
            edges=[
                SubjectSearchEdge(cursor=c, score=m.score, node=Subject.from_row(m.subject))
                for c, m in zip(cursors, page.rows)
            ],
            page_info=page_info(page, cursors),
        )

    @strawberry.field(description="One referral by id; null when it does not exist or is outside the caller's scope.")
    async def referral(self, info: Info, id: uuid.UUID) -> Optional[Referral]:
        async with info.context.db() as session:
            row = await referrals.get(session, info.context.principal, id)
        return Referral.from_row(row) if row else None

    @strawberry.field(description="Referrals in the caller's scope, newest first.")
    async def referrals(
        self, info: Info, first: int = 20, after: Optional[str] = None, filter: Optional[ReferralFilter] = None
    ) -> Optional[ReferralConnection]:
        f = filter or ReferralFilter()
        command = referrals.ReferralFilter(
            status=[s.value for s in f.status] if f.status else None,
            reason=f.reason.value if f.reason else None,
            subject_id=f.subject_id,
            agency=f.agency,
        )
        async with info.context.db() as session:
            page = await referrals.page(session, info.context.principal, first, after, command)
        cursors = [referrals.cursor(r) for r in page.rows]
        return ReferralConnection(
            edges=[ReferralEdge(cursor=c, node=Referral.from_row(r)) for c, r in zip(cursors, page.rows)],
            page_info=page_info(page, cursors),
        )

    @strawberry.field(description="The audit trail, newest first (data-protection officer).")
    async def audit_events(
        self, info: Info, first: int = 20, after: Optional[str] = None, filter: Optional[AuditEventFilter] = None
    ) -> Optional[AuditEventConnection]:
        return await audit.audit_events(info, first, after, filter)

    @strawberry.field(description="Hit/no-hit: whether the registry holds a file on this national number (rate-limited).")
    async def lookup_subject(self, info: Info, national_number: str) -> Optional[LookupResult]:
        ctx = info.context
        await ctx.lookups.take(ctx.principal.id)
        async with ctx.db() as session:
            hit = await lookup.lookup(session, national_number)
        ctx.lookups_answered.append(hit[0] if hit else None)
        if hit is None:
            return LookupResult(outcome=LookupOutcome.NO_HIT, contact_agency=None)
        return LookupResult(outcome=LookupOutcome.HIT, contact_agency=hit[1])
