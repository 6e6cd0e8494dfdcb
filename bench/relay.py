"""Events out, end to end: a real RabbitMQ node and the real server (relay in its lifespan),
publishes over HTTP, a RabbitMQ consumer and a webhook receiver on loopback.

    python -m bench.relay [--events 300]

- latency: `--events` publishes one after another, one page each; for each event, the time
  from the publish's HTTP acknowledgement to its receipt, p50 and p99, per sink (target p99 < 1 s);
- throughput: 10 x `--events` pages drafted, then published 10 at a time as fast as the
  server takes them; events per second from the first acknowledgement to the last receipt.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from bench.common import run_main
from tests.relay.consumer import Consumer
from tests.relay.rabbit import Rabbit
from tests.relay.receiver import Receiver
from tests.serving import start_server

SECRET = "bench-secret-0123456789"


def run(events: int, work: Path) -> dict[str, Any]:
    rabbit = Rabbit(work / "rabbit")
    rabbit.start()
    consumer = Consumer(rabbit.url, queue="bench").start()
    receiver = Receiver()
    receiver.secrets["/hook"] = SECRET
    env = {"GITSTORE_RELAY": "1", "GITSTORE_AMQP_URL": rabbit.url, "GITSTORE_WEBHOOK_ALLOW": "127.0.0.1"}
    server, url = start_server(work / "data", env=env)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            http.post("/repos", json={"name": "bench"}).raise_for_status()
            hook = {"url": receiver.url + "/hook", "secret": SECRET, "events": ["published"]}
            http.post("/repos/bench/webhooks", json=hook).raise_for_status()
            acked = _latency_run(http, events)
            _wait(consumer, receiver, len(acked))
            latency = {
                "rabbitmq": _percentiles(acked, {b["event"]["key"]: at for _, b, _, at in consumer.snapshot()}),
                "webhook": _percentiles(acked, {r["body"]["event"]["key"]: r["at"] for r in receiver.got("/hook")}),
            }
            before = (len(consumer.snapshot()), len(receiver.got("/hook")))
            first_ack, burst = _burst(http, events * 10)
            _wait(consumer, receiver, len(acked) + burst)
            amqp_last = max(at for _, _, _, at in consumer.snapshot()[before[0] :])
            hook_last = max(r["at"] for r in receiver.got("/hook")[before[1] :])
    finally:
        server.kill()
        server.wait(10)
        consumer.stop()
        receiver.close()
        rabbit.stop()
    return {
        "latency_ms_from_publish_ack": latency,
        "throughput_events_per_s": {
            "events": burst,
            "rabbitmq": round(burst / (amqp_last - first_ack), 1),
            "webhook": round(burst / (hook_last - first_ack), 1),
        },
        "target": "p99 < 1000 ms",
    }


def _latency_run(http: httpx.Client, events: int) -> dict[str, float]:
    acked = {}
    for n in range(events):
        key = f"page-{n}"
        http.put(f"/repos/bench/entities/{key}", json={"type": "guide", "title": key}).raise_for_status()
        http.post(f"/repos/bench/entities/{key}/publish").raise_for_status()
        acked[key] = time.time()
    return acked


def _burst(http: httpx.Client, pages: int) -> tuple[float, int]:
    keys = [f"burst-{n}" for n in range(pages)]
    for key in keys:
        http.put(f"/repos/bench/entities/{key}", json={"type": "guide", "title": key}).raise_for_status()
    first = None
    for i in range(0, pages, 10):
        http.post("/repos/bench/publish", json={"keys": keys[i : i + 10]}).raise_for_status()
        first = first or time.time()
    return first or time.time(), pages


def _wait(consumer: Consumer, receiver: Receiver, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(consumer.snapshot()) >= count and len(receiver.got("/hook")) >= count:
            return
        time.sleep(0.05)
    raise RuntimeError(f"only {len(consumer.snapshot())} and {len(receiver.got('/hook'))} of {count} arrived")


def _percentiles(acked: dict[str, float], received: dict[str, float]) -> dict[str, float]:
    ms = sorted((received[key] - at) * 1000 for key, at in acked.items())
    return {
        "p50": round(statistics.median(ms), 1),
        "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
        "max": round(ms[-1], 1),
    }


if __name__ == "__main__":
    run_main(__doc__, "relay", run, "events", 300)
