"""What a bundle holds and how it is laid out.

An archive (tar.gz or zip) holds the files of the `draft` branch's tree, so `git archive draft`
is nearly a bundle and a bundle reads like a checkout:

    <shard>/<key>/entity.json          each entity's files, exactly as gitstore writes them
    <shard>/<key>/fields/<name>.txt
    <shard>/<key>/members.json         ... except that pins name fingerprints (below)
    <shard>/<key>/unpublishing.json
    pins/<key>/<fingerprint>/...       a version of <key> that a pin names, if it is not the one above

A JSON lines bundle holds the same versions, one a line:

    {"key": "intro", "document": {"type": ..., "members": [...], ...}, "unpublishing": {...}}
    {"key": "intro", "pin": "<fingerprint>", "document": {...}}     a pinned version

A pin in a repository names a commit of the member's own branch, and commit ids do not travel:
the same content has other commits in another repository. So in a bundle a pin names the
pinned version's *fingerprint*: the git tree id of that version's files as the bundle writes
them (with the pins inside it written the same way). A fingerprint depends on content alone,
so exporting an imported bundle gives back the same bytes. ADR 0004 says why.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gitstore.entities.api import (
    ENTITY_FILE,
    MEMBERS_FILE,
    TEXT_DIR,
    UNPUBLISHING_FILE,
    UNPUBLISHING_TYPES,
    Content,
    Unpublishing,
    base_path_problem,
    document_to_files,
    parse_document,
    writable,
)
from gitstore.errors import InvalidDocument
from gitstore.names import key_problem
from gitstore.storage.api import entity_path, tree_id

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "NDJSON",
    "PINS_DIR",
    "TAR_GZ",
    "ZIP",
    "Entry",
    "Problem",
    "Version",
    "fingerprint",
    "format_name",
    "media_type_of",
    "version_files",
    "version_line",
    "versions_from_entries",
    "versions_from_lines",
]

TAR_GZ = "application/gzip"
ZIP = "application/zip"
NDJSON = "application/x-ndjson"
MEDIA_TYPES = (TAR_GZ, ZIP, NDJSON)
#: The short names (`?format=`, `--format`) and file name endings of each media type.
FORMATS = {"tar.gz": TAR_GZ, "zip": ZIP, "ndjson": NDJSON}
_ENDINGS = {".tar.gz": TAR_GZ, ".tgz": TAR_GZ, ".zip": ZIP, ".ndjson": NDJSON, ".jsonl": NDJSON}
PINS_DIR = "pins"
_KEY = r"[a-z0-9._-]{1,64}"
_SHA = r"[0-9a-f]{40}"
_FILE = rf"(?P<file>{ENTITY_FILE}|{MEMBERS_FILE}|{UNPUBLISHING_FILE}|{TEXT_DIR}/(?P<field>[a-z0-9_][a-z0-9_-]{{0,63}})\.txt)"
_PATH = re.compile(
    rf"(?:(?P<shard>[0-9a-f]{{2}})/(?P<key>{_KEY})|{PINS_DIR}/(?P<pinned>{_KEY})/(?P<pin>{_SHA}))/{_FILE}"
)
# Files a bundle may carry beside its entities and ignores: the README of `git archive draft`.
_IGNORED = frozenset({"README"})
_ENTITY_FIELDS = frozenset({"base_path", "content_id", "deleted", "fields", "key", "links", "locale", "title", "type"})
_LINE_FIELDS = frozenset({"key", "document", "unpublishing", "pin"})
_NOTICE_FIELDS = frozenset({"type", "at", "explanation", "alternative_path"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of an archive, or one line of a JSON lines bundle (`name` is then "line N")."""

    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a bundle: where (an archive path or "line N"), which entity, what."""

    entry: str
    key: str | None
    loc: tuple[str | int, ...]
    msg: str

    def as_error(self) -> dict[str, Any]:
        """The `errors` item of a problem+json answer: `loc` starts with the entry."""
        return {"loc": [self.entry, *self.loc], "key": self.key, "msg": self.msg}


@dataclass(frozen=True, slots=True)
class Version:
    """One entity version in a bundle. Its pins name fingerprints; `pin` is None for the
    entity's own (current) content, else the fingerprint of the pinned version it is."""

    key: str
    content: Content
    origin: str  # where it came from, for problems
    pin: str | None = None


