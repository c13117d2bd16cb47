"""Is a synthesized assembly still what the app would synthesize now? The inputs a synth read, and why not.

A stamp beside the assembly records what could change it:

- every file under the app directory, except cdk.out, virtual environments (any folder holding a
  ``pyvenv.cfg``, and ``.venv``/``venv``), node_modules, VCS folders, caches and editor state
  (:data:`EXCLUDED_DIRS`), and the patterns of cdk.json's ``watch.exclude``;
- cdk.json and cdk.context.json, always (the default ``watch.exclude`` names ``cdk*.json``);
- what the app read wherever it lives (synth_probe.py reports it): the module files it imported from
  outside the interpreter's standard library and site-packages (editable installs such as burstmap
  itself included), and the files and folders it passed to jsii (asset sources, with everything in
  them, wherever they are);
- the distributions installed in the site-packages the app ran with (an upgrade of aws-cdk-lib counts);
- the CDK context, and each environment variable that reaches the app (a digest of its value, never
  the value), except the volatile ones listed in :data:`VOLATILE_ENV`.

A file is compared by (size, mtime_ns) first and by its sha256 only when those changed, so a check
reads no file that was not touched; files over :data:`CONTENT_HASH_MAX_BYTES` are compared by (size,
mtime_ns) alone. :func:`changed` names the first difference it finds, cheapest checks first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STAMP_VERSION = 2
CONTENT_HASH_MAX_BYTES = 1 << 20
"""Files up to this size are hashed; larger ones (data, not code) are compared by size and mtime."""

EXCLUDED_DIRS = frozenset(
    {
        "cdk.out",
        "node_modules",
        ".venv",
        "venv",
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".eggs",
        ".ipynb_checkpoints",
        ".idea",
        ".vscode",
    }
)
"""Folders never walked (nor any folder holding a ``pyvenv.cfg``, nor ``*.egg-info``)."""
EXCLUDED_FILE_SUFFIXES = (".pyc", ".pyo", ".swp", ".swo", "~")
EXCLUDED_FILES = frozenset({".DS_Store"})
ALWAYS_READ = ("cdk.json", "cdk.context.json")
"""App files that count even when ``watch.exclude`` names them (the CDK CLI reads them)."""

VOLATILE_ENV = frozenset(
    {
        # the shell's own bookkeeping
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        # the terminal and the session
        "TERM",
        "TERM_PROGRAM",
        "TERM_PROGRAM_VERSION",
        "TERM_SESSION_ID",
        "COLORTERM",
        "COLUMNS",
        "LINES",
        "WINDOWID",
        "TMUX",
        "TMUX_PANE",
        "STY",
        "SSH_TTY",
        "SSH_CLIENT",
        "SSH_CONNECTION",
        "SSH_AUTH_SOCK",
        "GPG_TTY",
        "XDG_SESSION_ID",
        "DBUS_SESSION_BUS_ADDRESS",
        # the test runner
        "PYTEST_CURRENT_TEST",
        "PYTEST_VERSION",
        "PYTEST_XDIST_WORKER",
        "PYTEST_XDIST_WORKER_COUNT",
        "PYTEST_XDIST_TESTRUNUID",
    }
)
"""Environment variables that change between shells or test runs but never what an app synthesizes."""
VOLATILE_ENV_PREFIXES = ("BURSTMAP_SYNTH_",)
"""burstmap's own settings for the synth (``BURSTMAP_SYNTH_TIMEOUT``) and the probe's variables."""

FileState = tuple[int, int, "str | None"]
"""(size, mtime_ns, sha256 of the content or None past CONTENT_HASH_MAX_BYTES)."""


@dataclass
class Stamp:
    """What one synth read, as stored beside its assembly (``.burstmap-synth.json``)."""

    context: dict[str, Any]
    environment: dict[str, str]
    """Variable -> sha256 of its value."""
    app_files: dict[str, FileState]
    """Relative path (posix) -> state, for the app directory's walk."""
    read_files: dict[str, FileState] = field(default_factory=dict)
    """Absolute path -> state: modules and files the app read, wherever they are."""
    read_dirs: dict[str, dict[str, FileState]] = field(default_factory=dict)
    """Absolute folder the app passed to jsii -> its files' states."""
    site_dirs: dict[str, list[str]] = field(default_factory=dict)
    """site-packages folder -> the distributions in it."""
    manifest_sha256: str = ""
    probed: bool = False
    """Whether the probe reported (an app that is not Python, or exits with os._exit, does not)."""
    version: int = STAMP_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Stamp | None:
        """The stamp, or None when it is from another version of burstmap or damaged."""
        if not isinstance(data, dict) or data.get("version") != STAMP_VERSION:
            return None
        try:
            stamp = cls(**data)
            stamp.app_files = {k: tuple(v) for k, v in stamp.app_files.items()}  # type: ignore[misc]
            stamp.read_files = {k: tuple(v) for k, v in stamp.read_files.items()}  # type: ignore[misc]
            stamp.read_dirs = {
                d: {k: tuple(v) for k, v in files.items()}  # type: ignore[misc]
                for d, files in stamp.read_dirs.items()
            }
        except (TypeError, AttributeError):
            return None
        return stamp


