"""The web app over HTTP, in process: sessions, CSRF, escaping, readers, bad input, and that
reading never writes. The browser journeys are in test_browser.py."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.settings import Settings
from tests.conftest import bearer, disk_state
from tests.ui.conftest import csrf_of, sign_in

PAGES = [
    "/ui",
    "/ui/repos/demo",
    "/ui/repos/demo?view=published&q=title",
    "/ui/repos/demo?changed=yes&author=ada@example.org",
    "/ui/repos/demo?deleted=true",
    "/ui/repos/demo/entities/page",
    "/ui/repos/demo/entities/page?version=1",
    "/ui/repos/demo/entities/page/compare",
    "/ui/repos/demo/entities/page/compare?from=1&to=2&layout=unified",
    "/ui/repos/demo/entities/page/blame",
    "/ui/repos/demo/entities/page/blame?field=html",
    "/ui/repos/demo/entities/page/links?state=draft",
    "/ui/repos/demo/publish-log",
    "/ui/repos/demo/activity?key=page",
]


def test_a_signed_in_editor_sees_live_and_draft_and_what_publishing_would_change(
    app_client: TestClient, admin_token: str
) -> None:
    sign_in(app_client, admin_token)
    page = app_client.get("/ui/repos/demo/entities/page")
    assert page.status_code == 200
    assert "Live title" in page.text and "Draft title" in page.text
    assert "What publishing would change" in page.text
    # the changed word inside the changed line is marked, and the sign is not colour alone
    assert '<mark class="word">three</mark>' in page.text and '<mark class="word">two</mark>' in page.text
    assert '<span class="visually-hidden">added</span>' in page.text
    listing = app_client.get("/ui/repos/demo")
    assert "live + draft" in listing.text and "draft only" in listing.text


def test_every_page_is_html_with_the_security_headers_and_no_get_writes(
    app_client: TestClient, admin_token: str, ui_settings: Settings
) -> None:
    sign_in(app_client, admin_token)
    before = disk_state(ui_settings.data_dir / "demo.git")
    for url in [*PAGES, "/ui/repos/nope", "/ui/repos/demo/entities/page?version=99", "/ui/sign-in"]:
        answer = app_client.get(url)
        assert answer.headers["content-type"].startswith("text/html"), url
        csp = answer.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp, url
        assert answer.headers["cache-control"] == "no-store"
    assert disk_state(ui_settings.data_dir / "demo.git") == before


def test_the_session_cookie_is_httponly_samesite_and_only_for_the_app(app_client: TestClient, admin_token: str) -> None:
    form = app_client.get("/ui/sign-in")
    answer = app_client.post(
        "/ui/sign-in", data={"csrf": csrf_of(form.text), "token": admin_token, "next": "/ui"}, follow_redirects=False
    )
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("gitstore_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert admin_token not in answer.headers["location"]
    # The REST API does not take the cookie: without a header this is an anonymous reader.
    assert app_client.get("/repos/demo/entities/secret?state=draft").status_code == 401


def test_a_wrong_token_is_refused_and_sets_no_session(app_client: TestClient) -> None:
    form = app_client.get("/ui/sign-in")
    answer = app_client.post("/ui/sign-in", data={"csrf": csrf_of(form.text), "token": "gst_nope"})
    assert answer.status_code == 401 and "unknown, expired or revoked" in answer.text
    assert "gitstore_session" not in answer.headers.get("set-cookie", "")


def test_a_forged_form_gets_403_and_writes_nothing(
    app_client: TestClient, admin_token: str, ui_settings: Settings
) -> None:
    sign_in(app_client, admin_token)
    page = app_client.get("/ui/repos/demo/entities/page")
    etag = page.text.split('name="etag" value="')[1][:40]
    before = disk_state(ui_settings.data_dir / "demo.git")
    for form in ({"etag": etag}, {"etag": etag, "csrf": ""}, {"etag": etag, "csrf": "0" * 64}):
        answer = app_client.post("/ui/repos/demo/entities/page/publish", data=form)
        assert answer.status_code == 403 and "Form expired or forged" in answer.text
    # A token from another browser (another CSRF cookie) does not work in this one either.
    other = TestClient(app_client.app)
    stolen = csrf_of(other.get("/ui/sign-in").text)
    assert (
        app_client.post("/ui/repos/demo/entities/page/publish", data={"etag": etag, "csrf": stolen}).status_code == 403
    )
    assert disk_state(ui_settings.data_dir / "demo.git") == before
    assert app_client.get("/repos/demo/entities/page").json()["title"] == "Live title"


def test_a_stale_page_is_refused_with_412_explained_and_nothing_written(
    app_client: TestClient, admin_token: str, ui_settings: Settings
) -> None:
    sign_in(app_client, admin_token)
    page = app_client.get("/ui/repos/demo/entities/page")
    csrf, etag = csrf_of(page.text), page.text.split('name="etag" value="')[1][:40]
    app_client.patch(
        "/repos/demo/entities/page",
        json={"title": "Someone else's title"},
        headers=bearer(admin_token) | {"Content-Type": "application/merge-patch+json"},
    ).raise_for_status()
    before = disk_state(ui_settings.data_dir / "demo.git")
    for action in ("publish", "discard"):
        answer = app_client.post(f"/ui/repos/demo/entities/page/{action}", data={"csrf": csrf, "etag": etag})
        assert answer.status_code == 412
        assert "Someone changed this since you loaded it" in answer.text
        assert f"/ui/repos/demo/entities/page/compare?from={etag}&amp;to=draft" in answer.text
    assert disk_state(ui_settings.data_dir / "demo.git") == before


def test_actions_publish_discard_restore_and_unpublish_through_the_library(
    app_client: TestClient, admin_token: str
) -> None:
    sign_in(app_client, admin_token)
    api = bearer(admin_token)

    def act(action: str, **extra: str) -> None:
        page = app_client.get("/ui/repos/demo/entities/page")
        form = {"csrf": csrf_of(page.text), "etag": page.text.split('name="etag" value="')[1][:40], **extra}
        answer = app_client.post(f"/ui/repos/demo/entities/page/{action}", data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"].startswith("/ui/repos/demo/entities/page?done=")

    act("publish")
    assert app_client.get("/repos/demo/entities/page").json()["title"] == "Draft title"
    act("restore", version="1")
    assert app_client.get("/repos/demo/entities/page?state=draft", headers=api).json()["title"] == "Live title"
    act("discard")
    assert app_client.get("/repos/demo/entities/page?state=draft", headers=api).json()["title"] == "Draft title"
    act("unpublish", type="gone", explanation="Merged elsewhere")
    assert app_client.get("/repos/demo/entities/page").status_code == 410


def test_bad_form_values_are_4xx_and_write_nothing(
    app_client: TestClient, admin_token: str, ui_settings: Settings
) -> None:
    sign_in(app_client, admin_token)
    page = app_client.get("/ui/repos/demo/entities/page")
    csrf, etag = csrf_of(page.text), page.text.split('name="etag" value="')[1][:40]
    before = disk_state(ui_settings.data_dir / "demo.git")
    cases = [
        ("publish", {"etag": "not-a-commit"}, 400),
        ("restore", {"etag": etag, "version": "x"}, 422),
        ("restore", {"etag": etag, "version": "99"}, 404),
        ("unpublish", {"etag": etag, "type": "erase"}, 422),
    ]
    for action, form, status in cases:
        answer = app_client.post(f"/ui/repos/demo/entities/page/{action}", data={"csrf": csrf, **form})
        assert answer.status_code == status, (action, form, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
    json_post = app_client.post("/ui/repos/demo/entities/page/publish", json={"csrf": csrf, "etag": etag})
    assert json_post.status_code == 415
    assert disk_state(ui_settings.data_dir / "demo.git") == before


def test_a_reader_sees_no_actions_and_cannot_post_them(
    app_client: TestClient, reader_token: str, ui_settings: Settings
) -> None:
    sign_in(app_client, reader_token)
    page = app_client.get("/ui/repos/demo/entities/page")
    assert page.status_code == 200 and "Live title" in page.text
    assert "Draft title" not in page.text and "Publish</button>" not in page.text
    before = disk_state(ui_settings.data_dir / "demo.git")
    answer = app_client.post(
        "/ui/repos/demo/entities/page/publish", data={"csrf": csrf_of(page.text), "etag": "0" * 40}
    )
    assert answer.status_code == 403
    assert disk_state(ui_settings.data_dir / "demo.git") == before


def test_anonymous_visitors_see_only_what_anonymous_api_callers_see(app_client: TestClient) -> None:
    for url in PAGES:
        answer = app_client.get(url)
        for draft_only in ("Draft title", "Secret draft title", "three", "ada@example.org"):
            assert draft_only not in answer.text, (url, draft_only)
        if answer.status_code == 200:
            assert "secret" not in answer.text, url
    assert app_client.get("/ui/repos/demo/entities/page/compare").status_code == 401
    assert app_client.get("/ui/repos/demo/entities/page/blame").status_code == 401
    # A key that was never live is exactly as unknown as one that never existed.
    never_live = app_client.get("/ui/repos/demo/entities/secret", headers={"Accept": "application/json"})
    unknown = app_client.get("/ui/repos/demo/entities/ghost", headers={"Accept": "application/json"})
    assert never_live.status_code == unknown.status_code == 404
    assert never_live.json()["detail"].replace("secret", "ghost") == unknown.json()["detail"]
    api = app_client.get("/repos/demo/entities/secret")
    assert never_live.json() == api.json()


def test_unknown_things_are_404_pages_or_problems_and_malformed_ones_400_or_422(
    app_client: TestClient, admin_token: str
) -> None:
    sign_in(app_client, admin_token)
    cases = [
        ("/ui/repos/nope", 404),
        ("/ui/repos/demo/entities/ghost", 404),
        ("/ui/repos/demo/entities/page?version=99", 404),
        ("/ui/repos/demo/entities/page/blame?field=nope", 404),
        ("/ui/repos/demo/entities/page/compare?from=99", 404),
        ("/ui/repos/demo/entities/page?version=abc", 422),
        ("/ui/repos/demo/entities/page?version=0", 422),
        ("/ui/repos/demo/entities/page/compare?from=zz", 422),
        ("/ui/repos/demo/entities/page/compare?from=" + "g" * 40, 422),
        ("/ui/repos/demo/entities/BAD", 422),
    ]
    for url, status in cases:
        page = app_client.get(url)
        assert page.status_code == status, (url, page.text)
        assert page.headers["content-type"].startswith("text/html") and "<h1>" in page.text
        problem = app_client.get(url, headers={"Accept": "application/json"})
        assert problem.status_code == status
        assert problem.headers["content-type"] == "application/problem+json"


def test_every_user_string_is_escaped(app_client: TestClient, admin_token: str) -> None:
    hostile = "<script>alert(1)</script>"
    doc = {"type": "html", "title": hostile, "fields": {"html": f"{hostile}\n"}}
    app_client.put("/repos/demo/entities/xss", json=doc, headers=bearer(admin_token)).raise_for_status()
    sign_in(app_client, admin_token)
    for url in (
        "/ui/repos/demo",
        "/ui/repos/demo/entities/xss",
        "/ui/repos/demo/entities/xss/compare",
        "/ui/repos/demo/entities/xss/blame?field=html",
        f"/ui/repos/demo?q={hostile}",
    ):
        answer = app_client.get(url)
        assert answer.status_code == 200, url
        assert hostile not in answer.text and "&lt;script&gt;" in answer.text, url


def test_a_revoked_token_ends_the_session(app_client: TestClient, ui_settings: Settings) -> None:
    from gitstore.access.credentials import Credentials, default_path

    credentials = Credentials(default_path(ui_settings.data_dir))
    issued = credentials.create_token("Tmp", "tmp@example.org", {"*": ["admin"]})
    sign_in(app_client, issued.secret)
    assert "Draft title" in app_client.get("/ui/repos/demo/entities/page").text
    credentials.revoke_token(issued.id)
    after = app_client.get("/ui/repos/demo/entities/page")
    assert "Draft title" not in after.text and "Sign in" in after.text
    assert any(c.startswith('gitstore_session=""') for c in after.headers.get_list("set-cookie"))


def test_the_root_redirects_to_the_app_and_docs_need_no_cdn(app_client: TestClient) -> None:
    assert app_client.get("/", follow_redirects=False).headers["location"] == "/ui"
    for url in ("/docs", "/redoc"):
        html = app_client.get(url).text
        assert "cdn." not in html and "fonts.googleapis" not in html and "/docs-assets/" in html
    assert app_client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert app_client.get("/docs-assets/redoc.standalone.js").status_code == 200


def test_the_deleted_filter_lists_deleted_drafts(app_client: TestClient, admin_token: str) -> None:
    app_client.delete("/repos/demo/entities/secret", headers=bearer(admin_token)).raise_for_status()
    sign_in(app_client, admin_token)
    listing = app_client.get("/ui/repos/demo?deleted=true").text
    assert "/ui/repos/demo/entities/secret" in listing and "deleted in draft" in listing
    assert '/ui/repos/demo/entities/page"' not in listing


def test_entity_filters_title_author_and_changes_narrow_the_list(app_client: TestClient, admin_token: str) -> None:
    for key, title in (("fees", "Fees 100% off_sale"), ("other", "Other page")):
        doc = {"type": "html", "title": title}
        app_client.put(f"/repos/demo/entities/{key}", json=doc, headers=bearer(admin_token)).raise_for_status()
    sign_in(app_client, admin_token)

    def keys(url: str) -> set[str]:
        html = app_client.get(url).text
        return {k for k in ("page", "secret", "fees", "other") if f'/ui/repos/demo/entities/{k}"' in html}

    assert keys("/ui/repos/demo?q=PAGE") == {"other"}  # case-insensitive part of the draft title
    assert keys("/ui/repos/demo?q=title&view=published") == {"page"}  # the live title
    assert keys("/ui/repos/demo?q=100%25") == {"fees"}  # % and _ are literal characters
    assert keys("/ui/repos/demo?q=off_") == {"fees"}
    assert keys("/ui/repos/demo?q=1%25f") == keys("/ui/repos/demo?q=f_e") == set()  # not wildcards
    assert keys("/ui/repos/demo?changed=no") == set()
    assert keys("/ui/repos/demo?view=published") == {"page"}
    assert keys("/ui/repos/demo?author=Ada%20Lovelace") == {"page", "secret", "fees", "other"}
    assert keys("/ui/repos/demo?author=grace@example.org") == set()


def test_the_publish_log_filters_by_key_and_author_and_shortens_big_publishes(
    app_client: TestClient, admin_token: str
) -> None:
    api = bearer(admin_token)
    for i in range(25):
        app_client.put(f"/repos/demo/entities/bulk-{i}", json={"type": "html", "title": f"Bulk {i}"}, headers=api)
    app_client.post("/repos/demo/publish", json={"all_drafts": True}, headers=api).raise_for_status()
    sign_in(app_client, admin_token)
    log = app_client.get("/ui/repos/demo/publish-log").text
    assert log.count('<h2 class="log-head">') == 2 and "and 7 more" in log
    only_page = app_client.get("/ui/repos/demo/publish-log?key=bulk-3").text
    assert only_page.count('<h2 class="log-head">') == 1
    assert app_client.get("/ui/repos/demo/publish-log?author=nobody@example.org").text.count("log-head") == 0
    assert app_client.get("/ui/repos/demo/publish-log?author=ada@example.org").text.count('<h2 class="log-head">') == 2
