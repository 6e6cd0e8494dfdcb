"""If-Match as RFC 9110 has it: `*` is "any current representation", a weak tag never matches
under its strong comparison (412), and only a value that is not an entity-tag list is 400."""

from __future__ import annotations

from fastapi.testclient import TestClient

PAGE = {"type": "page", "title": "Intro"}
E = "/repos/demo/entities"
JSON_PATCH = {"Content-Type": "application/merge-patch+json"}


def test_if_match_star_changes_what_exists_and_is_412_on_a_missing_entity(client: TestClient) -> None:
    created = client.put(f"{E}/intro", json=PAGE)
    assert created.status_code == 201

    replaced = client.put(f"{E}/intro", json=PAGE | {"title": "Two"}, headers={"If-Match": "*"})
    assert replaced.status_code == 200 and replaced.json()["version"] == 2
    patched = client.patch(f"{E}/intro", content=b'{"title": "Three"}', headers=JSON_PATCH | {"If-Match": "*"})
    assert patched.status_code == 200 and patched.json()["version"] == 3

    for response in (
        client.put(f"{E}/nobody", json=PAGE, headers={"If-Match": "*"}),
        client.patch(f"{E}/nobody", content=b'{"title": "x"}', headers=JSON_PATCH | {"If-Match": "*"}),
        client.post(f"{E}/nobody/publish", headers={"If-Match": "*"}),
    ):
        assert response.status_code == 412, response.text
        assert response.json()["type"] == "urn:gitstore:problem:precondition-failed"
    assert client.get(f"{E}/nobody", params={"state": "draft"}).status_code == 404


def test_if_match_star_refuses_a_deleted_draft_but_publishes_an_existing_one(client: TestClient) -> None:
    client.put(f"{E}/intro", json=PAGE)
    assert client.post(f"{E}/intro/publish", headers={"If-Match": "*"}).status_code == 200
    assert client.delete(f"{E}/intro").status_code == 200
    refused = client.patch(f"{E}/intro", content=b'{"title": "x"}', headers=JSON_PATCH | {"If-Match": "*"})
    assert refused.status_code == 412
    assert client.get(f"{E}/intro", params={"state": "draft"}).status_code == 404


def test_a_weak_etag_in_if_match_is_a_failed_precondition_and_writes_nothing(client: TestClient) -> None:
    tag = client.put(f"{E}/intro", json=PAGE).headers["etag"]
    for value in ("W/" + tag, f'W/"x", W/{tag}'):
        refused = client.put(f"{E}/intro", json=PAGE | {"title": "Two"}, headers={"If-Match": value})
        assert refused.status_code == 412, value
        assert refused.json()["current_etag"] == tag
    assert client.post(f"{E}/intro/publish", headers={"If-Match": "W/" + tag}).status_code == 412
    draft = client.get(f"{E}/intro", params={"state": "draft"})
    assert draft.headers["etag"] == tag and draft.json()["title"] == "Intro"
    # A strong tag alongside weak ones is what the comparison uses.
    assert client.put(f"{E}/intro", json=PAGE, headers={"If-Match": f'W/"x", {tag}'}).status_code == 200


def test_a_malformed_if_match_is_still_400(client: TestClient) -> None:
    tag = client.put(f"{E}/intro", json=PAGE).headers["etag"]
    for value in ('"abc"', tag.strip('"'), f"{tag} junk", "W/", "**", '"' + "a" * 40 + '", "' + "b" * 40 + '"'):
        refused = client.put(f"{E}/intro", json=PAGE | {"title": "Two"}, headers={"If-Match": value})
        assert refused.status_code == 400, value
        assert refused.json()["type"] == "urn:gitstore:problem:malformed-precondition"
    assert client.get(f"{E}/intro", params={"state": "draft"}).headers["etag"] == tag
