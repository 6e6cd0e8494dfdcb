"""Load on the real server, driven by wrk: `python -m bench.load` (see __main__.py)."""
