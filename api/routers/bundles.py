"""Import and export: a whole repository's content as one bundle (tar.gz, zip or JSON lines).

POST /repos/{repo}/import    a bundle as drafts, in one atomic batch; ?publish=true, ?dry_run=true,
                             If-Match: "<commit of refs/heads/draft>" refuses a stale import (412)
GET  /repos/{repo}/export    a view as a bundle, streamed; ?state=published|draft, ?as_of=, ?format=
"""

from __future__ import annotations

import tempfile
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import a_draft_view, needs_preview, require_publish_to_import
from api.body import body_chunks
from api.deps import PrincipalDep, RepoDep, Writer, parse_etag
from api.problems import HTTPProblem
from api.readers import AudienceDep
from api.schemas import PublishOut
from gitstore.bundles.api import (
    FORMATS,
    MEDIA_TYPES,
    TAR_GZ,
    ImportReport,
    as_of_from_text,
    export_bundle,
    format_name,
    import_bundle,
)

router = APIRouter(prefix="/repos/{repo}", tags=["bundles"])

# Bodies up to this size stay in memory; a larger one is spooled to a temporary file.
_SPOOL_IN_MEMORY = 8 * 1024 * 1024


class ProblemOut(BaseModel):
    """One problem with an entry of a bundle: where, which entity, and what."""

    loc: list[str | int] = Field(description="the entry (an archive path or 'line N'), then where in the entity")
    key: str | None
    msg: str


class ImportOut(BaseModel):
    """What an import did (or, as a dry run, would do) to each entity of the bundle."""

    dry_run: bool
    created: list[str] = Field(description="entities that had no draft (never, or deleted)")
    changed: list[str]
    unchanged: list[str]
    pinned_versions: int = Field(
        description="older versions added to members' branches so that pins keep their content"
    )
    problems: list[ProblemOut] = Field(description="a dry run's; an import with problems is a 422 listing them")
    warnings: list[ProblemOut] = Field(description="true but allowed: links to entities that are nowhere")
    draft_head: str | None = Field(description="refs/heads/draft after the import: the If-Match of the next one")
    published: PublishOut | None

    @classmethod
    def of(cls, report: ImportReport) -> ImportOut:
        return cls(
            dry_run=report.dry_run,
            created=report.created,
            changed=report.changed,
            unchanged=report.unchanged,
            pinned_versions=report.pinned_versions,
            problems=[ProblemOut(**p.as_error()) for p in report.problems],
            warnings=[ProblemOut(**p.as_error()) for p in report.warnings],
            draft_head=report.draft_head,
            published=PublishOut.model_validate(report.published) if report.published else None,
        )


_BUNDLE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in MEDIA_TYPES},
    }
}


@router.post(
    "/import",
    response_model=ImportOut,
    summary="Import a bundle as drafts in one atomic operation (or say what it would change)",
    openapi_extra=_BUNDLE_BODY,
)
async def import_route(
    request: Request,
    repo: RepoDep,
    principal: Writer,
    publish: Annotated[bool, Query(description="publish the imported entities in the same operation")] = False,
    dry_run: Annotated[bool, Query(description="write nothing: report what would change, and every problem")] = False,
    if_match: Annotated[
        str | None, Header(description='"<commit of refs/heads/draft>": import only if no draft changed since')
    ] = None,
) -> ImportOut:
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        raise HTTPProblem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send a bundle as application/gzip (tar.gz), application/zip or application/x-ndjson",
            accepted=list(MEDIA_TYPES),
        )
    require_publish_to_import(principal, repo, publish=publish, dry_run=dry_run)  # after the 415, as ever
    expected = parse_etag(if_match) if if_match is not None else None
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as body:
        async for chunk in body_chunks(request, request.app.state.settings.max_import_bytes):
            await run_in_threadpool(body.write, chunk)
        body.seek(0)
        report = await run_in_threadpool(
            import_bundle,
            repo,
            body,  # type: ignore[arg-type]
            media_type,
            author=principal.author,
            expected_draft_head=expected,
            publish=publish,
            dry_run=dry_run,
        )
    return ImportOut.of(report)


@router.get(
    "/export",
    summary="A view of the repository as a bundle, streamed (tar.gz unless the format or Accept asks otherwise)",
    response_class=StreamingResponse,
    responses={200: {"content": {media_type: {} for media_type in MEDIA_TYPES}}},
)
@needs_preview(when=a_draft_view)
def export_route(
    request: Request,
    repo: RepoDep,
    principal: PrincipalDep,
    audience: AudienceDep,
    state: Annotated[Literal["published", "draft"], Query(description="what is live, or every draft")] = "published",
    as_of: Annotated[
        str | None, Query(description="an RFC 3339 time, or a commit of main (published) or draft", max_length=64)
    ] = None,
    format: Annotated[Literal["tar.gz", "zip", "ndjson"] | None, Query(description="overrides Accept")] = None,
) -> StreamingResponse:
    media_type = FORMATS[format] if format is not None else _accepted(request.headers.get("accept"))
    stream = export_bundle(
        repo,
        state=state,
        as_of=as_of_from_text(as_of) if as_of is not None else None,
        media_type=media_type,
        public=not audience.preview,
    )
    name = f"{repo.name}-{state}.{format_name(media_type)}"
    return StreamingResponse(
        stream, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _accepted(accept: str | None) -> str:
    """The first bundle type the Accept header names; tar.gz when it names none."""
    for part in (accept or "").split(","):
        media_type = part.split(";", 1)[0].strip().lower()
        if media_type in MEDIA_TYPES:
            return media_type
    return TAR_GZ
