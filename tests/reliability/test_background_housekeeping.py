"""The service's background housekeeping runs on its own while the service serves."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings


def test_the_background_task_clears_a_lock_a_dead_writer_left(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", load_samples=False, housekeeping_seconds=0.05)
    with TestClient(create_app(settings)) as client:
        client.post("/repos", json={"name": "demo"}).raise_for_status()
        client.put("/repos/demo/entities/intro", json={"type": "page", "title": "One"}).raise_for_status()
        abandoned = tmp_path / "data/demo.git/refs/drafts/intro.lock"
        abandoned.write_text("0" * 40 + "\n")
        os.utime(abandoned, (time.time() - 3600, time.time() - 3600))
        deadline = time.monotonic() + 10
        while abandoned.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not abandoned.exists()
        answer = client.patch("/repos/demo/entities/intro", json={"title": "Two"})
        assert answer.status_code == 200 and answer.json()["version"] == 2


def test_the_service_keeps_house_every_five_minutes_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITSTORE_HOUSEKEEPING", raising=False)
    assert Settings.from_env().housekeeping_seconds == 300
    monkeypatch.setenv("GITSTORE_HOUSEKEEPING", "0")
    assert Settings.from_env().housekeeping_seconds == 0
    assert Settings().housekeeping_seconds == 0  # an app built in code (tests, embedding) has it off
