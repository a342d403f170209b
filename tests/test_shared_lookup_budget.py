"""N instances behave as one: a partner's lookup budget is the configured one, however many
instances and workers its requests are spread over (the attempts are counted in PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from conftest import national_number
from served import Served, registry_env, token

BUDGET = 6
LOOKUP = "query($n: String!) { lookupSubject(nationalNumber: $n) { outcome } }"


async def test_two_instances_of_two_workers_share_one_budget(settings, tmp_path):
    # Given two instances of 2 workers each on one database, behind one public address
    env = registry_env(
        database_url=settings.database_url,
        data_dir=str(tmp_path / "data"),
        public_url="http://registry.internal",
        lookups_per_minute=str(BUDGET),
    )
    instances = [Served(tmp_path, "first", env, "--workers", "2").wait_ready()]
    try:
        instances.append(Served(tmp_path, "second", env, "--workers", "2").wait_ready())
        partner = token(env, "--role", "partner", "--agency", "POLICE", "--subject", f"partner-{uuid.uuid4()}")
        headers = {"Authorization": f"Bearer {partner}", "Registry-Purpose": "LOOKUP"}

        # When the partner sends four times its budget, spread over both instances, on new connections
        async def ask(i: int) -> dict:
            async with httpx.AsyncClient(base_url=instances[i % 2].base, timeout=30) as client:
                response = await client.post(
                    "/graphql", json={"query": LOOKUP, "variables": {"n": national_number()}}, headers=headers
                )
                assert response.status_code == 200, response.text
                return response.json()

        answers = await asyncio.gather(*(ask(i) for i in range(4 * BUDGET)))

        # Then exactly the budget is answered, and the rest refused with when to retry
        answered = [a for a in answers if a["data"]["lookupSubject"] is not None]
        refused = [a for a in answers if a.get("errors")]
        assert len(answered) == BUDGET, answers
        assert len(refused) == 3 * BUDGET
        assert {a["errors"][0]["extensions"]["code"] for a in refused} == {"RATE_LIMITED"}
        assert all(1 <= a["errors"][0]["extensions"]["retryAfter"] <= 61 for a in refused)
    finally:
        for served in instances:
            assert served.stop() == 0, served.logs()
