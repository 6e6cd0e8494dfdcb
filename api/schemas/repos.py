"""Repositories: create, list, describe, prune."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import FromLibrary, RepoName


class RepoCreate(BaseModel):
    """A new content repository."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: RepoName
    description: str = Field(default="", max_length=1000)
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=9,
        description="Copies kept on distinct nodes in a cluster (default GITSTORE_REPLICATION_FACTOR, 2); "
        "more than the active nodes is refused",
    )


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


class ClusterRepoOut(RepoOut):
    """A content repository of the cluster (cluster mode), with the node that owns it. `main`
    and `draft` are known only for repositories of the node answering (null for the others:
    GET /repos/{repo} on any node answers them)."""

    owner: str = Field(description="the node the repository lives on")
    owner_alive: bool = Field(description="whether that node sends its heartbeat")
    state: str = Field(description="active, moving (writes go on), or fenced (a move's last moment)")


class ClusterRepoList(BaseModel):
    """Every repository of the cluster the caller has a scope on, with its owner."""

    items: list[ClusterRepoOut]


class PruneOut(FromLibrary):
    """What a prune removed (or, as a dry run, would remove) and what it kept."""

    dry_run: bool
    pruned_entities: list[str]
    kept: dict[str, str] = Field(description="deleted, never-published entities kept, with the manifest naming each")
    unreachable_objects: int = Field(description="loose objects no ref reaches, older than the grace period")
    seconds: float
