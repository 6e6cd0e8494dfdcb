"""An entity's content and how it is laid out as files, so that `git diff` and `git blame` read
naturally.

    entity.json          pretty JSON, sorted keys, one field per line
    fields/<name>.txt    each multi-line text field, as UTF-8, byte for byte
    members.json         a container's ordered manifest, one member per line (containers only)
    unpublishing.json    how a live version was taken down: gone, vanish, redirect or withdrawn (if it was)

A text field is moved to its own file only when its name is a safe, lower-case file name on
every OS (no Windows device name such as `con`); any other field stays inline. gitstore writes
every file itself, so no client-chosen path ever reaches a tree.
"""

from __future__ import annotations

import math
import re
import string
from typing import Annotated, Any, NamedTuple

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from gitstore.errors import InvalidDocument
from gitstore.names import is_windows_device, key_problem

ENTITY_FILE = "entity.json"
MEMBERS_FILE = "members.json"
UNPUBLISHING_FILE = "unpublishing.json"
UNPUBLISHING_TYPES = ("gone", "redirect", "vanish", "withdrawn")
#: How live content is taken down so that readers no longer get it (withdrawn stays readable):
#: gone and vanish answer 410 (vanish with no explanation, and unlisted), redirect 301.
TAKEN_DOWN = ("gone", "redirect", "vanish")
TEXT_DIR = "fields"
_TEXT_FIELD_NAME = re.compile(r"[a-z0-9_][a-z0-9_-]{0,63}")
_BASE_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,2047}")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_MAX_DEPTH = 32
_MIN_INTEGER, _MAX_INTEGER = -(2**63), 2**64 - 1  # what orjson writes exactly
_MAX_MEMBERS = 10_000
_SHA = re.compile(r"[0-9a-f]{40}")
# Checked per character in Python, a 30-character title cost 30 us: a tenth of an import's validation.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

TYPE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
TypeName = Annotated[str, StringConstraints(pattern=rf"^{TYPE_NAME.pattern}$")]
Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")]
LinkType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class Member(NamedTuple):
    """One row of a container's manifest: a member entity, pinned to a commit of its draft
    branch, or unpinned (`pin` None: its draft in draft views, what is live in live views)."""

    key: str
    pin: str | None = None


