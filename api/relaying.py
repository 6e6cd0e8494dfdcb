"""What the relay sends (gitstore.relay): each event in the JSON of `GET /repos/{repo}/events`,
and for a publish the entity as a live reader sees it, with its expanded links, as GOV.UK's
content store needs. The reader rules are api.readers's, so a sink without the preview right is
told exactly what a live reader may see over REST: no e-mail address, no link to a page that
was never live, and for a page unpublished as gone or redirect only the notice.

The server starts the relay in its lifespan (api.main) when GITSTORE_RELAY is on.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from api.readers import Audience
from api.routers.events import _out as event_out  # the feed's own JSON, one definition
from api.schemas import EntityOut, ExpandedLinksOut
from api.settings import Settings
from gitstore import ContentRepository, Store
from gitstore.entities import api as entities
from gitstore.errors import EntityNotFound, GitstoreError, Unpublished
from gitstore.events import Event
from gitstore.links import api as links
from gitstore.publishing.api import serve
from gitstore.relay.api import Allowlist, Outgoing, RelayConfig, RelayService, Render

log = logging.getLogger("gitstore.relay")

_WITH_ENTITY = frozenset({"published", "unpublished"})


def renderer(settings: Settings) -> Render:
    def render(repo: ContentRepository, event: Event, preview: bool) -> Outgoing:
        audience = Audience(preview, settings.public_authors)
        payload: dict[str, Any] = {
            "id": event.id,
            "repository": repo.name,
            "event": event_out(event, audience).model_dump(mode="json"),
            "entity": None,
            "expanded_links": None,
            "unpublishing": None,
        }
        document_type = ""
        if event.view == "live" and event.kind in _WITH_ENTITY:
            document_type = _with_entity(repo, event, audience, payload)
        else:
            document_type = _type_at(repo, event)
        payload["document_type"], payload["update_type"] = document_type, event.kind
        return Outgoing(event, orjson.dumps(payload), document_type)

    return render


def _with_entity(repo: ContentRepository, event: Event, audience: Audience, payload: dict[str, Any]) -> str:
    """The entity as this event made it live (not as it is by the time the relay gets there),
    and its expanded links as they are now (ADR 0003: dependents are computed on delivery too)."""
    try:
        entity = entities.get_entity(repo, event.key, commit=event.commit)
    except GitstoreError as exc:  # erased or pruned since: the event still goes, without it
        log.warning("relaying %s of %s: cannot read %s: %s", event.id, repo.name, event.key, exc)
        return ""
    try:
        served = serve(entity)
    except Unpublished:
        notice = entity.unpublishing
        assert notice is not None
        shown = notice.type != "vanish"  # vanish: a 410 that says nothing
        payload["unpublishing"] = {
            "type": notice.type,
            "explanation": notice.explanation if shown else None,
            "alternative_path": notice.alternative_path if shown else None,
        }
        return entity.type
    payload["entity"] = audience.entity(repo, EntityOut.model_validate(served)).model_dump(mode="json")
    try:
        expanded = links.expanded_links(repo, event.key, state="published")
    except EntityNotFound:
        if _live_now(repo, event):
            # `main` moved and the index follows it a moment later: the lane retries shortly.
            raise
        return entity.type  # no longer live: the entity as it was published is still the news
    payload["expanded_links"] = ExpandedLinksOut.model_validate(expanded).model_dump(mode="json")
    return entity.type


def _live_now(repo: ContentRepository, event: Event) -> bool:
    try:
        return entities.get_entity(repo, event.key, state="published").commit == event.commit
    except GitstoreError:
        return False


def _type_at(repo: ContentRepository, event: Event) -> str:
    try:
        return entities.get_entity(repo, event.key, commit=event.commit).type
    except GitstoreError:
        return ""


def relay_service(store: Store, settings: Settings) -> RelayService:
    config = RelayConfig(
        amqp_url=settings.amqp_url,
        amqp_exchange=settings.amqp_exchange,
        allow=Allowlist.parse(settings.webhook_allow),
        webhook_tries=settings.webhook_tries,
        retry_base=settings.relay_retry_seconds,
    )
    return RelayService(store.repositories, renderer(settings), config)
