"""What a power cut takes from a repository written with the journal: every file written
since the last checkpoint that nothing flushed (its objects and refs), some loose objects left
as empty files instead (ext4 can leave a renamed file empty)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from gitstore.storage import journal


@dataclass
class Lost:
    objects: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)


def lose_what_was_not_flushed(git_dir: Path) -> Lost:
    """Undo, on disk, what the journal's records wrote: as if only the records had reached it.
    Each ref goes back to the value its first record found (unchecked moves are left as they
    are: nothing says what they replaced)."""
    lost = Lost()
    folder = git_dir / "journal"
    records = [*journal.read_records(str(folder / "log.old")), *journal.read_records(str(folder / "log"))]
    for n, obj in enumerate(o for objects, _ in records for o in objects):
        path = git_dir / "objects" / obj.name[:2] / obj.name[2:]
        if not path.exists():
            continue
        if n % 3 == 2:
            path.chmod(0o644)
            path.write_bytes(b"")
        else:
            path.unlink()
        lost.objects.append(obj.name)
    first: dict[str, journal.Move] = {}
    for _, moves in records:
        for move in moves:
            first.setdefault(move.ref, move)
    for ref, move in first.items():
        if not move.checked:
            continue
        path = git_dir / ref
        if move.expected is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            os.makedirs(path.parent, exist_ok=True)
            path.write_text(f"{move.expected}\n")
        lost.refs.append(ref)
    return lost
