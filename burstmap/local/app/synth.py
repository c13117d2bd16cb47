"""Synthesize a CDK app the way the CDK CLI does, and skip it when ``cdk.out`` is up to date.

``synthesize`` runs ``python app.py`` with ``CDK_OUTDIR`` and ``CDK_CONTEXT_JSON`` (no node CLI needed).
A stamp file beside the assembly records the context and when the synth began; the assembly is reused
while the context is the same, the assembly unchanged, and no input (app.py, cdk.json, infra/, lambdas/,
burstmap/ outside the local engine) was modified since.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from burstmap.local.app.errors import SynthesisError, read_json

STAMP_FILE = ".burstmap-synth.json"
LOCK_FILE = ".burstmap-synth.lock"
SYNTH_LOG_FILE = "burstmap-synth.log"

# What the CDK CLI adds to every synth: asset metadata is how we find a function's code directory.
CLI_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:disable-stack-trace": True,
}

# Inputs whose change makes a synthesized assembly stale (relative to the app directory).
INPUT_FILES = ("app.py", "cdk.json", "cdk.context.json")
INPUT_DIRS = ("infra", "lambdas", "burstmap")
_IGNORED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "cdk.out", "node_modules"}


def synthesize(
    app_dir: Path,
    *,
    context: dict[str, Any] | None = None,
    out_dir: Path | None = None,
    validate: bool = False,
    force: bool = False,
    watch: tuple[str, ...] = INPUT_FILES + INPUT_DIRS,
) -> Path:
    """Synthesize the CDK app in ``app_dir`` into ``out_dir`` (default ``app_dir/cdk.out``); return out_dir.

    Re-synthesis is skipped when the stamp file shows the same context, the assembly is unchanged since,
    and no input file (app.py, cdk.json, infra/, lambdas/, burstmap/) was modified after that synth began.
    ``watch`` lists those inputs relative to ``app_dir``; "burstmap" also watches the installed package,
    which the runtime layer copies. ``validate`` keeps CDK's built-in CloudFormation validator on (about
    4 s a synth); a local run does not need it, ``cdk synth`` does it before a deploy.
    """
    app_dir = Path(app_dir).resolve()
    if not (app_dir / "app.py").is_file() and not (app_dir / "cdk.json").is_file():
        raise SynthesisError(
            f"no CDK app in {app_dir} (neither app.py nor cdk.json): run from the project directory "
            "or pass its path (app_dir=...)"
        )
    out_dir = Path(out_dir).resolve() if out_dir is not None else app_dir / "cdk.out"
    out_dir.mkdir(parents=True, exist_ok=True)
    full_context = _synth_context(app_dir, context or {})
    with _locked(out_dir / LOCK_FILE):
        if not force and is_up_to_date(app_dir, out_dir, full_context, watch):
            return out_dir
        (out_dir / STAMP_FILE).unlink(missing_ok=True)
        started = time.time()
        _run_app(app_dir, out_dir, full_context, validate=validate)
        manifest = out_dir / "manifest.json"
        if not manifest.is_file():
            raise SynthesisError(
                f"the app in {app_dir} ran but wrote no {manifest}: does app.py call app.synth()?"
            )
        stamp = {"context": full_context, "started": started, "manifest_sha256": _sha256(manifest)}
        (out_dir / STAMP_FILE).write_text(json.dumps(stamp, sort_keys=True))
    return out_dir


def is_up_to_date(
    app_dir: Path,
    out_dir: Path,
    full_context: dict[str, Any],
    watch: tuple[str, ...] = INPUT_FILES + INPUT_DIRS,
) -> bool:
    """Whether ``out_dir`` holds this app's assembly for exactly this context, newer than every input."""
    stamp_path = out_dir / STAMP_FILE
    manifest = out_dir / "manifest.json"
    if not stamp_path.is_file() or not manifest.is_file():
        return False
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("context") != json.loads(json.dumps(full_context)):
        return False
    if stamp.get("manifest_sha256") != _sha256(manifest):  # e.g. `cdk synth` wrote it since
        return False
    started = float(stamp.get("started", 0))
    return all(path.stat().st_mtime < started for path in input_files(app_dir, watch))


