"""Benchmarks: `python -m bench` prints JSON. Never part of the test suite."""
