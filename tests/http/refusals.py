"""What every refusal must look like, for the bad- and hostile-input tables."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import disk_state


def data_dir_state(data_dir: Path) -> tuple[list[str], tuple[str, list[str]]]:
    """The repositories in the data directory, and the refs and locks of `demo`."""
    return sorted(p.name for p in data_dir.iterdir()), disk_state(data_dir / "demo.git")


def assert_refused(
    client: TestClient, data_dir: Path, method: str, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    """The request gets `status` as an RFC 9457 problem, and nothing is written."""
    before = data_dir_state(data_dir)
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == status, (method, path, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["type"].startswith("urn:gitstore:problem:")
    assert problem["title"] and problem["detail"]
    assert data_dir_state(data_dir) == before
