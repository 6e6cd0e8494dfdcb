"""Naming rules for repositories and entity keys.

Both end up in file system paths and git ref names, so they are checked before anything touches
disk and rejected rather than rewritten. The rules are stricter than git's own
(`git check-ref-format`): lower-case ASCII only, so names never collide on case-insensitive or
Unicode-normalising file systems, and never produce a tree entry `git fsck --strict` dislikes.
"""

from __future__ import annotations

import re

from gitstore.errors import InvalidName

_REPO_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KEY = re.compile(r"[a-z0-9._-]{1,64}")

# Windows device names: with any extension, a file or directory of that name opens the device,
# so a clone or checkout on Windows fails on it. Keys become directories in every clone, text
# field names become file names, and repository names become the directory `git clone` makes.
_WINDOWS_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)
# `validate_repo_name`'s rule as one ECMA-262 regular expression, for JSON Schema.
REPO_NAME_PATTERN = (
    r"^(?!.*\.\.)(?!(con|prn|aux|nul|com[1-9]|lpt[1-9])(\.|$))(?!.*(\.git|\.lock|\.)$)[a-z0-9][a-z0-9._-]{0,63}$"
)
# Names that mean something to git; keys also name refs.
_RESERVED_KEYS = _WINDOWS_DEVICES | {"head", "fetch_head", "orig_head"}
# `key_problem`'s rule as one ECMA-262 regular expression, for JSON Schema.
KEY_PATTERN = (
    r"^(?!\.)(?!.*\.\.)(?!.*(\.lock|\.)$)"
    r"(?!(con|prn|aux|nul|com[1-9]|lpt[1-9]|head|fetch_head|orig_head)(\.|$))[a-z0-9._-]{1,64}$"
)


def validate_repo_name(name: str) -> str:
    """Return `name` if it may name a content repository, else raise InvalidName."""
    problem = repo_name_problem(name)
    if problem:
        raise InvalidName(
            f"invalid repository name {name!r}: {problem}",
            errors=[{"loc": ["name"], "msg": problem}],
        )
    return name


def validate_key(key: str, *, loc: tuple[str | int, ...] = ("key",)) -> str:
    """Return `key` if it may name an entity, else raise InvalidName."""
    problem = key_problem(key)
    if problem:
        raise InvalidName(
            f"invalid entity key {key!r}: {problem}",
            errors=[{"loc": list(loc), "msg": problem}],
        )
    return key


def key_problem(key: str) -> str | None:
    """Say what is wrong with an entity key, or None if it is fine."""
    if not _KEY.fullmatch(key):
        return "keys are 1-64 characters of a-z, 0-9, '.', '_' and '-'"
    if key.startswith("."):
        return "keys may not start with '.'"
    if ".." in key:
        return "keys may not contain '..'"
    if key.endswith(".lock"):
        return "keys may not end with '.lock'"
    if key.endswith("."):
        return "keys may not end with '.'"
    if key.split(".", 1)[0] in _RESERVED_KEYS:
        return "that key is reserved by git or Windows file systems"
    return None


def is_windows_device(name: str) -> bool:
    """Whether a lower-case file name is a Windows device name, whatever its extension."""
    return name.split(".", 1)[0] in _WINDOWS_DEVICES


def repo_name_problem(name: str) -> str | None:
    """Say what is wrong with a repository name, or None if it is fine."""
    if not _REPO_NAME.fullmatch(name):
        return "names are 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a-z or 0-9"
    if ".." in name:
        return "names may not contain '..'"
    if name.endswith((".git", ".lock", ".")):
        return "names may not end with '.git', '.lock' or '.'"
    if is_windows_device(name):
        return "that name is reserved by Windows file systems"
    return None
