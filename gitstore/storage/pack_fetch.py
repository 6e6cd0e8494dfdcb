"""Fetching objects by id in one request of git's protocol v2, when this side knows both what
it wants and what it has.

A copy that has caught up with a snapshot of another repository, and holds a newer snapshot's
ref list, knows the exact ids it wants (the refs that moved) and the exact ids the other side's
refs descend from (their old values, which it has). `git fetch` would still list the refs
(ls-refs), walk its own 15,000 refs to mark what is complete, and negotiate in rounds: 0.75-1.3 s
for 80 refs on this loaded machine, each request a new upload-pack on the other side. Here it is
one `command=fetch` with its wants, its haves and `done`, the pack streamed into `git index-pack`
(--fix-thin: its deltas may name objects of the haves). The other side is the same `git
upload-pack --stateless-rpc` any fetch talks to, and protocol v2 serves a want by id.
"""

from __future__ import annotations

import base64
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from gitstore.errors import MoveFailed

__all__ = ["fetch_objects"]

_FLUSH, _DELIMITER = b"0000", b"0001"
_PACK, _PROGRESS, _ERROR = 1, 2, 3


def fetch_objects(
    path: Path,
    url: str,
    wants: Sequence[str],
    haves: Sequence[str],
    *,
    password: tuple[str, str] | None = None,
    timeout: float = 60.0,
) -> None:
    """Fetch the objects `wants` reach and `haves` do not into the bare repository at `path`,
    from the smart-HTTP remote at `url`, writing no ref. Raises MoveFailed if the other side
    cannot be reached, refuses, or sends no usable pack."""
    if not wants:
        return
    request = urllib.request.Request(f"{url}/git-upload-pack", data=_request(wants, haves), method="POST")
    request.add_header("Content-Type", "application/x-git-upload-pack-request")
    request.add_header("Accept", "application/x-git-upload-pack-result")
    request.add_header("Git-Protocol", "version=2")
    if password is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(password).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            _index(path, _pack_of(answer), url)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise MoveFailed(f"fetching objects from {url} failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise MoveFailed(f"fetching objects from {url} failed: {getattr(exc, 'reason', exc)}") from None


def _request(wants: Sequence[str], haves: Sequence[str]) -> bytes:
    lines = [_line(b"command=fetch\n"), _line(b"agent=gitstore\n"), _DELIMITER]
    lines += [_line(b"thin-pack\n"), _line(b"ofs-delta\n"), _line(b"no-progress\n")]
    lines += [_line(f"want {oid}\n".encode()) for oid in dict.fromkeys(wants)]
    lines += [_line(f"have {oid}\n".encode()) for oid in dict.fromkeys(haves)]
    lines += [_line(b"done\n"), _FLUSH]
    return b"".join(lines)


def _line(data: bytes) -> bytes:
    return f"{len(data) + 4:04x}".encode() + data


def _packets(stream: IO[bytes]) -> Iterator[bytes | None]:
    """Each pkt-line's payload; None for a flush or delimiter."""
    while True:
        head = stream.read(4)
        if len(head) < 4:
            raise MoveFailed("the pack's answer ended early")
        size = int(head, 16)
        if size < 4:
            yield None
            if size == 0:
                return
            continue
        yield _read_exactly(stream, size - 4)


def _pack_of(stream: IO[bytes]) -> Iterator[bytes]:
    """The pack's bytes out of the answer's `packfile` section (side band 1)."""
    packets = _packets(stream)
    for packet in packets:
        if packet == b"packfile\n":
            break
        if packet is None:
            raise MoveFailed("the answer holds no pack")
    for packet in packets:
        if packet is None:
            return
        band, data = packet[0], packet[1:]
        if band == _PACK:
            yield data
        elif band == _ERROR:
            raise MoveFailed(f"the other side failed: {data.decode(errors='replace').strip()}")


def _index(path: Path, chunks: Iterator[bytes], url: str) -> None:
    """`git index-pack --stdin --fix-thin` in the repository at `path`, fed `chunks`; nothing
    flushed (the caller makes the copy durable)."""
    args = ["git", "-c", "core.fsync=none", "--git-dir", str(path), "index-pack", "--stdin", "--fix-thin"]
    with subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BaseException:
            proc.kill()
            raise
        failed = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise MoveFailed(f"the pack from {url} could not be indexed: {failed}")


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            raise MoveFailed("the pack's answer ended early")
        data += more
    return data
