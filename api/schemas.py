"""Request and response shapes, named by role. The entity document itself is gitstore's
`Document`, so the library and the API validate a body the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from gitstore.access.api import EVERY_REPOSITORY
from gitstore.entities.api import Document
from gitstore.names import REPO_NAME_PATTERN, repo_name_problem

EntityPut = Document


def repo_name(name: str) -> str:
    """`name` if it may name a repository (gitstore.names' rule), else ValueError saying why."""
    problem = repo_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


# The library's rule, checked in request validation and stated in the schema. pydantic's regex
# engine has no look-ahead, so the pattern is documentation and the library's check enforces it.
RepoName = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": REPO_NAME_PATTERN}),
    AfterValidator(repo_name),
]


def _hidden(description: str) -> Any:
    """A field that callers without the preview right are not shown: absent, not null."""
    return Field(default=None, exclude_if=lambda value: value is None, description=description)


_PUBLIC_AUTHORS = "without the preview right: the name only, or absent (GITSTORE_PUBLIC_AUTHORS)"


class _FromLibrary(BaseModel):
    """Built straight from gitstore's frozen dataclasses: `EntityOut.model_validate(entity)`."""

    model_config = ConfigDict(from_attributes=True)


class AuthorOut(_FromLibrary):
    """Who made a change: the git author of its commit."""

    name: str
    email: str | None = _hidden("absent for callers without the preview right")


class MemberOut(_FromLibrary):
    """One member of a container's manifest, as stored: its key, and the commit it is pinned to if any."""

    key: str
    pin: str | None = Field(description="a commit of the member's draft branch, or null for the latest")


class UnpublishingOut(_FromLibrary):
    """How a version was taken down, and why: the notice readers of it are shown."""

    type: Literal["gone", "redirect", "vanish", "withdrawn"]
    at: datetime = Field(description="when it was unpublished")
    explanation: str | None
    alternative_path: str | None


class EntityOut(_FromLibrary):
    """An entity as one view shows it: its document, where it stands (draft, published, superseded) and its validator (commit)."""

    key: str
    type: str
    title: str
    locale: str
    content_id: str = Field(description="the document this entity is a translation of (its own key if none)")
    base_path: str | None
    fields: dict[str, Any]
    links: dict[str, list[str]]
    members: list[MemberOut] | None = Field(description="a container's ordered manifest; null if not a container")
    version: int
    edition: int
    commit: str
    state: Literal["draft", "published", "superseded"]
    published_commit: str | None
    has_unpublished_changes: bool | None = _hidden("the draft differs from this; absent without the preview right")
    deleted: bool
    author: AuthorOut | None = _hidden(_PUBLIC_AUTHORS)
    updated_at: datetime
    unpublishing: UnpublishingOut | None = Field(
        default=None, description="how this version was taken down (gone, redirect, withdrawn), if it was"
    )
    withdrawn_at: datetime | None = Field(default=None, description="set while withdrawn")


class EntityWritten(EntityOut):
    """The entity's draft after a write, with anything true but worth knowing about it."""

    warnings: list[str] = Field(
        default_factory=list, description="true but allowed, e.g. the base_path is live on another entity"
    )


class EntityPage(BaseModel):
    """One page of an entity list; pass next_cursor as ?cursor= for the next."""

    items: list[EntityOut]
    next_cursor: str | None
    damaged: list[str] = Field(
        default_factory=list,
        description="keys of this page left out of items because their stored content is damaged: "
        "each one's own URL answers the corrupt-object problem; `gitstore fsck` finds the cause",
    )


class VersionOut(_FromLibrary):
    """One version of an entity: a commit on its draft branch, and whether it went live."""

    version: int
    edition: int
    commit: str
    action: str
    message: str
    author: AuthorOut
    committed_at: datetime
    live: bool = Field(description="this version is the one live now")
    published_at: datetime | None = Field(description="when this version first went live, if it ever did")


class VersionPage(BaseModel):
    """One page of an entity's versions, newest first."""

    items: list[VersionOut]
    next_cursor: str | None


