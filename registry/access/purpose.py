"""Purpose of use: why personal data is read, declared per request and checked before any read.

A role may declare only the purposes the policy allows it. BREAK_GLASS lets a role that
may declare it read one subject outside its row scope, by id, with a written
justification; the request is flagged for the data-protection officer's review.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from registry.access.grants import Grants

PURPOSES = (
    "CASE_SUPERVISION",
    "REFERRAL",
    "THREAT_ASSESSMENT",
    "BREAK_GLASS",
    "DATA_PROTECTION_AUDIT",
    "LOOKUP",
)
BREAK_GLASS = "BREAK_GLASS"
# Root fields that read no personal data: who am I, and the schema itself.
NO_PURPOSE_NEEDED = frozenset({"me", "__typename", "__schema", "__type"})
BREAK_GLASS_FIELD = "subject"
# "At least a sentence": several words, not a token like "urgent".
MIN_JUSTIFICATION_WORDS = 5
MIN_JUSTIFICATION_CHARS = 25
MAX_JUSTIFICATION_CHARS = 2000
_WORD = re.compile(r"[^\W\d_]{2,}")


class PurposeRefused(Exception):
    """A refused purpose; the API answers it as PURPOSE_REQUIRED (domain.errors.PurposeRequired).
    Access sits below the domain layer, so it does not raise the domain's error classes."""

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Declared:
    """The purpose a request declared and the root fields it asks for."""

    purpose: str | None
    justification: str | None
    root_type: str  # "Query", "Mutation" or "Subscription"
    root_fields: frozenset[str]
    subject_ids: frozenset[str]  # the `id` arguments of the root `subject` fields, as given


def reading_fields(grants: Grants, declared: Declared) -> frozenset[str]:
    """Root fields that would read data. Fields the caller may not call at all are left out:
    they read nothing and are refused one by one as FORBIDDEN."""
    return frozenset(
        f for f in declared.root_fields - NO_PURPOSE_NEEDED if grants.may_read(declared.root_type, f)
    )


def check(grants: Grants, declared: Declared) -> uuid.UUID | None:
    """Refuse with PURPOSE_REQUIRED, or pass; returns the subject a break-glass request may read."""
    fields = reading_fields(grants, declared)
    if not fields:
        return None
    purpose = (declared.purpose or "").strip()
    if not purpose:
        raise PurposeRefused(
            "declare why you read this data in the Registry-Purpose header",
            allowed=sorted(grants.purposes),
        )
    if purpose not in grants.purposes:
        raise PurposeRefused(
            f"purpose {purpose[:40]!r} is not allowed for your role", allowed=sorted(grants.purposes)
        )
    if purpose != BREAK_GLASS:
        return None
    return _break_glass_subject(declared, fields)


def _break_glass_subject(declared: Declared, fields: frozenset[str]) -> uuid.UUID:
    text = (declared.justification or "").strip()
    if (
        len(text) < MIN_JUSTIFICATION_CHARS
        or len(_WORD.findall(text)) < MIN_JUSTIFICATION_WORDS
        or len(text) > MAX_JUSTIFICATION_CHARS
    ):
        raise PurposeRefused(
            "BREAK_GLASS needs a Registry-Justification of at least one sentence saying why"
        )
    if declared.root_type != "Query" or fields != {BREAK_GLASS_FIELD} or len(declared.subject_ids) != 1:
        raise PurposeRefused("BREAK_GLASS covers reading one subject by id: query subject(id:) only")
    (raw,) = declared.subject_ids
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise PurposeRefused("BREAK_GLASS covers reading one subject by id: the id is not a UUID") from None
