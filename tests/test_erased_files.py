"""A file erased at the end of its retention takes no new records and no changes."""

import uuid

from helpers import ADD_NOTE, UPDATE_SUBJECT, actor, create_subject, only_code

from registry.db.engine import create_engine, create_sessionmaker
from registry.domain import retention


async def test_nothing_can_be_added_to_or_changed_in_an_erased_file(world, services, settings, database_url):
    # given a subject whose file was erased (as `registry retention --erase` does, as the owner)
    # (the referral officer keeps it in scope: erasure empties the unit, not the owning agency)
    officer = actor(world, "referral_officer")
    subject = await create_subject(world, by=officer)
    owner = create_engine(database_url, settings, as_owner=True)
    try:
        async with create_sessionmaker(owner).begin() as session:
            await retention.erase(session, [uuid.UUID(subject["id"])])
    finally:
        await owner.dispose()
    # when a note is added and the file is updated
    note = await officer.gql(ADD_NOTE, {"input": {"subjectId": subject["id"], "body": "After erasure."}})
    update = await officer.gql(UPDATE_SUBJECT, {"input": {"id": subject["id"], "expectedVersion": 1, "givenName": "X"}})
    # then both are refused as conflicts with the file's state, and the tombstone stays empty
    assert only_code(note) == "CONFLICT" and note["data"] is None
    assert only_code(update) == "CONFLICT" and update["data"] is None
    data = await officer.ok("query($id: UUID!) { subject(id: $id) { reference givenName notes { id } } }",
                            {"id": subject["id"]})
    assert data["subject"]["reference"] == subject["reference"]
    assert data["subject"]["givenName"] is None and data["subject"]["notes"] == []
