"""bench.backup runs end to end on a one-section course (the real run builds ten)."""

from __future__ import annotations

from pathlib import Path

from bench import backup


def test_backup_bench_smoke(tmp_path: Path) -> None:
    out = backup.run(1, tmp_path)
    for figures in out.values():
        assert figures["incremental_refs_changed"] > 0
        assert 0 < figures["incremental_bytes"] < figures["full_bytes"]
    assert out["course"]["restored_entities"] == 1 + 26 + 200 + 3  # the course, its containers and leaves, 3 writes
