"""A private PostgreSQL for the cluster tests: one server per test session, a fresh database
per test (`cluster_dsn`), so tests never see each other's nodes or repositories."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.postgres import Postgres, available

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    if not available():
        pytest.fail("PostgreSQL 15 is needed (/usr/lib/postgresql/15/bin): .ci/run installs it")
    base = Path(tempfile.mkdtemp(prefix="gitstore-pg-"))
    server = Postgres(base)
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")


@pytest.fixture
def cluster_dsn(postgres: Postgres) -> str:
    return postgres.create_database(f"gitstore_{next(_databases)}")
