"""Every node answers every URL: three real nodes (tests/cluster/nodes.py) on one real PostgreSQL,
the real git client, requests through random nodes compared with the owner's own answers."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from gitstore.cluster.api import HEADER, ClusterCredentials, ControlPlane, forwarded_header
from tests.cluster.answers import assert_same_through, same_answer
from tests.cluster.nodes import Node, nodes
from tests.conftest import fsck_strict, git, object_bytes
from tests.git.conftest import run_git

PAGE = {"type": "page", "title": "A page", "fields": {"body": "Hello.\n"}}
DRAFT_PATHS = ("", "/entities?state=draft", "/entities/stable?state=draft", "/types")


@pytest.fixture
def cluster(tmp_path: Path, cluster_dsn: str) -> Iterator[list[Node]]:
    made = nodes(tmp_path, cluster_dsn, 3)
    try:
        for node in made:
            node.start()
        yield made
    finally:
        for node in made:
            node.stop()


def owners(client: httpx2.Client, node: Node) -> dict[str, str]:
    listed = client.get(node.url + "/repos")
    assert listed.status_code == 200, listed.text
    return {item["name"]: item["owner"] for item in listed.json()["items"]}


def by_name(cluster: list[Node]) -> dict[str, Node]:
    return {node.name: node for node in cluster}


def fsck_every_repository(cluster: list[Node]) -> int:
    checked = 0
    for node in cluster:
        for path in sorted(node.data.glob("*.git")):
            fsck_strict(path)
            checked += 1
    return checked


@pytest.mark.timeout(600)
def test_thirty_repositories_over_three_nodes_answer_the_same_through_every_node(cluster: list[Node]) -> None:
    rng = random.Random(23)
    names = [f"repo-{i:02d}" for i in range(30)]
    with httpx2.Client(timeout=60) as client:
        for name in names:
            made = client.post(rng.choice(cluster).url + "/repos", json={"name": name, "description": name})
            assert made.status_code == 201, made.text
            assert made.json()["name"] == name
        placed = owners(client, cluster[0])
        assert set(placed) == set(names)
        assert sorted(list(placed.values()).count(n.name) for n in cluster) == [10, 10, 10]  # least-loaded
        for node in cluster[1:]:
            assert owners(client, node) == placed  # never forwarded: every node lists the cluster
        for name, owner in placed.items():
            for node in cluster:
                assert (node.data / f"{name}.git").is_dir() == (node.name == owner), (name, node.name)
            stable = client.put(f"{rng.choice(cluster).url}/repos/{name}/entities/stable", json=PAGE)
            assert stable.status_code == 201, stable.text
    home = {name: by_name(cluster)[owner] for name, owner in placed.items()}

    acked: list[tuple[str, str, str]] = []  # (repository, key, commit) of every acknowledged write
    failures: list[str] = []
    writing = threading.Event()
    writing.set()

    def writer(index: int) -> None:
        mine = random.Random(index)
        etags: dict[tuple[str, str], str] = {}
        with httpx2.Client(timeout=60) as c:
            for round_ in range(30):
                repo, key = mine.choice(names), f"w{index}-{mine.randrange(3)}"
                headers = {"If-Match": etags[repo, key]} if (repo, key) in etags else {"If-None-Match": "*"}
                body = PAGE | {"title": f"writer {index} round {round_}"}
                put = c.put(f"{mine.choice(cluster).url}/repos/{repo}/entities/{key}", json=body, headers=headers)
                if put.status_code not in (200, 201):
                    failures.append(f"PUT {repo}/{key}: {put.status_code} {put.text}")
                    continue
                etags[repo, key] = put.headers["etag"]
                acked.append((repo, key, put.headers["etag"].strip('"')))
                # Nobody else writes this key: through any node it reads as its owner has it.
                path = f"/repos/{repo}/entities/{key}?state=draft"
                through, direct = c.get(mine.choice(cluster).url + path), c.get(home[repo].url + path)
                if not same_answer(through, direct) or through.headers["etag"] != put.headers["etag"]:
                    failures.append(f"GET {path}: {through.status_code} {through.text} != {direct.text}")

    def reader(index: int) -> None:
        mine = random.Random(100 + index)
        with httpx2.Client(timeout=60) as c:
            for _ in range(400):
                if not writing.is_set():
                    return
                repo = mine.choice(names)
                path = f"/repos/{repo}/entities/stable?state=draft"
                through, direct = c.get(mine.choice(cluster).url + path), c.get(home[repo].url + path)
                if not same_answer(through, direct):
                    failures.append(f"GET {path}: {through.status_code} != {direct.status_code}")
                listing = c.get(f"{mine.choice(cluster).url}/repos/{repo}/entities?state=draft")
                if listing.status_code != 200:
                    failures.append(f"list {repo}: {listing.status_code} {listing.text}")

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    readers = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join(300)
    writing.clear()
    for thread in readers:
        thread.join(60)
    assert not any(t.is_alive() for t in writers + readers), "a client thread hung"
    assert not failures, failures[:5]
    assert len(acked) == 4 * 30

    with httpx2.Client(timeout=60) as client:
        for name in names:
            for path in DRAFT_PATHS:
                for node in cluster:
                    assert_same_through(client, node.url, home[name].url, f"/repos/{name}{path}")
    for repo, key, commit in acked:
        assert git(home[repo].data / f"{repo}.git", "merge-base", "--is-ancestor", commit, f"refs/drafts/{key}") == ""
    assert fsck_every_repository(cluster) >= 30


def refs(path: Path) -> str:
    return run_git("-C", str(path), "for-each-ref", "--format=%(objectname) %(refname)").stdout


def test_a_clone_through_a_node_that_does_not_own_the_repository_equals_one_from_the_owner(
    cluster: list[Node], tmp_path: Path
) -> None:
    with httpx2.Client(timeout=60) as client:
        assert client.post(cluster[0].url + "/repos", json={"name": "site"}).status_code == 201
        owner = by_name(cluster)[owners(client, cluster[0])["site"]]
        for i in range(5):
            put = client.put(f"{cluster[i % 3].url}/repos/site/entities/page-{i}", json=PAGE | {"title": f"Page {i}"})
            assert put.status_code == 201, put.text
            if i % 2 == 0:
                published = client.post(
                    f"{cluster[(i + 1) % 3].url}/repos/site/entities/page-{i}/publish",
                    headers={"If-Match": put.headers["etag"]},
                )
                assert published.status_code == 200, published.text
    others = [node for node in cluster if node is not owner]
    for protocol, remote in itertools.product((0, 2), ("/git/site.git", "/git/live/site.git")):
        version = ("-c", f"protocol.version={protocol}")
        name = f"v{protocol}{remote.replace('/', '-')}"
        direct = tmp_path / f"direct-{name}"
        run_git(*version, "clone", "-q", "--mirror", owner.url + remote, str(direct))
        assert refs(direct)
        for node in others:
            through = tmp_path / f"{node.name}-{name}"
            run_git(*version, "clone", "-q", "--mirror", node.url + remote, str(through))
            assert refs(through) == refs(direct), (node.name, protocol, remote)
            assert object_bytes(through) == object_bytes(direct), (node.name, protocol, remote)


@pytest.mark.timeout(300)
def test_a_killed_node_leaves_only_its_repositories_unavailable_until_it_is_back(cluster: list[Node]) -> None:
    with httpx2.Client(timeout=30) as client:
        for i in range(6):
            assert client.post(cluster[i % 3].url + "/repos", json={"name": f"r{i}"}).status_code == 201
        placed = owners(client, cluster[0])
        victim = cluster[2]
        lost = sorted(name for name, owner in placed.items() if owner == victim.name)
        kept = sorted(name for name, owner in placed.items() if owner != victim.name)
        assert lost and kept
        victim.kill()
        for node in cluster[:2]:
            for name in lost:
                for answer in (
                    client.get(f"{node.url}/repos/{name}"),
                    client.put(f"{node.url}/repos/{name}/entities/during", json=PAGE),
                ):
                    assert answer.status_code == 503, answer.text
                    assert int(answer.headers["retry-after"]) >= 1
                    problem = answer.json()
                    assert problem["name"] == name and problem["node"] == victim.name
                    assert name in problem["detail"] and victim.name in problem["detail"]
            for name in kept:
                assert client.get(f"{node.url}/repos/{name}").status_code == 200
                put = client.put(f"{node.url}/repos/{name}/entities/during-{node.name}", json=PAGE)
                assert put.status_code == 201, put.text
            listed = client.get(node.url + "/repos")
            assert listed.status_code == 200 and {i["name"] for i in listed.json()["items"]} == set(placed)
        victim.start()
        deadline = time.monotonic() + 30
        for node in cluster:
            for name in lost:
                while (answer := client.get(f"{node.url}/repos/{name}")).status_code != 200:
                    assert time.monotonic() < deadline, answer.text
                    time.sleep(0.2)
                put = client.put(f"{node.url}/repos/{name}/entities/after-{node.name}", json=PAGE)
                assert put.status_code == 201, put.text
    assert fsck_every_repository(cluster) == 6


def test_a_forged_forwarding_header_neither_skips_authentication_nor_stops_or_loops_a_forward(
    cluster: list[Node], cluster_dsn: str
) -> None:
    plane = ControlPlane(cluster_dsn)
    try:
        token = ClusterCredentials(plane).create_token("Ada", "ada@example.org", {"*": ["admin"]}).secret
        secret = plane.secret()
    finally:
        plane.close()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx2.Client(timeout=30) as client:
        assert client.post(cluster[0].url + "/repos", json={"name": "guarded"}, headers=auth).status_code == 201
        owner = by_name(cluster)[_owner_with(client, cluster, auth)]
        other = next(node for node in cluster if node is not owner)
        path = "/repos/guarded"
        forged = [
            f"node={owner.name}, ts={int(time.time())}, for=127.0.0.1, sig={'0' * 64}",
            forwarded_header(b"another cluster's secret", other.name, "GET", path.encode(), "127.0.0.1"),
            forwarded_header(secret, other.name, "GET", b"/repos/elsewhere", "127.0.0.1"),  # for another path
            forwarded_header(secret, other.name, "GET", path.encode(), "127.0.0.1", now=time.time() - 600),
        ]
        for value in forged:
            for node in (owner, other):
                # Dropped: authentication as for anyone from outside, and a non-owner still forwards.
                bare = client.get(node.url + path, headers={HEADER: value})
                assert bare.status_code == 401, (node.name, value, bare.text)
                assert client.get(node.url + path, headers={HEADER: value} | auth).status_code == 200
                refused = client.put(node.url + path + "/entities/x", json=PAGE, headers={HEADER: value})
                assert refused.status_code == 401
        # A good signature (only a node has the secret) is never forwarded on: that is what stops loops.
        good = forwarded_header(secret, owner.name, "GET", path.encode(), "127.0.0.1")
        misdirected = client.get(other.url + path, headers={HEADER: good} | auth)
        assert misdirected.status_code == 421 and misdirected.headers["retry-after"] == "0"
        assert misdirected.json()["name"] == "guarded"
        # ... and vouches for no one: the owner still wants the caller's own credentials.
        assert client.get(owner.url + path, headers={HEADER: good}).status_code == 401


def _owner_with(client: httpx2.Client, cluster: list[Node], auth: dict[str, str]) -> str:
    listed = client.get(cluster[0].url + "/repos", headers=auth)
    assert listed.status_code == 200, listed.text
    return {item["name"]: item["owner"] for item in listed.json()["items"]}["guarded"]


def test_a_repository_the_caller_may_not_create_leaves_no_placement_behind(
    cluster: list[Node], cluster_dsn: str
) -> None:
    plane = ControlPlane(cluster_dsn)
    try:
        credentials = ClusterCredentials(plane)
        reader = {"Authorization": f"Bearer {credentials.create_token('Tom', 'tom@x.org', {'*': ['read']}).secret}"}
        admin = {"Authorization": f"Bearer {credentials.create_token('Ada', 'ada@x.org', {'*': ['admin']}).secret}"}
        with httpx2.Client(timeout=30) as client:
            for node in cluster:
                refused = client.post(node.url + "/repos", json={"name": "not-mine"}, headers=reader)
                assert refused.status_code == 403, refused.text
                assert client.post(node.url + "/repos", json={"name": "not-mine"}).status_code == 401
                for bad in ({"name": "Bad Name!"}, {"name": "ok", "extra": 1}, {"description": "no name"}):
                    assert client.post(node.url + "/repos", json=bad, headers=admin).status_code == 422
        assert plane.route("not-mine") is None and plane.routes() == []
    finally:
        plane.close()


def test_an_event_stream_through_a_node_that_does_not_own_the_repository_delivers_events(
    cluster: list[Node],
) -> None:
    with httpx2.Client(timeout=30) as client:
        assert client.post(cluster[0].url + "/repos", json={"name": "news"}).status_code == 201
        owner = by_name(cluster)[owners(client, cluster[0])["news"]]
    other = next(node for node in cluster if node is not owner)
    seen: list[str] = []
    opened = threading.Event()

    def listen() -> None:
        with httpx2.Client(timeout=30) as c:
            url = f"{other.url}/repos/news/events?after=latest&wait=20"
            with c.stream("GET", url, headers={"Accept": "text/event-stream"}) as stream:
                assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
                opened.set()
                for line in stream.iter_lines():
                    if line.startswith("event:"):
                        seen.append(line)
                    if len(seen) == 2:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(15)
    with httpx2.Client(timeout=30) as client:
        for key in ("first", "second"):
            assert client.put(f"{owner.url}/repos/news/entities/{key}", json=PAGE).status_code == 201
            time.sleep(0.3)
    listener.join(20)
    assert seen == ["event: draft_changed", "event: draft_changed"], seen
