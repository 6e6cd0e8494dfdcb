"""The RabbitMQ sink against a real broker: every event at least once, in order per repository,
with the feed's payload, through a kill -9 of the server, a broker that is down when the server
starts, and a broker restart mid-stream."""

from __future__ import annotations

import os
import signal
import threading
import urllib.request
from pathlib import Path

from gitstore import Store
from tests.relay.consumer import Consumer
from tests.relay.feed import check_in_order, live_feed, publish_rounds, stored_cursor
from tests.relay.rabbit import Rabbit
from tests.serving import free_port, start_server

REPOS = [f"site-{n}" for n in range(10)]
# How many kills of the server, and restarts of the broker, each test makes mid-stream: one in
# the suite, more with `make relay-soak`.
FAULTS = int(os.environ.get("GITSTORE_RELAY_SOAK", "1"))


def _server(data: Path, url: str, exchange: str) -> tuple[object, str]:
    return start_server(
        data,
        env={
            "GITSTORE_RELAY": "1",
            "GITSTORE_AMQP_URL": url,
            "GITSTORE_AMQP_EXCHANGE": exchange,
            "GITSTORE_RELAY_RETRY_SECONDS": "0.2",
        },
    )


def _bodies(messages: list, name: str) -> list[dict]:
    return [body for _key, body, _headers, _at in messages if body["repository"] == name]


def test_2000_changes_in_10_repositories_arrive_in_order_through_a_kill_9(tmp_path: Path, rabbit: Rabbit) -> None:
    data = tmp_path / "data"
    store = Store(data)
    for name in REPOS:
        store.create_repository(name)
    consumer = Consumer(rabbit.url, exchange="kill-test", queue="kill-test").start()
    server, _ = _server(data, rabbit.url, "kill-test")
    try:
        writer = threading.Thread(target=publish_rounds, args=(store, REPOS, range(20)))
        writer.start()  # 10 repositories x 20 rounds x 10 pages: 2,000 publish events
        at_kill: dict[str, str | None] = {}
        for fault in range(FAULTS):
            consumer.wait_for(lambda got, f=fault: len(got) >= 300 + 1500 * f // FAULTS, timeout=120)
            os.kill(server.pid, signal.SIGKILL)  # type: ignore[attr-defined]
            server.wait(10)  # type: ignore[attr-defined]
            if fault == 0:
                at_kill = {name: stored_cursor(data, name, "amqp") for name in REPOS}
            server, _ = _server(data, rabbit.url, "kill-test")  # takes over every lane from its cursor
        writer.join(600)
        expected = {name: live_feed(store, name) for name in REPOS}
        assert sum(len(f) for f in expected.values()) == 2000
        total = sum(len(f) for f in expected.values())
        got = consumer.wait_for(lambda got: len({b["id"] + b["repository"] for _, b, _, _ in got}) >= total, 300)
    finally:
        _stop(server)
        consumer.stop()
    assert any(at_kill.values()), "the kill came before anything was confirmed: not mid-stream"
    for name in REPOS:
        feed, bodies = expected[name], _bodies(got, name)
        repeated = check_in_order(feed, bodies)
        # Only what was not yet confirmed when the server first died came twice.
        confirmed = [e.id for e in feed][: [e.id for e in feed].index(at_kill[name]) + 1] if at_kill[name] else []
        assert not set(repeated) & set(confirmed), name
    for key, body, headers, _ in got[:50]:
        assert key == f"{body['repository']}.guide.{body['event']['kind']}"
        assert headers["document_type"] == "guide" and headers["update_type"] == "published"
        entity = body["entity"]
        assert entity["key"] == body["event"]["key"] and entity["commit"] == body["event"]["commit"]
        assert "email" not in entity["author"] and "has_unpublished_changes" not in entity
        assert body["expanded_links"]["key"] == entity["key"]


def test_a_broker_down_at_start_and_restarted_mid_stream_loses_nothing(tmp_path: Path) -> None:
    broker = Rabbit(tmp_path / "rabbit", port=free_port())
    broker.start()  # once, to declare the consumer's durable queue, then down before the server starts
    Consumer(broker.url, exchange="restart-test", queue="restart-test").start().stop()
    broker.stop()
    data = tmp_path / "data"
    store = Store(data)
    names = REPOS[:3]
    for name in names:
        store.create_repository(name)
    server, url = _server(data, broker.url, "restart-test")
    consumer = None
    try:
        publish_rounds(store, names, range(3))
        health = _get(url + "/health")
        assert '"amqp":"down"' in health, health
        assert 'gitstore_relay_sink_up{sink="amqp"} 0.0' in _get(url + "/metrics")

        broker.start()  # the relay catches up by itself
        consumer = Consumer(broker.url, exchange="restart-test", queue="restart-test").start()
        writer = threading.Thread(target=publish_rounds, args=(store, names, range(3, 12)))
        writer.start()
        for fault in range(FAULTS):
            consumer.wait_for(lambda got, f=fault: len(got) >= 150 + 100 * f, timeout=120)
            broker.stop()  # mid-stream: the relay's batch fails, it backs off and reconnects
            broker.start()
        writer.join(600)
        expected = {name: live_feed(store, name) for name in names}
        total = sum(len(f) for f in expected.values())
        got = consumer.wait_for(lambda got: len({b["id"] + b["repository"] for _, b, _, _ in got}) >= total, 300)
        assert '"amqp":"up"' in _get(url + "/health")
        assert 'gitstore_relay_sink_up{sink="amqp"} 1.0' in _get(url + "/metrics")
    finally:
        _stop(server)
        if consumer is not None:
            consumer.stop()
        broker.stop()
    for name in names:
        check_in_order(expected[name], _bodies(got, name))


def _stop(server: object) -> None:
    server.kill()  # type: ignore[attr-defined]
    server.wait(10)  # type: ignore[attr-defined]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()
