"""Linked records load in batches: the SQL statements per request do not grow with the page size."""

from contextlib import contextmanager

from sqlalchemy import event

from conftest import national_number

PAGE = """
query Page($first: Int!, $agency: String!) {
  referrals(first: $first, filter: {agency: $agency}) {
    edges { node {
      id status reason
      subject { reference givenName notes(first: 10) { body author } assessments { level status } }
      notes { body }
      assessments { level }
    } }
  }
}
"""


@contextmanager
def count_statements(engine):
    counter = {"n": 0}

    def before(conn, cursor, statement, parameters, context, executemany):
        counter["n"] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


async def _seed_referrals(world, count: int) -> None:
    caseworker = world.token("caseworker")
    for i in range(count):
        subject = await world.ok(
            caseworker,
            "mutation($i: CreateSubjectInput!) { createSubject(input: $i) { subject { id } } }",
            {"i": {"givenName": f"Given{i}", "familyName": "Family", "dateOfBirth": "2011-02-03",
                   "nationalNumber": national_number(), "institution": world.unit, "legalStatus": "CONCERN"}},
        )
        sid = subject["createSubject"]["subject"]["id"]
        referral = await world.ok(
            caseworker,
            "mutation($i: DraftReferralInput!) { draftReferral(input: $i) { referral { id } } }",
            {"i": {"subjectId": sid, "reason": "RADICALISATION_CONCERN", "narrative": "Concern.", "legalBasis": "Decree art. 1"}},
        )
        rid = referral["draftReferral"]["referral"]["id"]
        for n in range(2):
            await world.ok(
                caseworker,
                "mutation($i: AddNoteInput!) { addNote(input: $i) { note { id } } }",
                {"i": {"subjectId": sid, "referralId": rid, "body": f"Note {n}", "visibility": "SHARED"}},
            )


async def test_statement_count_does_not_grow_with_page_size(world, services):
    # given 50 referrals of the caller's agency, each with a subject and notes
    await _seed_referrals(world, 50)
    officer = world.token("referral_officer")
    # when a page of 10 and a page of 50 are read with subject, notes and assessments by the
    # resolvers (compiled reads are one statement whatever the size: tests/test_compiled_reads.py)
    services.compiler.enabled = False
    counts = {}
    try:
        for first in (10, 50):
            with count_statements(services.engine) as counter:
                data = await world.ok(officer, PAGE, {"first": first, "agency": world.agency})
            assert len(data["referrals"]["edges"]) == first
            assert all(len(e["node"]["subject"]["notes"]) == 2 for e in data["referrals"]["edges"])
            counts[first] = counter["n"]
    finally:
        services.compiler.enabled = True
    # then both cost the same, small, number of statements
    assert counts[10] == counts[50]
    assert counts[50] <= 8
