"""The layers point down, each package is entered through its public module, the library knows
nothing of HTTP, and only storage speaks pygit2.

    storage < index < repository < entities < access < publishing < history < containers < links
    < content < bundles < events < relay < upkeep (repair < packing < fsck < pruning) < erasure < store
    < samples < backup < cluster < cli

A module may import its own layer and the layers below it, never one above.

A package's public module is its `api.py` (gitstore/entities/api.py, ...); a top-level module
(gitstore/errors.py, content.py, store.py, ...) is its own. Code outside a package imports it only
through that module, so a package may rearrange the modules beside it freely.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from gitstore import errors
from gitstore.errors import GitstoreError

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    "gitstore.errors",
    "gitstore.environment",
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
    "gitstore.upkeep.repair",
    "gitstore.upkeep.packing",
    "gitstore.upkeep.fsck",
    "gitstore.upkeep.pruning",
    "gitstore.upkeep",
    "gitstore.erasure",
    "gitstore.store",
    "gitstore.samples",
    "gitstore.backup",
    "gitstore.cluster",
    "gitstore.cli",
]
FORBIDDEN_IN_LIBRARY = ("api", "fastapi", "starlette", "uvicorn")
# `gitstore serve` starts the service by its import string; nothing else in the library may.
ALLOWED = {("gitstore.cli.serve", "uvicorn")}


# Only gitstore.storage imports pygit2: the layers above speak in its typed ids and records.
GIT_BINDING = "pygit2"


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


SERVICE = sorted((ROOT / "api").rglob("*.py"))


@pytest.mark.parametrize("path", LIBRARY + SERVICE, ids=[str(p.relative_to(ROOT)) for p in LIBRARY + SERVICE])
def test_only_storage_imports_pygit2(path: Path) -> None:
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    if module.startswith("gitstore.storage."):
        return
    binding = [name for name in _imports(path) if name.split(".")[0] == GIT_BINDING]
    assert not binding, f"{module} imports {binding[0]}: use gitstore.storage.api (CommitId, read_commit, ...)"


# -- each package through its public module ------------------------------------------------

PUBLIC_MODULE = "api"
PACKAGES = sorted(p.parent.name for p in (ROOT / "gitstore").glob("*/__init__.py"))
BENCH = sorted((ROOT / "bench").rglob("*.py"))


def _modules_named(tree: ast.AST) -> list[str]:
    """Every module an import names, `from gitstore.relay import subscriptions` included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            package = node.module.removeprefix("gitstore.")
            if package in PACKAGES:
                found += [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
    return found


# The command line is the top of the stack: nothing imports it, so it needs no public module.
ENTRY_POINTS = {"cli"}


def test_every_package_has_its_public_module() -> None:
    missing = [
        name
        for name in PACKAGES
        if name not in ENTRY_POINTS and not (ROOT / "gitstore" / name / f"{PUBLIC_MODULE}.py").exists()
    ]
    assert not missing, f"give {missing} a {PUBLIC_MODULE}.py that re-exports what other packages use"


@pytest.mark.parametrize(
    "path", LIBRARY + SERVICE + BENCH, ids=[str(p.relative_to(ROOT)) for p in LIBRARY + SERVICE + BENCH]
)
def test_other_packages_import_a_package_only_through_its_public_module(path: Path) -> None:
    """A package's internals are its own: gitstore/, api/ and bench/ import `gitstore.<package>.api`
    only. tests/ are exempt: a test may inspect a package's internals (and patch them)."""
    module = _library_module(path)
    for imported in _modules_named(ast.parse(path.read_text())):
        parts = imported.split(".")
        if len(parts) < 3 or parts[0] != "gitstore" or parts[1] not in PACKAGES:
            continue
        if module == f"gitstore.{parts[1]}" or module.startswith(f"gitstore.{parts[1]}."):
            continue  # a package's own modules, its __init__ included
        assert parts[2:] == [PUBLIC_MODULE], (
            f"{module} imports {imported}: import it from gitstore.{parts[1]}.{PUBLIC_MODULE} (re-export it there)"
        )


def test_every_library_module_belongs_to_a_layer() -> None:
    for path in LIBRARY:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        assert module == "gitstore" or _layer(module) is not None, f"{module} is in no layer"


def _library_module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _exception_classes() -> list[type[BaseException]]:
    """Every exception class the library defines, in whichever module."""
    found = []
    for path in LIBRARY:
        module = importlib.import_module(_library_module(path))
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == module.__name__
        ]
    return found


