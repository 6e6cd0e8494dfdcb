"""Commit messages that a person can read and gitstore can parse.

A message is a summary line, a blank line, and git trailers (`git interpret-trailers` reads
them too). Version numbers live here rather than in the files, so that restoring old content
gives back the old tree exactly and tree ids stay comparable.

    Update intro: title, fields.body

    Gitstore-Key: intro
    Gitstore-Action: update
    Gitstore-Version: 4
    Gitstore-Edition: 2
"""

from __future__ import annotations

from collections.abc import Iterable


def format_message(summary: str, trailers: Iterable[tuple[str, str]]) -> str:
    lines = [summary.replace("\n", " "), ""]
    lines += [f"Gitstore-{name}: {value}" for name, value in trailers]
    return "\n".join(lines) + "\n"


def parse_trailers(message: str) -> dict[str, str]:
    """The Gitstore-* trailers of a message (the last value wins for repeated names)."""
    found: dict[str, str] = {}
    for line in message.splitlines():
        if line.startswith("Gitstore-"):
            name, sep, value = line[len("Gitstore-") :].partition(": ")
            if sep:
                found[name] = value
    return found


def parse_repeated(message: str, name: str) -> list[str]:
    """Every value of a trailer that may repeat, in order."""
    prefix = f"Gitstore-{name}: "
    return [line[len(prefix) :] for line in message.splitlines() if line.startswith(prefix)]


def summary_of(message: str) -> str:
    return message.split("\n", 1)[0]
