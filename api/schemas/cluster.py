"""The cluster's admin shapes (cluster mode): nodes, where repositories live, moves, drains and
promotions."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import RepoName

NodeName = Field(min_length=1, max_length=128, description="a node's name (GITSTORE_NODE_NAME)")


class MoveCreate(BaseModel):
    """Move `repository` to node `node`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    repository: RepoName
    node: str = NodeName


class MoveRound(BaseModel):
    """One round of a move's copy: a snapshot of the owner, a git fetch, the copy set to it."""

    sealed: bool = Field(description="the last round, after the fence")
    refs_moved: int = Field(description="refs that had moved since the copy's last round (all of them in the first)")
    refs_set_back: int = Field(description="refs the copy set back or removed to agree with the owner's snapshot")
    consistent: bool = Field(description="the copy then agreed with a snapshot of the owner")
    seconds: float
    snapshot_seconds: float
    fetch_seconds: float
    install_seconds: float = Field(description="agreeing with the snapshot: refs set, index taken, public copy")


class MoveOut(BaseModel):
    """A move and where it is: copying, fencing, sealing, placing, flipped, done, or failed."""

    repository: str
    source: str
    target: str
    state: str
    started_at: float
    epoch: int | None = Field(description="the epoch the fence bumped the repository to")
    fenced_at: float | None
    flipped_at: float | None
    finished_at: float | None
    pause_seconds: float | None = Field(description="from the fence to the flip: no write could succeed")
    rounds: list[MoveRound]
    sealed_refs: int | None
    sealed_digest: str | None = Field(description="sha256 of the sorted refs both sides held at the seal")
    source_gave_up: bool | None
    source_unchanged: bool | None = Field(description="the old owner's refs were still the sealed ones when it gave up")
    error: str | None
    steps: dict[str, float] = Field(description="seconds of each step inside the pause: fence, seal, place, own, flip")


class DrainCreate(BaseModel):
    """Move every repository off node `node`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    node: str = NodeName


class DrainMoveOut(BaseModel):
    """One repository a drain moved off its node, to `target`, and how that move ended."""

    repository: str
    target: str
    state: str | None
    error: str | None = None
    pause_seconds: float | None = None
    epoch: int | None = None


class DrainOut(BaseModel):
    """A drain: each move it made, and what the node still owns."""

    node: str
    state: str = Field(description="draining, done or failed")
    started_at: float
    finished_at: float | None
    moves: list[DrainMoveOut]
    left: list[str]
    error: str | None


class PromotionCreate(BaseModel):
    """Make `node`'s in-sync replica of `repository` its owner now."""

    model_config = ConfigDict(extra="forbid", strict=True)
    repository: RepoName
    node: str = NodeName


class PromotionOut(BaseModel):
    """A promotion done: the repository's owner and the epoch it owns it at."""

    repository: str
    owner: str
    epoch: int = Field(description="the fencing epoch, one more than the old owner's")
    seconds: float = Field(description="from the request to the copy serving as the owner")


class NodeOut(BaseModel):
    """A node of the cluster: where it answers, its state, and whether its heartbeat is recent."""

    name: str
    url: str
    state: str = Field(description="active, draining or down")
    heartbeat_at: datetime
    alive: bool
    repositories: int = Field(description="how many repositories it owns")


class NodeList(BaseModel):
    """Every node the control plane knows."""

    items: list[NodeOut]


class RouteOut(BaseModel):
    """Where a repository lives: its owner at an epoch, and a move in flight if any."""

    repository: str
    owner: str
    epoch: int
    state: str = Field(description="active, moving or fenced")
    move_target: str | None
    owner_alive: bool


class ClusterStatus(BaseModel):
    """The cluster as the control plane has it, asked of node `node`."""

    node: str
    nodes: list[NodeOut]
    repositories: list[RouteOut]
