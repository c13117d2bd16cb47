"""Synthesize a CDK app the way the CDK CLI does, and reuse its assembly only while nothing it read changed.

``synthesize`` runs the app command of cdk.json (``python app.py`` with this interpreter when it is a
Python command) with ``CDK_OUTDIR`` and ``CDK_CONTEXT_JSON``, no node CLI needed, under a timeout and in a
process group of its own (app_process.py). A probe (synth_probe.py, first on the app's PYTHONPATH) reports
what the app read outside its directory; the stamp beside the assembly records every input
(freshness.py), and the next call reuses the assembly only when none of them changed. It returns a
:class:`Synthesis` that says which it did and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from burstmap.local.app import freshness, synth_probe
from burstmap.local.app.app_process import run_app
from burstmap.local.app.errors import SynthesisError, read_json
from burstmap.local.core.file_lock import locked

STAMP_FILE = ".burstmap-synth.json"
LOCK_FILE = ".burstmap-synth.lock"
SYNTH_LOG_FILE = "burstmap-synth.log"
PROBE_DIR = ".burstmap-probe"
PROBE_REPORT_FILE = ".burstmap-probe.json"

#: How long an app may take to synthesize before it is stopped, unless told otherwise.
DEFAULT_TIMEOUT_SECONDS = 300.0
#: The environment variable that sets that limit (``--synth-timeout`` wins over it).
TIMEOUT_ENV = "BURSTMAP_SYNTH_TIMEOUT"

# What the CDK CLI adds to every synth: asset metadata is how we find a function's code directory.
CLI_CONTEXT: dict[str, Any] = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:disable-stack-trace": True,
}
#: Set for the app by this module, not by the user: not part of the environment that is compared.
_SET_HERE = frozenset({"CDK_OUTDIR", "CDK_CONTEXT_JSON"})


@dataclass(frozen=True)
class Synthesis:
    """One call of :func:`synthesize`: where the assembly is, and whether it was synthesized or reused."""

    app_dir: Path
    out_dir: Path
    synthesized: bool
    reason: str
    """Why it was synthesized (``src/handler.py changed``), or why it could be reused."""
    seconds: float = 0.0

    def describe(self) -> str:
        """One line: ``synthesized <app> (<reason>) in 8.2 s`` or ``reused the assembly in <dir> (...)``."""
        if self.synthesized:
            return f"synthesized {self.app_dir} ({self.reason}) in {self.seconds:.1f} s"
        return f"reused the assembly in {freshness.shown(str(self.out_dir), self.app_dir)} ({self.reason})"


def synthesize(
    app_dir: Path,
    *,
    context: dict[str, Any] | None = None,
    out_dir: Path | None = None,
    validate: bool = False,
    force: bool = False,
    timeout: float | None = None,
) -> Synthesis:
    """Synthesize the CDK app in ``app_dir`` into ``out_dir`` (default ``app_dir/cdk.out``), unless the
    assembly there is up to date (freshness.py) and ``force`` is False.

    ``timeout`` (seconds; default ``$BURSTMAP_SYNTH_TIMEOUT``, else 300) stops an app that hangs.
    ``validate`` keeps CDK's built-in CloudFormation validator on (about 4 s a synth); a local run does not
    need it, ``cdk synth`` does it before a deploy. SynthesisError says what went wrong in one line.
    """
    app_dir = Path(app_dir).resolve()
    if not (app_dir / "app.py").is_file() and not (app_dir / "cdk.json").is_file():
        raise SynthesisError(
            f"no CDK app in {app_dir} (neither app.py nor cdk.json): run from the project directory "
            "or pass its path (app_dir=...)"
        )
    out_dir = Path(out_dir).resolve() if out_dir is not None else app_dir / "cdk.out"
    out_dir.mkdir(parents=True, exist_ok=True)
    timeout = resolve_timeout(timeout)
    full_context = _synth_context(app_dir, context or {})
    environment = _app_environment(out_dir, full_context, validate=validate)
    compared = freshness.environment_digest({k: v for k, v in environment.items() if k not in _SET_HERE})
    with locked(out_dir / LOCK_FILE):  # one synth at a time per output folder (parallel tests and runs)
        stamp = _read_stamp(out_dir)
        manifest = out_dir / "manifest.json"
        if force:
            reason = "a synth was asked for"
        elif not manifest.is_file():
            reason = "no assembly yet"
        elif stamp is None:
            reason = "no record of what its assembly was synthesized from"
        else:
            stale, refreshed = freshness.changed(
                stamp,
                app_dir=app_dir,
                out_dir=out_dir,
                context=_plain(full_context),
                environment=compared,
                manifest_sha256=_sha256(manifest),
            )
            if stale is None:
                if refreshed != stamp:  # touched but unchanged files: not hashed again next time
                    _write_stamp(out_dir, refreshed)
                return Synthesis(app_dir, out_dir, synthesized=False, reason="nothing the app reads changed")
            reason = stale
        (out_dir / STAMP_FILE).unlink(missing_ok=True)
        app_files = freshness.snapshot_app(app_dir, out_dir, stamp.app_files if stamp else None)
        started = time.perf_counter()
        report = _run_probed(app_dir, out_dir, environment, timeout)
        seconds = time.perf_counter() - started
        if not manifest.is_file():
            raise SynthesisError(
                f"the app in {app_dir} ran but wrote no {manifest}: does app.py call app.synth()?"
            )
        new_stamp = freshness.record(
            app_dir=app_dir,
            out_dir=out_dir,
            context=_plain(full_context),
            environment=compared,
            app_files=app_files,
            report=report,
            manifest_sha256=_sha256(manifest),
            previous=stamp,
        )
        _write_stamp(out_dir, new_stamp)
    return Synthesis(app_dir, out_dir, synthesized=True, reason=reason, seconds=seconds)


def resolve_timeout(timeout: float | None) -> float:
    """``timeout``, else ``$BURSTMAP_SYNTH_TIMEOUT``, else 300 s; SynthesisError for a value that is not
    a number of seconds above 0."""
    source = "the synth timeout"
    if timeout is None:
        text = os.environ.get(TIMEOUT_ENV, "").strip()
        if not text:
            return DEFAULT_TIMEOUT_SECONDS
        source = TIMEOUT_ENV
        try:
            timeout = float(text)
        except ValueError:
            raise SynthesisError(f"{TIMEOUT_ENV} must be a number of seconds above 0, got {text!r}") from None
    if not 0 < timeout < float("inf"):
        raise SynthesisError(f"{source} must be a number of seconds above 0, got {timeout!r}")
    return float(timeout)


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


def _app_environment(out_dir: Path, full_context: dict[str, Any], *, validate: bool) -> dict[str, str]:
    """The environment the app runs with (what the CDK CLI gives it), the probe's variables not yet in."""
    environment = dict(os.environ)
    environment.update(
        {
            "CDK_OUTDIR": str(out_dir),
            "CDK_CONTEXT_JSON": json.dumps(full_context),
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        }
    )
    if not validate:
        environment["CDK_VALIDATION"] = "false"
    return environment


