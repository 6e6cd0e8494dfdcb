"""Unpublishing (seed 001's workflow step): take what is live down as `gone`, `vanish`,
`redirect` or `withdrawn`, and put it back up with `republish`.

An unpublishing is a change like any other: a commit on the entity's draft branch whose tree is
the live content plus `unpublishing.json`, published at once. So it is in the entity's history,
in the publish log and in `git log main`, and it reverses the same way: publishing any version
without the notice (an edit, or `republish`) brings the content back.

Both steps run holding the publish and drafts locks, so nothing lands between them. A crash
between the two leaves the notice drafted but not live; asking again finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from gitstore.entities.api import (
    PLACEHOLDER_TYPES,
    UNPUBLISHING_TYPES,
    Author,
    Content,
    DraftChange,
    DraftRules,
    Entity,
    IfMatch,
    Snapshot,
    Unpublishing,
    base_path_problem,
    canonical_base_path,
    draft_tip,
    holding,
    load_snapshot,
    published_commit,
    roll_forward_drafts,
    write_entity_drafts,
)
from gitstore.errors import Conflict, DraftPending, EntityNotFound, Gone, InvalidInput, Redirected, StaleVersion
from gitstore.names import validate_key
from gitstore.publishing.publish import (
    Describe,
    PublishNote,
    PublishRecord,
    PublishTarget,
    check_note,
    publish_targets,
    roll_forward,
)
from gitstore.repository import ContentRepository

__all__ = ["serve", "serve_at_path"]


def take_down(
    repo: ContentRepository,
    key: str,
    kind: str,
    *,
    rules: DraftRules,
    author: Author,
    explanation: str | None = None,
    alternative_path: str | None = None,
    discard_draft: bool = False,
    expected: IfMatch | None = None,
    note: PublishNote | None = None,
    describe: Describe | None = None,
) -> PublishRecord:
    """Take `key`'s live version down. `withdrawn` needs an explanation and stays readable;
    `redirect` needs an alternative_path; `gone` answers 410; `vanish` answers 410 with no
    explanation and is left out of listings and links, as if it had never been live. `note`
    says why in the publish log, as for a publish.

    Raises:
        InvalidInput: a missing or malformed explanation or alternative_path (all of them at once).
        EntityNotFound: nothing is live.
        DraftPending: the draft has changes that are not live, unless `discard_draft`.
        StaleVersion: the draft tip is not `expected`.
    """
    validate_key(key)
    _check_request(kind, explanation, alternative_path)
    check_note(note or PublishNote())
    if alternative_path is not None:
        alternative_path = canonical_base_path(alternative_path)
    at = (author.at or datetime.now(UTC)).isoformat(timespec="seconds")
    notice = Unpublishing(kind, at, explanation, alternative_path)

    def notice_added(live: Content) -> Content:
        if alternative_path is not None and alternative_path == live.base_path:
            raise InvalidInput(
                "a redirect cannot point at the entity's own base_path",
                errors=[{"loc": ["alternative_path"], "msg": "is the entity's own base_path"}],
            )
        return live._replace(unpublishing=notice)

    return _put_live(repo, key, notice_added, "unpublish", rules, author, expected, discard_draft, note, describe)


def put_back_up(
    repo: ContentRepository,
    key: str,
    *,
    rules: DraftRules,
    author: Author,
    expected: IfMatch | None = None,
    describe: Describe | None = None,
) -> PublishRecord:
    """Reverse an unpublishing: the live content, without the notice, live again.

    Raises:
        Conflict: what is live is not unpublished.
        DraftPending: the draft has other changes (publishing that draft republishes too).
    """
    validate_key(key)

    def notice_removed(live: Content) -> Content:
        return live._replace(unpublishing=None)

    return _put_live(repo, key, notice_removed, "republish", rules, author, expected, False, None, describe)


def serve(entity: Entity) -> Entity:
    """What a reader of the live view gets: the entity, unless it was unpublished as gone,
    vanish or redirect, which raise Gone or Redirected. A withdrawn entity is served with its
    notice."""
    notice = entity.unpublishing
    if notice is None or notice.type == "withdrawn":
        return entity
    if notice.type == "vanish":
        raise Gone(f"{entity.key!r} is gone", explanation=None, alternative_path=None)
    extra = {"explanation": notice.explanation, "alternative_path": notice.alternative_path}
    if notice.type == "redirect":
        raise Redirected(f"{entity.key!r} now lives at {notice.alternative_path}", **extra)
    raise Gone(f"{entity.key!r} is gone" + (f": {notice.explanation}" if notice.explanation else ""), **extra)


def serve_at_path(entity: Entity) -> Entity:
    """What the live site serves at `entity`'s base_path: `serve`, and a placeholder (an entity
    of type `redirect` or `gone`) answers as what it stands for, never as a page. Its fields say
    where to (`alternative_path`) and why (`explanation`), as an unpublishing notice does; a
    redirect that names no usable path has nowhere to send the reader, so it is gone."""
    entity = serve(entity)
    if entity.type not in PLACEHOLDER_TYPES:
        return entity
    explanation, target = (entity.fields.get(name) for name in ("explanation", "alternative_path"))
    explanation = explanation if isinstance(explanation, str) else None
    target = target if isinstance(target, str) and not base_path_problem(target) else None
    if entity.type == "redirect" and target is not None and target != entity.base_path:
        raise Redirected(f"{entity.key!r} now lives at {target}", explanation=explanation, alternative_path=target)
    detail = f"{entity.key!r} is gone" + (f": {explanation}" if explanation else "")
    raise Gone(detail, explanation=explanation, alternative_path=target if entity.type == "gone" else None)


def _put_live(
    repo: ContentRepository,
    key: str,
    change: Callable[[Content], Content],
    action: str,
    rules: DraftRules,
    author: Author,
    expected: IfMatch | None,
    discard_draft: bool,
    note: PublishNote | None,
    describe: Describe | None,
) -> PublishRecord:
    git = repo.storage.git
    with holding(repo, "publish", roll_forward), holding(repo, "drafts", roll_forward_drafts):
        live_commit = published_commit(repo, key)
        live = load_snapshot(git, live_commit) if live_commit is not None else None
        if live is None or live.deleted:
            raise EntityNotFound(f"{key!r} is not live, so there is nothing to {action}", key=key)
        if action == "republish" and live.document.unpublishing is None:
            raise Conflict(f"{key!r} is live and not unpublished: nothing to republish")
        tip = draft_tip(repo, key)
        if expected is not None and str(tip) != expected.commit:
            raise StaleVersion(f"the draft of {key!r} is not at {expected.commit}", current=str(tip))
        if not discard_draft and not _same_content(load_snapshot(git, tip), live):
            raise DraftPending(
                f"the draft of {key!r} has changes that are not live; publish or discard them first, "
                "or send discard_draft: true to throw them away (they stay in history)",
                key=key,
            )
        new = change(live.document)
        summary = f"{action.capitalize()} {key}" + (
            f" ({new.unpublishing.type})" if new.unpublishing is not None else ""
        )
        [written] = write_entity_drafts(
            repo,
            [DraftChange(key, lambda _current: (new, False), action=action, summary=summary)],
            rules=rules,
            author=author,
            summary=summary,
        )
        # Its commit on main says what happened ("Unpublish guide (gone)"), not "Publish guide version 3".
        target = PublishTarget(key, commit=written.entity.commit)
        return publish_targets(repo, [target], author=author, note=note, summary=summary, describe=describe)


def _same_content(draft: Snapshot, live: Snapshot) -> bool:
    """The draft is the live content, notice aside (an unpublish that crashed half way, or
    nothing drafted since the last publish)."""
    if draft.deleted:
        return False
    return draft.document._replace(unpublishing=None) == live.document._replace(unpublishing=None)


def _check_request(kind: str, explanation: str | None, alternative_path: str | None) -> None:
    problems = []
    if kind not in UNPUBLISHING_TYPES:
        problems.append({"loc": ["type"], "msg": f"one of {', '.join(UNPUBLISHING_TYPES)}"})
    if kind == "withdrawn" and not (explanation or "").strip():
        problems.append({"loc": ["explanation"], "msg": "a withdrawal says why: explanation is required"})
    if kind == "vanish" and (explanation is not None or alternative_path is not None):
        problems.append({"loc": ["type"], "msg": "a vanish takes neither explanation nor alternative_path"})
    if kind == "redirect" and alternative_path is None:
        problems.append({"loc": ["alternative_path"], "msg": "a redirect needs an alternative_path"})
    problem = None if alternative_path is None else base_path_problem(alternative_path)
    if problem:
        problems.append({"loc": ["alternative_path"], "msg": f"alternative_path {problem}"})
    if explanation is not None and len(explanation) > 10_000:
        problems.append({"loc": ["explanation"], "msg": "at most 10,000 characters"})
    if problems:
        raise InvalidInput("not a valid unpublishing", errors=problems)
