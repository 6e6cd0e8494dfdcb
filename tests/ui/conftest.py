"""Fixtures for the web app: an app with a token and anonymous reading, and a way to sign a
client in through the form, as a browser does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from tests.conftest import ADA, GRACE, bearer, token_for

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, token: str) -> None:
    form = client.get("/ui/sign-in")
    answer = client.post(
        "/ui/sign-in", data={"csrf": csrf_of(form.text), "token": token, "next": "/ui"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


@pytest.fixture
def ui_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", load_samples=False, anonymous_read=True, rate_limit="")


@pytest.fixture
def admin_token(ui_settings: Settings) -> str:
    return token_for(ui_settings.data_dir, {"*": ["admin"]}, ADA)


@pytest.fixture
def reader_token(ui_settings: Settings, admin_token: str) -> str:
    return token_for(ui_settings.data_dir, {"*": ["read"]}, GRACE)


@pytest.fixture
def app_client(ui_settings: Settings, admin_token: str) -> Iterator[TestClient]:
    """A client of an app holding repository `demo` with `page` (live, with a newer draft) and
    `secret` (a draft never published)."""
    with TestClient(create_app(ui_settings)) as client:
        api = bearer(admin_token)
        client.post("/repos", json={"name": "demo"}, headers=api).raise_for_status()
        doc = {"type": "html", "title": "Live title", "fields": {"html": "<p>one</p>\n<p>two</p>\n"}}
        client.put("/repos/demo/entities/page", json=doc, headers=api).raise_for_status()
        client.post("/repos/demo/entities/page/publish", headers=api).raise_for_status()
        client.patch(
            "/repos/demo/entities/page",
            json={"title": "Draft title", "fields": {"html": "<p>one</p>\n<p>three</p>\n"}},
            headers=api | {"Content-Type": "application/merge-patch+json"},
        ).raise_for_status()
        secret = {"type": "html", "title": "Secret draft title", "fields": {"html": "hush\n"}}
        client.put("/repos/demo/entities/secret", json=secret, headers=api).raise_for_status()
        yield client
