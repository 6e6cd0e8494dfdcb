"""Scale (issue 8): one repository grown to 100,000 entities and 1,000,000 versions, and the
latency of each kind of request measured as it grows, at 1k, 10k and 100k entities.

    python -m bench.scale [--max-entities 100000] [--versions-per-entity 10] [--samples 200]
                          [--quick] [--settle 60] [--work DIR] [--keep] [--json PATH] [--profile]

Target: every per-request latency (median) at 100k entities is within 1.5x of the same at 1k.

The repository is grown in stages through the library, in bulk: `write_drafts` batches of
--batch entities (each entity's versions, 10 on average, 1 to 19, come in the same batch, one
after the other), each followed by one publish of most of them: 80% live at their tip, 10% live
at an older version (so they have unpublished drafts), 10% never published. A fifth of the
entities have a base_path. Keys start with a hash, so each stage spreads its entities over the
whole key space (and over packed-refs) instead of appending at the end.

At each stage, `gitstore.upkeep.packing.gc` (what `gitstore gc` runs) follows the bulk build, as an
operator would run it after a large import. Every request is measured before it (the bulk
build leaves one pack a batch, and its refs already packed by the bulk ref writer) and after it
(one pack, every ref packed), and then once more with every ref loose, as in a repository grown
one request at a time that was never gc'd (refs written back as loose files, packed-refs
removed; packed again afterwards as housekeeping packs them).

The verdict is on the figures after gc, paired: the first stage's repository is kept (a copy,
taken after its gc) and measured again beside each later stage, in the same process and the
same minutes, each kind half on one and half on the other in the order first, later, later,
first. Measured apart, 15 minutes and a 2 GB process later, the two ends of a ratio drift with
the shared machine: the same code's 1k reads took 0.083 ms in one run and 0.183 ms in the next
(other work ran beside it), while its 100k reads took 0.14-0.26 ms in both. Each stage as
measured when built is still reported, as context.

"After gc" is measured --settle seconds (60) after it. gc removes every loose object it packed,
thousands of files, and on ext4 without a journal (as on the machine these figures come from:
no /proc/fs/jbd2) the kernel will not reuse an inode freed in the last 60 s, 360 s while its
inode table block is dirty: each new file scans past them (fs/ext4/ialloc.c, recently_deleted;
perf shows it in find_inode_bit). Measured at 10k entities: a draft write's system CPU went from
0.8 ms before gc to 2.8-3.2 ms right after it and back to 0.75-0.84 ms 65 s later. That is the
file system's minute, not the repository's size, so the verdict waits it out; a journalled ext4
skips the check.

Each latency is the median and 90th percentile of --samples requests on entities drawn at
random (fixed seed) from the whole key space, in-process, with fsync on as the service has it.
Reads are cold: gitstore's snapshot cache is emptied before each one, each kind of request runs
on a new libgit2 handle (an empty object cache) and its requests are on distinct entities, so
that 1k does not win by having everything cached. Requests:

    read_live           get_entity(state="published") of a live entity
    read_draft          get_entity(state="draft")
    read_old_version    get_entity(version=N) of a version older than the tip
    history             list_versions (first page) of an entity with about 10 versions
    list_first_page     list_entities(state="published"), 50 entities, no cursor
    list_deep_page      the same from a cursor drawn from the whole key space
    write_draft         put_draft with If-Match on the tip the client read
    publish             publish of one entity just written, with If-Match on its tip
    open_handle         a new pygit2 handle on the repository (as each thread and worker opens)
    open_handle_read_ref  the same, then one ref read (libgit2 loads packed-refs on it)
    list_draft_refs     every ref under refs/drafts with its target, as repair does (context)
    fold_one_change     a write (untimed), then folding it alone into `draft` (ADR 0007)

The open_handle ones and list_draft_refs are context: O(refs) by nature, not per-request
targets. fold_one_change is context too: the service folds in the background, off the request
path and outside the drafts lock, usually many changes at once; one alone is its worst case.

Each latency comes with its CPU time (user and system, means): the wall time of a write is
mostly fsync, which the shared disk makes noisy, while the user CPU time shows what the code
itself does more of.

Also per stage: build time (wall and CPU), RSS (heap, and the pack files libgit2 maps), gc
time, loose and packed refs, packs, disk bytes. Prints progress and a table on stderr and the
figures as JSON on stdout, and writes them to --json (default bench/results/scale-<time>.json).
--profile profiles (cProfile) the last batch of the build and 20 extra requests of each kind at
the first and the last stage, and puts the top functions in the JSON. --quick is a smoke run:
1k, 5k and 10k entities, 50 samples.
The default run needs about 4 GB of disk and 20 minutes on 2 cores; compare ratios within a
run, since the machine is shared and its disk is noisy.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import hashlib
import os
import pstats
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from gitstore import Author, Store, content
from gitstore.entities import api as entities
from gitstore.entities.api import Content, DraftChange, IfMatch, draft_tip, fold_drafts
from gitstore.index.api import ListFilter
from gitstore.publishing.api import PublishTarget
from gitstore.repository import MAIN, ContentRepository, draft_ref
from gitstore.storage.api import in_order, pack_loose_refs, read_ref
from gitstore.upkeep.api import gc, stats

ME = Author("Bench", "bench@example.org")
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_RATIO = 1.5
# The requests with a target; the others are context (O(refs) by nature).
TARGETED = (
    "read_live",
    "read_draft",
    "read_old_version",
    "history",
    "list_first_page",
    "list_deep_page",
    "write_draft",
    "publish",
)
CONTEXT = ("open_handle", "open_handle_read_ref", "list_draft_refs", "fold_one_change")
ALL = TARGETED + CONTEXT
# What is measured again with every ref loose.
LOOSE_REFS_OPS = ("read_live", "read_draft", "write_draft", "publish", "open_handle_read_ref", "list_draft_refs")
PROFILED_SAMPLES = 20


# -- the content ------------------------------------------------------------------------------


def _hash(i: int, salt: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(i.to_bytes(8, "big"), digest_size=8, salt=salt).digest(), "big")


def key_of(i: int) -> str:
    """Entity i's key: a hash first, so that keys made later sort in among the earlier ones."""
    return f"{_hash(i, b'key'):016x}"[:8] + f"-{i:06d}"


