"""Test helpers: act as a role through the HTTP endpoint, and build the records a test needs.

Every helper goes through POST /graphql like a front-end would; nothing here touches the
database directly except `ensure_agency`, which registers reference data (agencies).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from conftest import World
from registry.domain import agencies
from registry.domain.national_number import check_digits

# The purpose each role declares (DESIGN section 5); `me` needs none, admin has none.
PURPOSES = {
    "caseworker": "CASE_SUPERVISION",
    "referral_officer": "CASE_SUPERVISION",
    "analyst": "THREAT_ASSESSMENT",
    "senior_analyst": "THREAT_ASSESSMENT",
    "dpo": "DATA_PROTECTION_AUDIT",
    "partner": "LOOKUP",
}


@dataclass
class Actor:
    """One caller: a token plus the purpose header its role declares."""

    world: World
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        purpose = PURPOSES.get(self.role)
        return {"Registry-Purpose": purpose} if purpose else {}

    async def gql(self, query: str, variables: dict | None = None) -> dict:
        return await self.world.gql(self.token, query, variables, **self.headers)

    async def ok(self, query: str, variables: dict | None = None) -> dict:
        return await self.world.ok(self.token, query, variables, **self.headers)


def actor(world: World, role: str, **kwargs: Any) -> Actor:
    """A caller with `role` (agency/unit/name default as in World.token)."""
    return Actor(world, role, world.token(role, **kwargs))


def refusals(role: str) -> set[str]:
    """Codes that refuse a change to `role`: admin declares no purpose, so it may be stopped earlier."""
    return {"FORBIDDEN", "PURPOSE_REQUIRED"} if role == "admin" else {"FORBIDDEN"}


def codes(body: dict) -> list[str]:
    """The `extensions.code` of every error in a response body."""
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


def only_code(body: dict) -> str:
    """The single error code of a refused request (fails if there is not exactly one error)."""
    found = codes(body)
    assert len(found) == 1, body
    return found[0]


async def ensure_agency(world: World, code: str, name: str = "Test agency", kind: str = "youth") -> None:
    async with world.services.sessions.begin() as session:
        await agencies.ensure(session, code, name, kind)


# --------------------------------------------------------------------------- operations

SUBJECT_FIELDS = "id reference givenName familyName dateOfBirth institution legalStatus version"

CREATE_SUBJECT = f"""
mutation($input: CreateSubjectInput!) {{
  createSubject(input: $input) {{ subject {{ {SUBJECT_FIELDS} }} }}
}}"""

UPDATE_SUBJECT = f"""
mutation($input: UpdateSubjectInput!) {{
  updateSubject(input: $input) {{ subject {{ {SUBJECT_FIELDS} }} }}
}}"""

SUBJECT = f"""
query($id: UUID!) {{ subject(id: $id) {{ {SUBJECT_FIELDS} }} }}"""

REFERRAL_FIELDS = "id status reason narrative legalBasis createdAt submittedAt version"

DRAFT_REFERRAL = f"""
mutation($input: DraftReferralInput!) {{
  draftReferral(input: $input) {{ referral {{ {REFERRAL_FIELDS} }} }}
}}"""

REFERRAL = f"""
query($id: UUID!) {{ referral(id: $id) {{ {REFERRAL_FIELDS} }} }}"""


def transition(step: str) -> str:
    """submitReferral / acknowledgeReferral / closeReferral."""
    return f"""
mutation($input: ReferralTransitionInput!) {{
  {step}Referral(input: $input) {{ referral {{ {REFERRAL_FIELDS} }} }}
}}"""


ADD_NOTE = """
mutation($input: AddNoteInput!) {
  addNote(input: $input) { note { id visibility body author createdAt correctsId correctedById } }
}"""

ASSESSMENT_FIELDS = "id status level summary validUntil version"

DRAFT_ASSESSMENT = f"""
mutation($input: DraftAssessmentInput!) {{
  draftAssessment(input: $input) {{ assessment {{ {ASSESSMENT_FIELDS} author validatedBy }} }}
}}"""

VALIDATE_ASSESSMENT = f"""
mutation($input: ValidateAssessmentInput!) {{
  validateAssessment(input: $input) {{ assessment {{ {ASSESSMENT_FIELDS} author validatedBy }} }}
}}"""


_serials = itertools.count()


def bis_number() -> tuple[str, date]:
    """A valid, unique BIS number (birth month + 40) and the birth date it encodes.

    BIS numbers never collide with the register numbers other fixtures and the demo data
    generate, so tests can register many subjects in one shared database.
    """
    n = next(_serials)
    born = date(2009, 1, 1) + timedelta(days=n // 997)
    body = f"{born:%y}{born.month + 40:02d}{born:%d}{n % 997 + 1:03d}"
    return body + check_digits(body, born.year >= 2000), born


def national_number() -> str:
    return bis_number()[0]


def subject_input(world: World, **overrides: Any) -> dict:
    number, born = bis_number()
    values = {
        "givenName": "Alex",
        "familyName": "Example",
        "dateOfBirth": born.isoformat(),
        "nationalNumber": number,
        "institution": world.unit,
        "legalStatus": "CONCERN",
    }
    values.update(overrides)
    return values


async def create_subject(world: World, by: Actor | None = None, **overrides: Any) -> dict:
    """A subject of the world's agency, in the world's unit unless overridden."""
    by = by or actor(world, "referral_officer")
    data = await by.ok(CREATE_SUBJECT, {"input": subject_input(world, **overrides)})
    return data["createSubject"]["subject"]


async def draft_referral(world: World, subject_id: str, by: Actor | None = None, **overrides: Any) -> dict:
    by = by or actor(world, "caseworker")
    values = {
        "subjectId": subject_id,
        "reason": "RADICALISATION_CONCERN",
        "narrative": "Expressed support for violent groups online.",
        "legalBasis": "Decree on youth welfare, art. 7",
    }
    values.update(overrides)
    data = await by.ok(DRAFT_REFERRAL, {"input": values})
    return data["draftReferral"]["referral"]


async def step(world: World, name: str, referral: dict, by: Actor) -> dict:
    """Move a referral one step (submit, acknowledge, close) at its current version."""
    data = await by.ok(transition(name), {"input": {"id": referral["id"], "expectedVersion": referral["version"]}})
    return data[f"{name}Referral"]["referral"]


async def submitted_subject(world: World, **overrides: Any) -> tuple[dict, dict]:
    """A subject with a SUBMITTED referral: visible to the threat analysts."""
    subject = await create_subject(world, **overrides)
    referral = await draft_referral(world, subject["id"], by=actor(world, "referral_officer"))
    referral = await step(world, "submit", referral, actor(world, "referral_officer"))
    return subject, referral


async def draft_assessment(world: World, subject_id: str, by: Actor, **overrides: Any) -> dict:
    values = {
        "subjectId": subject_id,
        "level": "MEDIUM",
        "summary": "Keep supervision; no contact with the named group.",
        "rationale": "Online statements, no operational steps observed.",
        "sources": ["open sources"],
    }
    values.update(overrides)
    data = await by.ok(DRAFT_ASSESSMENT, {"input": values})
    return data["draftAssessment"]["assessment"]


async def validate_assessment(assessment: dict, by: Actor) -> dict:
    data = await by.ok(
        VALIDATE_ASSESSMENT, {"input": {"id": assessment["id"], "expectedVersion": assessment["version"]}}
    )
    return data["validateAssessment"]["assessment"]
