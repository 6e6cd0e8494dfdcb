"""/repos: content repositories, one bare git repository each."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.auth import require_admin_to_create, visible
from api.body import JsonBody, json_body, validate_body
from api.cluster import cluster_of, list_repositories
from api.deps import Admin, PrincipalDep, RepoDep, StoreDep
from api.readers import AudienceDep, audience
from api.schemas import ClusterRepoList, PruneOut, RepoCreate, RepoList, RepoOut
from gitstore import ContentRepository
from gitstore.entities.api import draft_head_as_is
from gitstore.errors import ReplicationFactorTooHigh
from gitstore.repository import MAIN
from gitstore.storage.api import read_ref
from gitstore.upkeep.api import prune

router = APIRouter(prefix="/repos", tags=["repositories"])


def _out(repo: ContentRepository) -> RepoOut:
    git = repo.storage.git
    # As it is, not folded: a GET must not write (a commit, a ref move and an index transaction
    # under the drafts lock). Nothing is derived from this head; an import's If-Match comes
    # from its dry run, which folds, and a clone or export folds before it reads `draft`.
    main, draft = read_ref(git, MAIN), draft_head_as_is(repo)
    return RepoOut(
        name=repo.name,
        description=repo.description,
        main=str(main) if main else None,
        draft=str(draft) if draft else None,
    )


@router.post(
    "",
    response_model=RepoOut,
    status_code=201,
    summary="Create a content repository",
    openapi_extra=json_body(RepoCreate),
)
def create_repo(
    store: StoreDep, principal: PrincipalDep, request: Request, response: Response, body: JsonBody
) -> RepoOut:
    wanted = validate_body(RepoCreate, body)
    require_admin_to_create(principal, wanted.name)
    cluster = cluster_of(request)
    if cluster is None:
        if (wanted.replication_factor or 1) > 1:
            raise ReplicationFactorTooHigh(
                f"a server running alone keeps one copy, not {wanted.replication_factor}", name=wanted.name
            )
        repo = store.create_repository(wanted.name, wanted.description)
    else:  # registered in the control plane first; api.forwarding sends it on if placed elsewhere
        repo = cluster.create_repository(wanted.name, wanted.description, wanted.replication_factor)
    response.headers["Location"] = f"/repos/{repo.name}"
    return _out(repo)


@router.get(
    "",
    response_model=RepoList | ClusterRepoList,
    summary="List content repositories (in a cluster: every node's, each with its owner)",
)
def list_repos(store: StoreDep, principal: PrincipalDep, request: Request) -> RepoList | ClusterRepoList:
    # Only those the caller has a scope on: the others do not exist for them.
    cluster = cluster_of(request)
    if cluster is not None:
        return list_repositories(
            cluster, principal, visible, lambda r: audience(request, principal, r).repository(_out(r))
        )
    repos = {r.name: r for r in store.repositories()}
    mine = [repos[name] for name in visible(principal, repos)]
    return RepoList(items=[audience(request, principal, r).repository(_out(r)) for r in mine])


@router.get("/{repo}", response_model=RepoOut, summary="One content repository")
def get_repo(repo: RepoDep, audience: AudienceDep) -> RepoOut:
    return audience.repository(_out(repo))


@router.post(
    "/{repo}/prune",
    response_model=PruneOut,
    summary="Prune deleted, never-published entities no manifest names, and unreachable objects",
)
def prune_repo(repo: RepoDep, principal: Admin, dry_run: bool = True) -> PruneOut:
    return PruneOut.model_validate(prune(repo, dry_run=dry_run, author=principal.author))