def versions_of(i: int, mean: int) -> int:
    """1 to 2*mean-1 versions; each pair of entities has exactly 2*mean between them."""
    spread = _hash(i // 2, b"versions") % (2 * mean - 1) - (mean - 1)
    return mean + spread if i % 2 == 0 else mean - spread


def publish_target(i: int, key: str, versions: int) -> PublishTarget | None:
    """80% live at the tip, 10% live at an older version (a draft waits), 10% never live."""
    share = _hash(i, b"publish") % 100
    if share < 80 or (share < 90 and versions == 1):
        return PublishTarget(key)
    if share < 90:
        return PublishTarget(key, version=max(1, versions - 1 - share % 3))
    return None


# Made-up words: each entity's text is its own, so that git finds deltas along an entity's
# history (each version edits one paragraph of the one before) and hardly any between entities,
# as with real content.
_letters = random.Random(8)
VOCABULARY = ["".join(_letters.choices("abcdefghijklmnopqrstuvwxyz", k=_letters.randint(2, 10))) for _ in range(4096)]


@functools.lru_cache(maxsize=64)  # an entity's versions, made one after the other, share all but one
def paragraph(*seed: int) -> str:
    """About 400 bytes of HTML, the same for the same seed."""
    raw = hashlib.shake_128(repr(seed).encode()).digest(120)
    return "<p>" + " ".join([VOCABULARY[(raw[k] << 8 | raw[k + 1]) & 4095] for k in range(0, 120, 2)]) + "</p>\n"


def text(i: int, version: int, paragraphs: int) -> str:
    """Entity i's text at `version`: version 1 is all new; each later version v rewrites
    paragraph (v - 2) mod `paragraphs` of the one before."""
    parts = []
    for j in range(paragraphs):
        edited = 0 if version < 2 + j else version - (version - 2 - j) % paragraphs
        parts.append(paragraph(i, j, edited))
    return "".join(parts)


def words(i: int, n: int, count: int) -> str:
    return " ".join(VOCABULARY[_hash(i * 16 + n, b"words") >> (12 * w) & 4095] for w in range(count))


def document_for(i: int, key: str, version: int) -> Content:
    """Entity i at `version`: a course component (html, problem or video) of 1-2 KB."""
    kind = ("html", "problem", "video")[i % 3]
    if kind == "html":
        fields: dict[str, Any] = {"html": text(i, version, 2 + i % 3)}
    elif kind == "problem":
        fields = {
            "markdown": text(i, version, 2),
            "choices": [{"text": words(i, c, 5), "correct": c == 0} for c in range(4)],
            "max_attempts": 3,
            "weight": 1.0,
        }
    else:
        fields = {"youtube_id": f"v{i:08d}", "transcript": text(i, version, 3), "duration": 60 + i % 840}
    fields["revision"] = version  # never the same content twice in a row
    base_path = f"/pages/{key}" if i % 5 == 0 else None
    return Content(f"component.{kind}", f"Component {i}: {words(i, 9, 4)}", "en", base_path, fields, {})


@dataclass
class Population:
    """What the bench made, so that it can pick entities without asking the repository."""

    keys: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)  # versions on the draft branch
    live: list[bool] = field(default_factory=list)
    written: list[int] = field(default_factory=list)  # by the last write_draft run, for publish to publish

    def __len__(self) -> int:
        return len(self.keys)


