"""What every benchmark script shares: running it in a throwaway data directory and printing
its figures as JSON."""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson


def median_and_best(
    fn: Callable[[], object], runs: int, *, before: Callable[[], object] | None = None
) -> tuple[float, float]:
    """(median, best) of `runs` calls in milliseconds; `before` runs outside the clock (to go cold)."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 2), round(min(times) * 1000, 2)


def run_main(doc: str | None, name: str, run: Callable[[int, Path], dict[str, Any]], option: str, default: int) -> None:
    """Parse `--<option> N`, run `run(N, workdir)` in a temporary directory, print its JSON."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(f"--{option}", type=int, default=default)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix=f"gitstore-bench-{name}-"))
    try:
        print(orjson.dumps(run(getattr(args, option), work), option=orjson.OPT_INDENT_2).decode())
    finally:
        shutil.rmtree(work, ignore_errors=True)
