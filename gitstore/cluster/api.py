"""What the service and the other packages use of cluster mode."""

from gitstore.cluster.signing import (
    GIT_PASSWORD_MAX_AGE,
    HEADER,
    MAX_AGE,
    Forwarded,
    forwarded_header,
    git_password,
    is_git_password,
    verify_forwarded,
    verify_git_password,
)

__all__ = [
    "GIT_PASSWORD_MAX_AGE",
    "HEADER",
    "MAX_AGE",
    "Forwarded",
    "forwarded_header",
    "git_password",
    "is_git_password",
    "verify_forwarded",
    "verify_git_password",
]
