"""`gitstore webhook`, and /metrics: request counts by route template, the relay's lanes, and
who may read them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from tests.conftest import bearer, token_for
from tests.relay.receiver import Receiver
from tests.test_cli import gitstore

SECRET = "s3cret-of-at-least-16"


def test_webhooks_from_the_command_line(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert gitstore("init", "demo", "--data", data).returncode == 0
    os.environ["GITSTORE_WEBHOOK_ALLOW"] = "127.0.0.1"
    try:
        added = gitstore(
            "webhook", "add", "demo", "http://127.0.0.1:9/hook", "--secret", SECRET, "--event", "published",
            "--data", data, "--json",
        )  # fmt: skip
        refused = gitstore("webhook", "add", "demo", "http://10.0.0.1/", "--secret", SECRET, "--data", data)
    finally:
        del os.environ["GITSTORE_WEBHOOK_ALLOW"]
    assert added.returncode == 0, added.stderr
    hook = orjson.loads(added.stdout)["id"]
    assert refused.returncode == 2 and "GITSTORE_WEBHOOK_ALLOW" in refused.stderr
    listed = orjson.loads(gitstore("webhook", "list", "demo", "--data", data, "--json").stdout)
    assert listed == [
        {"id": hook, "url": "http://127.0.0.1:9/hook", "events": ["published"], "active": True, "failed": False}
    ]
    assert SECRET not in gitstore("webhook", "list", "demo", "--data", data).stdout
    assert gitstore("webhook", "remove", "demo", hook, "--data", data).returncode == 0
    assert orjson.loads(gitstore("webhook", "list", "demo", "--data", data, "--json").stdout) == []
    assert gitstore("webhook", "remove", "demo", hook, "--data", data).returncode == 2


def test_metrics_count_requests_by_route_and_show_the_relay(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.secrets["/hook"] = SECRET
    settings = Settings(
        data_dir=tmp_path / "data", load_samples=False, relay=True, webhook_allow="127.0.0.1", relay_retry_seconds=0.05
    )
    try:
        with TestClient(create_app(settings)) as http:
            http.post("/repos", json={"name": "demo"}).raise_for_status()
            http.post("/repos/demo/webhooks", json={"url": receiver.url + "/hook", "secret": SECRET}).raise_for_status()
            for key in ("a", "b"):
                http.put(f"/repos/demo/entities/{key}", json={"type": "guide", "title": key}).raise_for_status()
                http.post(f"/repos/demo/entities/{key}/publish").raise_for_status()
                http.get(f"/repos/demo/entities/{key}").raise_for_status()
            receiver.wait_for(lambda: len(receiver.got("/hook")) == 2)
            text = ""
            for _ in range(100):  # the lane counts a delivery right after the receiver answered it
                text = http.get("/metrics").text
                if any(
                    line.startswith("gitstore_relay_delivered_total") and line.endswith(" 2.0")
                    for line in text.splitlines()
                ):
                    break
                time.sleep(0.05)
            assert (
                'gitstore_http_requests_total{method="GET",route="/repos/{repo}/entities/{key}",status="200"} 2.0'
                in text
            )
            assert "/repos/demo/entities/a" not in text  # templates, not paths
            assert 'gitstore_http_request_seconds_count{method="PUT",route="/repos/{repo}/entities/{key}"} 2.0' in text
            delivered = [line for line in text.splitlines() if line.startswith("gitstore_relay_delivered_total")]
            assert len(delivered) == 1 and 'repo="demo"' in delivered[0] and delivered[0].endswith(" 2.0")
            assert "gitstore_relay_lag_events{" in text
            assert not any(line.startswith("gitstore_relay_sink_up{") for line in text.splitlines())  # no RabbitMQ
            assert http.get("/health").json() == {"status": "ok"}  # no RabbitMQ sink: nothing to report

            data = tmp_path / "data"
            reader = bearer(token_for(data, {"*": ["read"]}))
            assert http.get("/metrics", headers=reader).status_code == 403
            assert http.get("/metrics", headers=bearer(token_for(data, {"*": ["admin"]}))).status_code == 200
    finally:
        receiver.close()
