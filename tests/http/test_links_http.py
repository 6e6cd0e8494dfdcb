"""The REST contract for links, translations, unpublishing, paths and the event feed."""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import bearer, disk_state, token_for

R = "/repos/demo"
E = f"{R}/entities"


def put(client: TestClient, key: str, **doc: object) -> dict[str, object]:
    r = client.put(f"{E}/{key}", json={"type": "guide", "title": key.title(), **doc})
    assert r.status_code in (200, 201), r.text
    return r.json()  # type: ignore[no-any-return]


def test_expanded_links_and_dependents_over_http(client: TestClient) -> None:
    put(client, "root", base_path="/root")
    put(client, "topic", base_path="/topic", links={"parent": ["root"]})
    put(client, "page", base_path="/page", links={"parent": ["topic"], "related": ["root"]})
    assert client.post(f"{R}/publish", json={"all_drafts": True}).status_code == 200

    body = client.get(f"{E}/page/expanded-links").json()
    assert [s["key"] for s in body["links"]["related"]] == ["root"]
    assert [s["key"] for s in body["breadcrumbs"]] == ["topic", "root"]
    assert body["links"]["parent"][0] == {
        "key": "topic",
        "type": "guide",
        "title": "Topic",
        "base_path": "/topic",
        "locale": "en",
        "content_id": "topic",
        "withdrawn": False,
    }
    root = client.get(f"{E}/root/expanded-links").json()
    assert [s["key"] for s in root["links"]["children"]] == ["topic"]
    assert [s["key"] for s in root["links"]["related_from"]] == ["page"]
    assert client.get(f"{E}/root/dependents").json() == {"items": ["page", "topic"]}

    r = client.patch(f"{E}/topic", json={"title": "Topic 2"}, headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200
    published = client.post(f"{E}/topic/publish").json()
    assert published["dependents"] == ["page", "root"]


def test_unknown_link_targets_are_a_422_naming_each_and_nothing_is_written(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    before = disk_state(settings.data_dir / "demo.git")
    r = client.put(f"{E}/page", json={"type": "guide", "title": "P", "links": {"related": ["ghost", "ghost-2"]}})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in r.json()["errors"]] == [["links", "related", 0], ["links", "related", 1]]
    assert disk_state(settings.data_dir / "demo.git") == before


def test_a_draft_at_a_live_path_warns_and_its_publish_is_a_409_naming_the_holder(client: TestClient) -> None:
    put(client, "old", base_path="/vat")
    client.post(f"{E}/old/publish")
    client.patch(f"{E}/old", json={"base_path": "/vat-old"}, headers={"content-type": "application/merge-patch+json"})
    body = put(client, "new", base_path="/vat")
    assert body["warnings"] and "'old'" in body["warnings"][0]
    r = client.post(f"{E}/new/publish")
    assert r.status_code == 409
    assert (r.json()["type"], r.json()["holder"], r.json()["base_path"]) == (
        "urn:gitstore:problem:base-path-taken",
        "old",
        "/vat",
    )


def test_unpublish_gone_redirect_withdrawn_and_republish_over_http(client: TestClient) -> None:
    put(client, "hub", base_path="/hub")
    put(client, "guide", base_path="/guide")
    client.post(f"{R}/publish", json={"keys": ["hub", "guide"]})

    r = client.post(f"{E}/guide/unpublish", json={"type": "withdrawn"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["explanation"]

    r = client.post(f"{E}/guide/unpublish", json={"type": "withdrawn", "explanation": "Out of date"})
    assert r.status_code == 200 and [i["key"] for i in r.json()["items"]] == ["guide"]
    live = client.get(f"{E}/guide").json()
    assert live["unpublishing"]["type"] == "withdrawn" and live["withdrawn_at"] is not None
    assert live["unpublishing"]["explanation"] == "Out of date"

    client.post(f"{E}/guide/unpublish", json={"type": "redirect", "alternative_path": "/hub"})
    r = client.get(f"{E}/guide", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == f"{R}/paths/hub"
    assert client.get(f"{E}/guide").json()["key"] == "hub"  # following it lands on what is live there
    assert client.get(f"{R}/paths/guide", follow_redirects=False).status_code == 301

    client.post(f"{E}/guide/unpublish", json={"type": "gone", "explanation": "Policy ended"})
    r = client.get(f"{E}/guide")
    assert r.status_code == 410 and r.json()["explanation"] == "Policy ended"
    assert client.get(f"{E}/guide", params={"state": "draft"}).json()["unpublishing"]["type"] == "gone"

    assert client.post(f"{E}/guide/republish").status_code == 200
    assert client.get(f"{E}/guide").json()["unpublishing"] is None
    assert client.post(f"{E}/guide/republish").status_code == 409  # nothing to reverse

    client.post(f"{E}/guide/unpublish", json={"type": "vanish"})
    r = client.get(f"{E}/guide")
    assert r.status_code == 410 and r.json()["explanation"] is None
    assert "guide" not in [e["key"] for e in client.get(f"{E}").json()["items"]]
    assert client.post(f"{E}/hub/unpublish", json={"type": "vanish", "explanation": "x"}).status_code == 422
    assert client.post(f"{E}/guide/republish").status_code == 200

    client.patch(f"{E}/guide", json={"title": "New"}, headers={"content-type": "application/merge-patch+json"})
    r = client.post(f"{E}/guide/unpublish", json={"type": "gone"})
    assert r.status_code == 409 and r.json()["type"] == "urn:gitstore:problem:draft-pending"


def test_placeholders_are_served_at_their_path_as_the_410_or_301_they_stand_for(client: TestClient) -> None:
    """Issue 20: a live entity of type gone or redirect was served by /paths as a 200 page."""
    put(client, "hub", base_path="/hub")
    put(client, "moved", type="redirect", base_path="/old-hub", fields={"alternative_path": "/hub"})
    put(client, "ended", type="gone", base_path="/ended", fields={"explanation": "Scheme closed"})
    put(client, "bare", type="gone", base_path="/bare")
    put(client, "lost", type="redirect", base_path="/lost", fields={"alternative_path": "not a path"})
    assert client.post(f"{R}/publish", json={"all_drafts": True}).status_code == 200

    r = client.get(f"{R}/paths/old-hub", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == f"{R}/paths/hub"
    assert client.get(f"{R}/paths/old-hub").json()["key"] == "hub"
    r = client.get(f"{R}/paths/ended")
    assert r.status_code == 410 and r.headers["content-type"] == "application/problem+json"
    assert (r.json()["explanation"], r.json()["alternative_path"]) == ("Scheme closed", None)
    assert client.get(f"{R}/paths/bare").status_code == 410
    # a redirect that names no usable path has nowhere to send the reader: it is gone
    r = client.get(f"{R}/paths/lost", follow_redirects=False)
    assert r.status_code == 410 and r.json()["alternative_path"] is None
    # the entity itself still reads as what it is
    assert client.get(f"{E}/moved").json()["type"] == "redirect"


def test_documents_list_translations_and_readers_see_only_live_ones(tmp_path: Path, client: TestClient) -> None:
    put(client, "guide", base_path="/guide")
    put(client, "guide-cy", base_path="/guide.cy", locale="cy", content_id="guide")
    client.post(f"{E}/guide/publish")
    body = client.get(f"{R}/documents/guide").json()
    assert [(t["locale"], t["key"], t["draft"], t["live"]) for t in body["translations"]] == [
        ("cy", "guide-cy", True, False),
        ("en", "guide", True, True),
    ]
    r = client.put(f"{E}/guide-cy-2", json={"type": "guide", "title": "x", "locale": "cy", "content_id": "guide"})
    assert r.status_code == 409 and r.json()["holder"] == "guide-cy"

    settings = client.app.state.settings  # type: ignore[attr-defined]
    reading = bearer(token_for(settings.data_dir, {"demo": ["read"]}))
    with TestClient(create_app(settings), headers=reading) as reader:
        body = reader.get(f"{R}/documents/guide").json()
        assert [(t["key"], t["draft"]) for t in body["translations"]] == [("guide", None)]
        assert reader.get(f"{R}/documents/nothing-here").status_code == 404
        assert reader.get(f"{E}/guide-cy/expanded-links", params={"state": "draft"}).status_code == 403
        events = reader.get(f"{R}/events").json()["items"]
        assert [e["kind"] for e in events] == ["published"]  # no draft events for readers


def test_event_feed_long_polls_and_streams_server_sent_events(client: TestClient) -> None:
    put(client, "a")
    first = client.get(f"{R}/events").json()
    assert [e["kind"] for e in first["items"]] == ["draft_changed"]
    quiet = client.get(f"{R}/events", params={"after": first["cursor"], "wait": 0.3}).json()
    assert quiet == {"items": [], "cursor": first["cursor"]}
    client.post(f"{E}/a/publish")

    with client.stream("GET", f"{R}/events", params={"wait": 0.5}, headers={"accept": "text/event-stream"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    blocks = [b for b in text.split("\n\n") if b.startswith("id:")]
    assert [b.split("\n")[1] for b in blocks] == ["event: draft_changed", "event: published"]
    last_id = blocks[-1].split("\n")[0][len("id: ") :]
    assert orjson.loads(blocks[-1].split("data: ", 1)[1])["id"] == last_id

    put(client, "b")
    with client.stream(
        "GET", f"{R}/events", params={"wait": 0.3}, headers={"accept": "text/event-stream", "last-event-id": last_id}
    ) as stream:
        resumed = "".join(stream.iter_text())
    assert resumed.count("event: ") == 1 and '"key":"b"' in resumed

    assert client.get(f"{R}/events", params={"after": "nonsense"}).status_code == 422


def test_base_paths_are_compared_and_looked_up_in_rfc_3986_normal_form(client: TestClient) -> None:
    assert put(client, "same", base_path="/s%61me")["base_path"] == "/same"  # %61 is "a", unreserved
    r = client.put(f"{E}/other", json={"type": "guide", "title": "Other", "base_path": "/same"})
    assert r.status_code == 409 and r.json()["holder"] == "same", r.text
    put(client, "slash", base_path="/a%2fb")  # an escaped "/" is not a "/": kept, in upper case
    r = client.put(f"{E}/slash-2", json={"type": "guide", "title": "Slash", "base_path": "/a%2Fb"})
    assert r.status_code == 409 and r.json()["holder"] == "slash", r.text
    for bad in ("/a%zz", "/a%2", "/%2e%2e/etc", "/x/%2E"):
        r = client.put(f"{E}/bad", json={"type": "guide", "title": "Bad", "base_path": bad})
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", (bad, r.text)
    assert client.post(f"{R}/publish", json={"all_drafts": True}).status_code == 200
    for path, key in [("s%61me", "same"), ("same", "same"), ("a%2Fb", "slash"), ("a%2fb", "slash")]:
        r = client.get(f"{R}/paths/{path}")
        assert r.status_code == 200 and r.json()["key"] == key, (path, r.text)
    assert client.get(f"{R}/paths/a/b").status_code == 404
