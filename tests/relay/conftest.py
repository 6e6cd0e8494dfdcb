"""A real RabbitMQ node for the relay's tests, started once per session (a few seconds) and
stopped at the end; each test uses an exchange and queue of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.relay.rabbit import Rabbit


@pytest.fixture(scope="session")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rabbit]:
    node = Rabbit(Path(tmp_path_factory.mktemp("rabbitmq")))
    node.start()
    try:
        yield node
    finally:
        node.stop()