class RepoCreate(BaseModel):
    """A new content repository."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: RepoName
    description: str = Field(default="", max_length=1000)


class RepoOut(BaseModel):
    """A content repository and the heads of its two views."""

    name: str
    description: str
    main: str | None = Field(description="commit of refs/heads/main, the live site")
    draft: str | None = Field(
        description=(
            "commit of refs/heads/draft, every current draft, as it is: changes of the last second may"
            " still wait to be folded in (null without the preview right)"
        )
    )


class RepoList(BaseModel):
    """The repositories the caller has a scope on."""

    items: list[RepoOut]


class _PublishNote(BaseModel):
    """GOV.UK's why of a publish, recorded in its commit on main, the publish log and the feed."""

    model_config = ConfigDict(extra="forbid", strict=True)
    update_type: Literal["major", "minor", "republish"] | None = Field(
        default=None, description="major: readers are told; minor: a correction; republish: sent again"
    )
    change_note: str | None = Field(default=None, max_length=10_000, description="what changed, in one line")


class PublishEntityRequest(_PublishNote):
    """How to publish one entity: optionally a version, and the note GOV.UK-style publishing records."""

    version: int | None = Field(default=None, ge=1, description="publish this version (a fast-forward only)")


class PublishRequest(_PublishNote):
    """Which entities to publish in one atomic operation: a list of keys, or every draft."""

    keys: list[str] | None = Field(default=None, max_length=10000)
    all_drafts: bool = False


class DiscardRequest(BaseModel):
    """Discarding takes no options: an empty object, or no body."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RestoreRequest(BaseModel):
    """Which old version to restore: a version number or a commit, exactly one."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        # _one_of, as JSON Schema: the other one absent or null.
        json_schema_extra={
            "oneOf": [
                {"required": ["version"], "properties": {"version": {"type": "integer"}, "commit": {"type": "null"}}},
                {"required": ["commit"], "properties": {"commit": {"type": "string"}, "version": {"type": "null"}}},
            ]
        },
    )
    version: int | None = Field(default=None, ge=1)
    commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")

    @model_validator(mode="after")
    def _one_of(self) -> RestoreRequest:
        if (self.version is None) == (self.commit is None):
            raise ValueError("name exactly one of version, commit")
        return self


class PublishedItemOut(_FromLibrary):
    """One entity a publish put live (or took down, if deleted)."""

    key: str
    commit: str
    version: int
    edition: int
    deleted: bool


class PublishOut(_FromLibrary):
    """What a publish or unpublish did: its commit on main, each entity, and what else to re-present."""

    commit: str | None = Field(description="the publish commit on main; null if nothing needed publishing")
    author: AuthorOut
    published_at: datetime | None
    items: list[PublishedItemOut]
    dependents: list[str] = Field(description="other entities whose expanded representation changed: re-present them")


class UnpublishRequest(_PublishNote):
    """How to take live content down, and what readers are told."""

    type: Literal["gone", "redirect", "vanish", "withdrawn"] = Field(
        description="gone: 410 with the explanation; vanish: 410 with none, unlisted; redirect: 301 to "
        "alternative_path; withdrawn: still readable, with the explanation"
    )
    alternative_path: str | None = Field(default=None, max_length=2048, description="where a redirect goes")
    explanation: str | None = Field(default=None, max_length=10_000, description="why; required to withdraw")
    discard_draft: bool = Field(default=False, description="throw away unpublished draft changes (kept in history)")


class LinkSummaryOut(_FromLibrary):
    """A linked entity, summarised for a reader: enough to render a link to it."""

    key: str
    type: str
    title: str
    base_path: str | None
    locale: str
    content_id: str
    withdrawn: bool


class ExpandedLinksOut(_FromLibrary):
    """An entity's links resolved to their targets, with breadcrumbs and translations."""

    key: str
    state: Literal["draft", "published"]
    locale: str = Field(description="the locale targets were chosen in, where their document has it")
    links: dict[str, list[LinkSummaryOut]] = Field(description="each link type, and each reverse type (children, ...)")
    breadcrumbs: list[LinkSummaryOut] = Field(description="parent, its parent, ...: nearest first, cycles cut")
    available_translations: list[LinkSummaryOut]


class KeyList(BaseModel):
    """Entity keys."""

    items: list[str]


class LinkTypeOut(_FromLibrary):
    """A link type and how it behaves: its reverse name and whether breadcrumbs follow it."""

    name: str
    reverse: str | None = Field(description="the link type its targets show it under, e.g. parent -> children")
    breadcrumbs: bool = Field(description="followed transitively for breadcrumbs")
    overridden: bool


class LinkTypeList(BaseModel):
    """Every link type the repository knows."""

    items: list[LinkTypeOut]


