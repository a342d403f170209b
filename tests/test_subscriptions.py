"""registryEvents over WebSocket: who is told of what, with which fields, audited per message.

A second service instance serves the subscribers on a real port (tests/subscription_support);
the workflow runs over HTTP on the test app, by other roles.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import asyncpg
import pytest
import websockets

from registry.api.documents import OPERATIONS_DIR, document_id
from helpers import ADD_NOTE, actor, create_subject, draft_assessment, draft_referral, step, validate_assessment
from subscription_support import close_code, serve, subscribed

EVENTS = """
subscription Events($types: [RegistryEventType!], $after: String) {
  registryEvents(types: $types, after: $after) {
    cursor type occurredAt
    referral { id status referredBy subject { id reference } }
    assessment { id status level summary rationale }
    note { id visibility body }
  }
}"""


@pytest.fixture(scope="module")
async def live(settings):
    async with serve(
        settings, oidc_leeway_seconds=0, subscriber_queue_size=4, subscriptions_per_connection=2, delivery_retry_seconds=1
    ) as url:
        yield url


async def _deliveries(database_url: str, actor_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(
            "SELECT records::text AS records, detail, purpose FROM audit_event"
            " WHERE action = 'records.delivered' AND actor_id = $1 ORDER BY seq",
            actor_id,
        )
    finally:
        await conn.close()


def _actor_id(world, token: str) -> str:
    """The principal id the token maps to (its `sub` claim)."""
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["sub"]


async def _workflow(world):
    """Submit, acknowledge, an internal and a shared note, a validated assessment, close."""
    officer, analyst, senior = actor(world, "referral_officer"), actor(world, "analyst"), actor(world, "senior_analyst")
    subject = await create_subject(world)
    referral = await draft_referral(world, subject["id"], by=officer)
    referral = await step(world, "submit", referral, officer)
    referral = await step(world, "acknowledge", referral, analyst)
    internal = await officer.ok(
        ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "Internal only.", "visibility": "AGENCY_INTERNAL"}}
    )
    shared = await analyst.ok(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "Seen.", "visibility": "SHARED"}})
    assessment = await draft_assessment(world, subject["id"], by=analyst)
    await validate_assessment(assessment, by=senior)
    await step(world, "close", referral, officer)
    return subject, referral, internal["addNote"]["note"], shared["addNote"]["note"], assessment


async def test_each_role_is_told_exactly_what_it_may_see_with_its_field_rules(world, live, database_url):
    # given a caseworker of the unit, a referral officer of the agency, an analyst, a senior
    # analyst and a caseworker of another unit, each subscribed to every event
    tokens = {
        "caseworker": world.token("caseworker"),
        "referral_officer": world.token("referral_officer", name="officer subscribed"),
        "analyst": world.token("analyst", name="analyst subscribed"),
        "senior_analyst": world.token("senior_analyst", name="senior subscribed"),
        "other_unit": world.token("caseworker", unit=world.unit + "-OTHER", name="other unit"),
    }
    purposes = {"caseworker": "CASE_SUPERVISION", "referral_officer": "REFERRAL", "analyst": "THREAT_ASSESSMENT",
                "senior_analyst": "THREAT_ASSESSMENT", "other_unit": "CASE_SUPERVISION"}
    async with (
        subscribed(live, tokens["caseworker"], purposes["caseworker"], EVENTS) as caseworker,
        subscribed(live, tokens["referral_officer"], purposes["referral_officer"], EVENTS) as officer,
        subscribed(live, tokens["analyst"], purposes["analyst"], EVENTS) as analyst,
        subscribed(live, tokens["senior_analyst"], purposes["senior_analyst"], EVENTS) as senior,
        subscribed(live, tokens["other_unit"], purposes["other_unit"], EVENTS) as other,
    ):
        # when other people run the workflow over HTTP
        subject, referral, internal, shared, assessment = await _workflow(world)
        for subscriber in (caseworker, officer):
            await subscriber.wait_for(6)
        for subscriber in (analyst, senior):
            await subscriber.wait_for(5)
        await other.quiet()

    agency_events = ["REFERRAL_SUBMITTED", "REFERRAL_ACKNOWLEDGED", "NOTE_ADDED", "NOTE_ADDED",
                     "ASSESSMENT_VALIDATED", "REFERRAL_CLOSED"]
    # then the agency's roles are told of everything, in commit order, the internal note included
    for subscriber in (caseworker, officer):
        assert [e["type"] for e in subscriber.data()] == agency_events
        assert [e["note"]["id"] for e in subscriber.data() if e["note"]] == [internal["id"], shared["id"]]
    # and the analysts of everything but the agency's internal note
    for subscriber in (analyst, senior):
        assert [e["type"] for e in subscriber.data()] == [t for i, t in enumerate(agency_events) if i != 2]
        assert [e["note"]["id"] for e in subscriber.data() if e["note"]] == [shared["id"]]
    # and the caseworker of another unit of nothing at all
    assert other.received == [] and other.ended is None
    # with each role's field rules: what it may not read is null, with a FORBIDDEN error
    first = caseworker.received[0]
    assert first.data["registryEvents"]["referral"]["id"] == referral["id"]
    assert first.data["registryEvents"]["referral"]["referredBy"] is None
    assert {e["extensions"]["field"] for e in first.errors} == {"Referral.referredBy"}
    validated = next(r for r in officer.received if r.data["registryEvents"]["type"] == "ASSESSMENT_VALIDATED")
    assert validated.data["registryEvents"]["assessment"]["rationale"] is None
    assert validated.data["registryEvents"]["assessment"]["summary"] == assessment["summary"]
    told = next(r for r in analyst.received if r.data["registryEvents"]["type"] == "ASSESSMENT_VALIDATED")
    assert told.data["registryEvents"]["assessment"]["rationale"] is not None and not told.errors
    assert analyst.received[0].data["registryEvents"]["referral"]["subject"]["id"] == subject["id"]
    # and one audit event per message, naming the records and fields disclosed, the purpose and
    # the subscription
    for role, subscriber in (("caseworker", caseworker), ("referral_officer", officer), ("analyst", analyst),
                             ("other_unit", other)):
        audited = await _deliveries(database_url, _actor_id(world, tokens[role]))
        assert len(audited) == len(subscriber.received), role
        for row in audited:
            assert row["purpose"] == purposes[role]
    audited = await _deliveries(database_url, _actor_id(world, tokens["caseworker"]))
    detail = json.loads(audited[0]["detail"])
    assert detail["event"] == "REFERRAL_SUBMITTED" and detail["subscription"]
    assert detail["refusals"] == [{"code": "FORBIDDEN", "field": "Referral.referredBy"}]
    assert f'"{referral["id"]}"' in audited[0]["records"] and "referredBy" not in audited[0]["records"]


async def test_a_draft_referral_is_never_told_to_the_analysts(world, live):
    # given an analyst subscribed to referral events
    token = world.token("analyst")
    async with subscribed(live, token, "THREAT_ASSESSMENT", EVENTS, {"types": ["REFERRAL_SUBMITTED"]}) as analyst:
        # when a referral is drafted but not submitted, and a note about its subject added
        officer = actor(world, "referral_officer")
        subject = await create_subject(world)
        await draft_referral(world, subject["id"], by=officer)
        await officer.ok(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "x", "visibility": "SHARED"}})
        await analyst.quiet(1.0)
    # then the analyst was told nothing
    assert analyst.received == [] and analyst.ended is None


async def test_resume_after_a_cursor_misses_nothing_and_repeats_nothing(world, live, database_url):
    officer = actor(world, "referral_officer")
    token = world.token("referral_officer", name="officer resuming")
    subject = await create_subject(world)
    note = {"input": {"subjectId": subject["id"], "body": "n", "visibility": "SHARED"}}
    # given a subscriber that received one event, then unsubscribed
    async with subscribed(live, token, "REFERRAL", EVENTS, {"types": ["NOTE_ADDED"]}) as first:
        await officer.ok(ADD_NOTE, note)
        await first.wait_for(1)
    cursor = first.data()[0]["cursor"]
    audited = len(await _deliveries(database_url, _actor_id(world, token)))
    # when three more notes are added while it is away
    for _ in range(3):
        await officer.ok(ADD_NOTE, note)
    await asyncio.sleep(0.5)
    # then nothing was delivered nor audited for it meanwhile
    assert len(await _deliveries(database_url, _actor_id(world, token))) == audited == 1
    # and reconnecting with its cursor gives exactly the three it missed, then live ones
    async with subscribed(live, token, "REFERRAL", EVENTS, {"types": ["NOTE_ADDED"], "after": cursor}) as again:
        await again.wait_for(3)
        await officer.ok(ADD_NOTE, note)
        await again.wait_for(4)
        await again.quiet(0.3)
    ids = [e["note"]["id"] for e in again.data()]
    assert len(ids) == len(set(ids)) == 4
    assert first.data()[0]["note"]["id"] not in ids
    assert len(await _deliveries(database_url, _actor_id(world, token))) == 5


async def test_a_cursor_older_than_the_outbox_keeps_is_refused(world, live):
    old = base64.urlsafe_b64encode(b"ev1:1:1000000000").decode().rstrip("=")
    token = world.token("analyst")
    async with subscribed(live, token, "THREAT_ASSESSMENT", EVENTS, {"after": old}) as analyst:
        await asyncio.sleep(0.3)
    error = analyst.ended
    assert error is not None and "older than the 7 days" in str(error)
    async with subscribed(live, token, "THREAT_ASSESSMENT", EVENTS, {"after": "not-a-cursor"}) as analyst:
        await asyncio.sleep(0.3)
    assert "not a cursor" in str(analyst.ended)


async def test_a_slow_consumer_is_closed_and_resumes_without_gap(world, live):
    officer = actor(world, "referral_officer")
    token = world.token("referral_officer", name="slow officer")
    subject = await create_subject(world)
    burst = "mutation($i: AddNoteInput!) {" + " ".join(f"n{i}: addNote(input: $i) {{ note {{ id }} }}" for i in range(8)) + "}"
    # given a subscriber whose queue holds 4 events
    async with subscribed(live, token, "REFERRAL", EVENTS, {"types": ["NOTE_ADDED"]}) as slow:
        await officer.ok(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "first", "visibility": "SHARED"}})
        await slow.wait_for(1)
        # when 8 events are committed at once, more than its queue holds
        await officer.ok(burst, {"i": {"subjectId": subject["id"], "body": "burst", "visibility": "SHARED"}})
        for _ in range(100):
            if slow.ended is not None:
                break
            await asyncio.sleep(0.05)
    # then it is closed with 4499
    assert slow.close_code() == 4499, repr(slow.ended)
    # and resuming from its last cursor gives every event after it, once
    cursor = slow.data()[-1]["cursor"]
    seen = {e["note"]["id"] for e in slow.data()}
    async with subscribed(live, token, "REFERRAL", EVENTS, {"types": ["NOTE_ADDED"], "after": cursor}) as resumed:
        await resumed.wait_for(9 - len(seen))
        await resumed.quiet(0.3)
    ids = [e["note"]["id"] for e in resumed.data()]
    assert len(ids) == len(set(ids)) == 9 - len(seen) and not seen & set(ids)


async def test_connection_init_is_verified_like_http(world, live):
    # a forged token, no token, a wrong purpose, a role without subscriptions, BREAK_GLASS
    forged = world.token("analyst")[:-6] + "AAAAAA"
    assert await close_code(live, {"Authorization": f"Bearer {forged}", "Registry-Purpose": "THREAT_ASSESSMENT"}) == 4401
    assert await close_code(live, {"Registry-Purpose": "THREAT_ASSESSMENT"}) == 4401
    analyst = world.token("analyst")
    assert await close_code(live, {"Authorization": f"Bearer {analyst}", "Registry-Purpose": "CASE_SUPERVISION"}) == 4403
    assert await close_code(live, {"Authorization": f"Bearer {analyst}"}) == 4403
    justification = "Imminent threat reported by the police this morning, need the file."
    payload = {"Authorization": f"Bearer {analyst}", "Registry-Purpose": "BREAK_GLASS", "Registry-Justification": justification}
    assert await close_code(live, payload) == 4403
    partner = world.token("partner")
    assert await close_code(live, {"Authorization": f"Bearer {partner}", "Registry-Purpose": "LOOKUP"}) == 4403
    # a subscribe before connection_init is acknowledged, or a second connection_init
    ok = {"Authorization": f"Bearer {analyst}", "Registry-Purpose": "THREAT_ASSESSMENT"}
    assert await close_code(live, ok, then=[{"type": "connection_init", "payload": ok}]) == 4429
    assert await close_code(live, ok, then=[{"type": "bogus"}]) == 4400


async def test_the_socket_is_closed_when_the_token_expires(world, live):
    token = world.services.dev_issuer.issue(role="analyst", agency="CUTA", name="short-lived", ttl_seconds=2)
    code = await close_code(live, {"Authorization": f"Bearer {token}", "Registry-Purpose": "THREAT_ASSESSMENT"}, timeout=6)
    assert code == 4401


async def test_subscriptions_are_checked_like_queries(world, live):
    token = world.token("analyst")
    # a field the role may not subscribe with at all, an invalid document, too many subscriptions
    async with subscribed(live, token, "THREAT_ASSESSMENT", "subscription { registryEvents { nope } }") as bad:
        await asyncio.sleep(0.2)
    assert bad.ended is not None and bad.received == []
    inner = "id"
    for _ in range(7):
        inner = f"subject {{ referrals {{ {inner} }} }}"
    deep = f"subscription {{ registryEvents {{ referral {{ {inner} }} }} }}"
    async with subscribed(live, token, "THREAT_ASSESSMENT", deep) as too_deep:
        await asyncio.sleep(0.2)
    assert too_deep.received == [] and "QUERY_TOO_COMPLEX" in repr(getattr(too_deep.ended, "errors", None)), repr(too_deep.ended)


async def test_a_subscription_sent_by_post_is_refused(world):
    body = await world.gql(world.token("analyst"), "subscription { registryEvents { cursor } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "WebSocket" in body["errors"][0]["message"]


async def test_a_delivery_that_cannot_be_audited_is_not_sent(world, live, database_url):
    # given a subscriber whose audit events the database refuses to store
    token = world.token("referral_officer", name="audit blocked")
    owner = await asyncpg.connect(database_url)
    await owner.execute(
        """CREATE FUNCTION test_refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.action = 'records.delivered' AND NEW.actor_name = 'audit blocked' THEN
            RAISE EXCEPTION 'audit store refused';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER test_refuse_delivery BEFORE INSERT ON audit_event
          FOR EACH ROW EXECUTE FUNCTION test_refuse_delivery();"""
    )
    officer = actor(world, "referral_officer")
    subject = await create_subject(world)
    note = {"input": {"subjectId": subject["id"], "body": "n", "visibility": "SHARED"}}
    before = _cursor(await owner.fetchval("SELECT coalesce(max(id), 0) FROM event_outbox"))
    try:
        async with subscribed(live, token, "REFERRAL", EVENTS, {"types": ["NOTE_ADDED"]}) as blocked:
            await officer.ok(ADD_NOTE, note)
            # when the event cannot be audited: nothing is sent, and after the retry window
            # the socket is closed with the resumable code
            for _ in range(100):
                if blocked.ended is not None:
                    break
                await asyncio.sleep(0.05)
        assert blocked.received == [] and blocked.close_code() == 4499
    finally:
        await owner.execute("DROP TRIGGER test_refuse_delivery ON audit_event; DROP FUNCTION test_refuse_delivery();")
        await owner.close()
    # then, the audit store back, the client resumes and gets the event, audited
    async with subscribed(live, token, "REFERRAL", EVENTS, {"types": ["NOTE_ADDED"], "after": before}) as again:
        await again.wait_for(1)
        await again.quiet(0.3)
    assert [e["type"] for e in again.data()] == ["NOTE_ADDED"]
    assert len(await _deliveries(database_url, _actor_id(world, token))) == 1


def _cursor(event_id: int) -> str:
    """The cursor of event `event_id`, as if it had just happened."""
    return base64.urlsafe_b64encode(f"ev1:{event_id}:{int(time.time())}".encode()).decode().rstrip("=")


async def test_subscriptions_per_connection_are_limited(world, live):
    token = world.token("analyst")
    payload = {"Authorization": f"Bearer {token}", "Registry-Purpose": "THREAT_ASSESSMENT"}
    async with websockets.connect(live, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        # a query or a mutation sent as a subscription is refused without running
        mutation = "mutation { addNote(input: {subjectId: \"00000000-0000-0000-0000-000000000000\", body: \"x\"}) { note { id } } }"
        for n, query in (("q", "{ me { id } }"), ("m", mutation)):
            await ws.send(json.dumps({"type": "subscribe", "id": n, "payload": {"query": query}}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer["type"] == "error" and answer["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        for n in range(3):
            await ws.send(json.dumps({"type": "subscribe", "id": str(n), "payload": {"query": EVENTS}}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        # the third of a limit of two is refused; the socket stays open
        assert answer["type"] == "error" and answer["id"] == "2"
        assert answer["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
        # and an id already in use closes it (4409)
        await ws.send(json.dumps({"type": "subscribe", "id": "0", "payload": {"query": EVENTS}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 4409


async def test_in_trusted_documents_mode_only_trusted_subscriptions_run(world, settings):
    text = (OPERATIONS_DIR / "RegistryEvents.graphql").read_text()
    token = world.token("analyst")
    payload = {"Authorization": f"Bearer {token}", "Registry-Purpose": "THREAT_ASSESSMENT"}
    async with serve(settings, trusted_documents=True) as url:
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            # a document of its own is refused
            await ws.send(json.dumps({"type": "subscribe", "id": "a", "payload": {"query": EVENTS}}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer["type"] == "error" and answer["payload"][0]["extensions"]["code"] == "FORBIDDEN"
            # the trusted one, named by its id, runs
            await ws.send(json.dumps({"type": "subscribe", "id": "b", "payload": {"documentId": document_id(text)}}))
            officer = actor(world, "referral_officer")
            subject = await create_subject(world)
            referral = await draft_referral(world, subject["id"], by=officer)
            await step(world, "submit", referral, officer)
            answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert answer["type"] == "next" and answer["id"] == "b"
            assert answer["payload"]["data"]["registryEvents"]["referral"]["id"] == referral["id"]


async def test_subscriptions_per_caller_are_limited_across_connections(world, settings):
    token = world.token("analyst")
    payload = {"Authorization": f"Bearer {token}", "Registry-Purpose": "THREAT_ASSESSMENT"}
    async with serve(settings, subscriptions_per_principal=1) as url:
        async with (
            websockets.connect(url, subprotocols=["graphql-transport-ws"]) as first,
            websockets.connect(url, subprotocols=["graphql-transport-ws"]) as second,
        ):
            for ws in (first, second):
                await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
            await first.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": EVENTS}}))
            await second.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": EVENTS}}))
            answer = json.loads(await asyncio.wait_for(second.recv(), 5))
            assert answer["type"] == "error" and answer["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
            # once the first completes its subscription, the caller may open another
            await first.send(json.dumps({"type": "complete", "id": "1"}))
            await asyncio.sleep(0.2)
            await second.send(json.dumps({"type": "subscribe", "id": "2", "payload": {"query": EVENTS}}))
            await second.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(second.recv(), 5))["type"] == "pong"
