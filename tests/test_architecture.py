"""The layers point down, and the library knows nothing of HTTP.

    storage < index < repository < entities < publishing < history < containers < links
    < content < bundles < events < relay < maintenance < housekeeping < pruning < erasure < store < samples < cli

A module may import its own layer and the layers below it, never one above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    "gitstore.errors",
    "gitstore.names",
    "gitstore.storage",
    "gitstore.index",
    "gitstore.repository",
    "gitstore.entities",
    "gitstore.access",
    "gitstore.publishing",
    "gitstore.history",
    "gitstore.containers",
    "gitstore.links",
    "gitstore.content",
    "gitstore.bundles",
    "gitstore.events",
    "gitstore.relay",
    "gitstore.maintenance",
    "gitstore.housekeeping",
    "gitstore.fsck",
    "gitstore.pruning",
    "gitstore.erasure",
    "gitstore.store",
    "gitstore.samples",
    "gitstore.cli",
]
FORBIDDEN_IN_LIBRARY = ("api", "fastapi", "starlette", "uvicorn")
# `gitstore serve` starts the service by its import string; nothing else in the library may.
ALLOWED = {("gitstore.cli", "uvicorn")}


def _layer(module: str) -> int | None:
    for rank, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


LIBRARY = sorted((ROOT / "gitstore").rglob("*.py"))


@pytest.mark.parametrize("path", LIBRARY, ids=[str(p.relative_to(ROOT)) for p in LIBRARY])
def test_library_modules_import_only_their_layer_and_below(path: Path) -> None:
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    own = _layer(module)
    for imported in _imports(path):
        top = imported.split(".")[0]
        assert top not in FORBIDDEN_IN_LIBRARY or (module, top) in ALLOWED, f"{module} imports {imported}"
        rank = _layer(imported)
        if own is not None and rank is not None and module != "gitstore":
            assert rank <= own, f"{module} (layer {LAYERS[own]}) imports {imported} (layer {LAYERS[rank]})"


def test_every_library_module_belongs_to_a_layer() -> None:
    for path in LIBRARY:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        assert module == "gitstore" or _layer(module) is not None, f"{module} is in no layer"
