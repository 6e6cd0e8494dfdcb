"""ClusterNode in-process on the real PostgreSQL: adopting what is on disk, the route cache kept
by NOTIFY, re-guarding after an aborted move, credentials in PostgreSQL."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gitstore import Store, content
from gitstore.cluster.api import ClusterCredentials, ClusterNode, ControlPlane
from gitstore.errors import ControlPlaneUnavailable, NotFound, NotOwner
from tests.cluster.postgres import BIN, Postgres
from tests.conftest import ADA

PAGE = {"type": "page", "title": "Page"}


def _eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def plane(cluster_dsn: str) -> Iterator[ControlPlane]:
    made = ControlPlane(cluster_dsn)
    yield made
    made.close()


@pytest.fixture
def pair(tmp_path: Path, plane: ControlPlane, cluster_dsn: str) -> Iterator[tuple[ClusterNode, ControlPlane]]:
    """A running node-1, and the control plane of a node-2 that joined (no process of its own)."""
    node = _node(plane, "node-1", Store(tmp_path / "data"))
    other = ControlPlane(cluster_dsn)
    other.join("node-2", "http://127.0.0.1:9002")
    yield node, other
    node.stop()
    other.close()


def _node(plane: ControlPlane, name: str, store: Store) -> ClusterNode:
    node = ClusterNode(plane, name, f"http://127.0.0.1:{9000 + int(name[-1])}")
    node.start(store)
    return node


def test_a_node_adopts_what_is_on_its_disk_and_leaves_anothers_repository_alone(
    tmp_path: Path, cluster_dsn: str
) -> None:
    first_store, second_store = Store(tmp_path / "one"), Store(tmp_path / "two")
    first_store.create_repository("books", "the first one")
    second_store.create_repository("books", "a stale copy")
    second_store.create_repository("films")
    first_plane, second_plane = ControlPlane(cluster_dsn), ControlPlane(cluster_dsn)
    first = _node(first_plane, "node-1", first_store)
    second = _node(second_plane, "node-2", second_store)
    try:
        routes = {r.repo: (r.owner, r.description) for r in first_plane.routes()}
        assert routes == {"books": ("node-1", "the first one"), "films": ("node-2", "")}
        assert first.fences.guarded() == {"books": 1}
        assert second.fences.guarded() == {"films": 1}  # its copy of books is not written here
        assert not second.owns("books") and second.owns("films")
    finally:
        first.stop()
        second.stop()
        first_plane.close()
        second_plane.close()


def test_the_route_cache_is_invalidated_by_notify(pair: tuple[ClusterNode, ControlPlane]) -> None:
    node, other = pair
    assert _eventually(lambda: node.routes.trusted)
    assert node.routes.route("books") is None  # cached as absent ...
    other.place("books")  # ... until the NOTIFY of its placement arrives
    assert _eventually(lambda: (r := node.routes.route("books")) is not None and r.owner in ("node-1", "node-2"))
    route = node.routes.route("books")
    assert route is not None
    target = "node-2" if route.owner == "node-1" else "node-1"
    other.begin_move("books", target)
    assert _eventually(lambda: getattr(node.routes.route("books"), "state", None) == "moving")


def test_an_aborted_move_re_guards_the_owner_at_the_bumped_epoch(pair: tuple[ClusterNode, ControlPlane]) -> None:
    node, other = pair
    repo = node.create_repository("books")
    assert _eventually(lambda: node.routes.trusted)
    other.begin_move("books", "node-2")
    other.fence("books")
    with pytest.raises(NotOwner):
        content.put_draft(repo, "intro", PAGE, author=ADA)
    other.abort_move("books")
    assert _eventually(lambda: node.fences.epoch("books") == 2)
    assert content.put_draft(repo, "intro", PAGE, author=ADA).changed


def test_a_create_placed_on_another_node_is_not_made_here_and_not_left_registered(
    pair: tuple[ClusterNode, ControlPlane],
) -> None:
    node, other = pair
    plane = node.plane
    node.create_repository("first")  # node-1 now holds one, node-2 none: node-2 is next
    with pytest.raises(NotOwner, match="node-2"):
        node.create_repository("second")
    assert plane.route("second") is None and not (node.store.data_dir / "second.git").exists()
    # A create forwarded to the node it was placed on (api.forwarding) finds its row and makes it.
    other.place("third")  # node-2
    other.set_node_state("node-2", "down")
    other.place("fourth")  # node-1
    assert node.create_repository("fourth").name == "fourth"
    assert node.fences.guarded() == {"first": 1, "fourth": 1}


def test_credentials_in_postgres_are_shared_and_a_revocation_is_seen_at_once(
    plane: ControlPlane, cluster_dsn: str
) -> None:
    elsewhere = ControlPlane(cluster_dsn)  # another node's
    here, there = ClusterCredentials(plane), ClusterCredentials(elsewhere)
    assert here.is_open
    issued = here.create_token("Ada", "ada@example.org", {"books": ["write"]})
    principal = there.authenticate_token(issued.secret)
    assert principal is not None and principal.may("books", "write") and not principal.may("films", "read")
    assert [t.id for t in there.tokens()] == [issued.id]
    there.revoke_token(issued.id)
    assert here.authenticate_token(issued.secret) is None
    with pytest.raises(NotFound):
        here.revoke_token(issued.id)
    client = here.add_client("cms", "CMS", "cms@example.org", {"*": ["read"]})
    assert there.authenticate_client("cms", client.secret) is not None
    assert there.authenticate_client("cms", "wrong") is None
    assert here.signing_key() == there.signing_key() and len(here.signing_key()) == 32
    there.changed()
    assert not there.is_open
    elsewhere.close()


def test_after_postgres_comes_back_the_node_listens_beats_and_writes_again(
    pair: tuple[ClusterNode, ControlPlane], postgres: Postgres, cluster_dsn: str
) -> None:
    node, other = pair
    repo = node.create_repository("books")
    assert _eventually(lambda: node.routes.trusted)
    subprocess.run([str(BIN / "psql"), cluster_dsn, "-c", "checkpoint"], check=True, capture_output=True)
    postgres.kill()
    try:
        with pytest.raises(ControlPlaneUnavailable):
            content.put_draft(repo, "intro", PAGE, author=ADA)
        assert _eventually(lambda: not node.routes.trusted)  # LISTEN lost: the cache is not trusted
        assert node.owns("books")  # routing goes on from the last route known
    finally:
        postgres.start()
    assert _eventually(lambda: node.routes.trusted, seconds=30)
    other.place("films")  # a NOTIFY on the new LISTEN connection reaches the cache
    assert _eventually(lambda: node.routes.route("films") is not None)
    assert _eventually(lambda: any(n.name == "node-1" and n.alive for n in other.nodes()))
    assert content.put_draft(repo, "intro", PAGE, author=ADA).changed
