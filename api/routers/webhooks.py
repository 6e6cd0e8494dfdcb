"""Webhook subscriptions of a repository (ADR 0012): `admin` on the repository, as GitHub asks
of its repository hooks, since a hook makes the server send requests on the caller's behalf.
A subscription sees what a live reader sees unless it asks for `drafts` (admin implies the
preview right). The shapes live here, beside the only routes that use them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.body import JsonBody, json_body, validate_body
from api.deps import Admin, RepoDep
from gitstore.relay.api import EVENT_KINDS, MAX_SECRET, MIN_SECRET, Allowlist, Delivery, Subscription, subscriptions

router = APIRouter(prefix="/repos/{repo}/webhooks", tags=["webhooks"])

EventKind = Literal["*", "draft_changed", "published", "unpublished", "deleted", "discarded"]
assert set(EventKind.__args__) == {"*", *EVENT_KINDS}  # type: ignore[attr-defined]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(
        max_length=2048, description="http(s); private and loopback hosts only if GITSTORE_WEBHOOK_ALLOW names them"
    )
    secret: str = Field(description=f"{MIN_SECRET}-{MAX_SECRET} characters; signs each delivery (X-Hub-Signature-256)")
    events: list[str] = Field(default=["*"], max_length=10, description=f"event kinds ({', '.join(EVENT_KINDS)}) or *")
    active: bool = True
    drafts: bool = Field(default=False, description="also draft events, and what the preview right sees")


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str | None = Field(default=None, max_length=2048)
    secret: str | None = None
    events: list[str] | None = Field(default=None, max_length=10)
    active: bool | None = Field(default=None, description="true also resumes a failed subscription where it stopped")


class WebhookOut(BaseModel):
    """A webhook subscription as its owner sees it: never its secret."""

    id: str
    url: str
    events: list[str]
    active: bool
    failed: bool = Field(description="gave up on an event after the last try; set active to true to resume there")
    drafts: bool
    created_by: str
    created_at: datetime


class WebhookList(BaseModel):
    """A repository's webhook subscriptions."""

    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    """One try at delivering one event to a subscription: when, what came back, how long it took."""

    id: str = Field(description="X-Gitstore-Delivery: the same for every try of one event")
    event_id: str
    event_kind: str
    attempt: int
    status: Literal["delivered", "retrying", "failed"]
    response_code: int | None
    duration_ms: float
    error: str | None
    at: datetime
    redelivery: bool


class DeliveryList(BaseModel):
    """A subscription's delivery log, newest first."""

    items: list[DeliveryOut]


def _out(sub: Subscription) -> WebhookOut:
    return WebhookOut(
        id=sub.id,
        url=sub.url,
        events=list(sub.events),
        active=sub.active,
        failed=sub.failed,
        drafts=sub.drafts,
        created_by=sub.created_by,
        created_at=datetime.fromtimestamp(sub.created_at, UTC),
    )


def _delivery(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_id=d.event_id,
        event_kind=d.event_kind,
        attempt=d.attempt,
        status=d.status,  # type: ignore[arg-type]
        response_code=d.response_code,
        duration_ms=d.duration_ms,
        error=d.error,
        at=datetime.fromtimestamp(d.at, UTC),
        redelivery=d.redelivery,
    )


def _allow(request: Request) -> Allowlist:
    return Allowlist.parse(request.app.state.settings.webhook_allow)


@router.post(
    "",
    response_model=WebhookOut,
    status_code=201,
    summary="Subscribe a URL to this repository's events",
    openapi_extra=json_body(WebhookCreate),
)
async def create_webhook(
    repo: RepoDep, principal: Admin, body: JsonBody, request: Request, response: Response
) -> WebhookOut:
    asked = validate_body(WebhookCreate, body)
    sub = await run_in_threadpool(
        lambda: subscriptions.create(
            repo,
            url=asked.url,
            secret=asked.secret,
            events=asked.events,
            drafts=asked.drafts,
            active=asked.active,
            created_by=principal.author.email,
            allow=_allow(request),
        )
    )
    response.headers["Location"] = f"/repos/{repo.name}/webhooks/{sub.id}"
    return _out(sub)


@router.get("", response_model=WebhookList, summary="This repository's webhook subscriptions (never their secrets)")
def list_webhooks(repo: RepoDep, _: Admin) -> WebhookList:
    return WebhookList(items=[_out(s) for s in subscriptions.listed(repo)])


@router.get("/{hook_id}", response_model=WebhookOut, summary="One webhook subscription")
def get_webhook(repo: RepoDep, hook_id: str, _: Admin) -> WebhookOut:
    return _out(subscriptions.get(repo, hook_id))


@router.patch(
    "/{hook_id}", response_model=WebhookOut, summary="Change a subscription; active=true resumes a failed one"
)
async def patch_webhook(repo: RepoDep, hook_id: str, _: Admin, body: JsonBody, request: Request) -> WebhookOut:
    asked = validate_body(WebhookPatch, body)
    sub = await run_in_threadpool(
        lambda: subscriptions.update(
            repo,
            hook_id,
            _allow(request),
            url=asked.url,
            secret=asked.secret,
            events=asked.events,
            active=asked.active,
        )
    )
    return _out(sub)


@router.delete("/{hook_id}", status_code=204, summary="Unsubscribe (its cursor and delivery log go too)")
def delete_webhook(repo: RepoDep, hook_id: str, _: Admin) -> Response:
    subscriptions.remove(repo, hook_id)
    return Response(status_code=204)


@router.get(
    "/{hook_id}/deliveries", response_model=DeliveryList, summary="The delivery log: each attempt, newest first"
)
def list_deliveries(
    repo: RepoDep, hook_id: str, _: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> DeliveryList:
    return DeliveryList(items=[_delivery(d) for d in subscriptions.deliveries(repo, hook_id, limit=limit)])


@router.post(
    "/{hook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    summary="Send a logged delivery again, once, now (the subscription's stream does not move)",
)
def redeliver(repo: RepoDep, hook_id: str, delivery_id: str, _: Admin, request: Request) -> DeliveryOut:
    return _delivery(subscriptions.resend(repo, hook_id, delivery_id, _allow(request)))
