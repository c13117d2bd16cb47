"""Which construct made a resource: the cloud assembly's construct tree (``tree.json``).

A template resource names its construct path in its ``aws:cdk:path`` metadata (``MyStack/Compute/Resource``);
the tree gives each path's construct type (``constructInfo.fqn``), e.g.
``@aws-cdk/aws-lambda-python-alpha.PythonFunction`` for the ``MyStack/Compute`` that made it. A large tree
is split over several files (``trees-N.json``, a node then names its file and tree id); both forms are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from burstmap.local.app.errors import read_json

PYTHON_FUNCTION = "@aws-cdk/aws-lambda-python-alpha.PythonFunction"
PYTHON_LAYER = "@aws-cdk/aws-lambda-python-alpha.PythonLayerVersion"


def construct_types(assembly_dir: Path) -> dict[str, str]:
    """Construct path -> fqn for every node of the assembly's tree (empty when it has none)."""
    manifest = read_json(assembly_dir / "manifest.json")
    artifacts = manifest.get("artifacts", {}) if isinstance(manifest, dict) else {}
    files = [
        artifact.get("properties", {}).get("file")
        for artifact in artifacts.values()
        if isinstance(artifact, dict) and artifact.get("type") == "cdk:tree"
    ]
    types: dict[str, str] = {}
    for name in filter(None, files):
        tree = read_json(assembly_dir / name)
        root = tree.get("tree") if isinstance(tree, dict) else None
        if isinstance(root, dict):
            for node in _nodes(root, assembly_dir, {}):
                fqn = (node.get("constructInfo") or {}).get("fqn")
                if isinstance(node.get("path"), str) and isinstance(fqn, str):
                    types[node["path"]] = fqn
    return types


def resource_construct(resource: dict[str, Any]) -> str | None:
    """The path of the construct a template resource belongs to (``Stack/Compute`` for
    ``Stack/Compute/Resource``), from its ``aws:cdk:path`` metadata."""
    path = (resource.get("Metadata") or {}).get("aws:cdk:path")
    if not isinstance(path, str):
        return None
    return path[: -len("/Resource")] if path.endswith("/Resource") else path


def _nodes(node: dict[str, Any], assembly_dir: Path, forests: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if isinstance(node.get("fileName"), str) and "treeId" in node:  # a subtree kept in another file
        if node["fileName"] not in forests:
            forests[node["fileName"]] = read_json(assembly_dir / node["fileName"]).get("forest", {})
        node = forests[node["fileName"]].get(node["treeId"], node)
    yield node
    for child in (node.get("children") or {}).values():
        if isinstance(child, dict):
            yield from _nodes(child, assembly_dir, forests)