# ------------------------------------------------------------------------------------------ the environment


def environment_digest(environment: Mapping[str, str]) -> dict[str, str]:
    """Each variable that can change what the app synthesizes -> sha256 of its value."""
    return {
        name: hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
        for name, value in sorted(environment.items())
        if name not in VOLATILE_ENV and not name.startswith(VOLATILE_ENV_PREFIXES)
    }


# ------------------------------------------------------------------------------------------ files


def file_state(
    path: Path, previous: FileState | None = None, info: os.stat_result | None = None
) -> FileState:
    """The file's state; its content is hashed only when its size or mtime differ from ``previous``."""
    info = info if info is not None else path.stat()
    if previous is not None and previous[:2] == (info.st_size, info.st_mtime_ns):
        return previous
    digest = None
    if info.st_size <= CONTENT_HASH_MAX_BYTES:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return (info.st_size, info.st_mtime_ns, digest)


def same_content(old: FileState, new: FileState) -> bool:
    if old[:2] == new[:2]:
        return True
    return old[2] is not None and old[2] == new[2]


def watch_excludes(app_dir: Path, cdk_json: Any) -> list[re.Pattern[str]]:
    """cdk.json ``watch.exclude`` globs (``**`` across folders), matched against paths relative to the app."""
    watch = cdk_json.get("watch") if isinstance(cdk_json, dict) else None
    patterns = watch.get("exclude") if isinstance(watch, dict) else None
    if not isinstance(patterns, list):
        return []
    return [_glob_regex(pattern) for pattern in patterns if isinstance(pattern, str) and pattern.strip()]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip().removeprefix("./").rstrip("/")
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts))


def _excluded(relative: str, excludes: list[re.Pattern[str]]) -> bool:
    return any(pattern.fullmatch(relative) for pattern in excludes)