# -- growing the repository -------------------------------------------------------------------


def grow(
    repo: ContentRepository,
    pop: Population,
    target: int,
    args: argparse.Namespace,
    profile: cProfile.Profile | None,
) -> dict[str, Any]:
    """Add entities up to `target`, --batch at a time: one write_drafts and one publish each."""
    wall, cpu = time.perf_counter(), time.process_time()
    write_seconds = publish_seconds = 0.0
    start_entities, versions, batches = len(pop), 0, 0
    while len(pop) < target:
        start, end = len(pop), min(target, len(pop) + args.batch)
        changes: list[DraftChange] = []
        targets: list[PublishTarget] = []
        for i in range(start, end):
            key, count = key_of(i), versions_of(i, args.versions_per_entity)
            for version in range(1, count + 1):
                document = document_for(i, key, version)
                changes.append(DraftChange(key, partial(_replace_with, document)))
            chosen = publish_target(i, key, count)
            if chosen is not None:
                targets.append(chosen)
            pop.keys.append(key)
            pop.versions.append(count)
            pop.live.append(chosen is not None)
        profiling = profile if end == target else None  # the last batch
        if profiling is not None:
            profiling.enable()
        t = time.perf_counter()
        content.write_drafts(repo, changes, author=ME, summary=f"Import entities {start} to {end - 1}")
        write_seconds += time.perf_counter() - t
        t = time.perf_counter()
        content.publish(repo, targets, author=ME)
        publish_seconds += time.perf_counter() - t
        if profiling is not None:
            profiling.disable()
        versions += len(changes)
        batches += 1
        if batches % 10 == 0 or end == target:
            elapsed = time.perf_counter() - wall
            memory = f"heap {_rss_mib('RssAnon'):.0f}, mapped files {_rss_mib('RssFile'):.0f}"
            print(
                f"    {end:>7} entities  {versions / elapsed:5.0f} versions/s  RSS {_rss_mib():.0f} MiB ({memory})",
                file=sys.stderr,
            )
    seconds = time.perf_counter() - wall
    return {
        "entities_added": len(pop) - start_entities,
        "versions_added": versions,
        "batches": batches,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "write_drafts_seconds": round(write_seconds, 1),
        "publish_seconds": round(publish_seconds, 1),
        "versions_per_second": round(versions / seconds) if seconds else None,
        "rss_mib": round(_rss_mib()),
        "rss_anon_mib": round(_rss_mib("RssAnon")),
        "rss_file_mib": round(_rss_mib("RssFile")),
        "peak_rss_mib": round(_peak_rss_mib()),
    }


def _replace_with(document: Content, _current: object) -> tuple[Content, bool]:
    return document, False


