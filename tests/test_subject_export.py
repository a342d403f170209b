"""Subject access: `registry export-subject <id|reference>` writes one JSON document with everything
held on a subject: its records, every version, and the disclosure log (who received what, when,
why); the export is itself audited (DESIGN section 6)."""

from __future__ import annotations

import json
import stat
import uuid

import pytest
from sqlalchemy import select

from audit_support import call, registry
from helpers import ADD_NOTE, UPDATE_SUBJECT, actor, create_subject, draft_assessment, draft_referral, step
from registry.db.tables import AuditEvent

WHY = "Preparing the multidisciplinary case meeting of Thursday."


@pytest.fixture
async def held(world):
    """A subject with a changed file, a submitted referral, a note, an assessment, and consultations."""
    subject = await create_subject(world, givenName="Robin", familyName="Export")
    other = await create_subject(world, givenName="Someone", familyName="Else")
    officer = actor(world, "referral_officer")
    await officer.ok(UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "familyName": "Exported"}})
    referral = await step(world, "submit", await draft_referral(world, subject["id"], by=officer), officer)
    note = (await actor(world, "caseworker").ok(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "Attended school."}}))["addNote"]["note"]
    assessment = await draft_assessment(world, subject["id"], by=actor(world, "analyst"))
    caseworker = world.token("caseworker", name=f"Casey {uuid.uuid4().hex[:6]}")
    _, read = await call(
        world, caseworker, "query($id: UUID!) { subject(id: $id) { id givenName dateOfBirth } }", {"id": subject["id"]},
        **{"Registry-Justification": WHY},
    )
    _, listed = await call(
        world, caseworker, "query($u: String!) { subjects(filter: {institution: $u}) { edges { node { familyName } } } }", {"u": world.unit}
    )
    return {
        "subject": subject, "other": other, "referral": referral, "note": note, "assessment": assessment,
        "caseworker": caseworker, "read": read, "listed": listed,
    }


async def export(database_url, tmp_path, who: str) -> dict:
    out = tmp_path / "export.json"
    code, stdout, stderr = await registry("export-subject", who, "--output", str(out), database_url=database_url, data_dir=tmp_path)
    assert code == 0, stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    return json.loads(out.read_text())


async def test_the_export_holds_the_records_and_every_version(database_url, tmp_path, held):
    document = await export(database_url, tmp_path, held["subject"]["id"])

    subject = held["subject"]
    assert document["subject"]["id"] == subject["id"] and document["subject"]["reference"] == subject["reference"]
    assert (document["subject"]["given_name"], document["subject"]["family_name"]) == ("Robin", "Exported")
    assert [r["id"] for r in document["referrals"]] == [held["referral"]["id"]]
    assert [(n["id"], n["body"]) for n in document["notes"]] == [(held["note"]["id"], "Attended school.")]
    assert [a["id"] for a in document["assessments"]] == [held["assessment"]["id"]]
    versions = {(v["type"], v["id"], v["version"]) for v in document["history"]}
    assert versions == {
        ("Subject", subject["id"], 1),
        ("Subject", subject["id"], 2),
        ("Referral", held["referral"]["id"], 1),
        ("Referral", held["referral"]["id"], 2),
        ("ThreatAssessment", held["assessment"]["id"], 1),
    }
    first, second = [v for v in document["history"] if v["type"] == "Subject"]
    assert (first["data"]["family_name"], second["data"]["family_name"]) == ("Export", "Exported")
    assert second["changedFields"] == ["family_name"] and second["changedBy"] and second["changedAt"]
    assert held["other"]["id"] not in json.dumps(document)


async def test_the_disclosure_log_says_who_received_what_when_and_why(database_url, tmp_path, held):
    document = await export(database_url, tmp_path, held["subject"]["id"])
    log = {entry["requestId"]: entry for entry in document["disclosureLog"]}

    read = log[held["read"]]
    assert read["action"] == "records.consulted" and read["at"]
    assert read["actor"]["name"].startswith("Casey ") and read["actor"]["roles"] == ["caseworker"]
    assert (read["purpose"], read["justification"]) == ("CASE_SUPERVISION", WHY)
    assert read["records"] == [{"type": "Subject", "id": held["subject"]["id"], "fields": ["dateOfBirth", "givenName", "id"]}]
    # A consultation of several subjects shows only this subject's records
    assert log[held["listed"]]["records"] == [{"type": "Subject", "id": held["subject"]["id"], "fields": ["familyName"]}]
    # Changes are in the log too, oldest first
    actions = [entry["action"] for entry in document["disclosureLog"]]
    assert actions[:2] == ["subject.created", "records.consulted"]
    assert {"subject.updated", "referral.drafted", "referral.submitted", "note.added", "assessment.drafted"} <= set(actions)
    assert [e["at"] for e in document["disclosureLog"]] == sorted(e["at"] for e in document["disclosureLog"])


async def test_the_export_is_itself_audited_and_found_by_reference(database_url, tmp_path, services, held):
    subject = held["subject"]
    await export(database_url, tmp_path, subject["id"])

    # When exported again, by reference, to standard output
    code, stdout, stderr = await registry("export-subject", subject["reference"], database_url=database_url, data_dir=tmp_path)
    assert code == 0, stderr
    document = json.loads(stdout)

    # Then the same subject comes out, and both exports are audit events
    assert document["subject"]["id"] == subject["id"]
    async with services.sessions() as session:
        exported = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "subject.exported", AuditEvent.subject_ids.contains([uuid.UUID(subject["id"])]))
            )
        )
    assert len(exported) == 2
    assert all(e.actor_id.startswith("operator:") and e.operation == "export-subject" for e in exported)
    # And the second export's log already shows the first
    assert [e["action"] for e in document["disclosureLog"]].count("subject.exported") == 1


async def test_an_unknown_subject_is_an_error(database_url, tmp_path):
    code, stdout, stderr = await registry("export-subject", "S-1999-99999", database_url=database_url, data_dir=tmp_path)
    assert code == 1 and "no subject 'S-1999-99999'" in stderr and stdout == ""