class LinkTypePut(BaseModel):
    """How a link type behaves in this repository."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reverse: str | None = None
    breadcrumbs: bool = False


class TranslationOut(_FromLibrary):
    """One locale of a document."""

    key: str
    locale: str
    title: str
    base_path: str | None
    draft: bool | None = Field(description="has a draft (null without preview rights)")
    live: bool


class DocumentOut(BaseModel):
    """A document (content_id) and each of its translations."""

    content_id: str
    translations: list[TranslationOut]


class EventOut(_FromLibrary):
    """One change in the event feed: an entity's draft or live view moved."""

    id: str = Field(description="the cursor that resumes right after this event")
    kind: Literal["draft_changed", "published", "unpublished", "deleted", "discarded"]
    view: Literal["draft", "live"]
    key: str
    commit: str
    action: str
    author: AuthorOut | None = _hidden(_PUBLIC_AUTHORS)
    at: datetime
    dependents: list[str]
    update_type: str | None = Field(default=None, description="a live event's: what its publish said")
    change_note: str | None = None


class EventPageOut(BaseModel):
    """Events after a cursor, oldest first, and the cursor to resume from."""

    items: list[EventOut]
    cursor: str = Field(description="pass as ?after= to get what happens next")


class FieldChangeOut(_FromLibrary):
    """One changed field between two versions, as a JSON Pointer and both values."""

    path: str = Field(description="JSON Pointer into the entity document")
    op: Literal["add", "remove", "replace"]
    old: Any
    new: Any


class DiffOut(_FromLibrary):
    """What changed between two versions of an entity: field by field, and as a patch."""

    key: str
    from_commit: str | None
    to_commit: str
    from_version: int | None
    to_version: int
    changes: list[FieldChangeOut]
    patch: str = Field(description="git-style unified patch (diff --git headers)")


class BlameLineOut(_FromLibrary):
    """One line of a file, and the version that last changed it."""

    line: int
    content: str
    commit: str
    version: int
    author: AuthorOut
    committed_at: datetime


class BlameOut(_FromLibrary):
    """Who last changed each line of one of an entity's files."""

    key: str
    path: str
    lines: list[BlameLineOut]


class ChangeOut(_FromLibrary):
    """One draft change in the repository's activity log."""

    key: str
    action: str
    version: int
    commit: str
    author: AuthorOut
    at: datetime


class ActivityPage(BaseModel):
    """One page of the activity log, newest first."""

    items: list[ChangeOut]
    next_cursor: str | None


class PublishLogItemOut(_FromLibrary):
    """One entity in a publish-log entry."""

    key: str
    commit: str
    version: int
    deleted: bool


class PublishLogEntryOut(_FromLibrary):
    """One publish (or unpublish) on main: who, when, what and why."""

    id: int
    commit: str = Field(description="the publish commit on main")
    author: AuthorOut | None = _hidden(_PUBLIC_AUTHORS)
    at: datetime
    items: list[PublishLogItemOut]
    summary: str = Field(description='what it did: "Publish guide version 3", "Unpublish guide (gone)"')
    update_type: str | None
    change_note: str | None


class PublishLogPage(BaseModel):
    """One page of the publish log, newest first."""

    items: list[PublishLogEntryOut]
    next_cursor: str | None


class MemberList(BaseModel):
    """A container version's member list."""

    items: list[MemberOut]


class TreeNodeOut(_FromLibrary):
    """A container resolved to a tree: each member at the commit it resolves to, nested."""

    key: str
    type: str
    title: str
    commit: str
    version: int
    pinned: bool
    contains_unpublished_changes: bool | None = Field(
        description="the draft of anything in this subtree differs from what is live (null without preview rights)"
    )
    members: list[TreeNodeOut] | None = Field(description="null for an entity that is not a container")
    unpublishing: UnpublishingOut | None = Field(
        default=None, description="how this version was taken down; live trees leave out all but withdrawn members"
    )


class UsageOut(_FromLibrary):
    """A container whose manifest names the entity, and in which view."""

    container: str
    view: Literal["draft", "live"]
    pinned: bool = Field(description="the manifest pins this entity to a commit")


class UsageList(BaseModel):
    """Where an entity is used: the containers naming it."""

    items: list[UsageOut]


class ContainerTypeOut(_FromLibrary):
    """A container type and the member types it admits."""

    name: str
    allowed_member_types: list[str] | None = Field(
        description="types a member may have (a dotted subtype matches: component admits component.html); "
        "null for any, [] for a leaf"
    )
    overridden: bool = Field(description="set by this repository rather than a gitstore default")


