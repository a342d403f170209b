"""Connections page with opaque cursors: walking `first`/`after` visits every record once, in
order, and says when it is done; page sizes and cursors are checked before anything is read."""

from __future__ import annotations

import base64
import json

import pytest

from helpers import actor, create_subject, only_code, subject_input

TOTAL = 25

SUBJECTS = """
query($first: Int!, $after: String, $agency: String) {
  subjects(first: $first, after: $after, filter: {agency: $agency}) {
    edges { cursor node { id reference } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""

REFERRALS = """
query($first: Int!, $after: String, $agency: String) {
  referrals(first: $first, after: $after, filter: {agency: $agency}) {
    edges { cursor node { id createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


def cursor(*parts: object) -> str:
    """A cursor in the service's own encoding, with chosen content."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


async def register_many(world, count: int) -> list[str]:
    """`count` subjects of the world's agency, registered in one request; their ids."""
    inputs = [subject_input(world) for _ in range(count)]
    fields = " ".join(
        f"s{i}: createSubject(input: $i{i}) {{ subject {{ id }} }}" for i in range(count)
    )
    params = ", ".join(f"$i{i}: CreateSubjectInput!" for i in range(count))
    data = await actor(world, "referral_officer").ok(
        f"mutation({params}) {{ {fields} }}", {f"i{i}": v for i, v in enumerate(inputs)}
    )
    return [data[f"s{i}"]["subject"]["id"] for i in range(count)]


async def draft_many(world, subject_ids: list[str], per_request: int) -> list[str]:
    """Referrals drafted `per_request` at a time: those of one request share one creation time."""
    ids: list[str] = []
    targets = [subject_ids[i % len(subject_ids)] for i in range(TOTAL)]
    for start in range(0, TOTAL, per_request):
        batch = targets[start : start + per_request]
        fields = " ".join(
            f'r{i}: draftReferral(input: {{subjectId: "{sid}", reason: RADICALISATION_CONCERN, '
            f'narrative: "n{start + i}", legalBasis: "b"}}) {{ referral {{ id }} }}'
            for i, sid in enumerate(batch)
        )
        data = await actor(world, "caseworker").ok(f"mutation {{ {fields} }}")
        ids += [data[f"r{i}"]["referral"]["id"] for i in range(len(batch))]
    return ids


async def walk(caller, query: str, root: str, agency: str, first: int) -> tuple[list[dict], list[dict]]:
    """Follow endCursor until hasNextPage is false; the nodes seen, and each page's pageInfo."""
    nodes, infos, after = [], [], None
    for _ in range(TOTAL + 2):  # a walk that never ends is a failure, not a hang
        page = (await caller.ok(query, {"first": first, "after": after, "agency": agency}))[root]
        nodes += [e["node"] for e in page["edges"]]
        infos.append(page["pageInfo"])
        assert [e["cursor"] for e in page["edges"]][-1:] == [page["pageInfo"]["endCursor"]] or not page["edges"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes, infos
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("pagination did not end")


async def test_walking_subjects_visits_each_once_in_reference_order(world):
    # Given 25 subjects of the test's own agency
    ids = await register_many(world, TOTAL)
    officer = actor(world, "referral_officer")

    # When the referral officer walks them 7 at a time
    nodes, infos = await walk(officer, SUBJECTS, "subjects", world.agency, 7)

    # Then every subject comes exactly once, ordered by reference, in pages of 7, 7, 7, 4
    assert sorted(n["id"] for n in nodes) == sorted(ids)
    assert len(nodes) == len({n["id"] for n in nodes}) == TOTAL
    references = [n["reference"] for n in nodes]
    assert references == sorted(references)
    assert [i["hasNextPage"] for i in infos] == [True, True, True, False]
    assert [i["hasPreviousPage"] for i in infos] == [False, True, True, True]


@pytest.mark.parametrize("first, has_next, count", [(TOTAL - 1, True, TOTAL - 1), (TOTAL, False, TOTAL), (100, False, TOTAL)])
async def test_has_next_page_is_exact_at_the_boundary(world, first, has_next, count):
    # Given exactly 25 subjects of the agency
    await register_many(world, TOTAL)

    # When one page of `first` is asked for
    page = (await actor(world, "referral_officer").ok(SUBJECTS, {"first": first, "agency": world.agency}))["subjects"]

    # Then it holds min(first, 25) and says whether more follow
    assert len(page["edges"]) == count
    assert page["pageInfo"]["hasNextPage"] is has_next


@pytest.mark.parametrize("per_request", [1, 10])
async def test_walking_referrals_visits_each_once_newest_first(world, per_request):
    # Given 25 referrals of the agency, some sharing one creation time (drafted in one request)
    subject_ids = [(await create_subject(world))["id"] for _ in range(3)]
    ids = await draft_many(world, subject_ids, per_request)
    casey = actor(world, "caseworker")

    # When a caseworker walks them 4 at a time
    nodes, infos = await walk(casey, REFERRALS, "referrals", world.agency, 4)

    # Then every referral comes exactly once, newest first, and only the last page ends the walk
    assert sorted(n["id"] for n in nodes) == sorted(ids)
    assert len(nodes) == TOTAL
    created = [n["createdAt"] for n in nodes]
    assert created == sorted(created, reverse=True)
    assert [i["hasNextPage"] for i in infos] == [True] * 6 + [False]


async def test_a_cursor_stays_valid_when_records_are_added(world):
    # Given a first page of 5 subjects out of 25
    await register_many(world, TOTAL)
    officer = actor(world, "referral_officer")
    first_page = (await officer.ok(SUBJECTS, {"first": 5, "agency": world.agency}))["subjects"]

    # When another subject is registered, then the walk continues from the page's end cursor
    await create_subject(world)
    rest, _ = await walk_from(officer, first_page["pageInfo"]["endCursor"], world.agency)

    # Then nothing of the first page repeats and the new subject is included
    seen = [e["node"]["id"] for e in first_page["edges"]] + [n["id"] for n in rest]
    assert len(seen) == len(set(seen)) == TOTAL + 1


async def walk_from(caller, after: str, agency: str) -> tuple[list[dict], None]:
    nodes = []
    while True:
        page = (await caller.ok(SUBJECTS, {"first": 10, "after": after, "agency": agency}))["subjects"]
        nodes += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes, None
        after = page["pageInfo"]["endCursor"]


# --------------------------------------------------------------------------- refused arguments


@pytest.mark.parametrize("root, query", [("subjects", SUBJECTS), ("referrals", REFERRALS)])
@pytest.mark.parametrize("first", [101, 1000, -1])
async def test_a_page_size_out_of_range_is_bad_input(world, root, query, first):
    # When a page larger than 100, or negative, is asked for
    body = await actor(world, "referral_officer").gql(query, {"first": first, "agency": world.agency})

    # Then it is refused before execution naming `first`: too large is a limit (QUERY_TOO_COMPLEX,
    # api.limits), negative is bad input
    assert only_code(body) == ("QUERY_TOO_COMPLEX" if first > 100 else "BAD_USER_INPUT")
    assert body["errors"][0]["extensions"].get("field") == "first"
    assert (body["data"] or {}).get(root) is None  # list roots are nullable: refusable per role


GARBAGE = [
    "garbage",
    "%%%",
    "////",
    cursor(1),
    cursor("a", "b", "c"),
    base64.urlsafe_b64encode(b"{}").decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    cursor("\x00"),
]


@pytest.mark.parametrize("after", GARBAGE)
async def test_a_garbage_subjects_cursor_is_bad_input(world, after):
    # When the subjects are paged after a cursor the service never issued
    body = await actor(world, "referral_officer").gql(SUBJECTS, {"first": 5, "after": after, "agency": world.agency})

    # Then it is refused as bad input naming `after`
    assert only_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"].get("field") == "after"


@pytest.mark.parametrize(
    "after",
    GARBAGE
    + [
        cursor("S-2026-00001"),  # a subject cursor
        cursor("yesterday", "00000000-0000-0000-0000-000000000000"),
        cursor("2026-01-01T00:00:00+00:00", "not-a-uuid"),
        cursor("2026-01-01T00:00:00+00:00", "\x00"),
    ],
)
async def test_a_garbage_referrals_cursor_is_bad_input(world, after):
    # When the referrals are paged after a cursor the service never issued
    body = await actor(world, "referral_officer").gql(REFERRALS, {"first": 5, "after": after, "agency": world.agency})

    # Then it is refused as bad input naming `after`
    assert only_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"].get("field") == "after"


@pytest.mark.parametrize(
    "root, filter_type, filter",
    [
        ("subjects", "SubjectFilter", {"reference": "S\x00"}),
        ("subjects", "SubjectFilter", {"institution": "\x00"}),
        ("subjects", "SubjectFilter", {"agency": "A\x00"}),
        ("referrals", "ReferralFilter", {"agency": "A\x00"}),
    ],
)
async def test_a_filter_no_record_can_match_is_bad_input_not_an_internal_error(world, root, filter_type, filter):
    # When a list is filtered by a value holding a NUL character (no text in the registry can)
    body = await actor(world, "referral_officer").gql(
        f"query($f: {filter_type}) {{ {root}(first: 5, filter: $f) {{ edges {{ node {{ id }} }} }} }}", {"f": filter}
    )

    # Then it is refused as bad input, not masked as an internal failure
    assert only_code(body) == "BAD_USER_INPUT"