class MemberIn(BaseModel):
    """One member of a container's manifest: an entity key, pinned to a commit or following its latest draft."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    key: str
    pin: str | None = None

    @field_validator("key")
    @classmethod
    def _key_is_an_entity_key(cls, value: str) -> str:
        problem = key_problem(value)
        if problem:
            raise ValueError(f"{value!r} is not an entity key: {problem}")
        return value

    @field_validator("pin")
    @classmethod
    def _pin_is_a_full_commit_id(cls, value: str | None) -> str | None:
        if value is not None and not _SHA.fullmatch(value):
            raise ValueError("a pin is a full commit id (40 lower-case hex digits), or null for the latest")
        return value


class Document(BaseModel):
    """What a client writes: every field is draftable (seed 000)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: TypeName
    title: Annotated[str, StringConstraints(max_length=1000)]
    locale: Locale = "en"
    content_id: str | None = Field(
        default=None,
        description="the document this entity translates (seed 002: a document is content_id + locale); "
        "null means the entity is its own document, content_id = key",
    )
    base_path: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    links: dict[LinkType, list[str]] = Field(default_factory=dict)
    members: Annotated[list[MemberIn], Field(max_length=_MAX_MEMBERS)] | None = None

    @field_validator("title")
    @classmethod
    def _title_is_one_line(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("title may not contain control characters or line breaks")
        return value

    @field_validator("content_id")
    @classmethod
    def _content_id_is_a_key(cls, value: str | None) -> str | None:
        if value is not None:
            problem = key_problem(value)
            if problem:
                raise ValueError(f"{value!r} cannot be a content_id: {problem}")
        return value

    @field_validator("base_path")
    @classmethod
    def _base_path_is_absolute(cls, value: str | None) -> str | None:
        problem = None if value is None else base_path_problem(value)
        if problem:
            raise ValueError(f"base_path {problem}")
        return None if value is None else canonical_base_path(value)

    @field_validator("fields")
    @classmethod
    def _fields_are_bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = _json_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("links")
    @classmethod
    def _links_name_entities(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for link_type, targets in value.items():
            for target in targets:
                problem = key_problem(target)
                if problem:
                    raise ValueError(f"links.{link_type}: {target!r} is not an entity key: {problem}")
        return value


def base_path_problem(value: str) -> str | None:
    """Why `value` is not a base_path (an absolute URL path), or None if it is one."""
    if not _BASE_PATH.fullmatch(value):
        return "is an absolute URL path such as /guidance/tax, at most 2048 characters"
    if _BAD_ESCAPE.search(value):
        return "has a '%' that is not a percent-escape (% and two hex digits)"
    value = canonical_base_path(value)
    if "//" in value or any(part in (".", "..") for part in value.split("/")):
        return "may not contain empty, '.' or '..' segments"
    return None


def canonical_base_path(value: str) -> str:
    """RFC 3986's normal form of a path (section 6.2.2): escapes of unreserved characters
    decoded (`/s%61me` is `/same`), every other escape kept with upper-case hex (`%2f` is
    `%2F`, which is not a `/`). Paths are compared, stored and looked up in this form, and
    content read from git is put in it too, so a path stored before this rule and a reindex
    give the same uniqueness answers."""
    if "%" not in value:
        return value
    return _ESCAPE.sub(_normal_escape, value)


def _normal_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


class Unpublishing(NamedTuple):
    """Why a version is not shown as ordinary live content (seed 001's unpublish step):
    `gone` (410), `vanish` (410 with no explanation, as if it had never been there),
    `redirect` (to `alternative_path`) or `withdrawn` (still readable, with the explanation). It is part of the version's tree, so it is drafted, published, restored and
    diffed like any other change, and publishing a version without it reverses it."""

    type: str
    at: str  # RFC 3339, when it was unpublished
    explanation: str | None = None
    alternative_path: str | None = None


class Content(NamedTuple):
    """A validated document as gitstore carries it around (cheap to build on every read)."""

    type: str
    title: str
    locale: str
    base_path: str | None
    fields: dict[str, Any]
    links: dict[str, list[str]]
    members: tuple[Member, ...] | None = None  # None: not a container
    content_id: str | None = None  # None: the entity's own key
    unpublishing: Unpublishing | None = None  # never set by a client's document


#: Entity types that only hold a path for someone else (seed 002): content that takes their
#: base_path replaces them. An entity unpublished as gone or redirect counts too.
PLACEHOLDER_TYPES = frozenset({"redirect", "gone"})


def is_placeholder(doc: Content) -> bool:
    return placeholder_kind(doc.type, doc.unpublishing.type if doc.unpublishing is not None else None)


def placeholder_kind(type_name: str, unpublishing: str | None) -> bool:
    """Whether an entity of this type, unpublished this way (or not: None), is a placeholder."""
    return type_name in PLACEHOLDER_TYPES or unpublishing in TAKEN_DOWN


def leaves(
    key: str, doc: Content, deleted: bool, *, base_path: str | None = None, document: tuple[str, str] | None = None
) -> bool:
    """Whether this version of `key` (a planned draft, a version to publish) is not at
    `base_path`, or not the (content_id, locale) translation `document`: it leaves it."""
    if deleted:
        return True
    if base_path is not None:
        return doc.base_path != base_path
    return (document_id(key, doc), doc.locale) != document


def document_id(key: str, doc: Content) -> str:
    """The document an entity is a translation of: its content_id, else its own key."""
    return doc.content_id or key


def parse_document(data: Any) -> Content:
    """Validate client data as a Document, raising InvalidDocument with every problem."""
    try:
        doc = Document.model_validate(data)
        members = None if doc.members is None else tuple(Member(m.key, m.pin) for m in doc.members)
        return Content(doc.type, doc.title, doc.locale, doc.base_path, doc.fields, doc.links, members, doc.content_id)
    except ValidationError as exc:
        raise InvalidDocument(
            "the entity document is not valid",
            errors=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)],
        ) from None


