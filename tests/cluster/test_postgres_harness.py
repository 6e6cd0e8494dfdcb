"""The harness itself: a real server answers, and each test gets a database of its own."""

from __future__ import annotations

import subprocess

from tests.cluster.postgres import BIN, Postgres


def test_each_test_gets_an_empty_database_of_its_own(postgres: Postgres, cluster_dsn: str) -> None:
    out = subprocess.run(
        [str(BIN / "psql"), cluster_dsn, "-Atc", "select count(*) from pg_tables where schemaname = 'public'"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "0"
    assert cluster_dsn.endswith(cluster_dsn.rsplit("/", 1)[1]) and cluster_dsn != postgres.dsn