def _rss_mib(kind: str = "VmRSS") -> float:
    """This process's resident memory now: all of it (VmRSS), its heap (RssAnon), or the pages of
    files it maps (RssFile: libgit2 maps the packs it reads, so that grows with the packs)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(kind + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- the requests -----------------------------------------------------------------------------

Request = Callable[[], object]


def requests(name: str, repo: ContentRepository, pop: Population, rng: random.Random, n: int) -> Iterator[Request]:
    """The `n` requests of one kind, each prepared (outside the clock) as the call to time."""
    everyone = range(len(pop))
    if name == "read_live":
        for i in _sample(rng, [i for i in everyone if pop.live[i]], n):
            yield partial(entities.get_entity, repo, pop.keys[i])
    elif name == "read_draft":
        for i in _sample(rng, everyone, n):
            yield partial(entities.get_entity, repo, pop.keys[i], state="draft")
    elif name == "read_old_version":
        for i in _sample(rng, [i for i in everyone if pop.versions[i] > 1], n):
            yield partial(entities.get_entity, repo, pop.keys[i], version=rng.randint(1, pop.versions[i] - 1))
    elif name == "history":
        mean = round(statistics.fmean(pop.versions))
        about = [i for i in everyone if abs(pop.versions[i] - mean) <= 2]
        for i in _sample(rng, about, n):
            yield partial(entities.list_versions, repo, pop.keys[i])
    elif name == "list_first_page":
        for _ in range(n):
            yield partial(entities.list_entities, repo, ListFilter(state="published"))
    elif name == "list_deep_page":
        ordered = sorted(pop.keys)
        for _ in range(n):
            cursor = ordered[rng.randrange(max(1, len(ordered) * 9 // 10))]  # a full page follows
            yield partial(entities.list_entities, repo, ListFilter(state="published"), cursor=cursor)
    elif name == "write_draft":
        yield from _writes(repo, pop, rng, n)
    elif name == "publish":
        yield from _publishes(repo, pop, n)
    elif name == "fold_one_change":
        for write in _writes(repo, pop, rng, n):
            write()  # outside the clock: this generator runs between timed calls
            yield partial(fold_drafts, repo)
    elif name == "open_handle":
        for _ in range(n):
            yield repo.storage.new_handle
    elif name == "open_handle_read_ref":
        for i in _sample(rng, everyone, n):
            yield partial(_open_and_read, repo, draft_ref(pop.keys[i]))
    elif name == "list_draft_refs":
        for _ in range(max(3, n // 40)):
            yield partial(_draft_refs, repo)
    else:
        raise ValueError(name)


def _sample(rng: random.Random, population: range | list[int], n: int) -> list[int]:
    return rng.sample(population, n) if len(population) >= n else rng.choices(population, k=n)


def _writes(repo: ContentRepository, pop: Population, rng: random.Random, n: int) -> Iterator[Request]:
    pop.written.clear()
    for i in _sample(rng, range(len(pop)), n):
        key = pop.keys[i]
        tip = draft_tip(repo, key)  # the ETag the client read
        pop.versions[i] += 1
        pop.written.append(i)
        document = document_for(i, key, pop.versions[i])
        yield partial(content.put_draft, repo, key, document, author=ME, expected=IfMatch(str(tip)))


def _publishes(repo: ContentRepository, pop: Population, n: int) -> Iterator[Request]:
    chosen = list(dict.fromkeys(pop.written))[:n]
    published = set(chosen)
    pop.written = [i for i in pop.written if i not in published]  # not published again
    for i in chosen:
        tip = draft_tip(repo, pop.keys[i])
        pop.live[i] = True
        yield partial(content.publish, repo, [PublishTarget(pop.keys[i], expected=IfMatch(str(tip)))], author=ME)


def _open_and_read(repo: ContentRepository, ref: str) -> object:
    return read_ref(repo.storage.new_handle(), ref)


def _draft_refs(repo: ContentRepository) -> int:
    """Every draft ref and its target, the way startup repair and reindex list them."""
    git = repo.storage.git
    tips = {name: git.references[name].target for name in git.references if name.startswith("refs/drafts/")}
    return len(tips)


@dataclass
class Timings:
    """The raw figures of one kind of request: seconds each, and CPU seconds in all."""

    times: list[float] = field(default_factory=list)
    user: float = 0.0
    system: float = 0.0

    def add(self, other: Timings) -> None:
        self.times += other.times
        self.user += other.user
        self.system += other.system

    def summary(self) -> dict[str, Any]:
        # CPU time as means: the kernel splits it into user and system by sampling, which is
        # only right on average. User time is what the code does (Python and libgit2) apart
        # from waiting for the disk or for other programs; system time is mostly file system
        # work, which other programs' writes make noisy too.
        n = len(self.times)
        return {
            "p50_ms": _ms(statistics.median(self.times)),
            "p90_ms": _ms(_p90(self.times)),
            "user_cpu_ms": _ms(self.user / n),
            "system_cpu_ms": _ms(self.system / n),
            "samples": n,
        }


def measure(
    repo: ContentRepository,
    pop: Population,
    seed: int,
    samples: int,
    names: tuple[str, ...],
    profile: dict[str, cProfile.Profile] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each kind of request in `names`, `samples` times: median and p90 in ms (or, with `profile`,
    PROFILED_SAMPLES requests under one profiler per kind, not timed)."""
    rng = random.Random(seed)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        timings = time_kind(repo, pop, rng, name, samples, profile)
        if timings.times:
            out[name] = _printed(name, timings.summary())
    return out


