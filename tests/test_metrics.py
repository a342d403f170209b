"""Prometheus metrics, read with prometheus_client's own text parser: on the service's port by
default, on REGISTRY_METRICS_PORT when set, and summed over every worker process."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from served import Served, free_port, registry_env, token

FAMILIES = {
    "registry_requests": "counter",
    "registry_request_duration_seconds": "histogram",
    "registry_operations": "counter",
    "registry_db_pool_in_use": "gauge",
    "registry_db_pool_waiting": "gauge",
    "registry_audit_events_written": "counter",
    "registry_audit_unsealed_events": "gauge",
    "registry_audit_sealer_lag_seconds": "gauge",
    "registry_lookups_refused": "counter",
    "registry_subscriptions_open": "gauge",
}


def parse(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict, sample_name: str, **labels: str) -> float:
    name = sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_bucket")
    return sum(
        s.value for s in families[name].samples if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_metrics_on_the_service_port(client, world):
    caseworker = world.token("caseworker")
    for _ in range(3):
        await world.ok(caseworker, "{ me { roles } }")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = parse(response.text)
    for name, kind in FAMILIES.items():
        assert families[name].type == kind, name
    assert value(families, "registry_requests_total", operation="anonymous", code="OK") >= 3
    assert value(families, "registry_request_duration_seconds_count") >= 3
    assert value(families, "registry_subscriptions_open") == 0
    assert value(families, "registry_audit_events_written_total") >= value(families, "registry_audit_unsealed_events") >= 0


def test_metrics_port_sums_every_worker(settings, tmp_path):
    metrics_port = free_port()
    env = registry_env(
        database_url=settings.database_url,
        data_dir=str(tmp_path / "data"),
        metrics_port=str(metrics_port),
        lookups_per_minute="2",
    )
    served = Served(tmp_path, "serve", env, "--workers", "2").wait_ready()
    try:
        partner = token(env, "--role", "partner", "--agency", "POLICE", "--port", str(served.port), "--subject", f"p-{uuid.uuid4()}")
        headers = {"Authorization": f"Bearer {partner}", "Registry-Purpose": "LOOKUP"}
        lookup = {"query": 'query Probe { lookupSubject(nationalNumber: "08010100123") { outcome } }', "operationName": "Probe"}
        for _ in range(12):  # a new connection each time: spread over both workers
            assert httpx.post(f"{served.base}/graphql", json=lookup, headers=headers, timeout=10).status_code == 200

        assert httpx.get(f"{served.base}/metrics", timeout=5).status_code == 404  # not on the service's port
        families = parse(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text)
        assert value(families, "registry_requests_total", operation="Probe") == 12
        assert value(families, "registry_requests_total", operation="Probe", code="RATE_LIMITED") == 10
        assert value(families, "registry_lookups_refused_total") == 10
        assert value(families, "registry_request_duration_seconds_count", operation="Probe") == 12
        assert value(families, "registry_operations_total", path="resolvers") == 12
        assert value(families, "registry_subscriptions_open") == 0
        for name in FAMILIES:
            assert name in families, name
    finally:
        assert served.stop() == 0, served.logs()