def media_type_of(file_name: str) -> str | None:
    """The bundle type a file name says it holds (`.tar.gz`, `.tgz`, `.zip`, `.ndjson`, `.jsonl`)."""
    return next((media for ending, media in _ENDINGS.items() if file_name.lower().endswith(ending)), None)


def format_name(media_type: str) -> str:
    return next(name for name, media in FORMATS.items() if media == media_type)


# -- fingerprints -----------------------------------------------------------------------------


def version_files(key: str, content: Content) -> dict[str, bytes]:
    """The files of a version, in the layout of an entity's tree."""
    return document_to_files(key, content)


def fingerprint(key: str, content: Content) -> str:
    """What a pin to this version says in a bundle: the tree id of its files."""
    return str(tree_id(version_files(key, content)))


# -- archives ---------------------------------------------------------------------------------


def versions_from_entries(entries: Iterable[Entry]) -> tuple[list[Version], list[Problem]]:
    """Every version in an archive's files, and every problem with them."""
    problems: list[Problem] = []
    grouped: dict[tuple[str, str | None], dict[str, Entry]] = defaultdict(dict)
    for entry in entries:
        match = _PATH.fullmatch(entry.name)
        if match is None:
            if entry.name not in _IGNORED:
                problems.append(Problem(entry.name, None, (), _LAYOUT))
            continue
        key = match["key"] or match["pinned"]
        if match["key"] and match["shard"] != entity_path(key).split("/", 1)[0]:
            problems.append(Problem(entry.name, key, (), f"{key!r} belongs in {entity_path(key)}/"))
            continue
        grouped[(key, match["pin"])][match["file"]] = entry
    versions = []
    for (key, pin), files in grouped.items():
        found = _version_from_files(key, pin, files)
        if isinstance(found, Version):
            versions.append(found)
        else:
            problems += found
    return versions, problems


_LAYOUT = (
    "not part of a bundle: entities are <shard>/<key>/ (entity.json, members.json, unpublishing.json, "
    "fields/<name>.txt) and pinned versions pins/<key>/<fingerprint>/"
)


def _version_from_files(key: str, pin: str | None, files: dict[str, Entry]) -> Version | list[Problem]:
    entity = files.get(ENTITY_FILE)
    if entity is None:
        where = entity_path(key) if pin is None else f"{PINS_DIR}/{key}/{pin}"
        return [Problem(f"{where}/{ENTITY_FILE}", key, (), "missing: every entity directory has an entity.json")]
    problems: list[Problem] = []
    body = _json_object(entity, key, problems)
    if body is None:
        return problems
    _check_entity_json(body, entity.name, key, problems)
    document: dict[str, Any] = {
        name: body[name] for name in ("type", "title", "locale", "content_id", "base_path", "links") if name in body
    }
    origins = {"fields": entity.name}
    document["fields"] = _fields(body.get("fields", {}), files, key, origins, problems)
    members = files.get(MEMBERS_FILE)
    if members is not None:
        manifest = _json_value(members, key, problems)
        if manifest is not None:
            document["members"] = manifest
            origins["members"] = members.name
    notice_entry = files.get(UNPUBLISHING_FILE)
    notice = None
    if notice_entry is not None:
        raw = _json_object(notice_entry, key, problems)
        notice = None if raw is None else _unpublishing(raw, notice_entry.name, key, problems)
    content = _document(document, key, problems, lambda loc: _origin(origins, loc, entity.name))
    if problems or content is None:
        return problems
    return Version(key, content._replace(unpublishing=notice), entity.name, pin)


