"""Scopes are granted per repository (or `*` for every repository) and imply weaker ones.

    read      live content, the live-only git clone, live events
    preview   drafts, history, diffs, blame, the full git clone          (implies read)
    write     change drafts                                              (implies preview)
    publish   publish, unpublish, republish                              (implies preview)
    admin     types, pruning, repositories, tokens                       (implies all)

`publish` does not imply `write`: a publisher approving someone else's drafts is a real role.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gitstore.entities.api import Author
from gitstore.errors import InvalidInput
from gitstore.names import key_problem, repo_name_problem

Scope = Literal["read", "preview", "write", "publish", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "preview", "write", "publish", "admin")
EVERY_REPOSITORY = "*"

_IMPLIES: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "preview": frozenset({"read", "preview"}),
    "write": frozenset({"read", "preview", "write"}),
    "publish": frozenset({"read", "preview", "publish"}),
    "admin": frozenset(SCOPES),
}

Grants = Mapping[str, frozenset[str]]


def expand(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes named plus every scope they imply."""
    return frozenset().union(*(_IMPLIES[s] for s in scopes))


def parse_grants(raw: object) -> dict[str, frozenset[str]]:
    """Check `{"repo or *": ["scope", ...]}` and expand each set. Raises InvalidInput."""
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidInput("scopes must map repository names (or '*') to lists of scopes", errors=[])
    grants: dict[str, frozenset[str]] = {}
    errors = []
    for repo, scopes in raw.items():
        # Any repository's name; names passing the older, key-based check stay valid.
        if repo != EVERY_REPOSITORY and (not isinstance(repo, str) or (key_problem(repo) and repo_name_problem(repo))):
            errors.append({"loc": ["scopes", str(repo)], "msg": "not a repository name or '*'"})
            continue
        if not isinstance(scopes, list) or not scopes or any(s not in _IMPLIES for s in scopes):
            errors.append({"loc": ["scopes", repo], "msg": f"a non-empty list of {', '.join(SCOPES)}"})
            continue
        grants[repo] = expand(scopes)
    if errors:
        raise InvalidInput("invalid scopes", errors=errors)
    return grants


def parse_scope_string(text: str) -> dict[str, frozenset[str]]:
    """OAuth's space-separated scope parameter, as `repo:scope` items (`*:read` for all)."""
    raw: dict[str, list[str]] = {}
    for item in text.split():
        repo, _, scope = item.rpartition(":")
        raw.setdefault(repo or EVERY_REPOSITORY, []).append(scope)
    return parse_grants(raw)


def scope_string(grants: Grants) -> str:
    return " ".join(f"{repo}:{scope}" for repo in sorted(grants) for scope in SCOPES if scope in grants[repo])


def narrow(grants: Grants, wanted: Grants) -> dict[str, frozenset[str]]:
    """The part of `wanted` that `grants` covers: a token never exceeds its client."""
    everywhere = grants.get(EVERY_REPOSITORY, frozenset())
    narrowed = {
        repo: scopes & (everywhere if repo == EVERY_REPOSITORY else everywhere | grants.get(repo, frozenset()))
        for repo, scopes in wanted.items()
    }
    return {repo: scopes for repo, scopes in narrowed.items() if scopes}


@dataclass(frozen=True, slots=True)
class Principal:
    """Someone acting on repositories: the author of their commits, and what they may do."""

    name: str
    email: str
    grants: Grants = field(default_factory=dict)
    # Identifies the credential in logs and rate limits; never the secret itself.
    credential_id: str | None = None
    anonymous: bool = False

    @property
    def author(self) -> Author:
        return Author(self.name, self.email)

    def scopes_on(self, repo: str) -> frozenset[str]:
        return self.grants.get(repo, frozenset()) | self.grants.get(EVERY_REPOSITORY, frozenset())

    def may(self, repo: str, scope: Scope) -> bool:
        return scope in self.scopes_on(repo)