def walk_files(
    root: Path, *, excludes: list[re.Pattern[str]] | None = None, skip: frozenset[Path] = frozenset()
) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative posix path, path, stat) of every file under ``root`` that can matter (module docstring).

    ``excludes`` are matched against paths relative to ``root`` (a matching folder is not entered);
    ``skip`` holds folders never entered (the assembly's own output folder).
    """
    excludes = excludes or []
    pending = [(root, "")]
    seen: set[tuple[int, int]] = set()  # folders entered, by (device, inode): a symlink loop ends here
    with contextlib.suppress(OSError):
        seen.add((root.stat().st_dev, root.stat().st_ino))
    while pending:
        directory, prefix = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            if excludes and _excluded(relative, excludes):
                continue
            try:
                info = entry.stat()
            except OSError:  # a dangling link, or gone since the listing
                continue
            if stat.S_ISDIR(info.st_mode):
                path = Path(entry.path)
                if entry.name in EXCLUDED_DIRS or entry.name.endswith(".egg-info") or path in skip:
                    continue
                if (path / "pyvenv.cfg").exists():  # any virtual environment, whatever its name
                    continue
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
                pending.append((path, relative + "/"))
            elif stat.S_ISREG(info.st_mode):
                if entry.name in EXCLUDED_FILES or entry.name in EXCLUDED_DIRS:  # a worktree's .git file
                    continue
                if entry.name.endswith(EXCLUDED_FILE_SUFFIXES):
                    continue
                yield relative, Path(entry.path), info


def snapshot_dir(
    root: Path,
    previous: Mapping[str, FileState] | None = None,
    *,
    excludes: list[re.Pattern[str]] | None = None,
    skip: frozenset[Path] = frozenset(),
) -> dict[str, FileState]:
    previous = previous or {}
    return {
        relative: file_state(path, previous.get(relative), info)
        for relative, path, info in walk_files(root, excludes=excludes, skip=skip)
    }


def walkable(directory: Path, app_dir: Path) -> bool:
    """Whether a folder the app passed to jsii is one to watch: not the app itself or a folder holding it
    (the app's walk covers it), nor the file system's root, a top-level folder, home or the temp folder."""
    if len(directory.parts) <= 2 or directory in (Path.home(), Path(tempfile.gettempdir()).resolve()):
        return False
    return not (directory == app_dir or directory in app_dir.parents)


# ------------------------------------------------------------------------------------------ comparing


def changed_file(old: Mapping[str, FileState], new: Mapping[str, FileState]) -> str | None:
    """The first file added, removed or changed between two snapshots, as a few words."""
    for name in sorted(old.keys() - new.keys()):
        return f"{name} was removed"
    for name in sorted(new.keys() - old.keys()):
        return f"{name} was added"
    for name in sorted(old):
        if not same_content(old[name], new[name]):
            return f"{name} changed"
    return None


def changed_environment(old: Mapping[str, str], new: Mapping[str, str]) -> str | None:
    for name in sorted(old.keys() - new.keys()):
        return f"environment variable {name} was unset"
    for name in sorted(new.keys() - old.keys()):
        return f"environment variable {name} was set"
    for name in sorted(old):
        if old[name] != new[name]:
            return f"environment variable {name} changed"
    return None


def changed_context(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    for key in sorted(old.keys() | new.keys()):
        if old.get(key, _MISSING) != new.get(key, _MISSING):
            return f"CDK context {key} changed"
    return None


_MISSING = object()


def distributions(site_dir: str) -> list[str]:
    """The distributions installed in a site-packages folder (their ``*.dist-info`` / ``*.egg-info``)."""
    try:
        names = os.listdir(site_dir)
    except OSError:
        return []
    return sorted(name for name in names if name.endswith((".dist-info", ".egg-info")))


def shown(path: str, app_dir: Path) -> str:
    """A path as a message shows it: relative to the app when inside it."""
    try:
        return Path(path).relative_to(app_dir).as_posix()
    except ValueError:
        return path


# ------------------------------------------------------------------------------------------ the stamp


def snapshot_app(
    app_dir: Path, out_dir: Path, previous: Mapping[str, FileState] | None = None
) -> dict[str, FileState]:
    """The app directory's files (module docstring), ``out_dir`` and cdk.json ``watch.exclude`` left out."""
    cdk_json = _read_json_or_empty(app_dir / "cdk.json")
    return snapshot_dir(
        app_dir, previous, excludes=watch_excludes(app_dir, cdk_json), skip=frozenset({out_dir})
    )


def record(
    *,
    app_dir: Path,
    out_dir: Path,
    context: dict[str, Any],
    environment: dict[str, str],
    app_files: dict[str, FileState],
    report: Mapping[str, Any] | None,
    manifest_sha256: str,
    previous: Stamp | None = None,
) -> Stamp:
    """The stamp of a synth that just ran: ``app_files`` as they were when it began, what the probe's
    ``report`` says the app read (None: it did not report), and the assembly it wrote."""
    old_files = previous.read_files if previous is not None else {}
    old_dirs = previous.read_dirs if previous is not None else {}
    report = report or {}
    read_files: dict[str, FileState] = {}
    read_dirs: dict[str, dict[str, FileState]] = {}
    candidates = [str(app_dir / name) for name in ALWAYS_READ]
    candidates += [p for p in (*report.get("modules", ()), *report.get("paths", ())) if isinstance(p, str)]
    for name in candidates:
        path = Path(name)
        if path == out_dir or out_dir in path.parents:
            continue
        if path.is_file():
            read_files[name] = file_state(path, old_files.get(name))
        elif path.is_dir() and walkable(path, app_dir):
            read_dirs[name] = snapshot_dir(path, old_dirs.get(name), skip=frozenset({out_dir}))
    site_dirs = {d: distributions(d) for d in report.get("site_dirs", ()) if isinstance(d, str)}
    return Stamp(
        context=context,
        environment=environment,
        app_files=app_files,
        read_files=read_files,
        read_dirs=read_dirs,
        site_dirs=site_dirs,
        manifest_sha256=manifest_sha256,
        probed=bool(report),
    )


def changed(
    stamp: Stamp,
    *,
    app_dir: Path,
    out_dir: Path,
    context: dict[str, Any],
    environment: dict[str, str],
    manifest_sha256: str,
) -> tuple[str | None, Stamp]:
    """Why the assembly is stale (None: it is not), and the stamp with the files' states refreshed (a
    file touched but unchanged is not hashed again next time)."""
    if stamp.manifest_sha256 != manifest_sha256:
        return "its assembly was written by another synth since", stamp
    reason = changed_context(stamp.context, context) or changed_environment(stamp.environment, environment)
    if reason:
        return reason, stamp
    read_files: dict[str, FileState] = {}
    for name, old in stamp.read_files.items():
        try:
            read_files[name] = file_state(Path(name), old)
        except OSError:
            return f"{shown(name, app_dir)} was removed", stamp
        if not same_content(old, read_files[name]):
            return f"{shown(name, app_dir)} changed", stamp
    app_files = snapshot_app(app_dir, out_dir, stamp.app_files)
    reason = changed_file(stamp.app_files, app_files)
    if reason:
        return reason, stamp
    read_dirs: dict[str, dict[str, FileState]] = {}
    for directory, old_dir in stamp.read_dirs.items():
        read_dirs[directory] = snapshot_dir(Path(directory), old_dir, skip=frozenset({out_dir}))
        reason = changed_file(old_dir, read_dirs[directory])
        if reason:
            return f"{shown(directory, app_dir)}/{reason}", stamp
    for site_dir, listed in stamp.site_dirs.items():
        if distributions(site_dir) != listed:
            return f"the packages installed in {site_dir} changed", stamp
    refreshed = Stamp(
        **{**stamp.__dict__, "read_files": read_files, "app_files": app_files, "read_dirs": read_dirs}
    )
    return None, refreshed


def _read_json_or_empty(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
