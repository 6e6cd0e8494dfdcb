"""Service settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path("data"))
    load_samples: bool = True
    samples_dir: Path = PROJECT_ROOT / "sample_repos"
    max_body_bytes: int = 10 * 1024 * 1024
    author_name: str = "gitstore user"
    author_email: str = "user@gitstore.invalid"
    # Until scoped tokens arrive, every caller is the local author; "read" makes them readers
    # without the draft right (they then clone the live-only repository).
    anonymous_preview: bool = True
    max_clones: int = 4
    upload_pack_timeout: float = 300.0

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            data_dir=Path(env.get("GITSTORE_DATA", "data")),
            load_samples=env.get("GITSTORE_SAMPLES", "1").lower() not in ("0", "false", "no"),
            samples_dir=Path(env.get("GITSTORE_SAMPLES_DIR", str(PROJECT_ROOT / "sample_repos"))),
            max_body_bytes=int(env.get("GITSTORE_MAX_BODY", str(10 * 1024 * 1024))),
            author_name=env.get("GITSTORE_AUTHOR_NAME", "gitstore user"),
            author_email=env.get("GITSTORE_AUTHOR_EMAIL", "user@gitstore.invalid"),
            anonymous_preview=env.get("GITSTORE_ANONYMOUS", "preview") != "read",
            max_clones=int(env.get("GITSTORE_MAX_CLONES", "4")),
            upload_pack_timeout=float(env.get("GITSTORE_UPLOAD_PACK_TIMEOUT", "300")),
        )