def _check_entity_json(body: dict[str, Any], name: str, key: str, problems: list[Problem]) -> None:
    """What entity.json may not say: unknown fields, another key, or that it is deleted."""
    for field in sorted(body.keys() - _ENTITY_FIELDS):
        problems.append(Problem(name, key, (field,), "not a field of entity.json"))
    if body.get("key", key) != key:
        problems.append(Problem(name, key, ("key",), f"says {body['key']!r} but sits in the directory of {key!r}"))
    if body.get("deleted", False) is not False:
        problems.append(Problem(name, key, ("deleted",), "a bundle carries content; delete entities one by one"))


def _fields(inline: Any, files: dict[str, Entry], key: str, origins: dict[str, str], problems: list[Problem]) -> Any:
    """entity.json's fields with each text field file of the directory added, noting in
    `origins` which file each came from. Fields that are not an object are left for the
    document check to refuse."""
    if not isinstance(inline, dict):
        return inline
    fields = dict(inline)
    for name, entry in sorted(files.items()):
        if not name.startswith(f"{TEXT_DIR}/"):
            continue
        field = name[len(TEXT_DIR) + 1 : -len(".txt")]
        try:
            text = entry.data.decode()
        except UnicodeDecodeError:
            problems.append(Problem(entry.name, key, ("fields", field), "a text field file is UTF-8"))
            continue
        if field in fields:
            problems.append(Problem(entry.name, key, ("fields", field), "also given inline in entity.json"))
        fields[field] = text
        origins[f"fields.{field}"] = entry.name
    return fields


def _origin(origins: dict[str, str], loc: tuple[str | int, ...], default: str) -> str:
    """The file a document problem is about: members.json, a field's own file, or entity.json."""
    if loc and loc[0] == "members":
        return origins.get("members", default)
    if len(loc) > 1 and loc[0] == "fields":
        return origins.get(f"fields.{loc[1]}", default)
    return default


def _always(origin: str) -> Callable[[tuple[str | int, ...]], str]:
    """A line's problems are all about its own file, whatever part of the document they name."""
    return lambda _loc: origin


# -- JSON lines -------------------------------------------------------------------------------


def versions_from_lines(entries: Iterable[Entry]) -> Iterator[Version | list[Problem]]:
    """Each line's version, or its problems."""
    for entry in entries:
        problems: list[Problem] = []
        line = _json_object(entry, None, problems)
        if line is None:
            yield problems
            continue
        key = line.get("key")
        if not isinstance(key, str) or key_problem(key):
            why = key_problem(key) if isinstance(key, str) else "missing, or not a string"
            yield [Problem(entry.name, None, ("key",), f"not an entity key: {why}")]
            continue
        for name in sorted(line.keys() - _LINE_FIELDS):
            problems.append(Problem(entry.name, key, (name,), "not a field of a bundle line"))
        pin = line.get("pin")
        if pin is not None and not (isinstance(pin, str) and re.fullmatch(_SHA, pin)):
            problems.append(Problem(entry.name, key, ("pin",), "a fingerprint: 40 lower-case hex digits"))
        notice = line.get("unpublishing")
        if notice is not None:
            notice = _unpublishing(notice, entry.name, key, problems, loc=("unpublishing",))
        content = _document(line.get("document"), key, problems, _always(entry.name), loc=("document",))
        if problems or content is None:
            yield problems
            continue
        yield Version(key, content._replace(unpublishing=notice), entry.name, pin)


def version_line(version: Version) -> bytes:
    """A version as one line of a JSON lines bundle, keys sorted so the bytes are stable."""
    line: dict[str, Any] = {"key": version.key, "document": writable(version.content)}
    if version.pin is not None:
        line["pin"] = version.pin
    notice = version.content.unpublishing
    if notice is not None:
        line["unpublishing"] = {name: value for name, value in notice._asdict().items() if value is not None}
    return orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n"


