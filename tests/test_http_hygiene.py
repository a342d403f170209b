"""HTTP hygiene and typed refusals (README "Reliability"): a body that is not JSON is refused with
415, headers beyond their count or size with 431, a client too slow with its headers or body is cut
off; a database known down gets 503 UNAVAILABLE at once, a worker full OVERLOADED, and nothing
unforeseen reaches the client as anything but a JSON INTERNAL with the request id."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from helpers import SUBJECT, actor, codes, create_subject
from registry.api.admission import Admission, Overloaded
from processes import Service

ME = {"query": "{ me { roles } }"}


def _headers(world, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token('referral_officer')}", "Registry-Purpose": "CASE_SUPERVISION", **extra}


async def test_a_body_that_is_not_declared_json_is_refused_with_415(world):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = _headers(world) | ({"Content-Type": content_type} if content_type else {})
        response = await world.client.post("/graphql", content=b'{"query": "{ me { roles } }"}', headers=headers)
        assert response.status_code == 415, content_type
        assert codes(response.json()) == ["BAD_USER_INPUT"]
    ok = await world.client.post("/graphql", json=ME, headers=_headers(world, **{"Content-Type": "application/json; charset=utf-8"}))
    assert ok.json() == {"data": {"me": {"roles": ["referral_officer"]}}}


async def test_a_database_known_down_is_refused_at_once_with_503(world, services):
    subject = await create_subject(world)
    officer = actor(world, "referral_officer")
    services.health.available = False
    try:
        started = time.monotonic()
        response = await world.client.post(
            "/graphql", json={"query": SUBJECT, "variables": {"id": subject["id"]}}, headers=_headers(world))
        elapsed = time.monotonic() - started
        ready = await world.client.get("/readyz")
    finally:
        services.health.available = True
    assert response.status_code == 503 and elapsed < 0.5
    body = response.json()
    assert codes(body) == ["UNAVAILABLE"] and "data" not in body
    rid = response.headers["x-request-id"]
    assert body["errors"][0]["extensions"] == {"code": "UNAVAILABLE", "requestId": rid, "retryAfter": 2}
    assert response.headers["retry-after"] == "2"
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert (await officer.ok(SUBJECT, {"id": subject["id"]}))["subject"]["id"] == subject["id"]


async def test_an_unforeseen_failure_is_a_json_internal_with_the_request_id(world, services, monkeypatch):
    def broken(op):
        raise KeyError("not foreseen")

    monkeypatch.setattr(services.documents, "query", broken)
    response = await world.client.post("/graphql", json=ME, headers=_headers(world))
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    rid = response.headers["x-request-id"]
    assert response.json()["errors"][0]["extensions"] == {"code": "INTERNAL", "requestId": rid}


async def test_a_full_worker_sheds_at_once_and_a_long_wait_is_cut():
    admission = Admission(running=1, waiting=1, queue_timeout=0.3)
    release = asyncio.Event()

    async def hold() -> None:
        async with admission.turn():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold())
    await asyncio.sleep(0)
    started = time.monotonic()
    with pytest.raises(Overloaded):  # one runs, one waits: the third is refused without waiting
        async with admission.turn():
            pass
    assert time.monotonic() - started < 0.05
    with pytest.raises(Overloaded):  # the one waiting gives up after the queue timeout
        await waiter
    release.set()
    await holder
    async with admission.turn():  # and a turn is free again
        pass


@pytest.fixture(scope="module")
def served(database_url):
    server = Service(database_url, header_timeout_seconds="1", body_timeout_seconds="1",
                    max_header_count="20", max_header_bytes="4096")
    server.wait_ready()
    yield server
    server.stop()


def _raw(served: Service, request: bytes, wait: float = 5) -> tuple[bytes, float]:
    """Send `request` as is; what the server answered, and after how long it closed."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=wait) as s:
        started = time.monotonic()
        s.sendall(request)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
        return received, time.monotonic() - started


def test_too_many_or_too_large_headers_get_431(served):
    many = b"".join(b"X-Filler-%d: x\r\n" % i for i in range(30))
    answer, _ = _raw(served, b"POST /graphql HTTP/1.1\r\nHost: r\r\n" + many + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ") and b'"code":"BAD_USER_INPUT"' in answer
    answer, _ = _raw(served, b"POST /graphql HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer " + b"a" * 8000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert httpx.get(f"{served.base}/healthz").status_code == 200


def test_a_client_dribbling_its_headers_or_body_is_cut_off(served):
    answer, closed_after = _raw(served, b"POST /graphql HTTP/1.1\r\nHost: r\r\nX-Slow: ")
    assert answer.startswith(b"HTTP/1.1 408 ") and closed_after < 3
    token = served.token("referral_officer", "YOUTH")
    head = (f"POST /graphql HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n").encode()
    answer, closed_after = _raw(served, head + b'{"query": ')
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"code":"BAD_USER_INPUT"' in answer and closed_after < 3
