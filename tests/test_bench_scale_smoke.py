"""bench.scale runs end to end on a few hundred entities (the real run takes ~20 minutes)."""

from __future__ import annotations

from pathlib import Path

import orjson

from bench import scale


def test_scale_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    argv = ["--stages", "60,120", "--versions-per-entity", "3", "--samples", "4", "--batch", "40", "--settle", "0"]
    scale.main([*argv, "--work", str(tmp_path), "--json", str(out)])

    results = orjson.loads(out.read_bytes())
    first, last = results["stages"]
    assert [first["entities"], last["entities"]] == [60, 120]
    assert first["versions"] == 180  # three on average, exactly
    packed = last["stats_after_gc"]["packed_refs"]
    assert packed > 2 * 100 and last["stats_after_gc"]["loose_refs"] < 5  # HEAD and the like
    assert last["stats_loose_refs"]["packed_refs"] == 0 and last["stats_loose_refs"]["loose_refs"] >= packed
    assert last["loose_refs_packed_again"]["packed"] >= packed
    for view in ("before_gc", "after_gc", "loose_refs"):
        assert set(results["ratios"][view]) == set(last[view])
    # The verdict: the first stage's repository, kept as it was, measured beside the last.
    assert "paired" not in first and set(last["paired"]["first_stage"]) == set(scale.ALL)
    assert set(results["ratios"]["paired"]) == set(scale.ALL)
    assert results["ratios"]["paired"]["read_live"]["verdict"] in ("PASS", "MISS")
    assert set(last["after_gc"]) == set(scale.ALL)
    assert results["ratios"]["after_gc"]["write_draft"]["verdict"] in ("PASS", "MISS")
    assert not list(tmp_path.glob("gitstore-bench-scale-*")), "the scratch directory is removed"
