"""What every resource's shapes share: the repository name rule, reading straight from
the library's records, and fields a reader without the preview right is not shown."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gitstore.names import REPO_NAME_PATTERN, repo_name_problem


def repo_name(name: str) -> str:
    """`name` if it may name a repository (gitstore.names' rule), else ValueError saying why."""
    problem = repo_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


# The library's rule, checked in request validation and stated in the schema. pydantic's regex
# engine has no look-ahead, so the pattern is documentation and the library's check enforces it.
RepoName = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": REPO_NAME_PATTERN}),
    AfterValidator(repo_name),
]


def preview_only(description: str) -> Any:
    """A field that callers without the preview right are not shown: absent, not null."""
    return Field(default=None, exclude_if=lambda value: value is None, description=description)


PUBLIC_AUTHORS = "without the preview right: the name only, or absent (GITSTORE_PUBLIC_AUTHORS)"


class FromLibrary(BaseModel):
    """Built straight from gitstore's frozen dataclasses: `EntityOut.model_validate(entity)`."""

    model_config = ConfigDict(from_attributes=True)
