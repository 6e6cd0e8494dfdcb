"""Webhooks through the real relay in the server's lifespan, to a real HTTP receiver on
loopback: signed, retried with backoff, failed after the limit without holding up others,
resumed where they stopped, redelivered by hand; and refused when the input is bad."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from gitstore import Store
from gitstore.relay.relay import Relay
from gitstore.relay.state import FILE_NAME
from gitstore.relay.webhooks import Allowlist, post, sign
from tests.conftest import bearer, token_for
from tests.relay.feed import as_a_reader_sees, live_feed
from tests.relay.receiver import Receiver, signature_ok

SECRET = "s3cret-of-at-least-16"
PAGE = {"type": "guide", "title": "Hello"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _app(tmp_path: Path, **settings: object) -> TestClient:
    config = Settings(
        data_dir=tmp_path / "data",
        load_samples=False,
        relay=True,
        webhook_allow="127.0.0.1",
        webhook_tries=4,
        relay_retry_seconds=0.05,
    )
    return TestClient(create_app(Settings(**(config.__dict__ | settings))))


def _subscribe(http: TestClient, receiver: Receiver, path: str, **extra: object) -> str:
    receiver.secrets[path] = SECRET
    r = http.post("/repos/demo/webhooks", json={"url": receiver.url + path, "secret": SECRET, **extra})
    assert r.status_code == 201, r.text
    return r.json()["id"]  # type: ignore[no-any-return]


def _publish_pages(http: TestClient, keys: list[str]) -> None:
    for key in keys:
        http.put(f"/repos/demo/entities/{key}", json=PAGE | {"title": key}).raise_for_status()
        http.post(f"/repos/demo/entities/{key}/publish").raise_for_status()


def test_retries_then_delivers_once_and_a_failing_hook_fails_alone(tmp_path: Path, receiver: Receiver) -> None:
    with _app(tmp_path) as http:
        http.post("/repos", json={"name": "demo"}).raise_for_status()
        flaky = _subscribe(http, receiver, "/flaky")
        down = _subscribe(http, receiver, "/down")
        _subscribe(http, receiver, "/ok")
        drafts = _subscribe(http, receiver, "/drafts", drafts=True, events=["draft_changed"])
        receiver.failures.update({"/flaky": 3, "/down": -1})
        _publish_pages(http, ["a", "b", "c"])

        receiver.wait_for(lambda: len(receiver.got("/flaky", status=200)) == 3 and len(receiver.got("/ok")) == 3)
        receiver.wait_for(lambda: http.get(f"/repos/demo/webhooks/{down}").json()["failed"])
        feed = live_feed(Store(tmp_path / "data"), "demo")
        expected = [as_a_reader_sees(e) for e in feed]

        # The healthy hook got every event once, in order, as a live reader sees it.
        assert [r["body"]["event"] for r in receiver.got("/ok")] == expected
        # The flaky one: the first event tried 4 times (3 refused), then each delivered once.
        assert [r["body"]["id"] for r in receiver.got("/flaky")] == [feed[0].id] * 4 + [e.id for e in feed[1:]]
        assert [r["body"]["event"] for r in receiver.got("/flaky", status=200)] == expected
        first = receiver.got("/flaky")
        assert len({r["headers"]["X-Gitstore-Delivery"] for r in first[:4]}) == 1
        assert [r["headers"]["X-Gitstore-Attempt"] for r in first[:4]] == ["1", "2", "3", "4"]
        log = http.get(f"/repos/demo/webhooks/{flaky}/deliveries").json()["items"][::-1]
        assert [(d["attempt"], d["status"], d["response_code"]) for d in log[:4]] == [
            (1, "retrying", 500),
            (2, "retrying", 500),
            (3, "retrying", 500),
            (4, "delivered", 200),
        ]
        assert all(d["duration_ms"] > 0 for d in log)
        # The failing one gave up on the first event after 4 tries, and stopped there.
        down_log = http.get(f"/repos/demo/webhooks/{down}/deliveries").json()["items"]
        assert [(d["event_id"], d["status"]) for d in down_log] == [(feed[0].id, "failed")] + [
            (feed[0].id, "retrying")
        ] * 3
        assert len(receiver.got("/down")) == 4
        # A drafts subscription hears the draft changes, with what the preview right sees.
        receiver.wait_for(lambda: len(receiver.got("/drafts")) == 3)
        assert [r["body"]["event"]["kind"] for r in receiver.got("/drafts")] == ["draft_changed"] * 3
        assert receiver.got("/drafts")[0]["body"]["event"]["author"]["email"] == "user@gitstore.invalid"
        assert http.get(f"/repos/demo/webhooks/{drafts}").json()["drafts"] is True

        # Reactivated once its receiver is back, it resumes at the event it gave up on.
        receiver.failures["/down"] = 0
        r = http.patch(f"/repos/demo/webhooks/{down}", json={"active": True})
        assert r.status_code == 200 and r.json()["failed"] is False
        receiver.wait_for(lambda: len(receiver.got("/down", status=200)) == 3)
        assert [r["body"]["event"] for r in receiver.got("/down", status=200)] == expected

        # A redelivery by hand: one more attempt, logged as such, the same delivery id.
        delivered = http.get(f"/repos/demo/webhooks/{flaky}/deliveries").json()["items"][0]
        again = http.post(f"/repos/demo/webhooks/{flaky}/deliveries/{delivered['id']}/redeliver")
        assert again.status_code == 200 and again.json()["redelivery"] is True
        assert again.json()["id"] == delivered["id"] and again.json()["status"] == "delivered"
        assert receiver.got("/flaky")[-1]["raw"] == receiver.got("/flaky", status=200)[-1]["raw"]


def test_a_forged_signature_is_caught_by_the_documented_check(tmp_path: Path, receiver: Receiver) -> None:
    with _app(tmp_path) as http:
        http.post("/repos", json={"name": "demo"}).raise_for_status()
        _subscribe(http, receiver, "/ok")
        _publish_pages(http, ["a"])
        receiver.wait_for(lambda: len(receiver.got("/ok")) == 1)
    real = receiver.got("/ok")[0]
    header = real["headers"]["X-Hub-Signature-256"]
    assert signature_ok(SECRET, real["raw"], header)
    forged = real["raw"].replace(b'"title":"a"', b'"title":"pwned"')
    assert forged != real["raw"] and not signature_ok(SECRET, forged, header)
    assert not signature_ok("another-secret-of-16+", real["raw"], header)
    assert not signature_ok(SECRET, real["raw"], None)


@pytest.mark.parametrize(
    ("body", "allow", "status", "where"),
    [
        ({"events": ["published", "renamed"]}, "127.0.0.1", 422, "events"),
        ({"events": []}, "127.0.0.1", 422, "events"),
        ({"events": ["draft_changed"]}, "127.0.0.1", 422, "events"),  # drafts: false
        ({"url": "ftp://127.0.0.1/hook"}, "127.0.0.1", 422, "url"),
        ({"url": "file:///etc/passwd"}, "127.0.0.1", 422, "url"),
        ({"url": "http://user:pw@127.0.0.1/"}, "127.0.0.1", 422, "url"),
        ({"secret": "short"}, "127.0.0.1", 422, "secret"),
        ({"url": "http://127.0.0.1:9/hook"}, "", 422, "url"),  # loopback, not allowed
        ({"url": "http://[::1]:9/hook"}, "127.0.0.1", 422, "url"),
        ({"url": "http://10.1.2.3/hook"}, "127.0.0.1", 422, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "127.0.0.1", 422, "url"),
        ({"url": "http://localhost:9/hook"}, "", 422, "url"),
        ({"unknown": 1}, "127.0.0.1", 422, None),
    ],
)
def test_bad_subscriptions_are_refused_and_nothing_is_written(
    tmp_path: Path, body: dict[str, object], allow: str, status: int, where: str | None
) -> None:
    with _app(tmp_path, webhook_allow=allow, relay=False) as http:
        http.post("/repos", json={"name": "demo"}).raise_for_status()
        asked = {"url": "http://127.0.0.1:9/hook", "secret": SECRET} | body
        r = http.post("/repos/demo/webhooks", json=asked)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
        if where is not None:
            assert where in [e["loc"][-1] for e in r.json()["errors"]], r.json()
        assert http.get("/repos/demo/webhooks").json()["items"] == []
    assert not (tmp_path / "data" / "demo.git" / "gitstore" / FILE_NAME).exists()


def test_a_delivery_checks_the_address_again_and_never_connects_to_a_refused_one(receiver: Receiver) -> None:
    # What a name resolves to when delivering is what counts: the same check, before connecting.
    refused = post(receiver.url + "/ok", b"{}", {}, Allowlist())
    assert not refused.ok and refused.response_code is None and "GITSTORE_WEBHOOK_ALLOW" in (refused.error or "")
    assert receiver.got("/ok") == []
    receiver.secrets["/ok"] = SECRET
    allowed = post(
        receiver.url + "/ok", b"{}", {"X-Hub-Signature-256": sign(SECRET, b"{}")}, Allowlist.parse("127.0.0.0/8")
    )
    assert allowed.ok and allowed.response_code == 200 and len(receiver.got("/ok")) == 1


def test_who_may_manage_webhooks(tmp_path: Path) -> None:
    with _app(tmp_path, relay=False) as http:
        http.post("/repos", json={"name": "demo"}).raise_for_status()
        data = tmp_path / "data"
        hook = {"url": "http://127.0.0.1:9/hook", "secret": SECRET}
        outsider = bearer(token_for(data, {"other": ["admin"]}))
        assert http.post("/repos/demo/webhooks", json=hook, headers=outsider).status_code == 404
        reader = bearer(token_for(data, {"demo": ["read"]}))
        assert http.post("/repos/demo/webhooks", json=hook, headers=reader).status_code == 403
        admin = bearer(token_for(data, {"demo": ["admin"]}))
        made = http.post("/repos/demo/webhooks", json=hook, headers=admin)
        assert made.status_code == 201 and "secret" not in made.json()
        assert http.get("/repos/demo/webhooks", headers=reader).status_code == 403
        listed = http.get("/repos/demo/webhooks", headers=admin).json()["items"]
        assert [h["id"] for h in listed] == [made.json()["id"]] and "secret" not in listed[0]
        assert http.get("/repos/demo/webhooks/nope", headers=admin).status_code == 404
        assert http.delete(f"/repos/demo/webhooks/{made.json()['id']}", headers=admin).status_code == 204
        assert http.get("/repos/demo/webhooks", headers=admin).json()["items"] == []


def test_a_lane_keeps_retrying_through_a_long_outage_at_the_capped_delay() -> None:
    # Every failed attempt doubles the wait up to retry_max; hours of a sink being down make
    # thousands of attempts, and the delay must stay a number, not overflow.
    relay = Relay(list, lambda repo: [], render=lambda *args: b"", retry_base=1.0, retry_max=60.0)
    assert 0.5 <= relay._backoff(1) <= 1.0  # jittered down to half, never up
    for attempt in (7, 1_024, 1_100, 100_000):
        assert 30.0 <= relay._backoff(attempt) <= 60.0
