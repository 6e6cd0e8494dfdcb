"""Comparing a node's answer with the owner's own."""

from __future__ import annotations

import time

import httpx2


def same_answer(a: httpx2.Response, b: httpx2.Response) -> bool:
    return (a.status_code, a.content, a.headers.get("etag")) == (b.status_code, b.content, b.headers.get("etag"))


def assert_same_through(client: httpx2.Client, through: str, owner: str, path: str) -> None:
    """A read through the node at `through` answers as the owner at `owner` does, asked between
    two equal direct answers (the owner's background fold may move `draft` meanwhile: then ask
    again, a few times)."""
    for _ in range(10):
        before, forwarded, after = client.get(owner + path), client.get(through + path), client.get(owner + path)
        if same_answer(before, after):
            assert same_answer(forwarded, before), (path, through, forwarded.text, before.text)
            return
        time.sleep(0.5)
    raise AssertionError(f"{path} never stood still on {owner}")