class ContainerTypeList(BaseModel):
    """Every container type the repository knows."""

    items: list[ContainerTypeOut]


class ContainerTypePut(BaseModel):
    """What a container type may hold in this repository."""

    model_config = ConfigDict(extra="forbid", strict=True)
    allowed_member_types: list[str] | None = Field(max_length=1000)


class PruneOut(_FromLibrary):
    """What a prune removed (or, as a dry run, would remove) and what it kept."""

    dry_run: bool
    pruned_entities: list[str]
    kept: dict[str, str] = Field(description="deleted, never-published entities kept, with the manifest naming each")
    unreachable_objects: int = Field(description="loose objects no ref reaches, older than the grace period")
    seconds: float


# -- credentials ---------------------------------------------------------------------------------

ScopeName = Literal["read", "preview", "write", "publish", "admin"]


def _grantee(name: str) -> str:
    return name if name == EVERY_REPOSITORY else repo_name(name)


_GRANTEE_PATTERN = r"^(?:\*$|" + REPO_NAME_PATTERN[1:] + ")"
Grantee = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_grantee)]
Grants = Annotated[
    dict[Grantee, Annotated[list[ScopeName], Field(min_length=1)]],
    Field(min_length=1),
    # pydantic would state the name rule as patternProperties, which lets any other name through.
    WithJsonSchema(
        {
            "type": "object",
            "description": 'repository name (or "*" for all) -> a non-empty list of scopes',
            "minProperties": 1,
            "propertyNames": {"pattern": _GRANTEE_PATTERN, "maxLength": 64},
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "items": {"enum": list(get_args(ScopeName))},
            },
            "examples": [{"demo": ["write"]}],
        }
    ),
]


# A token's or client's person becomes a git author line (gitstore.access.credentials).
_AUTHOR_LINE = r"^[^<>\n\r\x00]*$"
HolderName = Annotated[
    str, Field(min_length=1, max_length=200, pattern=_AUTHOR_LINE, description="becomes the git author name")
]
HolderEmail = Annotated[
    str, Field(min_length=3, max_length=200, pattern=_AUTHOR_LINE, description="becomes the git author email")
]


class TokenCreate(BaseModel):
    """A token to issue: whose it is (the git author of its commits), its scopes and lifetime."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: HolderName
    email: HolderEmail
    scopes: Grants
    # A century at most: far beyond that the expiry is past what a datetime can hold (was a 500).
    expires_in_seconds: int | None = Field(default=None, ge=60, le=100 * 365 * 24 * 3600)


class TokenCreated(BaseModel):
    """A new token: its id, and its secret, shown this once."""

    id: str
    token: str = Field(description="shown once; send as Authorization: Bearer <token>")


class TokenOut(_FromLibrary):
    """A token as the credentials file keeps it (never its secret)."""

    id: str
    name: str
    email: str
    scopes: dict[str, list[str]]
    created_at: str
    expires_at: str | None


class TokenList(BaseModel):
    """Every token."""

    items: list[TokenOut]


class ClientCreate(BaseModel):
    """An OAuth client to register: its id, whose it is, and its scopes."""

    model_config = ConfigDict(extra="forbid", strict=True)
    client_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    name: HolderName
    email: HolderEmail
    scopes: Grants


class ClientCreated(BaseModel):
    """A new OAuth client: its id, and its secret, shown this once."""

    client_id: str
    client_secret: str = Field(description="shown once")


class ClientOut(_FromLibrary):
    """An OAuth client (never its secret)."""

    client_id: str
    name: str
    email: str
    scopes: dict[str, list[str]]
    created_at: str


class ClientList(BaseModel):
    """Every OAuth client."""

    items: list[ClientOut]


class EraseRequest(BaseModel):
    """What to erase, and the reason kept on the record."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reason: str = Field(
        min_length=1, max_length=10_000, description="why (a court order, a takedown notice): on the record"
    )
    version: int | None = Field(
        default=None, ge=1, description="erase only what this version wrote, wherever it recurs; omit for every version"
    )


class ErasureOut(_FromLibrary):
    """An erasure as its record keeps it: what, who, when, why, and where each ref and each of
    the erased entity's rewritten commits went."""

    id: str
    key: str
    version: int | None = Field(description="the version erased, or null for every version")
    reason: str
    by: AuthorOut
    at: datetime
    refs: dict[str, tuple[str, str]] = Field(description="each ref the erasure moved: [before, after]")
    commits: dict[str, str] = Field(description="each rewritten commit of the entity: old id -> new id")
