"""Row scopes: which records a principal may see at all, as SQL predicates built in one place.

Every read path (services, dataloaders, lists, linked fields) filters through these, so a
record outside the caller's scope is simply absent. Principal values are bind parameters.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import aliased

from registry.access.principal import Principal
from registry.db.tables import FollowUpNote, Referral, Subject, ThreatAssessment

AGENCY_ROLES = ("caseworker", "referral_officer")
ANALYST_ROLES = ("analyst", "senior_analyst")
PUBLISHED_ASSESSMENT = ("VALIDATED", "SUPERSEDED")


def _any(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(*conditions) if conditions else false()


def _subject_conditions(p: Principal) -> list[tuple[str, ColumnElement[bool]]]:
    """(role, predicate on Subject) for each role of the principal that grants rows."""
    out: list[tuple[str, ColumnElement[bool]]] = []
    if p.has("caseworker") and p.unit:
        out.append(("caseworker", Subject.institution == p.unit))
    if p.has("referral_officer") and p.agency:
        out.append(("referral_officer", Subject.agency_code == p.agency))
    if p.has(*ANALYST_ROLES):
        submitted = aliased(Referral)  # an alias: never correlates with an outer referral query
        referred = exists().where(submitted.subject_id == Subject.id, submitted.status != "DRAFT")
        out.append(("analyst", referred))
    if p.has("dpo"):
        out.append(("dpo", true()))
    return out


def subject_scope(p: Principal) -> ColumnElement[bool]:
    return _any([cond for _, cond in _subject_conditions(p)])


def _record_condition(role: str, model, p: Principal) -> ColumnElement[bool]:
    """What a role may see of a subject's records, beyond seeing the subject."""
    if role in AGENCY_ROLES:
        if model is FollowUpNote:
            return or_(FollowUpNote.visibility == "SHARED", FollowUpNote.agency_code == p.agency)
        if model is ThreatAssessment:
            return ThreatAssessment.status.in_(PUBLISHED_ASSESSMENT)
        return true()
    if role == "analyst":
        if model is FollowUpNote:
            return FollowUpNote.visibility == "SHARED"
        if model is Referral:
            return Referral.status != "DRAFT"
        return true()
    return true()  # dpo: every record (metadata only, by the field rules)


def record_scope(model, p: Principal) -> ColumnElement[bool]:
    """Predicate on Referral, FollowUpNote or ThreatAssessment rows the principal may see."""
    conditions = []
    for role, subject_condition in _subject_conditions(p):
        in_scope_subjects = select(Subject.id).where(subject_condition)
        conditions.append(
            and_(model.subject_id.in_(in_scope_subjects), _record_condition(role, model, p))
        )
    return _any(conditions)
