"""The demo data: every workflow state present, valid by the domain's rules, seeded once.

Seeded into a database of its own on the test server: its fixed references (S-2026-00001...)
and national numbers would otherwise clash with subjects other tests create in theirs.
"""

from __future__ import annotations

import os
from datetime import date

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from registry.app import create_app
from registry.config import Settings
from registry.db.engine import create_engine
from registry.db.tables import FollowUpNote, RecordVersion, Referral, Subject, ThreatAssessment
from registry.domain import demo, national_number
from registry.domain.subjects import review_due

DEMO_DATABASE = f"registry_demo_{os.getpid()}"
DEMO_DAY = date(2026, 11, 1)


@pytest.fixture(scope="module")
async def demo_app(server_url, tmp_path_factory):
    """An app on a fresh database holding nothing but the demo."""
    admin_url = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(database="postgres")
    admin = await asyncpg.connect(admin_url.render_as_string(hide_password=False))
    await admin.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    url = admin_url.set(database=DEMO_DATABASE).render_as_string(hide_password=False)
    settings = Settings(database_url=url, data_dir=tmp_path_factory.mktemp("demo"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.owner = create_engine(url, settings, as_owner=True)  # seeding is the owner's job, as in the CLI
        yield app
        await app.state.owner.dispose()
    await admin.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="module")
async def seeded(demo_app) -> str:
    return await demo.seed(demo_app.state.owner)


async def _counts(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            model.__name__: await conn.scalar(select(func.count()).select_from(model))
            for model in (Subject, Referral, FollowUpNote, ThreatAssessment, RecordVersion)
        }


async def _column(engine, query) -> list:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


def test_build_is_deterministic():
    assert demo.build() == demo.build()


async def test_every_state_is_present(demo_app, seeded):
    engine = demo_app.state.services.engine
    assert seeded.startswith("demo data seeded")
    assert {r for (r,) in await _column(engine, select(Referral.status).distinct())} == {
        "DRAFT", "SUBMITTED", "ACKNOWLEDGED", "CLOSED"
    }
    assert {v for (v,) in await _column(engine, select(FollowUpNote.visibility).distinct())} == {"AGENCY_INTERNAL", "SHARED"}
    corrections = await _column(engine, select(FollowUpNote.id).where(FollowUpNote.corrects_id.is_not(None)))
    assert len(corrections) >= 3
    assert {s for (s,) in await _column(engine, select(ThreatAssessment.status).distinct())} == {
        "DRAFT", "VALIDATED", "SUPERSEDED"
    }
    agencies = {c for (c,) in await _column(engine, text("SELECT code FROM agency"))}
    assert {"YOUTH", "CUTA", "POLICE"} <= agencies
    units = {u for (u,) in await _column(engine, select(Subject.institution).distinct())}
    assert {"IPPJ-BRAINE", "IPPJ-FRAIPONT", "IPPJ-SAINT-SERVAIS", "IPPJ-WAUTHIER-BRAINE", "IPPJ-SAINT-HUBERT"} == units


async def test_subjects_are_valid_minors(demo_app, seeded):
    engine = demo_app.state.services.engine
    rows = await _column(engine, select(Subject.national_number, Subject.date_of_birth, Subject.review_due_at, Subject.id))
    assert len(rows) == demo.SUBJECTS
    last_validated = dict(
        await _column(
            engine,
            select(ThreatAssessment.subject_id, func.max(ThreatAssessment.validated_at)).group_by(ThreatAssessment.subject_id),
        )
    )
    for number, born, due, subject_id in rows:
        assert national_number.normalize(number) == number
        assert number[:6] == f"{born:%y%m%d}"
        age = DEMO_DAY.year - born.year - ((DEMO_DAY.month, DEMO_DAY.day) < (born.month, born.day))
        assert 12 <= age <= 17
        assert due == review_due(born, last_validated.get(subject_id))
    next_reference = await _column(engine, text("SELECT last_value, is_called FROM subject_reference_seq"))
    assert next_reference == [(demo.SUBJECTS, True)]


async def test_history_holds_every_version(demo_app, seeded):
    """One history row per version, the last one a snapshot of the row as it is (review date aside)."""
    engine = demo_app.state.services.engine
    for model in (Subject, Referral, ThreatAssessment):
        history = await _column(
            engine,
            select(RecordVersion.record_id, func.count(), func.max(RecordVersion.version))
            .where(RecordVersion.record_type == model.__name__)
            .group_by(RecordVersion.record_id),
        )
        rows = dict(await _column(engine, select(model.id, model.version)))
        assert {rid: (n, top) for rid, n, top in history} == {rid: (v, v) for rid, v in rows.items()}
    latest = await _column(
        engine,
        select(RecordVersion.data, ThreatAssessment.status)
        .join(ThreatAssessment, ThreatAssessment.id == RecordVersion.record_id)
        .where(RecordVersion.version == ThreatAssessment.version),
    )
    assert latest and all(data["status"] == status for data, status in latest)
    validated_twice = await _column(
        engine,
        select(ThreatAssessment.subject_id).where(ThreatAssessment.status == "VALIDATED")
        .group_by(ThreatAssessment.subject_id).having(func.count() > 1),
    )
    assert validated_twice == []


async def test_seeding_twice_changes_nothing(demo_app, seeded):
    engine = demo_app.state.owner
    before = await _counts(engine)
    message = await demo.seed(engine)
    assert "already present" in message
    assert await _counts(engine) == before


async def test_demo_caseworker_sees_only_their_unit(demo_app, seeded):
    services = demo_app.state.services
    token = services.dev_issuer.issue(role="caseworker", agency="YOUTH", unit="IPPJ-BRAINE", name="Camille Caseworker")
    query = "query($after: String) { subjects(first: 100, after: $after) { edges { node { reference institution } } pageInfo { hasNextPage endCursor } } }"
    seen, after = [], None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=demo_app), base_url="http://registry") as client:
        while True:
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": {"after": after}},
                headers={"Authorization": f"Bearer {token}", "Registry-Purpose": "CASE_SUPERVISION"},
            )
            body = response.json()
            assert "errors" not in body, body
            page = body["data"]["subjects"]
            seen += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    expected = await _column(services.engine, select(Subject.reference).where(Subject.institution == "IPPJ-BRAINE"))
    assert seen and {s["institution"] for s in seen} == {"IPPJ-BRAINE"}
    assert sorted(s["reference"] for s in seen) == sorted(r for (r,) in expected)
