"""Row scopes: which records a principal may see at all, as SQL predicates built in one place.

Every read path (services, dataloaders, lists, linked fields) filters through these, so a
record outside the caller's scope is simply absent. The policy names a scope per role
(`auth/policy.toml`); the principal carries the names its roles were granted, so a role
the policy gives no scope sees nothing. Principal values are bind parameters.
"""

from __future__ import annotations

from typing import Any, Callable, cast

from sqlalchemy import ColumnElement, and_, exists, false, or_, true
from sqlalchemy.orm import aliased

from registry.access.principal import Principal
from registry.db.tables import FollowUpNote, Referral, Subject, ThreatAssessment

AGENCY_ROLES = ("caseworker", "referral_officer")
PUBLISHED_ASSESSMENT = ("VALIDATED", "SUPERSEDED")
BREAK_GLASS = "break_glass"  # not a policy scope: granted per request by a justified BREAK_GLASS purpose


def _any(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(*conditions) if conditions else false()


def _referred(subject: Any) -> ColumnElement[bool]:
    submitted = aliased(Referral)  # an alias: never correlates with an outer referral query
    return exists().where(submitted.subject_id == subject.id, submitted.status != "DRAFT")


def _agency_records(kind: type, record: Any, p: Principal) -> ColumnElement[bool]:
    """An agency sees its own and SHARED notes, and only published assessments."""
    if kind is FollowUpNote:
        return or_(record.visibility == "SHARED", record.agency_code == p.agency)
    if kind is ThreatAssessment:
        return cast(ColumnElement[bool], record.status.in_(PUBLISHED_ASSESSMENT))
    return true()


def _analyst_records(kind: type, record: Any, p: Principal) -> ColumnElement[bool]:
    """Threat analysts see SHARED notes only and no DRAFT referral."""
    if kind is FollowUpNote:
        return cast(ColumnElement[bool], record.visibility == "SHARED")
    if kind is Referral:
        return cast(ColumnElement[bool], record.status != "DRAFT")
    return true()


# name -> (predicate on a subject, predicate on a subject's records beyond seeing the subject).
# Each takes the entity to filter (the table or an alias of it), so nested queries can use them.
SubjectRule = Callable[[Principal, Any], ColumnElement[bool]]
RecordRule = Callable[[type, Any, Principal], ColumnElement[bool]]
SCOPES: dict[str, tuple[SubjectRule, RecordRule]] = {
    "own_institution": (
        lambda p, s: s.institution == p.unit if p.unit else false(),
        _agency_records,
    ),
    "own_agency": (
        lambda p, s: s.agency_code == p.agency if p.agency else false(),
        _agency_records,
    ),
    "referred_subjects": (lambda p, s: _referred(s), _analyst_records),
    "all": (lambda p, s: true(), lambda kind, record, p: true()),  # dpo: metadata only, by the field rules
    "none": (lambda p, s: false(), lambda kind, record, p: false()),
}
_BREAK_GLASS_RULE: tuple[SubjectRule, RecordRule] = (
    lambda p, s: s.id == p.break_glass_subject,
    _analyst_records,
)


def _rules(p: Principal) -> list[tuple[SubjectRule, RecordRule]]:
    rules = [SCOPES[name] for name in sorted(p.scopes) if name in SCOPES and name != "none"]
    if p.break_glass_subject is not None:
        rules.append(_BREAK_GLASS_RULE)
    return rules


def subject_scope(p: Principal, subject: Any = Subject) -> ColumnElement[bool]:
    """Predicate on `subject` (Subject or an alias of it): the subjects the principal may see."""
    return _any([subjects(p, subject) for subjects, _ in _rules(p)])


def record_scope(kind: type, p: Principal, record: Any = None) -> ColumnElement[bool]:
    """Predicate on `record` (a Referral, FollowUpNote or ThreatAssessment table, or an alias):
    the rows of that kind the principal may see. Correlated per row, so a page of 50 costs 50
    index probes, not a scan of every subject in scope."""
    record = kind if record is None else record
    conditions = []
    for subjects, records in _rules(p):
        owner = aliased(Subject)
        visible_owner = exists().where(owner.id == record.subject_id, subjects(p, owner))
        conditions.append(and_(records(kind, record, p), visible_owner))
    return _any(conditions)


def records_of_visible_subject(kind: type, p: Principal, record: Any) -> ColumnElement[bool]:
    """Predicate on `record` rows of a subject the query already found in scope (its records
    are selected by `record.subject_id = subject.id`). With a single scope rule the subject's
    visibility carries over, so only the rule on the records themselves remains; with several,
    each rule must hold for subject and records together: the full `record_scope`."""
    rules = _rules(p)
    if len(rules) == 1:
        return rules[0][1](kind, record, p)
    return record_scope(kind, p, record)


def scope_key(p: Principal) -> tuple[object, ...]:
    """What the principal's row scope depends on: principals with equal keys see the same rows
    (the rules above read the scope names, the unit, the agency and a break-glass subject)."""
    return (tuple(sorted(p.scopes)), p.unit, p.agency, p.break_glass_subject)
