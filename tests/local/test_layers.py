"""The engine's layers import only downwards, and no module of the engine imports itself back.

core <- query <- flow <- dmap <- states <- execute; every import counts, inside functions too.
The engine reaches the Lambda service and S3 only through what it is given (core/protocols.py):
execute.py alone, where an execution is put together, builds a LambdaRuntime for `functions=`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import burstmap.local

LOCAL = Path(burstmap.local.__file__).parent
LAYERS = ("core", "query", "flow", "dmap", "states", "execute")
EXECUTE_ALSO = {
    "burstmap.local.services.lambda_runtime",  # FunctionSpec/LambdaRuntime for execute(functions=...)
    "burstmap.client.progress",  # Progress, what execute(on_progress=...) reports
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(LOCAL.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every burstmap module a file imports, at any depth of its code."""
    found: set[str] = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base])
            found.add(base.rstrip("."))
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("burstmap.")}


def _engine_modules() -> dict[str, set[str]]:
    modules = {}
    for path in sorted(LOCAL.rglob("*.py")):
        name = _module_name(path)
        if name.split(".")[2:3] and name.split(".")[2] in ("services", "app"):
            continue
        modules[name] = _imports(path)
    return modules


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["burstmap", "local"] or len(parts) < 3:
        return None
    return LAYERS.index(parts[2]) if parts[2] in LAYERS else None


def test_every_layer_imports_only_the_layers_below_it() -> None:
    modules = _engine_modules()
    assert {_layer(name) for name in modules} >= set(range(len(LAYERS)))
    wrong = []
    for module, imported in modules.items():
        own = _layer(module)
        for target in imported:
            if module == "burstmap.local":  # the package's public face: the names of core and execute
                allowed = _layer(target) in (0, LAYERS.index("execute"))
            elif target.startswith("burstmap.runtime"):
                allowed = True  # what ships to Lambda sits below everything
            elif own == LAYERS.index("execute") and any(target.startswith(extra) for extra in EXECUTE_ALSO):
                allowed = True
            else:
                layer = _layer(target)
                allowed = layer is not None and own is not None and layer <= own
            if not allowed:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_engine_module_imports_itself_back() -> None:
    modules = _engine_modules()
    graph = {
        module: {target for target in imported if target in modules and target != module}
        for module, imported in modules.items()
    }
    cycles: list[str] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        path.append(module)
        for target in sorted(graph[module]):
            if target in path:
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in done:
                visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)
    assert not cycles, "\n".join(cycles)