def document_to_files(key: str, doc: Content, *, deleted: bool = False) -> dict[str, bytes]:
    """The files that store `doc` in a tree."""
    inline: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for name, value in doc.fields.items():
        if _belongs_in_own_file(name, value):
            files[f"{TEXT_DIR}/{name}.txt"] = value.encode()
        else:
            inline[name] = value
    body = {
        "base_path": doc.base_path,
        **({"content_id": doc.content_id} if doc.content_id not in (None, key) else {}),
        "deleted": deleted,
        "fields": inline,
        "key": key,
        "links": doc.links,
        "locale": doc.locale,
        "title": doc.title,
        "type": doc.type,
    }
    files[ENTITY_FILE] = orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if doc.members is not None:
        files[MEMBERS_FILE] = members_to_bytes(doc.members)
    if doc.unpublishing is not None:
        notice = {name: value for name, value in doc.unpublishing._asdict().items() if value is not None}
        files[UNPUBLISHING_FILE] = orjson.dumps(notice, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    return files


def members_to_bytes(members: tuple[Member, ...]) -> bytes:
    """A manifest, one member per line, so a reorder or re-pin is a one-line diff."""
    if not members:
        return b"[]\n"
    rows = b",\n".join(b"  " + orjson.dumps({"key": m.key, "pin": m.pin}) for m in members)
    return b"[\n" + rows + b"\n]\n"


def members_from_bytes(data: bytes) -> tuple[Member, ...]:
    return tuple(Member(row["key"], row["pin"]) for row in orjson.loads(data))


def files_to_document(files: dict[str, bytes]) -> tuple[Content, bool]:
    """Read back what `document_to_files` wrote: the document and whether it is a tombstone."""
    body = orjson.loads(files[ENTITY_FILE])
    fields = dict(body["fields"])
    for path, data in files.items():
        if path.startswith(f"{TEXT_DIR}/") and path.endswith(".txt"):
            fields[path[len(TEXT_DIR) + 1 : -4]] = data.decode()
    members = members_from_bytes(files[MEMBERS_FILE]) if MEMBERS_FILE in files else None
    notice = Unpublishing(**orjson.loads(files[UNPUBLISHING_FILE])) if UNPUBLISHING_FILE in files else None
    doc = Content(
        body["type"],
        body["title"],
        body["locale"],
        None if body["base_path"] is None else canonical_base_path(body["base_path"]),
        fields,
        body["links"],
        members,
        body.get("content_id"),
        notice,
    )
    return doc, bool(body["deleted"])


def writable(doc: Content) -> dict[str, Any]:
    """The document as the plain JSON object a client would send (for merge patches). An
    unpublishing is not part of it: any edit drafts the content back into ordinary life."""
    body: dict[str, Any] = {
        "type": doc.type,
        "title": doc.title,
        "locale": doc.locale,
        "content_id": doc.content_id,
        "base_path": doc.base_path,
        "fields": doc.fields,
        "links": doc.links,
    }
    if doc.members is not None:
        body["members"] = [{"key": m.key, "pin": m.pin} for m in doc.members]
    return body


def changed_parts(old: Content | None, new: Content) -> list[str]:
    """Names of what differs, for commit messages: `title`, `fields.body`, ..."""
    if old is None:
        return []
    parts = [
        name
        for name in ("type", "title", "locale", "content_id", "base_path", "links", "members", "unpublishing")
        if getattr(old, name) != getattr(new, name)
    ]
    for name in sorted(old.fields.keys() | new.fields.keys()):
        if old.fields.get(name, _MISSING) != new.fields.get(name, _MISSING):
            parts.append(f"fields.{name}")
    return parts


_MISSING = object()


def _belongs_in_own_file(name: str, value: Any) -> bool:
    return (
        isinstance(value, str)
        and "\n" in value
        and "\x00" not in value
        and _TEXT_FIELD_NAME.fullmatch(name) is not None
        and not is_windows_device(name)
    )


def _json_problem(value: Any, level: int = 0) -> str | None:
    """Why `value` would not be stored exactly as JSON (too deep, a number orjson cannot write
    or would write as something else, not JSON at all), or None if it would."""
    if isinstance(value, (dict, list)):
        if level >= _MAX_DEPTH:
            return f"fields may nest at most {_MAX_DEPTH} levels deep"
        if isinstance(value, dict) and not all(isinstance(name, str) for name in value):
            return "object member names are strings"
        children = value.values() if isinstance(value, dict) else value
        return next(filter(None, (_json_problem(child, level + 1) for child in children)), None)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        return None if _MIN_INTEGER <= value <= _MAX_INTEGER else "integers must fit in 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite"
    return f"a {type(value).__name__} is not a JSON value"
