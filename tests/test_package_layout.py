"""The package's shape: no import cycles, each layer imports only the layers below it, no module too long.

Every import counts, those inside functions and under ``TYPE_CHECKING`` included, so a cycle cannot hide
behind a lazy import. The layers (docs/architecture.md)::

    runtime  <-  lambdas, cdk
    local.core <- local.query <- local.flow <- local.dmap <- local.states <- local.execution
    local.core <- local.services, local.app
    runtime, local <- client <- cli, remote, serve
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import burstmap

PACKAGE = Path(burstmap.__file__).resolve().parent
LAMBDAS = PACKAGE.parent / "lambdas"
MAX_MODULE_LINES = 600

ENGINE_ORDER = ("core", "query", "flow", "dmap", "states")

#: Each layer (a module-name prefix) and the prefixes it may import. The longest matching prefix applies.
ALLOWED: dict[str, tuple[str, ...]] = {
    # the package's public face: its names load lazily, so Lambda (which has no aws-cdk-lib) can import it
    "burstmap": ("burstmap.runtime", "burstmap.cdk", "burstmap.client", "burstmap.local", "burstmap.remote"),
    "burstmap.compute": ("burstmap.runtime",),  # the public path of compute_handler, shipped to Lambda
    "burstmap.runtime": ("burstmap.runtime",),
    "burstmap.lambdas": ("burstmap.runtime", "burstmap.lambdas"),
    "burstmap.cdk": ("burstmap.runtime", "burstmap.cdk"),
    "burstmap.local.services": ("burstmap.runtime", "burstmap.local.core", "burstmap.local.services"),
    "burstmap.local.app": ("burstmap.runtime", "burstmap.local.core", "burstmap.local.app"),
    **{
        f"burstmap.local.{layer}": (
            "burstmap.runtime",
            *(f"burstmap.local.{below}" for below in ENGINE_ORDER[: i + 1]),
        )
        for i, layer in enumerate(ENGINE_ORDER)
    },
    # execute() puts an execution together: the states, and a LambdaRuntime for `functions=`.
    "burstmap.local.execution": (
        "burstmap.runtime",
        *(f"burstmap.local.{layer}" for layer in ENGINE_ORDER),
        "burstmap.local.services",
    ),
    "burstmap.local": ("burstmap.local.core", "burstmap.local.execution"),  # the engine's public face
    "burstmap.client": ("burstmap.runtime", "burstmap.local", "burstmap.client"),
    "burstmap.remote": ("burstmap.client",),
    "burstmap.serve": ("burstmap.runtime", "burstmap.local", "burstmap.client", "burstmap.serve"),
    "burstmap.cli": (
        "burstmap.runtime",
        "burstmap.local",
        "burstmap.client",
        "burstmap.serve",
        "burstmap.cli_errors",  # its one-line answers
        "burstmap.cli_options",  # its options, each declared once
    ),
    "burstmap.cli_errors": ("burstmap.runtime", "burstmap.local", "burstmap.client"),
    "burstmap.cli_options": ("burstmap.runtime", "burstmap.client"),
}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name; lambdas/ ships as burstmap.lambdas."""
    found: dict[str, Path] = {}
    for root, prefix in ((PACKAGE, ("burstmap",)), (LAMBDAS, ("burstmap", "lambdas"))):
        for path in sorted(root.rglob("*.py")):
            if any(part.startswith(".") or part == "__pycache__" for part in path.parts):
                continue
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((*prefix, *parts))] = path
    return found


MODULES = _modules()


def _imported(module: str, path: Path) -> Iterator[str]:
    """The burstmap modules `module` imports: `from a import b` counts a.b when that is a module, else a."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _graph() -> dict[str, set[str]]:
    return {
        module: {
            target
            for target in _imported(module, path)
            if (target == "burstmap" or target.startswith("burstmap.")) and target != module
        }
        for module, path in MODULES.items()
    }


GRAPH = _graph()


def _layer_of(module: str) -> str:
    matches = [prefix for prefix in ALLOWED if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} belongs to no layer: add it to ALLOWED"
    return max(matches, key=len)


def test_the_walk_sees_the_whole_package() -> None:
    assert {"burstmap.runtime.contracts", "burstmap.local.dmap.map_run", "burstmap.cli"} <= set(MODULES)
    assert "burstmap.lambdas.start.handler" in MODULES
    # imports inside functions count: execution builds a LambdaRuntime lazily
    assert "burstmap.local.services.lambda_runtime" in GRAPH["burstmap.local.execution"]


def test_no_import_cycles() -> None:
    """Strongly connected components of the import graph (Tarjan): each must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in GRAPH.get(module, ()):
            if target not in GRAPH:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_its_own_layer_and_those_below(module: str) -> None:
    allowed = ALLOWED[_layer_of(module)]
    wrong = sorted(
        target
        for target in GRAPH[module]
        if target != "burstmap" and not any(target == a or target.startswith(a + ".") for a in allowed)
    )
    assert wrong == [], f"{module} ({_layer_of(module)} layer) imports {wrong}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_longer_than_600_lines(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines"


def test_the_public_import_paths_still_work() -> None:
    """What users import (README): moving modules around must not break these."""
    from burstmap import BurstCompute, BurstmapFunction, BurstmapLayer, compute_handler, run_local
    from burstmap.client.local_job import run_local as local_run
    from burstmap.compute import compute_handler as public_compute_handler
    from burstmap.local import (
        DefinitionError,
        ExecutionResult,
        FakeClock,
        StatesError,
        UnsupportedFeature,
        execute,
    )
    from burstmap.remote import BurstmapStack, Job, JobFailed
    from burstmap.runtime.compute import compute_handler as runtime_compute_handler

    assert public_compute_handler is runtime_compute_handler is compute_handler
    assert run_local is local_run and callable(execute)
    assert BurstCompute.__name__ == "BurstCompute" and BurstmapLayer.__name__ == "BurstmapLayer"
    assert BurstmapFunction.__name__ == "BurstmapFunction"
    assert {Job.__name__, BurstmapStack.__name__} == {"AwsJob", "BurstmapStack"}
    assert issubclass(UnsupportedFeature, DefinitionError) and issubclass(JobFailed, Exception)
    assert ExecutionResult and FakeClock and StatesError
