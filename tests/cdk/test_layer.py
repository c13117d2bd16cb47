"""The runtime layer: it ships burstmap's runtime folder (never a list of names), its asset hash follows
exactly the shipped files, it is built once per content in a cache, and an incomplete package fails the
build with what to do."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from cdk_support import fast_app, template_of

from burstmap.cdk.assets import lambdas_dir, package_dir
from burstmap.cdk.layer import build_layer_directory, layer_cache_root, layer_files, runtime_layer_code

FAKE_PACKAGE = {
    "__init__.py": "# package\n",
    "compute.py": "# public path\n",
    "cli.py": "# cli\n",
    "local/__init__.py": "# engine\n",
    "local/core/errors.py": "# engine\n",
    "cdk/__init__.py": "# cdk\n",
    "cdk/compute.py": "# a name the layer ships at the top, not here\n",
    "runtime/__init__.py": "# runtime\n",
    "runtime/results.py": "# results\n",
    "runtime/brand_new.py": "# a module no list names\n",
    "runtime/nested/__init__.py": "# a subpackage\n",
    "runtime/nested/data.json": "{}\n",
    "runtime/__pycache__/results.cpython-313.pyc": "bytecode",
    "runtime/nested/__pycache__/__init__.cpython-313.pyc": "bytecode",
}
SHIPPED = [
    "__init__.py",
    "compute.py",
    "runtime/__init__.py",
    "runtime/brand_new.py",
    "runtime/nested/__init__.py",
    "runtime/nested/data.json",
    "runtime/results.py",
]


def _package(root: Path, files: dict[str, str]) -> Path:
    source = root / "burstmap"
    for name, text in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    return source


def test_the_layer_ships_the_top_modules_and_the_whole_runtime_folder(tmp_path: Path) -> None:
    source = _package(tmp_path, FAKE_PACKAGE)
    assert layer_files(source) == SHIPPED


def test_the_layer_directory_holds_the_runtime_folder_under_python_burstmap(tmp_path: Path) -> None:
    source = _package(tmp_path, FAKE_PACKAGE)
    output = build_layer_directory(source, cache_root=tmp_path / "cache")
    shipped = sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file())
    assert shipped == sorted([f"python/burstmap/{name}" for name in SHIPPED] + ["python/burstmap/py.typed"])
    assert (output / "python/burstmap/compute.py").read_text() == "# public path\n"
    assert (output / "python/burstmap/runtime/brand_new.py").read_text() == "# a module no list names\n"


def test_the_layer_directory_is_built_once_per_content_and_rebuilt_when_damaged(tmp_path: Path) -> None:
    source = _package(tmp_path, FAKE_PACKAGE)
    cache = tmp_path / "cache"
    first = build_layer_directory(source, cache_root=cache)
    assert build_layer_directory(source, cache_root=cache) == first
    assert first.parent == cache and len(first.name) == 64  # the sha256 of the shipped files

    (first / "python/burstmap/runtime/results.py").write_text("# edited in the cache by hand\n")
    assert build_layer_directory(source, cache_root=cache) == first
    assert (first / "python/burstmap/runtime/results.py").read_text() == "# results\n"

    (source / "runtime/results.py").write_text("# a new version\n")
    second = build_layer_directory(source, cache_root=cache)
    assert (
        second != first and (second / "python/burstmap/runtime/results.py").read_text() == "# a new version\n"
    )
    assert sorted(path.name for path in cache.iterdir()) == sorted([first.name, second.name])  # no leftovers


def test_the_cache_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert layer_cache_root() == tmp_path / "burstmap" / "layer"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert layer_cache_root() == Path.home() / ".cache" / "burstmap" / "layer"


@pytest.mark.parametrize("missing", ["compute.py", "__init__.py", "runtime/__init__.py"])
def test_an_incomplete_package_fails_the_build_and_says_what_to_do(tmp_path: Path, missing: str) -> None:
    source = _package(tmp_path, {name: text for name, text in FAKE_PACKAGE.items() if name != missing})
    with pytest.raises(FileNotFoundError, match=rf"missing from .*: {missing}; reinstall burstmap"):
        build_layer_directory(source, cache_root=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


# -------------------------------------------------------------------------------------------------
# the asset hash

#: Edits to the installed package, and whether each must change the layer's asset hash.
EDITS: dict[str, tuple[str, bool]] = {
    "unchanged": ("", False),
    "runtime module": ("runtime/results.py", True),
    "new runtime module": ("runtime/added_later.py", True),
    "public compute path": ("compute.py", True),
    "package init": ("__init__.py", True),
    "cli": ("cli.py", False),
    "engine": ("local/core/errors.py", False),
    "construct": ("cdk/construct.py", False),
    "client": ("client/__init__.py", False),
    "runtime bytecode": ("runtime/__pycache__/results.cpython-313.pyc", False),
}


@pytest.fixture(scope="module")
def asset_hashes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The layer's asset hash over a copy of the real package, after each edit (one synth for all)."""
    app = fast_app()
    stacks = {}
    cache = tmp_path_factory.mktemp("layer-cache")
    for label, (relative, _) in EDITS.items():
        source = tmp_path_factory.mktemp(label.replace(" ", "-")) / "burstmap"
        shutil.copytree(package_dir(), source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        if relative:
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            with (source / relative).open("a") as file:
                file.write("\n# edited\n")
        stacks[label] = cdk.Stack(app, label.title().replace(" ", ""))
        lambda_.LayerVersion(stacks[label], "Layer", code=runtime_layer_code(source, cache_root=cache))
    return {
        label: next(
            r["Properties"]["Content"]["S3Key"]
            for r in template_of(stack)["Resources"].values()
            if r["Type"] == "AWS::Lambda::LayerVersion"
        )
        for label, stack in stacks.items()
    }


@pytest.mark.parametrize("label", [label for label in EDITS if label != "unchanged"])
def test_the_asset_hash_changes_exactly_when_a_shipped_file_changes(
    asset_hashes: dict[str, str], label: str
) -> None:
    _, ships = EDITS[label]
    assert (asset_hashes[label] != asset_hashes["unchanged"]) is ships


def test_the_installed_package_hashes_like_its_copy(asset_hashes: dict[str, str]) -> None:
    """The fixture's copies stand for the real package: the same files give the same hash."""
    stack = cdk.Stack(fast_app(), "Installed")
    lambda_.LayerVersion(stack, "Layer", code=runtime_layer_code())
    (layer,) = [
        r for r in template_of(stack)["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"
    ]
    assert layer["Properties"]["Content"]["S3Key"] == asset_hashes["unchanged"]


# -------------------------------------------------------------------------------------------------
# what the layer needs inside Lambda

#: Importable inside Lambda besides the standard library: the Python runtime bundles boto3.
LAMBDA_THIRD_PARTY = {"boto3", "botocore"}

_IMPORT_EVERYTHING_FROM_THE_LAYER = """
import importlib, importlib.abc, pkgutil, sys
layer, lambdas = sys.argv[1], sys.argv[2]

class NotInLambda(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"aws_cdk", "constructs", "jsii", "moto", "rich", "typer", "jsonpath_ng",
                                  "jsonata", "cdk_nag"}:
            raise ImportError(f"{name} is not in the Lambda runtime")
        return None

sys.meta_path.insert(0, NotInLambda())
sys.path.insert(0, layer)
import burstmap, burstmap.runtime
assert burstmap.__file__.startswith(layer), burstmap.__file__
for module in pkgutil.walk_packages(burstmap.runtime.__path__, "burstmap.runtime."):
    importlib.import_module(module.name)
from burstmap import compute_handler
from burstmap.compute import compute_handler as public
assert compute_handler is public
for handler in ("start", "combine", "example_compute"):
    sys.path.insert(0, f"{lambdas}/{handler}")
    sys.modules.pop("handler", None)
    assert callable(importlib.import_module("handler").handler)
    sys.path.pop(0)
print("ok")
"""


def test_the_layer_alone_runs_the_handlers_without_any_third_party_package(tmp_path: Path) -> None:
    """The built layer, first on sys.path, with aws-cdk-lib, moto, rich, typer... made unimportable."""
    output = build_layer_directory(package_dir(), cache_root=tmp_path / "cache")
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING_FROM_THE_LAYER, str(output / "python"), str(lambdas_dir())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def _imported_roots(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, outside ``if TYPE_CHECKING:`` blocks."""
    roots: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return roots


@pytest.mark.parametrize("shipped", [name for name in layer_files(package_dir()) if name.endswith(".py")])
def test_every_shipped_module_imports_only_the_standard_library_and_boto3(shipped: str) -> None:
    roots = _imported_roots(package_dir() / shipped)
    assert roots <= set(sys.stdlib_module_names) | LAMBDA_THIRD_PARTY | {"burstmap"}, sorted(roots)
