"""The rooms' boundaries, checked the way aiohttp checks for circular imports: every module is
imported alone in a fresh interpreter, and what it pulled in is compared with what its room may
touch. A boundary crossed by a later change fails here, not in review."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def modules_of(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # an entry point: `python -m memory` may reach the replay tool's wiring
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def imported_by(module: str) -> set[str]:
    """Every module loaded by importing `module` in a new interpreter."""
    script = (
        "import importlib, json, sys; "
        f"importlib.import_module({module!r}); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter, our own module names
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", modules_of("memory"))
def test_memory_knows_nothing_of_teams_settings_or_the_model_client(module: str) -> None:
    forbidden = {"app", "config", "bots", "model_client", "wiring", "replay_tool", "botbuilder"}
    forbidden |= {"local_embeddings", "wordllama"}
    loaded = imported_by(module)
    assert {name for name in loaded if name.split(".")[0] in forbidden | {"openai"}} == set()


@pytest.mark.parametrize("module", modules_of("bots"))
def test_bots_know_no_concrete_store(module: str) -> None:
    concrete = ("memory.sqlite_store", "memory.cosmos", "sqlite3", "azure.cosmos")
    assert {name for name in imported_by(module) if name.startswith(concrete)} == set()


def test_the_local_model_knows_only_memorys_words_and_contracts() -> None:
    # It reads words as memory does (memory.terms) and fills memory's Words (memory.recall);
    # nothing of Teams, settings, wiring, stores or the model client.
    forbidden = {"app", "config", "bots", "model_client", "wiring", "replay_tool", "botbuilder"}
    loaded = imported_by("local_embeddings")
    assert {name for name in loaded if name.split(".")[0] in forbidden | {"openai"}} == set()
    named = {name for name in _imports(ROOT / "local_embeddings.py") if name.startswith("memory")}
    assert named == {"memory", "memory.terms", "memory.recall"}


def test_only_the_model_client_imports_openai() -> None:
    product = [*ROOT.glob("*.py"), *ROOT.glob("bots/**/*.py"), *ROOT.glob("memory/**/*.py")]
    importers = {str(path.relative_to(ROOT)) for path in product if "openai" in _imports(path)}
    assert importers == {"model_client.py"}


@pytest.mark.parametrize(
    "store",
    [
        "memory/sqlite_store.py",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "memory" / "cosmos").glob("*.py")),
    ],
)
def test_stores_fetch_candidates_and_leave_ranking_to_recall(store: str) -> None:
    assert "memory.recall" not in _imports(ROOT / store)


def _imports(path: Path) -> set[str]:
    """The modules a file names in its import statements (not what they import in turn)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, node.module.split(".")[0]}
    return names
