"""searchSubjects: a file found by names or reference, ranked, within the caller's row scope;
refused to the roles that may not search; audited with the search text and what it found."""

from __future__ import annotations

import uuid

import pytest

from audit_support import by_action, call, events_of
from helpers import actor, codes, create_subject, draft_referral, step, submitted_subject

SEARCH = """
query($text: String!, $dateOfBirth: Date, $first: Int = 20, $after: String) {
  searchSubjects(text: $text, dateOfBirth: $dateOfBirth, first: $first, after: $after) {
    edges { cursor score node { id reference givenName familyName dateOfBirth } }
    pageInfo { hasNextPage endCursor }
  }
}"""


def found(data: dict) -> list[str]:
    return [e["node"]["id"] for e in data["searchSubjects"]["edges"]]


async def test_a_subject_is_found_by_its_names_whatever_the_accents_and_case(world):
    subject = await create_subject(world, givenName="Céline", familyName="Vandenberghe", dateOfBirth="2011-03-14")
    casey = actor(world, "caseworker")
    for text in ("celine vandenberge", "VANDENBERGHE Céline", "Celine", "vandenberghe"):
        data = await casey.ok(SEARCH, {"text": text})
        edges = data["searchSubjects"]["edges"]
        assert edges and edges[0]["node"]["id"] == subject["id"], text
        assert 0 < edges[0]["score"] <= 1
        assert edges[0]["node"]["givenName"] == "Céline"


async def test_a_reference_prefix_finds_the_file(world):
    subject = await create_subject(world, givenName="Rayan", familyName="Ouali")
    casey = actor(world, "caseworker")
    data = await casey.ok(SEARCH, {"text": subject["reference"].lower()})
    assert found(data) == [subject["id"]] and data["searchSubjects"]["edges"][0]["score"] == 1.0


