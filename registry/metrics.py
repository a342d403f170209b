"""Prometheus metrics, safe across uvicorn's worker processes.

`registry serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before any worker starts,
so every worker's counters land in one place and any worker's scrape reports all of them. A
request costs a counter and a histogram update, made once in app.RequestLog; the pools are
sampled once a second, and the audit trail's figures are asked of the database at scrape time.
Operation names come from clients, so only the first OPERATION_LABELS distinct ones become
label values; the rest are counted as "other".
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
OPERATION_LABELS = 200
CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter("registry_requests", "GraphQL requests by operation and outcome code", ["operation", "code"])
LATENCY = Histogram(
    "registry_request_duration_seconds",
    "Time to answer a GraphQL request, by operation",
    ["operation"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EXECUTIONS = Counter("registry_operations", "Operations by how they ran: one compiled statement or the resolvers", ["path"])
LOOKUPS_REFUSED = Counter("registry_lookups_refused", "Hit/no-hit lookups refused because the caller's budget was spent")
POOL_IN_USE = Gauge("registry_db_pool_in_use", "Database connections lent out, by pool", ["pool"], multiprocess_mode="livesum")
POOL_WAITING = Gauge("registry_db_pool_waiting", "Requests waiting for a connection, by pool", ["pool"], multiprocess_mode="livesum")
SUBSCRIPTIONS = Gauge("registry_subscriptions_open", "Open GraphQL subscriptions", multiprocess_mode="livesum")

# The labelled children, looked up once: `labels()` costs more than the update itself.
_requests: dict[tuple[str, str], Any] = {}
_latency: dict[str, Any] = {}
_executions = {True: EXECUTIONS.labels("compiled"), False: EXECUTIONS.labels("resolvers")}


def _operation(name: str | None) -> str:
    if not name:
        return "anonymous"
    return name if name in _latency or len(_latency) < OPERATION_LABELS else "other"


def observe_request(note: dict, seconds: float) -> None:
    """One answered GraphQL request, from what api.http noted for its log line."""
    operation = _operation(note.get("operation"))
    key = (operation, note.get("code") or "OK")
    counter = _requests.get(key)
    if counter is None:
        counter = _requests[key] = REQUESTS.labels(*key)
    counter.inc()
    histogram = _latency.get(operation)
    if histogram is None:
        histogram = _latency[operation] = LATENCY.labels(operation)
    histogram.observe(seconds)
    compiled = note.get("compiled")
    if compiled is not None:
        _executions[compiled].inc()


def lookup_refused() -> None:
    LOOKUPS_REFUSED.inc()


async def sample_pools(services: Any, interval: float = 1.0) -> None:
    """Background task of each worker: its pools' use, summed over the live workers at scrape."""
    while True:
        reads = services.reads
        POOL_IN_USE.labels("reads").set(reads.in_use)
        POOL_WAITING.labels("reads").set(reads.waiting)
        POOL_IN_USE.labels("sessions").set(services.engine.pool.checkedout())
        await asyncio.sleep(interval)


class _AuditCollector:
    """The audit trail's figures, read from the database just before the scrape is written."""

    def __init__(self, status: Any) -> None:
        self.status = status

    def collect(self):
        written = CounterMetricFamily("registry_audit_events_written", "Audit events in the trail (all instances)")
        written.add_metric([], self.status.sealed + self.status.unsealed)
        tail = GaugeMetricFamily("registry_audit_unsealed_events", "Audit events not yet linked into the hash chain")
        tail.add_metric([], self.status.unsealed)
        lag = GaugeMetricFamily("registry_audit_sealer_lag_seconds", "Age of the oldest audit event not yet sealed")
        lag.add_metric([], self.status.lag_seconds)
        return [written, tail, lag]


def exposition(seal_status: Any | None) -> bytes:
    """The text exposition of every worker's metrics (and the audit trail's, when read)."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(PROCESS_REGISTRY))
    if seal_status is not None:
        registry.register(_AuditCollector(seal_status))
    return generate_latest(registry)


class _Forward:
    """This process's own registry, inside a scrape's registry (one process, no multiprocess dir)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self):
        return self.registry.collect()


def worker_stopped() -> None:
    """Drop this worker's live gauges (the pools' use) from later scrapes."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


async def listen(host: str, port: int, render: Any) -> asyncio.AbstractServer:
    """A listener of its own for GET /metrics (REGISTRY_METRICS_PORT), kept off the service's port.
    Every worker listens on the port (SO_REUSEPORT); whichever answers reports all of them."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass  # the headers: none is needed
            method, path = (request.split() + [b"", b""])[:2]
            if method in (b"GET", b"HEAD") and path.split(b"?")[0] == b"/metrics":
                status, content_type, body = b"200 OK", CONTENT_TYPE.encode(), await render()
            else:
                status, content_type, body = b"404 Not Found", b"text/plain", b"only /metrics here\n"
            head = b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            writer.write(head % (status, content_type, len(body)) + (b"" if method == b"HEAD" else body))
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port, reuse_port=True, limit=16 * 1024)