# -- parsing ----------------------------------------------------------------------------------


def _document(
    data: Any,
    key: str,
    problems: list[Problem],
    origin: Callable[[tuple[str | int, ...]], str],
    *,
    loc: tuple[str | int, ...] = (),
) -> Content | None:
    try:
        return parse_document(data)
    except InvalidDocument as exc:
        for error in exc.extra["errors"]:
            where = tuple(error["loc"])
            problems.append(Problem(origin(where), key, (*loc, *where), error["msg"]))
        return None


def _unpublishing(
    raw: Any, entry: str, key: str, problems: list[Problem], *, loc: tuple[str, ...] = ()
) -> Unpublishing | None:
    """An unpublishing notice, checked the way gitstore writes one."""
    if not isinstance(raw, dict):
        problems.append(Problem(entry, key, loc, "an unpublishing notice is a JSON object"))
        return None
    found = len(problems)
    for name in sorted(raw.keys() - _NOTICE_FIELDS):
        problems.append(Problem(entry, key, (*loc, name), "not a field of an unpublishing notice"))
    if raw.get("type") not in UNPUBLISHING_TYPES:
        problems.append(Problem(entry, key, (*loc, "type"), f"one of {', '.join(UNPUBLISHING_TYPES)}"))
    at = raw.get("at")
    if not isinstance(at, str) or not _is_timestamp(at):
        problems.append(Problem(entry, key, (*loc, "at"), "when it was unpublished, as an RFC 3339 time"))
    explanation = raw.get("explanation")
    if explanation is not None and not isinstance(explanation, str):
        problems.append(Problem(entry, key, (*loc, "explanation"), "a string"))
    path = raw.get("alternative_path")
    if path is not None and (not isinstance(path, str) or base_path_problem(path)):
        problems.append(Problem(entry, key, (*loc, "alternative_path"), "an absolute URL path such as /tax"))
    if len(problems) > found:
        return None
    return Unpublishing(raw["type"], at, explanation, path)  # type: ignore[arg-type]


def _is_timestamp(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _json_object(entry: Entry, key: str | None, problems: list[Problem]) -> dict[str, Any] | None:
    value = _json_value(entry, key, problems)
    if value is not None and not isinstance(value, dict):
        problems.append(Problem(entry.name, key, (), "a JSON object"))
        return None
    return value


def _json_value(entry: Entry, key: str | None, problems: list[Problem]) -> Any:
    """Strict JSON, as the API reads it: no NaN, no lone surrogates, no invalid UTF-8, no
    duplicate keys, no integer past 64 bits."""
    try:
        value = orjson.loads(entry.data)
        if isinstance(value, (dict, list)) and not _canonical(value, entry.data):
            json.loads(entry.data, object_pairs_hook=_refuse_duplicates, parse_int=_exact_integer)
        return value
    except (orjson.JSONDecodeError, _Refused, RecursionError) as exc:
        problems.append(Problem(entry.name, key, (), f"not valid JSON: {exc}"))
        return None


def _canonical(value: Any, data: bytes) -> bool:
    """Whether `data` is exactly how gitstore writes `value` (entity.json, or a bundle line). If
    so it can hold no duplicate key and no integer past 64 bits, since the value, which has lost
    those, writes back to the same bytes: the slow check is not needed (~90 us an entity)."""
    text = data.rstrip(b"\n")
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == text or (
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) == text
    )


class _Refused(ValueError):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise _Refused(f"duplicate key {name!r}")
        seen[name] = value
    return seen


def _exact_integer(text: str) -> int:
    # orjson reads an integer past 64 bits as a float: the entity would not hold what was sent.
    value = int(text)
    if not -(2**63) <= value <= 2**64 - 1:
        raise _Refused(f"the integer {text} does not fit in 64 bits; write it as a string")
    return value
