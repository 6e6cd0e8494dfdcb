"""`GET /metrics` in Prometheus's text format: the service's requests and the relay's lanes.

Each worker process counts its own requests and relays its own lanes, so each answers for
itself (scrape every worker, or one worker per host with `--workers 1`). Counting a request
costs a dictionary lookup and two increments in a plain ASGI wrapper (no BaseHTTPMiddleware,
which costs a task per request); `make load` measures live GETs with it in place.

Repository names are labels of the relay's series, and who may learn which repositories
exist is an access rule: the route needs `admin` on every repository.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import Principal, require_everywhere

__all__ = ["install"]

router = APIRouter(tags=["service"])
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _RequestMetrics:
    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self._count = Counter(
            "gitstore_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=registry
        )
        self._seconds = Histogram(
            "gitstore_http_request_seconds",
            "time to the end of the answer",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # the template: no names, no keys
            key = (scope["method"], route, status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    self._count.labels(scope["method"], route, str(status)),
                    self._seconds.labels(scope["method"], route),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


class _RelayMetrics(Collector):
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        relay = getattr(self.app.state, "relay", None)
        labels = ["repo", "sink", "kind"]
        delivered = CounterMetricFamily("gitstore_relay_delivered", "events a sink confirmed", labels=labels)
        failures = CounterMetricFamily("gitstore_relay_failures", "failed hand-overs (each retried)", labels=labels)
        lag = GaugeMetricFamily("gitstore_relay_lag_events", "events read and not yet confirmed", labels=labels)
        lag_s = GaugeMetricFamily("gitstore_relay_lag_seconds", "age of the oldest unconfirmed event", labels=labels)
        owned = GaugeMetricFamily("gitstore_relay_lane_active", "1 if this process relays the lane", labels=labels)
        up = GaugeMetricFamily("gitstore_relay_sink_up", "1 if the sink is reachable", labels=["sink"])
        for lane in relay.stats() if relay is not None else []:
            values = [lane.repo, lane.sink, lane.kind]
            delivered.add_metric(values, lane.delivered)
            failures.add_metric(values, lane.failures)
            lag.add_metric(values, lane.lag_events)
            lag_s.add_metric(values, lane.lag_seconds)
            owned.add_metric(values, 0 if lane.state in ("standby", "failed") else 1)
        for sink, status in (relay.sinks() if relay is not None else {}).items():
            up.add_metric([sink], 1 if status == "up" else 0)
        yield from (delivered, failures, lag, lag_s, owned, up)


@router.get("/metrics", summary="Prometheus metrics of this worker: requests and the relay", include_in_schema=False)
def metrics(request: Request, _: Annotated[Principal, Depends(require_everywhere("admin"))]) -> Response:
    return Response(generate_latest(request.app.state.metrics), media_type="text/plain; version=0.0.4")


def install(app: FastAPI) -> None:
    # A `_created` series per label set doubles the page for nothing. prometheus_client leaves
    # this function unannotated, so strict mypy cannot see it returns None.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = app.state.metrics = CollectorRegistry()
    registry.register(_RelayMetrics(app))
    app.add_middleware(_RequestMetrics, registry=registry)
    app.include_router(router)