def input_files(app_dir: Path, watch: tuple[str, ...] = INPUT_FILES + INPUT_DIRS) -> Iterator[Path]:
    """Every file whose change can change the synthesized assembly (and burstmap's own package)."""
    for name in watch:
        if (app_dir / name).is_file():
            yield app_dir / name
    roots = [app_dir / name for name in watch if (app_dir / name).is_dir()]
    if "burstmap" in watch:  # the runtime layer copies the installed package, wherever it lives
        roots += _installed_package_dirs()
    # The local engine (burstmap/local) never changes what the app synthesizes: editing it keeps cdk.out.
    seen: set[Path] = {(root / "local").resolve() for root in roots if root.name == "burstmap"}
    for root in roots:
        root = root.resolve()
        if root in seen or not root.is_dir():
            continue
        seen.add(root)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [
                d
                for d in dirnames
                if d not in _IGNORED_PARTS
                and not d.endswith(".egg-info")
                and Path(dirpath, d).resolve() not in seen
            ]
            for filename in filenames:
                if not filename.endswith((".pyc", ".pyo")):
                    yield Path(dirpath, filename)


def _synth_context(app_dir: Path, context: dict[str, Any]) -> dict[str, Any]:
    """cdk.json's context, then cdk.context.json, then the caller's, then the CLI's own keys, like the CLI."""
    merged: dict[str, Any] = {}
    cdk_json = read_json(app_dir / "cdk.json")
    merged.update(cdk_json.get("context", {}) if isinstance(cdk_json, dict) else {})
    cached = read_json(app_dir / "cdk.context.json")
    merged.update(cached if isinstance(cached, dict) else {})
    merged.update(context)
    merged.update(CLI_CONTEXT)
    return merged


def _app_command(app_dir: Path) -> list[str]:
    """The app command from cdk.json, run with this interpreter when it is a Python command."""
    cdk_json = read_json(app_dir / "cdk.json")
    app = cdk_json.get("app") if isinstance(cdk_json, dict) else None
    if not app:
        return [sys.executable, "app.py"]
    argv = shlex.split(app)
    if re.fullmatch(r"python[0-9.]*", Path(argv[0]).name):
        return [sys.executable, *argv[1:]]
    return argv


def _run_app(app_dir: Path, out_dir: Path, full_context: dict[str, Any], *, validate: bool) -> None:
    env = dict(os.environ)
    env.update(
        {
            "CDK_OUTDIR": str(out_dir),
            "CDK_CONTEXT_JSON": json.dumps(full_context),
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        }
    )
    if not validate:
        env["CDK_VALIDATION"] = "false"
    command = _app_command(app_dir)
    try:
        proc = subprocess.run(command, cwd=app_dir, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SynthesisError(f"cannot run the CDK app ({shlex.join(command)}) in {app_dir}: {exc}") from exc
    if proc.returncode != 0:
        # One line for the user (the app's last line of output is usually its exception); the whole
        # output, traceback included, goes to a log file the message names.
        log = out_dir / SYNTH_LOG_FILE
        log.write_text(f"$ {shlex.join(command)}\n{proc.stdout}{proc.stderr}")
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        last = lines[-1] if lines else "no output"
        raise SynthesisError(
            f"synthesizing the CDK app failed ({shlex.join(command)} in {app_dir}, exit {proc.returncode}): "
            f"{last} -- fix the app and retry; its full output is in {log}"
        )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One synth at a time per output directory (parallel tests and CLI runs share cdk.out)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _installed_package_dirs() -> list[Path]:
    """The installed burstmap package and its Lambda handlers (burstmap.lambdas), found without importing
    them: what a construct in the app may copy into its assets."""
    found = []
    for name in ("burstmap", "burstmap.lambdas"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            found.append(Path(next(iter(spec.submodule_search_locations))).resolve())
    return found
