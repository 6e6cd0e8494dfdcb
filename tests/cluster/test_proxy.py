"""Forwarding on its own (no control plane): three real uvicorn nodes that route by a JSON table
each (tests/cluster/static.py), the real git client, and routes made stale on purpose."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import orjson
import pytest

from gitstore.cluster.api import HEADER, forwarded_header
from tests.cluster.answers import assert_same_through
from tests.cluster.static import SECRET, StaticNode, static_nodes
from tests.conftest import object_bytes
from tests.git.conftest import run_git

REPOS = {"site": "node-2", "here": "node-1", "far": "node-3", "big": "node-2", "moved": "node-2"}
PAGE = {"type": "page", "title": "A page", "fields": {"body": "Hello.\n"}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[StaticNode]]:
    nodes = static_nodes(tmp_path_factory.mktemp("static-cluster"), 3, REPOS)
    try:
        for node in nodes:
            node.start()
        with httpx2.Client(timeout=30) as client:
            for repo in ("site", "far", "big", "moved"):  # each through a node that does not own it
                via = nodes[2] if repo == "moved" else nodes[0]
                answer = client.post(f"{via.url}/repos", json={"name": repo, "description": f"{repo}, placed"})
                assert answer.status_code == 201, answer.text
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def owner_of(cluster: list[StaticNode], repo: str) -> StaticNode:
    return next(n for n in cluster if n.name == REPOS[repo])


def test_a_repository_created_through_any_node_lives_on_its_owner_only(cluster: list[StaticNode]) -> None:
    for repo in ("site", "far", "big"):
        for node in cluster:
            assert (node.data / f"{repo}.git").is_dir() == (node.name == REPOS[repo]), (repo, node.name)


def test_rest_answers_through_a_node_that_does_not_own_the_repository_equal_the_owners(
    cluster: list[StaticNode],
) -> None:
    owner = owner_of(cluster, "site")
    with httpx2.Client(timeout=30) as client:
        put = client.put(f"{cluster[0].url}/repos/site/entities/welcome", json=PAGE)
        assert put.status_code in (200, 201), put.text
        etag = put.headers["etag"]
        patched = client.patch(
            f"{cluster[2].url}/repos/site/entities/welcome",
            content=orjson.dumps({"title": "Welcome"}),
            headers={"Content-Type": "application/merge-patch+json", "If-Match": etag},
        )
        assert patched.status_code == 200, patched.text
        for path in ("/repos/site", "/repos/site/entities/welcome?state=draft", "/repos/site/entities?state=draft"):
            for node in cluster:
                assert_same_through(client, node.url, owner.url, path)
                assert client.get(node.url + path).headers["content-type"] == "application/json"
        stale = client.put(f"{cluster[0].url}/repos/site/entities/welcome", json=PAGE, headers={"If-Match": etag})
        assert stale.status_code == 412  # the owner's precondition, relayed as it answered
        head = client.head(f"{cluster[0].url}/repos/site/entities/welcome?state=draft")
        assert head.status_code == 200 and head.content == b""
        assert (
            head.headers["etag"] == client.get(owner.url + "/repos/site/entities/welcome?state=draft").headers["etag"]
        )
        missing = client.get(f"{cluster[0].url}/repos/site/entities/nothing-here")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_a_bundle_exported_and_imported_through_other_nodes_streams_both_ways(cluster: list[StaticNode]) -> None:
    """An export (a streamed answer of unknown length) from `site` through node-1, imported
    (a streamed request body) into `far` through node-2: `far` then holds what `site` holds."""
    with httpx2.Client(timeout=60) as client:
        for i in range(20):
            client.put(f"{cluster[0].url}/repos/site/entities/bundled-{i}", json=PAGE | {"title": f"Bundled {i}"})
        path = "/repos/site/export?state=draft&format=ndjson"
        exported = client.get(cluster[0].url + path)
        direct = client.get(owner_of(cluster, "site").url + path)
        assert exported.status_code == 200 and exported.headers.get("content-length") is None  # streamed
        assert exported.content == direct.content
        imported = client.post(
            f"{cluster[1].url}/repos/far/import",
            content=iter([exported.content[i : i + 4096] for i in range(0, len(exported.content), 4096)]),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert imported.status_code == 200, imported.text
        far = client.get(f"{cluster[0].url}/repos/far/export?state=draft&format=ndjson")
        assert sorted(far.content.splitlines()) == sorted(exported.content.splitlines())


def clone(url: str, dest: Path, *extra: str) -> Path:
    run_git("clone", "-q", "--mirror", *extra, url, str(dest))
    return dest


def refs(path: Path) -> str:
    return run_git("-C", str(path), "for-each-ref", "--format=%(objectname) %(refname)").stdout


@pytest.mark.parametrize("protocol", [0, 2])
@pytest.mark.parametrize("remote", ["/git/site.git", "/git/live/site.git"])
def test_a_clone_through_another_node_equals_a_clone_from_the_owner(
    cluster: list[StaticNode], tmp_path: Path, protocol: int, remote: str
) -> None:
    with httpx2.Client(timeout=30) as client:
        put = client.put(f"{cluster[0].url}/repos/site/entities/cloned", json=PAGE)
        assert (
            client.post(
                f"{cluster[2].url}/repos/site/entities/cloned/publish", headers={"If-Match": put.headers["etag"]}
            ).status_code
            == 200
        )
    version = ("-c", f"protocol.version={protocol}")
    direct = clone(owner_of(cluster, "site").url + remote, tmp_path / "direct", *version)
    through = clone(cluster[0].url + remote, tmp_path / "through", *version)
    assert refs(through) == refs(direct) and refs(direct)
    assert object_bytes(through) == object_bytes(direct)
    fetched = run_git("-C", str(through), *version, "fetch", "-q", "--prune", cluster[2].url + remote, "+refs/*:refs/*")
    assert fetched.returncode == 0 and refs(through) == refs(direct)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_clone_of_a_big_repository_streams_through_without_being_held_in_memory(
    cluster: list[StaticNode], tmp_path: Path
) -> None:
    """48 MiB of incompressible blobs on a branch of the owner's repository: the forwarding
    node's peak memory grows by far less than the pack it relays."""
    owner = owner_of(cluster, "big")
    size, count = 48 * 1024 * 1024, 12
    script = []
    for i in range(count):
        blob = (i.to_bytes(4, "big") * 16) + os.urandom(size // count)
        script.append(b"blob\nmark :%d\ndata %d\n" % (i + 1, len(blob)) + blob + b"\n")
    script.append(b"commit refs/heads/bulk\ncommitter t <t@example.org> 0 +0000\ndata 5\nbulk\n")
    script += [b"M 100644 :%d blob-%d\n" % (i + 1, i) for i in range(count)]
    subprocess.run(
        ["git", "--git-dir", str(owner.data / "big.git"), "fast-import", "--quiet"],
        input=b"".join(script) + b"\n",
        check=True,
        timeout=120,
    )
    forwarder = cluster[0]
    assert forwarder.proc is not None
    before = _peak_rss_kib(forwarder.proc.pid)
    started = time.monotonic()
    through = clone(forwarder.url + "/git/big.git", tmp_path / "through")
    took = time.monotonic() - started
    grown = _peak_rss_kib(forwarder.proc.pid) - before
    direct = clone(owner.url + "/git/big.git", tmp_path / "direct")
    assert refs(through) == refs(direct)
    assert object_bytes(through) == object_bytes(direct)
    assert grown < 16 * 1024, (
        f"the forwarding node's peak memory grew {grown} KiB for a {size >> 20} MiB clone ({took:.1f} s)"
    )


def test_an_event_stream_through_another_node_delivers_events(cluster: list[StaticNode]) -> None:
    seen: list[str] = []
    opened = threading.Event()

    def listen() -> None:
        with httpx2.Client(timeout=30) as client:
            url = f"{cluster[2].url}/repos/site/events?after=latest&wait=20"
            with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as stream:
                assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
                opened.set()
                for line in stream.iter_lines():
                    if line.startswith("event:"):
                        seen.append(line)
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(15)
    with httpx2.Client(timeout=30) as client:
        assert client.put(f"{owner_of(cluster, 'site').url}/repos/site/entities/news", json=PAGE).status_code in (
            200,
            201,
        )
    listener.join(20)
    assert seen, "no event came through node-3 within 20 s"


def test_a_stale_route_costs_one_retry_and_a_second_misdirection_is_a_retryable_503(
    cluster: list[StaticNode],
) -> None:
    first, second, third = cluster
    with httpx2.Client(timeout=30) as client:
        # node-1 (which never looked `moved` up) believes it lives on node-3; node-3 knows better.
        first.write_routes(REPOS | {"moved": "node-3"}, cluster)
        try:
            moving = client.get(f"{first.url}/repos/moved")
            assert moving.status_code == 503 and moving.headers["retry-after"]
            assert moving.json()["name"] == "moved"
            # The control plane now says node-2; node-1 still holds node-3 in its cache.
            first.write_routes(REPOS, cluster)
            put = client.put(f"{first.url}/repos/moved/entities/retried", json=PAGE)
            assert put.status_code in (200, 201), put.text  # the body was sent again, whole
            assert client.get(f"{second.url}/repos/moved/entities/retried?state=draft").json()["title"] == "A page"
        finally:
            first.write_routes(REPOS, cluster)


def test_a_retry_that_finds_the_repository_here_answers_from_this_node(cluster: list[StaticNode]) -> None:
    first, second, _ = cluster
    with httpx2.Client(timeout=30) as client:
        assert client.post(f"{second.url}/repos", json={"name": "here"}).status_code == 201
        first.write_routes(REPOS | {"here": "node-2"}, cluster)
        try:
            assert client.get(f"{first.url}/repos/here").status_code == 503  # cached: node-2, twice refused
            first.write_routes(REPOS, cluster)
            put = client.put(f"{first.url}/repos/here/entities/local", json=PAGE)
            assert put.status_code in (200, 201), put.text
            assert (
                client.get(f"{first.url}/repos/here/entities/local?state=draft").headers["etag"] == put.headers["etag"]
            )
        finally:
            first.write_routes(REPOS, cluster)


def test_a_forged_forwarding_header_is_dropped_and_a_good_one_is_never_forwarded_again(
    cluster: list[StaticNode],
) -> None:
    first = cluster[0]
    path = "/repos/site"
    forged = [
        f"node=node-2, ts={int(time.time())}, for=10.0.0.1, sig={'0' * 64}",
        forwarded_header(b"another cluster's secret", "node-2", "GET", path.encode(), "10.0.0.1"),
        forwarded_header(SECRET, "node-2", "GET", b"/repos/far", "10.0.0.1"),  # signed for another path
        forwarded_header(SECRET, "node-2", "GET", path.encode(), "10.0.0.1", now=time.time() - 3600),  # stale
        "garbage",
    ]
    with httpx2.Client(timeout=30) as client:
        for value in forged:
            answer = client.get(first.url + path, headers={HEADER: value})
            assert answer.status_code == 200, (value, answer.text)  # treated as from outside: forwarded
        signed = forwarded_header(SECRET, "node-3", "GET", path.encode(), "127.0.0.1")
        refused = client.get(first.url + path, headers={HEADER: signed})
        assert refused.status_code == 421 and refused.headers["retry-after"] == "0"
        assert refused.headers["content-type"] == "application/problem+json"


def access_log(node: StaticNode) -> str:
    return "".join(path.read_text() for path in node.data.parent.glob(f"server-{node.port}-*.log"))


def test_a_forwarded_request_is_logged_once_by_the_owner_with_the_path_as_sent(cluster: list[StaticNode]) -> None:
    first, owner = cluster[0], owner_of(cluster, "site")
    marker = f"m{time.time_ns()}"
    key = "caf%C3%A9%20" + marker  # percent-encoded as sent: the owner must see these bytes
    with httpx2.Client(timeout=30) as client:
        refused = client.put(f"{first.url}/repos/site/entities/{key}", json=PAGE)
        assert refused.status_code == 422, refused.text  # not a key: but the owner decoded the path it was sent
        assert f"'café {marker}'" in refused.json()["detail"]
        missing = client.get(f"{first.url}/repos/far/entities/{marker}?x=a%2Fb")
        assert missing.status_code == 404
    deadline = time.monotonic() + 5
    while marker not in access_log(owner) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f'"PUT /repos/site/entities/{key} HTTP/1.1" 422' in access_log(owner)
    assert f'"GET /repos/far/entities/{marker}?x=a%2Fb HTTP/1.1" 404' in access_log(owner_of(cluster, "far"))
    assert marker not in access_log(first)  # it answered neither: its owners did


def test_a_node_that_is_down_leaves_only_its_repositories_unavailable(cluster: list[StaticNode]) -> None:
    first, second, third = cluster
    with httpx2.Client(timeout=30) as client:
        third.kill()
        try:
            for node in (first, second):
                down = client.get(f"{node.url}/repos/far")
                assert down.status_code == 503, down.text
                assert int(down.headers["retry-after"]) > 0
                problem = down.json()
                assert "far" in problem["detail"] and "node-3" in problem["detail"]
                assert client.get(f"{node.url}/repos/site").status_code == 200
        finally:
            third.start()
        assert client.get(f"{first.url}/repos/far").status_code == 200
        first.write_routes(REPOS, cluster, down=("node-3",))
        try:
            assert client.get(f"{first.url}/repos/far").status_code == 200  # cached alive: it answers
        finally:
            first.write_routes(REPOS, cluster)


class EndlessStream:
    """A stand-in owner on a loopback socket: answers any request with the head of an event
    stream and one event, then waits for the connection to close, and notes when it did."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.serving = threading.Event()
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            event = b"event: ping\n\n"
            head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            conn.sendall(head + b"%x\r\n%s\r\n" % (len(event), event))
            self.serving.set()
            conn.settimeout(60)
            with contextlib.suppress(OSError):
                while conn.recv(4096):
                    pass
            self.closed.set()
        self.listener.close()


def test_a_client_leaving_an_event_stream_closes_the_forwarded_stream_on_the_owner(cluster: list[StaticNode]) -> None:
    owner = EndlessStream()
    forwarder = cluster[2]
    forwarder.write_routes(REPOS | {"endless": "stand-in"}, cluster, others={"stand-in": owner.url})
    try:
        with httpx2.Client(timeout=30) as client:
            url = f"{forwarder.url}/repos/endless/events?wait=300"
            with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as stream:
                assert stream.status_code == 200
                # Held, not `next(stream.iter_lines())`: a line iterator let go of closes the
                # response, so the client would leave here (and, under load, the owner's stream
                # be closed before the next line looks).
                lines = stream.iter_lines()
                assert next(lines) == "event: ping"
                # While the client stays, so does the owner's stream.
                assert not owner.closed.wait(0.5), "the stream was closed with its client still there"
                assert owner.serving.is_set()
        # The stream never ends and never sends again: only the client's leaving can end it.
        assert owner.closed.wait(10), "the owner still streams to a client that left"
    finally:
        forwarder.write_routes(REPOS, cluster)


class HangsUp:
    """A stand-in owner that reads each request whole and closes the connection without an
    answer (as an owner killed mid-write would), counting the requests it took."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(30)
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                with conn:
                    conn.settimeout(10)
                    taken = b""
                    while b"\r\n\r\n" not in taken or not taken.endswith(b"}"):
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        taken += chunk
                    self.requests.append(taken)


def test_a_write_whose_owner_hangs_up_is_forwarded_once_and_answered_503(cluster: list[StaticNode]) -> None:
    """The owner may have committed the write before the connection broke: sending it again
    would make a second version the client never asked for."""
    owner = HangsUp()
    forwarder = cluster[0]
    forwarder.write_routes(REPOS | {"flaky": "stand-in"}, cluster, others={"stand-in": owner.url})
    try:
        with httpx2.Client(timeout=30) as client:
            for method in ("PUT", "DELETE"):
                answer = client.request(method, f"{forwarder.url}/repos/flaky/entities/page", json=PAGE)
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"] == "application/problem+json"
                assert "retry-after" in answer.headers
        deadline = time.monotonic() + 5
        while len(owner.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a resend would come now
        assert [r.split(b" ", 1)[0] for r in owner.requests] == [b"PUT", b"DELETE"]
    finally:
        forwarder.write_routes(REPOS, cluster)
        owner.listener.close()
