"""Logs are JSON lines, every one of them (the registry's, uvicorn's, alembic's, in every worker):
one line per request with who (pseudonymously), why, what and how it ended; every record made
while serving a request carries its id; readiness probes log nothing; nothing personal."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from served import Served, registry_env, token

SECRET_NAME = "Zebulon Quintessa-Privé"  # the token holder's name: must never reach a log


@pytest.fixture(scope="module")
def served(settings, demo_agencies, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("json-logs")
    env = registry_env(database_url=settings.database_url, data_dir=str(workdir / "data"))
    instance = Served(workdir, "serve", env, "--workers", "2").wait_ready()
    instance.env = env
    yield instance
    assert instance.stop() == 0, instance.logs()


def records(served: Served) -> list[dict]:
    lines = [line for line in served.err.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


def wait_for(served: Served, predicate) -> list[dict]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [r for r in records(served) if predicate(r)]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("no such log record\n" + served.logs())


def test_one_json_line_per_request_without_personal_data(served):
    subject = f"pseudonym-{uuid.uuid4()}"
    caseworker = token(
        served.env, "--role", "caseworker", "--agency", "YOUTH", "--unit", "IPPJ-BRAINE",
        "--name", SECRET_NAME, "--subject", subject, "--port", str(served.port),
    )
    response = httpx.post(
        f"{served.base}/graphql",
        json={"query": "query WhoAmI { me { name roles } }", "operationName": "WhoAmI"},
        headers={"Authorization": f"Bearer {caseworker}", "Registry-Purpose": "CASE_SUPERVISION"},
        timeout=10,
    )
    assert response.json()["data"]["me"]["name"] == SECRET_NAME
    rid = response.headers["x-request-id"]

    [line] = wait_for(served, lambda r: r.get("event") == "request" and r.get("request_id") == rid)
    assert line["operation"] == "WhoAmI"
    assert line["subject"] == subject
    assert line["roles"] == ["caseworker"]
    assert line["purpose"] == "CASE_SUPERVISION"
    assert line["code"] == "OK" and line["status"] == 200
    assert line["compiled"] is False
    assert isinstance(line["duration_ms"], float)
    assert line["level"] == "info" and "time" in line

    # A client that sends no operationName (curl, a script): the line names the document's operation
    unnamed = httpx.post(
        f"{served.base}/graphql",
        json={"query": "query FromTheDocument { me { roles } }"},
        headers={"Authorization": f"Bearer {caseworker}", "Registry-Purpose": "CASE_SUPERVISION"},
        timeout=10,
    )
    unnamed_rid = unnamed.headers["x-request-id"]
    [line] = wait_for(served, lambda r: r.get("event") == "request" and r.get("request_id") == unnamed_rid)
    assert line["operation"] == "FromTheDocument"

    forbidden = httpx.post(
        f"{served.base}/graphql",
        json={"query": "query Audit { auditEvents(first: 1) { edges { cursor } } }", "operationName": "Audit"},
        headers={"Authorization": f"Bearer {caseworker}", "Registry-Purpose": "CASE_SUPERVISION"},
        timeout=10,
    )
    rid = forbidden.headers["x-request-id"]
    [line] = wait_for(served, lambda r: r.get("event") == "request" and r.get("request_id") == rid)
    assert line["code"] == "FORBIDDEN"
    text = served.err.read_text() + served.out.read_text()
    assert SECRET_NAME not in text and caseworker not in text


def test_records_made_during_a_request_carry_its_id(served):
    response = httpx.post(
        f"{served.base}/graphql", json={"query": "{ me { roles } }"}, headers={"Authorization": "Bearer not-a-token"}
    )
    assert response.status_code == 401
    rid = response.headers["x-request-id"]
    refused = wait_for(served, lambda r: r.get("request_id") == rid and r.get("event") != "request")
    assert refused[0]["logger"] == "registry.http"
    [line] = wait_for(served, lambda r: r.get("event") == "request" and r.get("request_id") == rid)
    assert line["code"] == "UNAUTHENTICATED" and line["status"] == 401


def test_uvicorn_and_alembic_log_json_and_probes_log_nothing_of_alembic(served):
    loggers = {r.get("logger") for r in records(served)}
    assert any(name and name.startswith("uvicorn") for name in loggers), loggers
    assert any(name and name.startswith("alembic") for name in loggers), loggers
    before = [r for r in records(served) if (r.get("logger") or "").startswith("alembic")]
    for _ in range(5):
        assert httpx.get(f"{served.base}/readyz", timeout=5).status_code == 200
    time.sleep(0.3)
    after = [r for r in records(served) if (r.get("logger") or "").startswith("alembic")]
    assert after == before