async def test_reference_prefix_pages_run_in_reference_order(world):
    references = sorted([(await create_subject(world))["reference"] for _ in range(3)])
    casey = actor(world, "caseworker")
    seen, after = [], None
    while True:
        data = (await casey.ok(SEARCH, {"text": references[0][:6], "first": 2, "after": after}))["searchSubjects"]
        seen += [e["node"]["reference"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert seen == references


async def test_the_date_of_birth_narrows_the_result(world):
    older = await create_subject(world, givenName="Adam", familyName="Willems", dateOfBirth="2010-01-01")
    younger = await create_subject(world, givenName="Adam", familyName="Willems", dateOfBirth="2011-02-02")
    casey = actor(world, "caseworker")
    assert set(found(await casey.ok(SEARCH, {"text": "adam willems"}))) == {older["id"], younger["id"]}
    assert found(await casey.ok(SEARCH, {"text": "adam willems", "dateOfBirth": "2011-02-02"})) == [younger["id"]]


async def test_pages_follow_the_ranking_without_gaps_or_repeats(world):
    ids = {(await create_subject(world, givenName=f"Emma{suffix}", familyName="Peeters"))["id"] for suffix in ("", "", "", "-Lou", "-Rose")}
    casey = actor(world, "caseworker")
    seen, after, scores = [], None, []
    while True:
        data = (await casey.ok(SEARCH, {"text": "emma peeters", "first": 2, "after": after}))["searchSubjects"]
        seen += [e["node"]["id"] for e in data["edges"]]
        scores += [e["score"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert scores == sorted(scores, reverse=True)


# --------------------------------------------------------------------------- row scopes


async def test_a_caseworker_never_finds_a_subject_of_another_unit(world):
    # given the same child's names in this unit and in another unit of the same agency
    mine = await create_subject(world, givenName="Lotte", familyName="Van den Broeck")
    theirs = await create_subject(world, givenName="Lotte", familyName="Van den Broeck", institution=f"OTHER-{uuid.uuid4().hex[:6]}")
    theirs_too = await create_subject(world, givenName="Lotta", familyName="Vandenbroek", institution=f"OTHER-{uuid.uuid4().hex[:6]}")
    casey = actor(world, "caseworker")
    # then whatever the text, the other unit's files are never results
    for text in ("lotte van den broeck", "vandenbroeck", "lotte", "broek", theirs["reference"], theirs_too["reference"], "S-"):
        body = await casey.gql(SEARCH, {"text": text, "first": 100})
        ids = found(body["data"]) if body.get("data") and body["data"]["searchSubjects"] else []
        assert theirs["id"] not in ids and theirs_too["id"] not in ids, text
    assert mine["id"] in found(await casey.ok(SEARCH, {"text": "lotte van den broeck"}))
    # while the referral officer of the agency finds both
    officer = actor(world, "referral_officer")
    assert {mine["id"], theirs["id"]} <= set(found(await officer.ok(SEARCH, {"text": "lotte van den broeck", "first": 100})))


async def test_an_analyst_never_finds_a_subject_with_only_draft_referrals(world):
    name = {"givenName": "Quentin", "familyName": f"Draftonly{uuid.uuid4().hex[:6]}"}
    subject = await create_subject(world, **name)
    referral = await draft_referral(world, subject["id"])
    analyst = actor(world, "analyst")
    text = f"{name['givenName']} {name['familyName']}"
    assert found(await analyst.ok(SEARCH, {"text": text})) == []
    assert found(await analyst.ok(SEARCH, {"text": subject["reference"]})) == []
    # once the referral is submitted, the subject is in the analysts' scope
    await step(world, "submit", referral, actor(world, "referral_officer"))
    assert found(await analyst.ok(SEARCH, {"text": text})) == [subject["id"]]


@pytest.mark.parametrize("role", ["partner", "admin", "dpo"])
async def test_partner_admin_and_dpo_may_not_search(world, role):
    await create_subject(world, givenName="Hugo", familyName="Claes")
    who = actor(world, role, agency="POLICE" if role == "partner" else None)
    body = await who.gql(SEARCH, {"text": "hugo claes"})
    assert body["data"] == {"searchSubjects": None} and "FORBIDDEN" in codes(body), body


async def test_field_rules_apply_to_the_results(world):
    await create_subject(world, givenName="Inès", familyName="Goossens")
    casey = actor(world, "caseworker")
    body = await casey.gql("query { searchSubjects(text: \"ines goossens\") { edges { node { givenName nationalNumber } } } }")
    assert body["data"]["searchSubjects"]["edges"][0]["node"] == {"givenName": "Inès", "nationalNumber": None}
    assert codes(body) == ["FORBIDDEN"]


# --------------------------------------------------------------------------- audit and limits


async def test_a_search_is_audited_with_its_text_and_the_subjects_found(world, services):
    subject = await create_subject(world, givenName="Manon", familyName="Dewaele", dateOfBirth="2011-03-03")
    token = world.token("caseworker")
    body, request_id = await call(world, token, SEARCH, {"text": "manon dewale", "dateOfBirth": "2011-03-03"})
    assert found(body["data"]) == [subject["id"]]
    events = by_action(await events_of(services, request_id))
    (searched,) = events["subjects.searched"]
    assert searched.detail == {"text": "manon dewale", "dateOfBirth": "2011-03-03"}
    assert [str(s) for s in searched.subject_ids] == [subject["id"]]
    assert searched.purpose == "CASE_SUPERVISION"
    (consulted,) = events["records.consulted"]
    fields = {r["id"]: set(r["fields"]) for r in consulted.records}
    assert fields[subject["id"]] >= {"givenName", "familyName", "dateOfBirth", "reference"}


async def test_a_search_with_no_result_is_audited_too(world, services):
    token = world.token("caseworker")
    body, request_id = await call(world, token, SEARCH, {"text": f"nobody{uuid.uuid4().hex[:8]}"})
    assert found(body["data"]) == []
    (searched,) = by_action(await events_of(services, request_id))["subjects.searched"]
    assert searched.subject_ids == [] and searched.detail["text"].startswith("nobody")


async def test_a_search_needs_a_purpose(world):
    token = world.token("caseworker")
    body = await world.gql(token, SEARCH, {"text": "hugo claes"}, purpose=None)
    assert body["data"] is None and codes(body) == ["PURPOSE_REQUIRED"]


@pytest.mark.parametrize("text", ["", "ab", "  a ", "hugo\u202eclaes", "hugo\x00", "x" * 201])
async def test_a_short_or_unclean_text_is_bad_user_input(world, text):
    body = await actor(world, "caseworker").gql(SEARCH, {"text": text})
    assert codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "text"


async def test_the_page_size_and_cost_limits_count_a_search(world):
    casey = actor(world, "caseworker")
    body = await casey.gql(SEARCH, {"text": "hugo claes", "first": 101})
    assert body["data"] is None and codes(body) == ["QUERY_TOO_COMPLEX"]
    costly = 'query { searchSubjects(text: "hugo claes", first: 100) { edges { node { notes(first: 100) { id } } } } }'
    body = await casey.gql(costly)
    assert body["data"] is None and codes(body) == ["QUERY_TOO_COMPLEX"]
    assert body["errors"][0]["extensions"]["limit"] == "cost"


async def test_a_bad_cursor_is_bad_user_input(world):
    body = await actor(world, "caseworker").gql(SEARCH, {"text": "hugo claes", "after": "not-a-cursor"})
    assert codes(body) == ["BAD_USER_INPUT"]


# --------------------------------------------------------------------------- compiled reads


@pytest.mark.parametrize(
    "variables",
    [
        {"text": "celine vandenberge"},
        {"text": "vandenberghe", "dateOfBirth": "2011-03-14"},
        {"text": "emma peeters", "first": 2},
        {"text": "PREFIX", "first": 2},
    ],
)
async def test_a_search_runs_compiled_with_the_resolvers_answer_and_audit(world, services, variables):
    # given subjects, some of them tied on their names
    born = {"givenName": "Céline", "familyName": "Vandenberghe", "dateOfBirth": "2011-03-14"}
    first = await create_subject(world, **born)
    for given in ("Emma", "Emma", "Emma-Lou"):
        await create_subject(world, givenName=given, familyName="Peeters")
    if variables["text"] == "PREFIX":
        variables = {**variables, "text": first["reference"][:8]}
    token = world.token("caseworker")
    compiler = services.compiler
    # when the search runs on the resolvers, then compiled, page after page
    answers = {}
    try:
        for path in ("resolvers", "learn", "compiled"):
            compiler.enabled = path != "resolvers"
            runs, after, pages, events = compiler.compiled_runs, None, [], []
            while True:
                body, request_id = await call(world, token, SEARCH, {**variables, "after": after})
                assert "errors" not in body, body
                pages.append(body["data"])
                (searched,) = by_action(await events_of(services, request_id))["subjects.searched"]
                events.append((searched.detail, sorted(str(s) for s in searched.subject_ids)))
                page = body["data"]["searchSubjects"]
                if not page["pageInfo"]["hasNextPage"]:
                    break
                after = page["pageInfo"]["endCursor"]
            answers[path] = (pages, events)
            if path == "resolvers":
                assert compiler.compiled_runs == runs
            if path == "compiled":
                assert compiler.compiled_runs == runs + len(pages)
    finally:
        compiler.enabled = True
    # then both paths answer the same pages, cursors and scores, and audit the same search
    assert answers["compiled"] == answers["resolvers"]
