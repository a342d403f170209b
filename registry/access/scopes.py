"""Row scopes: which records a principal may see at all, as SQL predicates built in one place.

Every read path (services, dataloaders, lists, linked fields) filters through these, so a
record outside the caller's scope is simply absent. The policy names a scope per role
(`auth/policy.toml`); the principal carries the names its roles were granted, so a role
the policy gives no scope sees nothing. Principal values are bind parameters.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import aliased

from registry.access.principal import Principal
from registry.db.tables import FollowUpNote, Referral, Subject, ThreatAssessment

AGENCY_ROLES = ("caseworker", "referral_officer")
ANALYST_ROLES = ("analyst", "senior_analyst")
PUBLISHED_ASSESSMENT = ("VALIDATED", "SUPERSEDED")
BREAK_GLASS = "break_glass"  # not a policy scope: granted per request by a justified BREAK_GLASS purpose


def _any(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(*conditions) if conditions else false()


def _referred() -> ColumnElement[bool]:
    submitted = aliased(Referral)  # an alias: never correlates with an outer referral query
    return exists().where(submitted.subject_id == Subject.id, submitted.status != "DRAFT")


def _agency_records(model, p: Principal) -> ColumnElement[bool]:
    """An agency sees its own and SHARED notes, and only published assessments."""
    if model is FollowUpNote:
        return or_(FollowUpNote.visibility == "SHARED", FollowUpNote.agency_code == p.agency)
    if model is ThreatAssessment:
        return ThreatAssessment.status.in_(PUBLISHED_ASSESSMENT)
    return true()


def _analyst_records(model, p: Principal) -> ColumnElement[bool]:
    """Threat analysts see SHARED notes only and no DRAFT referral."""
    if model is FollowUpNote:
        return FollowUpNote.visibility == "SHARED"
    if model is Referral:
        return Referral.status != "DRAFT"
    return true()


# name -> (predicate on Subject, predicate on a subject's records beyond seeing the subject)
SubjectRule = Callable[[Principal], ColumnElement[bool]]
RecordRule = Callable[[object, Principal], ColumnElement[bool]]
SCOPES: dict[str, tuple[SubjectRule, RecordRule]] = {
    "own_institution": (
        lambda p: Subject.institution == p.unit if p.unit else false(),
        _agency_records,
    ),
    "own_agency": (
        lambda p: Subject.agency_code == p.agency if p.agency else false(),
        _agency_records,
    ),
    "referred_subjects": (lambda p: _referred(), _analyst_records),
    "all": (lambda p: true(), lambda model, p: true()),  # dpo: metadata only, by the field rules
    "none": (lambda p: false(), lambda model, p: false()),
}
_BREAK_GLASS_RULE: tuple[SubjectRule, RecordRule] = (
    lambda p: Subject.id == p.break_glass_subject,
    _analyst_records,
)


def _rules(p: Principal) -> list[tuple[SubjectRule, RecordRule]]:
    rules = [SCOPES[name] for name in sorted(p.scopes) if name in SCOPES and name != "none"]
    if p.break_glass_subject is not None:
        rules.append(_BREAK_GLASS_RULE)
    return rules


def subject_scope(p: Principal) -> ColumnElement[bool]:
    return _any([subjects(p) for subjects, _ in _rules(p)])


def record_scope(model, p: Principal) -> ColumnElement[bool]:
    """Predicate on Referral, FollowUpNote or ThreatAssessment rows the principal may see."""
    conditions = []
    for subjects, records in _rules(p):
        in_scope_subjects = select(Subject.id).where(subjects(p))
        conditions.append(and_(model.subject_id.in_(in_scope_subjects), records(model, p)))
    return _any(conditions)