def _run_probed(
    app_dir: Path, out_dir: Path, environment: dict[str, str], timeout: float
) -> dict[str, Any] | None:
    """Run the app with the probe first on its PYTHONPATH; the probe's report (None if it sent none)."""
    probe_dir = out_dir / PROBE_DIR
    probe_dir.mkdir(exist_ok=True)
    source = Path(synth_probe.__file__).read_text(encoding="utf-8")
    probe = probe_dir / "sitecustomize.py"
    if not probe.is_file() or probe.read_text(encoding="utf-8") != source:
        probe.write_text(source, encoding="utf-8")
    report_path = out_dir / PROBE_REPORT_FILE
    report_path.unlink(missing_ok=True)
    original = environment.get("PYTHONPATH", "")
    probed = {
        **environment,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(probe_dir), original])),
        synth_probe.ORIGINAL_PYTHONPATH_ENV: original,
        synth_probe.REPORT_ENV: str(report_path),
    }
    run_app(_app_command(app_dir), cwd=app_dir, env=probed, log=out_dir / SYNTH_LOG_FILE, timeout=timeout)
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def _read_stamp(out_dir: Path) -> freshness.Stamp | None:
    try:
        return freshness.Stamp.from_json(json.loads((out_dir / STAMP_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _write_stamp(out_dir: Path, stamp: freshness.Stamp) -> None:
    partial = out_dir / f"{STAMP_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(stamp.to_json(), sort_keys=True), encoding="utf-8")
    partial.replace(out_dir / STAMP_FILE)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """The context as JSON gives it back (tuples become lists), so a stored stamp compares equal."""
    return json.loads(json.dumps(value))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
