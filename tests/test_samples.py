"""The sample repositories: their history is what the issue asks for, and loading them ends
exactly at the kept bundle, so the bundle files and the importer cannot drift apart."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gitstore import ContentRepository, Store
from gitstore.entities import api as entities
from gitstore.errors import EntityNotFound, InvalidDocument, Redirected
from gitstore.events import read_events
from gitstore.history import api as history
from gitstore.publishing.unpublishing import serve
from gitstore.repository import DRAFT
from gitstore.samples import BUNDLE, HISTORY, load_sample, load_samples, save_bundle
from gitstore.storage.api import entity_path, read_ref
from tests.bundles.conftest import export, read_tar
from tests.test_cli import ROOT, gitstore

SAMPLES = ROOT / "sample_repos"
NAMES = ("demo-course", "gov-pages")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Both samples, loaded once for the tests that only read them."""
    store = Store(tmp_path_factory.mktemp("samples") / "data")
    assert load_samples(store, SAMPLES) == list(NAMES)
    return store


def files_under(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def authors(repo: ContentRepository, key: str | None = None) -> set[str]:
    return {change.author.name for change in history.list_activity(repo, key=key, limit=500).items}


def actions(repo: ContentRepository, key: str) -> list[str]:
    return [v.action for v in reversed(entities.list_versions(repo, key).items)]


@pytest.mark.parametrize("name", NAMES)
def test_exporting_the_loaded_drafts_gives_the_kept_bundle_byte_for_byte(loaded: Store, name: str) -> None:
    kept = files_under(SAMPLES / name / BUNDLE)
    assert len(kept) > 10
    assert read_tar(export(loaded.repository(name), state="draft")) == kept


def test_the_course_has_several_authors_a_restore_a_discard_and_drafts_that_are_not_live(loaded: Store) -> None:
    course = loaded.repository("demo-course")
    assert authors(course) == {"Ada Lovelace", "Grace Hopper", "Alan Turing"}

    # Alan changed the check twice, Grace restored its first version: the draft is version 1 again
    assert actions(course, "hello-world-check") == ["create", "update", "update", "restore"]
    check = entities.get_entity(course, "hello-world-check", state="draft")
    first = entities.get_entity(course, "hello-world-check", version=1)
    assert (check.version, check.title, check.fields["max_attempts"]) == (4, first.title, 3)
    assert entities.get_entity(course, "hello-world-check", version=3).title == "Quick check: print"
    assert authors(course, "hello-world-check") == {"Alan Turing", "Grace Hopper"}

    # Ada's change of start date was discarded: the draft is what is live again
    assert actions(course, "intro-to-python") == ["create", "update", "discard"]
    intro = entities.get_entity(course, "intro-to-python", state="draft")
    assert intro.fields["start"] == "2026-01-12" and not intro.has_unpublished_changes

    # published, then changed again: live and draft differ
    live_text = entities.get_entity(course, "variables-text")
    draft_text = entities.get_entity(course, "variables-text", state="draft")
    assert (live_text.title, draft_text.title) == ("Names for values", "Naming values")
    assert draft_text.has_unpublished_changes and draft_text.author.name == "Grace Hopper"
    assert entities.get_entity(course, "hello-world-text").version == 2  # the second version went live

    # the retired quiz is deleted in draft, but the delete is not published: still live, still in the live unit
    assert entities.get_entity(course, "old-quiz").title == "Retired quiz"
    live_unit = entities.get_entity(course, "variables")
    draft_unit = entities.get_entity(course, "variables", state="draft")
    assert [m.key for m in live_unit.members or ()][-1] == "old-quiz"
    assert "old-quiz" not in [m.key for m in draft_unit.members or ()]
    assert draft_unit.members is not None and draft_unit.members[2].pin == check.commit  # the check, pinned

    blamed = {line.author.name for line in history.blame(course, "hello-world-text", field="html").lines}
    assert blamed == {"Grace Hopper"}
    assert len(history.list_publishes(course).items) == 4


def test_the_site_has_base_paths_links_two_locales_and_a_withdrawn_and_a_redirected_page(loaded: Store) -> None:
    site = loaded.repository("gov-pages")
    assert authors(site) == {"Priya Shah", "Tom Evans"}

    rates = entities.get_entity(site, "vehicle-tax-rates")
    assert (rates.base_path, rates.links["parent"]) == ("/vehicle-tax-rate-tables", ["vehicle-tax"])
    assert entities.get_entity(site, "vehicle-tax-rates", state="draft").title == "Vehicle tax rates 2026"
    assert rates.title == "Vehicle tax rates"  # the retitle is a draft only
    licences = entities.get_entity(site, "driving-licences")
    assert licences.links == {"organisations": ["dvla"], "related": ["vehicle-tax"]}
    assert not licences.has_unpublished_changes  # so the tour's unpublish of it is not refused

    welsh = entities.get_entity(site, "vehicle-tax-cy")
    assert (welsh.locale, welsh.content_id, welsh.base_path) == ("cy", "vehicle-tax", "/treth-cerbyd")
    assert entities.get_entity(site, "dvla-cy").content_id == "dvla"
    tax = entities.get_entity(site, "vehicle-tax")
    assert (tax.version, tax.links["organisations"]) == (3, ["dvla"])
    assert "Direct Debit" in tax.fields["body"]

    withdrawn = serve(entities.get_entity(site, "tax-disc"))
    assert withdrawn.unpublishing is not None and withdrawn.withdrawn_at is not None
    assert withdrawn.unpublishing.explanation == "Paper tax discs were abolished on 1 October 2014."
    assert withdrawn.withdrawn_at.isoformat() == "2014-10-01T00:00:00+00:00"
    with pytest.raises(Redirected) as redirected:
        serve(entities.get_entity(site, "sorn-paper-form"))
    assert redirected.value.extra["alternative_path"] == "/vehicle-tax"
    for key, by in (("tax-disc", "Priya Shah"), ("sorn-paper-form", "Tom Evans")):
        assert [(v.version, v.author.name) for v in entities.list_versions(site, key).items][0] == (2, by)
        assert actions(site, key) == ["create", "update"]  # written, published, then taken down


def step_times(name: str) -> list[datetime]:
    return [
        datetime.fromisoformat(step["at"]) for step in orjson.loads((SAMPLES / name / HISTORY).read_bytes())["steps"]
    ]


@pytest.mark.parametrize("name", NAMES)
def test_every_commit_has_its_steps_own_time_not_the_time_of_loading(loaded: Store, name: str) -> None:
    repo = loaded.repository(name)
    times = step_times(name)
    git = repo.storage.git
    for ref in git.references:
        for commit in git.walk(git.references[ref].target):
            when = datetime.fromtimestamp(commit.commit_time, UTC)
            assert when == datetime.fromtimestamp(commit.author.time, UTC) and when in times, (ref, commit.message)
    changes = history.list_activity(repo, limit=500).items
    assert len({c.at for c in changes}) > 10 and {c.at for c in changes} <= set(times)
    assert [c.at for c in changes] == sorted((c.at for c in changes), reverse=True)
    events = read_events(repo, limit=1000).items
    assert [e.at for e in events] == sorted(e.at for e in events) and {e.at for e in events} <= set(times)


def test_the_course_as_of_new_year_is_what_was_published_in_december(loaded: Store) -> None:
    course = loaded.repository("demo-course")
    new_year = datetime(2026, 1, 1, tzinfo=UTC)
    live = [e.key for e in history.list_entities_as_of(course, new_year, limit=100).items]
    assert "intro-to-python" in live and "old-quiz" not in live  # the quiz went live on 9 January
    assert history.get_entity_as_of(course, "hello-world-text", new_year).version == 2  # published 15 December
    with pytest.raises(EntityNotFound):
        history.get_entity_as_of(course, "intro-to-python", datetime(2025, 11, 30, tzinfo=UTC))
    # Grace's first draft (3 November), then her rewrite (8 December)
    blamed = {(b.author.name, b.committed_at) for b in history.blame(course, "hello-world-text", field="html").lines}
    assert blamed == {
        ("Grace Hopper", datetime(2025, 11, 3, 9, 15, tzinfo=UTC)),
        ("Grace Hopper", datetime(2025, 12, 8, 13, 20, tzinfo=UTC)),
    }


def test_loading_the_samples_again_makes_the_same_commits(loaded: Store, tmp_path: Path) -> None:
    again = Store(tmp_path / "data")
    load_samples(again, SAMPLES)
    for name in NAMES:
        first, second = loaded.repository(name).storage.git, again.repository(name).storage.git
        refs = {ref: str(first.references[ref].target) for ref in first.references}
        assert len(refs) > 10
        assert refs == {ref: str(second.references[ref].target) for ref in second.references}


def test_a_step_without_a_time_or_earlier_than_the_one_before_is_refused(tmp_path: Path, sample: Path) -> None:
    store = Store(tmp_path / "data")
    spec = orjson.loads((sample / HISTORY).read_bytes())
    for number, at, why in (
        (3, None, r"step 3: \"at\" is the step's time"),
        (3, "2025-11-03T10:39:59Z", "before the step"),
    ):
        changed = {**spec["steps"][number - 1], "at": at} if at else {"as": "alan", "import": ["hello-world-check"]}
        edit_history(sample, {number: changed})
        with pytest.raises(ValueError, match=why):
            load_sample(store, sample)
        assert store.is_empty()
    edit_history(sample, {3: {**spec["steps"][2], "at": "2025-11-04T14:05:00"}})
    with pytest.raises(ValueError, match="needs its UTC offset"):
        load_sample(store, sample)


def test_the_service_loads_both_samples_on_first_start_and_the_tour_holds(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", samples_dir=SAMPLES, rate_limit="")
    with TestClient(create_app(settings)) as http:
        names = [r["name"] for r in http.get("/repos").json()["items"]]
        assert names == list(NAMES)
        changed = http.get("/repos/demo-course/entities?state=draft&has_unpublished_changes=true").json()
        assert "variables-text" in [item["key"] for item in changed["items"]]
        assert http.get("/repos/demo-course/entities/variables/members?version=3&list=frozen").status_code == 200
        assert http.get("/repos/demo-course/entities/python-cheatsheet/containers").json()["items"]
        answer = http.get("/repos/gov-pages/paths/sorn-paper", follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (301, "/repos/gov-pages/paths/vehicle-tax")
        assert http.get("/repos/gov-pages/paths/tax-disc").json()["withdrawn_at"].startswith("2014-10-01")
        gone = {"type": "gone", "explanation": "Moved to a new service"}
        assert http.post("/repos/gov-pages/entities/driving-licences/unpublish", json=gone).status_code == 200
        assert http.post("/repos/demo-course/entities/intro-to-python/publish").status_code == 200


def test_loading_again_skips_what_is_there(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    assert load_samples(store, SAMPLES) == list(NAMES)
    heads = [read_ref(store.repository(name).storage.git, DRAFT) for name in NAMES]
    assert load_samples(store, SAMPLES) == []
    assert [read_ref(store.repository(name).storage.git, DRAFT) for name in NAMES] == heads


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[Path]:
    """A copy of the course sample to break."""
    folder = tmp_path / "samples" / "demo-course"
    shutil.copytree(SAMPLES / "demo-course", folder)
    yield folder


def edit_history(folder: Path, change: dict[int, dict]) -> None:  # type: ignore[type-arg]
    spec = orjson.loads((folder / HISTORY).read_bytes())
    for number, step in change.items():
        spec["steps"][number - 1] = step
    (folder / HISTORY).write_bytes(orjson.dumps(spec))


def test_a_history_must_import_every_entity_of_its_bundle_and_only_those(tmp_path: Path, sample: Path) -> None:
    store = Store(tmp_path / "data")
    step = {"as": "grace", "at": "2025-11-03T10:40:00Z", "import": ["hello-world-video", "no-such-entity"]}
    edit_history(sample, {2: step})
    with pytest.raises(ValueError, match=r"never imported \['python-cheatsheet'\], not in the bundle \['no-such"):
        load_sample(store, sample)
    assert store.is_empty()  # checked before anything is created


def refusal(store: Store, sample: Path, path: str, old: bytes, new: bytes) -> InvalidDocument:
    """What loading `sample` raises once `old` is `new` in its bundle's file `<shard>/<path>`."""
    broken = next((sample / BUNDLE).glob(f"*/{path}"))
    broken.write_bytes(broken.read_bytes().replace(old, new))
    with pytest.raises(InvalidDocument) as refused:
        load_sample(store, sample)
    return refused.value


def test_a_broken_bundle_is_refused_before_anything_is_created(tmp_path: Path, sample: Path) -> None:
    store = Store(tmp_path / "data")
    refused = refusal(store, sample, "variables/entity.json", b'"unit"', b'"unit", "owner": 1')
    [error] = refused.extra["errors"]
    assert error["loc"] == [f"{entity_path('variables')}/entity.json", "owner"]
    assert store.is_empty()


def test_a_failing_step_says_which_and_an_import_names_the_bundle_file(tmp_path: Path, sample: Path) -> None:
    store = Store(tmp_path / "data")
    refused = refusal(store, sample, "first-program/members.json", b'"hello-world-video"', b'"hello-world-audio"')
    notes = "\n".join(refused.__notes__)
    assert f"{entity_path('first-program')}/entity.json members.1.key: 'hello-world-audio' is neither" in notes
    assert f"{sample / HISTORY}, step 6: " in notes


def test_save_bundle_writes_the_kept_bundle_back_whole(loaded: Store, tmp_path: Path) -> None:
    target = tmp_path / "demo-course" / BUNDLE
    (target / "ab" / "stale").mkdir(parents=True)
    (target / "ab" / "stale" / "entity.json").write_bytes(b"{}")
    count = save_bundle(loaded.repository("demo-course"), target)
    kept = files_under(SAMPLES / "demo-course" / BUNDLE)
    assert files_under(target) == kept and count == len(kept)
    assert sorted(p.name for p in target.parent.iterdir()) == [BUNDLE]  # nothing left aside


def test_save_sample_command_writes_into_the_samples_folder(loaded: Store, tmp_path: Path) -> None:
    done = gitstore("save-sample", "gov-pages", "--data", str(loaded.data_dir), "--samples", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    target = tmp_path / "gov-pages" / BUNDLE
    kept = files_under(SAMPLES / "gov-pages" / BUNDLE)
    assert orjson.loads(done.stdout) == {"repo": "gov-pages", "files": len(kept), "bundle": str(target)}
    assert files_under(target) == kept