def time_kind(
    repo: ContentRepository,
    pop: Population,
    rng: random.Random,
    name: str,
    samples: int,
    profile: dict[str, cProfile.Profile] | None = None,
) -> Timings:
    """`samples` requests of one kind, on a fresh handle, each timed alone."""
    timings = Timings()
    fresh = _fresh(repo)
    for call in requests(name, fresh, pop, rng, samples):
        entities.forget_cached()  # cold: the commit and its files are read from git
        if profile is not None:
            profile.setdefault(name, cProfile.Profile()).runcall(call)
            continue
        before = resource.getrusage(resource.RUSAGE_SELF)
        t = time.perf_counter()
        call()
        timings.times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_SELF)
        timings.user += after.ru_utime - before.ru_utime
        timings.system += after.ru_stime - before.ru_stime
    fold_drafts(fresh)  # untimed: the next kind of request does not inherit this one's changes
    return timings


def measure_paired(
    first: tuple[ContentRepository, Population],
    this: tuple[ContentRepository, Population],
    seed: int,
    samples: int,
    names: tuple[str, ...],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each kind of request on the first stage's repository (kept as it was, in a copy) and on
    this stage's, in the same minute of the same process: half the samples each way, in the
    order first, this, this, first, so a machine that speeds up or slows down meanwhile
    weighs on both alike."""
    rngs = {"first_stage": random.Random(seed), "this_stage": random.Random(seed)}
    sides = {"first_stage": first, "this_stage": this}
    out: dict[str, dict[str, dict[str, Any]]] = {"first_stage": {}, "this_stage": {}}
    half = max(1, samples // 2)
    for name in names:
        timings = {side: Timings() for side in sides}
        for side in ("first_stage", "this_stage", "this_stage", "first_stage"):
            repo, pop = sides[side]
            if name == "publish" and len(set(pop.written)) < half:
                for write in _writes(repo, pop, rngs[side], half):  # untimed: drafts to publish
                    write()
            timings[side].add(time_kind(repo, pop, rngs[side], name, half))
        for side in sides:
            out[side][name] = timings[side].summary()
        a, b = out["first_stage"][name], out["this_stage"][name]
        print(
            f"    {name:<22} p50 {a['p50_ms']:9.3f} ms at the first stage, {b['p50_ms']:9.3f} ms here "
            f"({b['p50_ms'] / a['p50_ms']:.2f}x)",
            file=sys.stderr,
        )
    return out


def _printed(name: str, m: dict[str, Any]) -> dict[str, Any]:
    print(
        f"    {name:<22} p50 {m['p50_ms']:9.3f} ms  p90 {m['p90_ms']:9.3f} ms  "
        f"CPU user {m['user_cpu_ms']:8.3f} system {m['system_cpu_ms']:8.3f}",
        file=sys.stderr,
    )
    return m


@dataclass
class Baseline:
    """The repository as the first stage left it, just after its gc (before any request wrote
    to it), kept as a copy to measure beside the later stages: the same process and the same
    minutes, only the size differs. The copy is never measured itself: each pairing measures a
    new copy of it, so one stage's writes never land on the next one's baseline."""

    work: Path
    kept: tuple[ContentRepository, Population] | None = None

    def keep(self, repo: ContentRepository, pop: Population) -> None:
        place = self.work / "first-stage" / repo.path.name
        os.sync()
        with in_order(repo.storage, "publish", "drafts"):
            shutil.copytree(repo.path, place, symlinks=True)
        self.kept = ContentRepository(repo.name, place), copy_of(pop)

    def fresh_copy(self) -> tuple[ContentRepository, Population]:
        assert self.kept is not None
        kept, pop = self.kept
        place = self.work / "first-stage-measured" / kept.path.name
        shutil.copytree(kept.path, place, symlinks=True)
        os.sync()
        return ContentRepository(kept.name, place), copy_of(pop)

    def discard_copy(self) -> None:
        shutil.rmtree(self.work / "first-stage-measured", ignore_errors=True)


def copy_of(pop: Population) -> Population:
    return Population(list(pop.keys), list(pop.versions), list(pop.live), list(pop.written))


def _fresh(repo: ContentRepository) -> ContentRepository:
    """A new handle on `repo` for one kind of request, so that what libgit2 cached for another kind
    (or an earlier stage) is not there: each request of a kind is on a different entity, so each
    reads its objects from the packs. It is opened, and has read packed-refs and the index, before
    the clock starts. Everything the bench wrote is made durable first, so that no request waits
    for a syncfs of the bulk build's or gc's data."""
    os.sync()
    fresh = ContentRepository(repo.name, repo.path)
    read_ref(fresh.storage.git, MAIN)
    fresh.index.meta("draft_head")
    return fresh


def _p90(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# -- refs loose, as a repository grown one request at a time has them ---------------------------


def unpack_refs(repo: ContentRepository) -> int:
    """Write every packed ref as a loose file and remove packed-refs (under gitstore's locks)."""
    root = repo.path
    storage = repo.storage
    with in_order(storage, "housekeeping", "publish", "drafts"):
        packed = root / "packed-refs"
        lines = packed.read_text().splitlines() if packed.is_file() else []
        made = 0
        for line in lines:
            if line[:1] in ("#", "^", ""):
                continue
            sha, name = line.split(" ", 1)
            path = root / name
            if path.exists():
                continue  # a loose ref already shadows the packed one
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(sha + "\n")
            made += 1
        packed.unlink(missing_ok=True)
    return made


def pack_refs(repo: ContentRepository) -> dict[str, Any]:
    """Fold the loose refs back into packed-refs as housekeeping does (`gitstore gc`, and the
    service's background round once 1,000 are loose)."""
    t = time.perf_counter()
    with in_order(repo.storage, "housekeeping"):
        packed = pack_loose_refs(repo.storage.git)
    return asdict(packed) | {"seconds": round(time.perf_counter() - t, 3)}


# -- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    repo = Store(work / "data").create_repository("scale")
    pop = Population()
    stages: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    baseline = Baseline(work)
    for number, size in enumerate(args.stages):
        print(f"stage {number + 1}: growing to {size} entities", file=sys.stderr)
        # The first and the last stage are profiled (if asked), to compare.
        profiled = args.profile and number in (0, len(args.stages) - 1)
        build_profile = cProfile.Profile() if profiled else None
        stages.append(stage(repo, pop, size, args, args.seed + number, build_profile, baseline))
        if profiled:
            assert build_profile is not None
            requests_profile: dict[str, cProfile.Profile] = {}
            measure(repo, pop, args.seed + 300 + number, PROFILED_SAMPLES, ALL, profile=requests_profile)
            profiles[str(size)] = {"build_last_batch": top_functions(build_profile)} | {
                name: top_functions(p) for name, p in requests_profile.items()
            }
    views = ("after_gc", "before_gc", "loose_refs")
    results = {
        "settings": settings(args),
        "stages": stages,
        "target": (
            f"p50 at {args.stages[-1]} entities <= {TARGET_RATIO}x p50 at {args.stages[0]}, after gc, "
            "both measured in the same minutes (paired)"
        ),
        "ratios": {view: ratios(stages, view) for view in views if view in stages[0]},
    }
    if len(stages) > 1:
        paired = stages[-1]["paired"]
        results["ratios"] = {"paired": _ratios(paired["first_stage"], paired["this_stage"])} | results["ratios"]
    if profiles:
        results["profile"] = profiles
    return results


def stage(
    repo: ContentRepository,
    pop: Population,
    size: int,
    args: argparse.Namespace,
    seed: int,
    build_profile: cProfile.Profile | None,
    baseline: Baseline | None = None,
) -> dict[str, Any]:
    """Grow to `size` entities, then measure before gc, after gc (paired with the first stage's
    repository, from the second stage on; then alone), and with every ref loose."""
    if baseline is not None:
        # Before the build, so the inodes it frees have aged out (see --settle) by the next pairing.
        baseline.discard_copy()
    out: dict[str, Any] = {"entities": size, "build": grow(repo, pop, size, args, build_profile)}
    out["versions"] = sum(pop.versions)
    out["stats_before_gc"] = asdict(stats(repo))
    print("  measuring before gc", file=sys.stderr)
    out["before_gc"] = measure(repo, pop, seed, args.samples, ALL)
    report = gc(repo)
    out["gc"] = asdict(report)
    out["stats_after_gc"] = asdict(stats(repo))
    print(f"  gc took {report.seconds:.1f} s; measuring after gc", file=sys.stderr)
    if args.settle:
        print(f"  (after {args.settle:g} s for the inodes gc freed to age out)", file=sys.stderr)
        os.sync()
        time.sleep(args.settle)
    if baseline is not None and baseline.kept is None:
        baseline.keep(repo, pop)
    elif baseline is not None:
        # First, while this stage's repository is as fresh from gc as the first stage's copy.
        print("  measuring after gc, paired with the first stage", file=sys.stderr)
        out["paired"] = measure_paired(baseline.fresh_copy(), (repo, pop), seed + 400, args.samples, ALL)
    out["after_gc"] = measure(repo, pop, seed + 100, args.samples, ALL)
    if args.loose_refs:
        t = time.perf_counter()
        made = unpack_refs(repo)
        out["loose_refs_unpacked"] = {"refs": made, "seconds": round(time.perf_counter() - t, 1)}
        out["stats_loose_refs"] = asdict(stats(repo))
        print(f"  {made} refs made loose; measuring", file=sys.stderr)
        out["loose_refs"] = measure(repo, pop, seed + 200, args.samples, LOOSE_REFS_OPS)
        out["loose_refs_packed_again"] = pack_refs(repo)
    return out


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's parameters, and which code it ran (others may be changing gitstore meanwhile)."""

    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], capture_output=True, text=True, cwd=Path(__file__).parent)
        return done.stdout.strip()

    try:
        from gitstore.storage.api import fsync_method  # noqa: PLC0415 (not in every version of gitstore)

        fsync = f"on ({fsync_method()})"
    except ImportError:
        fsync = "on"
    return {
        "stages": args.stages,
        "versions_per_entity": args.versions_per_entity,
        "batch_entities": args.batch,
        "samples": args.samples,
        "settle_seconds_after_gc": args.settle,
        "seed": args.seed,
        "fsync": fsync,
        "reads": "cold: snapshot cache emptied before each request, a new libgit2 handle for each kind",
        "cpus": os.cpu_count(),
        "commit": git("rev-parse", "HEAD"),
        # Uncommitted changes to the library, which the run measured too.
        "gitstore_changed_since_commit": git("status", "--porcelain", "--", "../gitstore").splitlines(),
    }


