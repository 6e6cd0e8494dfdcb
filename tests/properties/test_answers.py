"""The hot reads' answers, encoded straight from the library's records (api.answers), are the
very bytes the schema models serialise as a route's response_model: for editors and for
readers (api.readers), whatever an entity's fields, links, manifest, times and notices hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from api import readers
from api.answers import encode, entity_document, version_documents
from api.readers import Audience
from api.schemas import EntityOut, VersionOut, VersionPage
from gitstore.entities.document import Member, Unpublishing
from gitstore.entities.model import Author, Entity, VersionInfo
from tests.properties.strategies import fields, locales, titles, type_names

keys = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True)
commits = st.from_regex(r"[0-9a-f]{40}", fullmatch=True)
offsets = st.sampled_from(
    [UTC, timezone(timedelta(0)), timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
times = st.builds(
    lambda moment, tz: moment.replace(tzinfo=UTC).astimezone(tz),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    offsets,
)
authors = st.builds(Author, st.text(max_size=20), st.text(max_size=20))
notices = st.builds(
    Unpublishing,
    st.sampled_from(["gone", "redirect", "vanish", "withdrawn"]),
    times.map(lambda t: t.isoformat()),
    st.none() | st.text(max_size=20),
    st.none() | st.just("/elsewhere"),
)
entities = st.builds(
    Entity,
    key=keys,
    type=type_names,
    title=titles,
    locale=locales,
    content_id=keys,
    base_path=st.none() | st.just("/a/page"),
    fields=fields,
    links=st.dictionaries(keys, st.lists(keys, max_size=3), max_size=3),
    members=st.none() | st.lists(st.builds(Member, keys, st.none() | commits), max_size=4).map(tuple),
    version=st.integers(1, 10**6),
    edition=st.integers(0, 10**6),
    commit=commits,
    state=st.sampled_from(["draft", "published", "superseded"]),
    published_commit=st.none() | commits,
    has_unpublished_changes=st.booleans(),
    deleted=st.booleans(),
    author=authors,
    updated_at=times,
    unpublishing=st.none() | notices,
)
audiences = st.builds(Audience, st.booleans(), st.sampled_from(["name", "none"]))

_entity_out = TypeAdapter(EntityOut)


@given(entities, audiences, st.sets(keys, max_size=6))
def test_an_entity_answer_is_what_its_model_serialises(entity: Entity, audience: Audience, ever_live: set[str]) -> None:
    with mock.patch.object(readers.entities, "ever_published", lambda _repo, named: ever_live & set(named)):
        fast = encode(audience.documents(None, [entity_document(entity)])[0])  # type: ignore[arg-type]
        model = audience.entity(None, EntityOut.model_validate(entity))  # type: ignore[arg-type]
    assert fast == _entity_out.dump_json(model)


versions = st.builds(
    VersionInfo,
    version=st.integers(1, 10**6),
    edition=st.integers(0, 10**6),
    commit=commits,
    action=st.sampled_from(["create", "update", "delete", "restore"]),
    message=st.text(max_size=60),
    author=authors,
    committed_at=times,
    live=st.booleans(),
    published_at=st.none() | times,
)


@given(st.lists(versions, max_size=5), st.none() | st.from_regex(r"[0-9]{1,4}", fullmatch=True))
def test_a_versions_page_is_what_its_model_serialises(items: list[VersionInfo], next_cursor: str | None) -> None:
    fast = encode({"items": version_documents(items), "next_cursor": next_cursor})
    model = VersionPage(items=[VersionOut.model_validate(v) for v in items], next_cursor=next_cursor)
    assert fast == TypeAdapter(VersionPage).dump_json(model)
