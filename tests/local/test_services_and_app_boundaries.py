"""The local services (Lambda, S3) and the cloud assembly reader depend on the engine's core alone: they
never import the query languages, the Map machinery or the states (nor the client or the construct), so
the engine can be restructured above them. Every import counts, those inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import burstmap

PACKAGE = Path(burstmap.__file__).resolve().parent


def burstmap_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name == "burstmap" or name.startswith("burstmap.")}


@pytest.mark.parametrize("layer", ["services", "app"])
def test_a_layer_imports_the_engine_core_and_itself_only(layer: str) -> None:
    allowed = ("burstmap.local.core", f"burstmap.local.{layer}")
    modules = sorted((PACKAGE / "local" / layer).glob("*.py"))
    assert modules
    outside = {
        module.name: sorted(name for name in burstmap_imports(module) if not name.startswith(allowed))
        for module in modules
    }
    assert {name: found for name, found in outside.items() if found} == {}