def ratios(stages: list[dict[str, Any]], view: str) -> dict[str, dict[str, Any]]:
    return _ratios(stages[0][view], stages[-1][view])


def _ratios(first: dict[str, Any], last: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name in first:
        p50 = last[name]["p50_ms"] / first[name]["p50_ms"]
        p90 = last[name]["p90_ms"] / first[name]["p90_ms"]
        user = last[name]["user_cpu_ms"] / max(first[name]["user_cpu_ms"], 0.001)
        verdict = ("PASS" if p50 <= TARGET_RATIO else "MISS") if name in TARGETED else "context"
        out[name] = {"p50_ratio": round(p50, 2), "p90_ratio": round(p90, 2), "user_cpu_ratio": round(user, 2)}
        out[name]["verdict"] = verdict
    return out


def top_functions(profile: cProfile.Profile, n: int = 15) -> dict[str, Any]:
    """Where the time went: the functions that took the most of their own, and gitstore's
    functions by the time spent in them and what they call."""
    found = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    root = str(Path(__file__).resolve().parent.parent) + "/"

    def rows(items: list[Any]) -> list[dict[str, Any]]:
        return [
            {
                "function": f"{file.replace(root, '')}:{line}({name})",
                "calls": calls,
                "own_s": round(own, 4),
                "total_s": round(total, 4),
            }
            for (file, line, name), (_, calls, own, total, _) in items
        ]

    own = sorted(found.items(), key=lambda item: item[1][2], reverse=True)[:n]
    ours = [item for item in found.items() if "/gitstore/" in item[0][0]]
    cumulative = sorted(ours, key=lambda item: item[1][3], reverse=True)[:n]
    total = sum(own for _, _, own, _, _ in found.values())
    return {"seconds": round(total, 3), "by_own_time": rows(own), "gitstore_by_total_time": rows(cumulative)}


# -- output -----------------------------------------------------------------------------------


def print_table(results: dict[str, Any]) -> None:
    stages = results["stages"]
    sizes = [f"{s['entities']:,}" for s in stages]
    out = sys.stderr
    for view, title in (
        ("paired", "after gc, the first stage measured again beside the last (the verdict)"),
        ("after_gc", "after gc, each stage when it was built"),
        ("before_gc", "before gc (one pack a batch)"),
        ("loose_refs", "every ref loose"),
    ):
        if view not in results["ratios"]:
            continue
        if view == "paired":
            columns = [sizes[0], sizes[-1]]
            figures = [stages[-1]["paired"]["first_stage"], stages[-1]["paired"]["this_stage"]]
        else:
            columns, figures = sizes, [s[view] for s in stages]
        print(f"\n{title}: p50 / p90 (user CPU, mean) ms", file=out)
        header = f"{'request':<22}" + "".join(f"{size:>27}" for size in columns)
        print(header + f"{'ratio p50':>11}{'p90':>7}{'user':>7}", file=out)
        for name, ratio in results["ratios"][view].items():
            cells = "".join(
                f"{m['p50_ms']:>10.3f} /{m['p90_ms']:>7.2f} ({m['user_cpu_ms']:>6.2f})"
                for m in (f[name] for f in figures)
            )
            ratios_ = f"{ratio['p50_ratio']:>10.2f}x{ratio['p90_ratio']:>6.2f}x{ratio['user_cpu_ratio']:>6.2f}x"
            print(f"{name:<22}{cells}{ratios_}  {ratio['verdict']}", file=out)
    print(f"\n{'per stage':<34}" + "".join(f"{size:>14}" for size in sizes), file=out)
    rows = [
        ("versions", "versions"),
        ("build s (wall)", "build.seconds"),
        ("build s (CPU)", "build.cpu_seconds"),
        ("  write_drafts s", "build.write_drafts_seconds"),
        ("  publish s", "build.publish_seconds"),
        ("  versions/s", "build.versions_per_second"),
        ("peak RSS MiB", "build.peak_rss_mib"),
        ("RSS MiB after build", "build.rss_mib"),
        ("  heap (RssAnon)", "build.rss_anon_mib"),
        ("  mapped packs (RssFile)", "build.rss_file_mib"),
        ("gc s", "gc.seconds"),
        ("packs before gc", "stats_before_gc.packs"),
        ("loose refs before gc", "stats_before_gc.loose_refs"),
        ("packed refs before gc", "stats_before_gc.packed_refs"),
        ("disk MiB before gc", "stats_before_gc.disk_bytes"),
        ("packed refs after gc", "stats_after_gc.packed_refs"),
        ("disk MiB after gc", "stats_after_gc.disk_bytes"),
        ("loose refs (loose run)", "stats_loose_refs.loose_refs"),
        ("disk MiB, refs loose", "stats_loose_refs.disk_bytes"),
        ("packing them again s", "loose_refs_packed_again.seconds"),
    ]
    for label, path in rows:
        if path.split(".")[0] in stages[0]:
            print(f"{label:<34}" + "".join(f"{_cell(s, path):>14}" for s in stages), file=out)
    print(f"\ntarget: {results['target']}", file=out)


def _cell(stage: dict[str, Any], path: str) -> Any:
    value: Any = stage
    for part in path.split("."):
        value = value[part]
    return round(value / 2**20) if path.endswith("_bytes") else value


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-entities", type=int, default=100_000, help="the last stage; the others are /100, /10")
    parser.add_argument("--stages", help="comma-separated entity counts instead (e.g. 1000,10000,100000)")
    parser.add_argument("--versions-per-entity", type=int, default=10, help="the mean; each has 1 to 2N-1")
    parser.add_argument("--samples", type=int, help="requests of each kind a measurement (default 200; 50 --quick)")
    parser.add_argument("--batch", type=int, default=1000, help="entities a write_drafts batch (and a publish)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1k, 5k and 10k entities, 50 samples")
    parser.add_argument("--no-loose-refs", dest="loose_refs", action="store_false", help="skip the loose-refs run")
    parser.add_argument("--profile", action="store_true", help="profile the last batch and 20 requests of each kind")
    parser.add_argument(
        "--settle",
        type=float,
        help="seconds to wait after gc before measuring (default 60; 0 --quick): see the docstring",
    )
    parser.add_argument("--work", type=Path, help="where to make the scratch directory (default: the temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--json", type=Path, help="where to write the JSON (default bench/results/scale-<time>.json)")
    args = parser.parse_args(argv)
    if args.stages:
        args.stages = [int(s) for s in args.stages.split(",")]
    elif args.quick:
        args.stages = [1000, 5000, 10000]
    else:
        args.stages = sorted({max(2, args.max_entities // 100), max(2, args.max_entities // 10), args.max_entities})
    if args.samples is None:
        args.samples = 50 if args.quick else 200
    if args.settle is None:
        args.settle = 0.0 if args.quick else 60.0
    if args.stages != sorted(args.stages) or args.stages[0] < 2 or args.versions_per_entity < 1:
        parser.error("stages must grow and start at 2 or more entities; versions per entity must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = arguments(argv)
    parent = args.work or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    need = args.stages[-1] * (args.versions_per_entity * 3000 + (8192 if args.loose_refs else 0))
    free = shutil.disk_usage(parent).free
    if free < need:
        print(f"warning: {free / 2**30:.1f} GiB free in {parent}, about {need / 2**30:.1f} needed", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="gitstore-bench-scale-", dir=parent))
    print(
        f"bench.scale: stages {args.stages}, {args.versions_per_entity} versions an entity, in {work}", file=sys.stderr
    )
    try:
        results = run(args, work)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    text = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
    print(text)
    path = args.json or RESULTS / f"scale-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(f"written to {path}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