def test_every_error_class_has_its_own_problem_mapping() -> None:
    # Looked up by MRO, a new class without a row would answer as its parent silently: a new
    # meaning with an old problem type, which clients cannot tell apart.
    from api.problems import PROBLEMS

    unmapped = [
        cls.__qualname__ for cls in _exception_classes() if issubclass(cls, GitstoreError) and cls not in PROBLEMS
    ]
    assert not unmapped, f"add a (status, type, title) row to api/problems.py PROBLEMS for {unmapped}"
    for cls, (status, kind, title) in PROBLEMS.items():
        assert 300 <= status < 600 and kind and title, cls
    kinds = [kind for _, kind, _ in PROBLEMS.values()]
    assert len(kinds) == len(set(kinds)), "two error classes share a problem type"


def test_every_error_class_is_drawn_in_the_errors_tree() -> None:
    drawn = errors.__doc__ or ""
    missing = [c.__name__ for c in _exception_classes() if issubclass(c, GitstoreError) and c.__name__ not in drawn]
    assert not missing, f"gitstore/errors.py's docstring does not show {missing}"


def test_other_library_errors_never_leave_their_module() -> None:
    """Only a GitstoreError has a problem mapping; any other error class the library defines
    would reach HTTP as a bare 500. So it must be private and caught where it is raised."""
    for cls in _exception_classes():
        if issubclass(cls, GitstoreError):
            continue
        assert cls.__name__.startswith("_"), f"{cls.__module__}.{cls.__name__} is public but not a GitstoreError"
        tree = ast.parse(Path(importlib.import_module(cls.__module__).__file__ or "").read_text())
        caught = {
            ast.unparse(handler.type)
            for handler in ast.walk(tree)
            if isinstance(handler, ast.ExceptHandler) and handler.type
        }
        assert any(cls.__name__ in text for text in caught), f"{cls.__module__} never catches {cls.__name__}"


SERVICE = sorted((ROOT / "api").rglob("*.py"))

# The one module that takes a repository's locks: it keeps their order (housekeeping, publish,
# drafts). Everyone else asks it (`in_order`, `in_order_if_free`, or the unit of work,
# gitstore.entities.work.holding, built on it).
LOCK_TAKERS = {"gitstore.storage.lock_order"}


@pytest.mark.parametrize("path", LIBRARY + SERVICE, ids=[str(p.relative_to(ROOT)) for p in LIBRARY + SERVICE])
def test_only_the_lock_order_takes_a_repository_lock(path: Path) -> None:
    module = _library_module(path)
    if module in LOCK_TAKERS:
        return
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in ("held", "held_if_free"), (
                f"{module}:{node.lineno} takes a lock by hand: use gitstore.storage.api.in_order (or"
                " in_order_if_free, or gitstore.entities.work.holding), which keeps the lock order"
            )


def test_nothing_builds_the_app_at_import() -> None:
    """uvicorn builds it (`--factory api.main:create_app`), once in each worker, from the settings
    of that moment; an app made at import would read the environment of whoever imported first."""
    from fastapi import FastAPI

    for path in SERVICE:
        module = importlib.import_module(
            ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        )
        built = [name for name, value in vars(module).items() if isinstance(value, FastAPI)]
        assert not built, f"{module.__name__} builds {built} at import"


ROUTES = sorted([*(ROOT / "api" / "routers").glob("*.py"), *(ROOT / "api" / "ui").glob("*.py")])


@pytest.mark.parametrize("path", ROUTES, ids=[str(p.relative_to(ROOT)) for p in ROUTES])
def test_routes_declare_what_they_need_and_decide_nothing(path: Path) -> None:
    """Who may do what is decided in api/auth.py (dependencies such as Writer, `needs_preview`,
    the named rules), so one reading of one file answers it for every route."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in ("may", "scopes_on"), f"{path.name}:{node.lineno} checks a scope itself"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("require_preview", "may_preview"), f"{path.name}:{node.lineno} decides preview"


MAX_MODULE_LINES = 600


@pytest.mark.parametrize("path", LIBRARY + SERVICE, ids=[str(p.relative_to(ROOT)) for p in LIBRARY + SERVICE])
def test_no_module_is_over_the_size_budget(path: Path) -> None:
    """A module a newcomer can read in one sitting; past the budget, split it by job (issue 19)."""
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines (budget {MAX_MODULE_LINES})"
