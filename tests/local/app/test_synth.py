"""Synthesis: reused exactly while nothing the app reads changed, never stale; a timeout; no process left.

Most apps here are stand-ins that write a cloud assembly manifest without CDK (a synth takes 0.1 s), so
each input can be changed on its own; one real CDK app checks the asset folders it passes to jsii.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from burstmap.local.app import freshness
from burstmap.local.app.errors import SynthesisError
from burstmap.local.app.synth import STAMP_FILE, TIMEOUT_ENV, resolve_timeout, synthesize
from tests.local.services.processes import sigint_as_in_a_terminal

STAND_IN_APP = """
import json, os, pathlib, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared"))
import settings  # a module of the user's, outside the app folder
from stacks import jobs
out = pathlib.Path(os.environ["CDK_OUTDIR"])
seen = {
    "value": settings.VALUE,
    "jobs": jobs.JOBS,
    "stage": os.environ.get("STAGE"),
    "pythonpath": os.environ.get("PYTHONPATH"),
    "probe_env": sorted(k for k in os.environ if k.startswith("BURSTMAP_SYNTH_")),
    "sys_path": sys.path,
    "mark": os.environ.get("SITECUSTOMIZE_MARK"),
}
(out / "manifest.json").write_text(json.dumps({"version": "36.0.0", "artifacts": {}, "seen": seen}))
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A user's app folder (app.py, stacks/, data/) beside a shared folder it imports from."""
    app = tmp_path / "myapp"
    write(app / "app.py", STAND_IN_APP)
    write(app / "stacks" / "__init__.py", "")
    write(app / "stacks" / "jobs.py", "JOBS = ['squares']\n")
    write(
        app / "cdk.json", json.dumps({"app": "python3 app.py", "watch": {"exclude": ["data", "cdk*.json"]}})
    )
    write(app / "data" / "big.csv", "1,2,3\n")
    write(tmp_path / "shared" / "settings.py", "VALUE = 1\n")
    return app


def seen(synthesis) -> dict:
    return json.loads((synthesis.out_dir / "manifest.json").read_text())["seen"]


def test_the_first_run_synthesizes_and_the_next_reuses(app_dir: Path) -> None:
    first = synthesize(app_dir)
    second = synthesize(app_dir)

    assert (first.synthesized, first.reason) == (True, "no assembly yet")
    assert (second.synthesized, second.reason) == (False, "nothing the app reads changed")
    assert first.describe().startswith(f"synthesized {app_dir} (no assembly yet) in ")
    assert second.describe() == "reused the assembly in cdk.out (nothing the app reads changed)"
    assert seen(first)["value"] == 1
    assert (
        first.out_dir / "burstmap-synth.log"
    ).read_text() == f"$ {sys.executable} app.py\n"  # the probe is silent


def test_an_edit_anywhere_in_the_app_synthesizes_a_touch_does_not(app_dir: Path) -> None:
    synthesize(app_dir)
    jobs = app_dir / "stacks" / "jobs.py"
    os.utime(jobs, ns=(jobs.stat().st_atime_ns, jobs.stat().st_mtime_ns + 5_000_000_000))
    assert not synthesize(app_dir).synthesized

    jobs.write_text("JOBS = ['squares', 'cubes']\n")
    again = synthesize(app_dir)
    assert (again.synthesized, again.reason) == (True, "stacks/jobs.py changed")
    assert seen(again)["jobs"] == ["squares", "cubes"]

    write(app_dir / "stacks" / "more.py", "X = 1\n")
    assert synthesize(app_dir).reason == "stacks/more.py was added"
    (app_dir / "stacks" / "more.py").unlink()
    assert synthesize(app_dir).reason == "stacks/more.py was removed"


def test_a_module_imported_from_outside_the_app_counts(app_dir: Path) -> None:
    synthesize(app_dir)
    shared = app_dir.parent / "shared" / "settings.py"
    shared.write_text("VALUE = 2\n")

    again = synthesize(app_dir)
    assert (again.synthesized, again.reason) == (True, f"{shared} changed")
    assert seen(again)["value"] == 2


def test_folders_that_cannot_change_the_app_and_watch_exclude_do_not_count(app_dir: Path) -> None:
    synthesize(app_dir)
    write(app_dir / "data" / "big.csv", "4,5,6\n")  # cdk.json watch.exclude
    write(app_dir / "node_modules" / "x" / "index.js", "")
    write(app_dir / ".git" / "HEAD", "ref: x\n")
    write(app_dir / "stacks" / "__pycache__" / "jobs.cpython-311.pyc", "")
    write(app_dir / "env" / "pyvenv.cfg", "home = /usr\n")  # a virtual environment, whatever its name
    write(app_dir / "env" / "lib" / "thing.py", "")
    write(app_dir / ".idea" / "workspace.xml", "<x/>")
    write(app_dir / "cdk.out" / "other" / "x.json", "{}")
    assert not synthesize(app_dir).synthesized

    # cdk.json counts although its watch.exclude names cdk*.json: the CDK CLI reads it
    cdk_json = json.loads((app_dir / "cdk.json").read_text())
    write(app_dir / "cdk.json", json.dumps({**cdk_json, "app": "python3 app.py --verbose"}))
    assert synthesize(app_dir).reason == "cdk.json changed"


def test_the_environment_reaching_the_app_counts_except_volatile_variables(
    app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synthesize(app_dir)
    monkeypatch.setenv("STAGE", "dev")
    first = synthesize(app_dir)
    assert (first.reason, seen(first)["stage"]) == ("environment variable STAGE was set", "dev")
    monkeypatch.setenv("STAGE", "prod")
    assert synthesize(app_dir).reason == "environment variable STAGE changed"
    monkeypatch.delenv("STAGE")
    assert synthesize(app_dir).reason == "environment variable STAGE was unset"

    for volatile in ("PWD", "OLDPWD", "SHLVL", "_", "TERM", "PYTEST_CURRENT_TEST"):
        monkeypatch.setenv(volatile, f"{volatile}-{time.time()}")
    monkeypatch.setenv(TIMEOUT_ENV, "123")  # burstmap's own setting
    assert not synthesize(app_dir).synthesized


def test_context_and_force(app_dir: Path) -> None:
    synthesize(app_dir)
    assert synthesize(app_dir, context={"stage": "dev"}).reason == "CDK context stage changed"
    forced = synthesize(app_dir, context={"stage": "dev"}, force=True)
    assert (forced.synthesized, forced.reason) == (True, "a synth was asked for")


def test_an_assembly_written_by_another_synth_is_not_trusted(app_dir: Path) -> None:
    first = synthesize(app_dir)
    (first.out_dir / "manifest.json").write_text('{"version": "36.0.0", "artifacts": {}, "seen": {}}')
    assert synthesize(app_dir).reason == "its assembly was written by another synth since"
    (first.out_dir / STAMP_FILE).write_text('{"version": 1}')  # an older burstmap's stamp
    assert synthesize(app_dir).reason == "no record of what its assembly was synthesized from"


def test_the_probe_leaves_the_app_its_own_environment(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = app_dir.parent / "own-site"
    write(own / "sitecustomize.py", "import os\nos.environ['SITECUSTOMIZE_MARK'] = 'loaded'\n")
    monkeypatch.setenv("PYTHONPATH", str(own))

    app = seen(synthesize(app_dir))

    assert app["pythonpath"] == str(own) and app["probe_env"] == []
    assert app["mark"] == "loaded"  # the sitecustomize the probe shadows still runs
    assert not any(".burstmap-probe" in entry for entry in app["sys_path"])


def test_installed_packages_count(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    write(site / "aws_cdk_lib-2.275.0.dist-info" / "METADATA", "")
    stamp = freshness.Stamp(
        context={}, environment={}, app_files={}, site_dirs={str(site): ["aws_cdk_lib-2.275.0.dist-info"]}
    )
    app = tmp_path / "app"
    app.mkdir()
    assert (
        freshness.changed(
            stamp, app_dir=app, out_dir=app / "cdk.out", context={}, environment={}, manifest_sha256=""
        )[0]
        is None
    )
    (site / "aws_cdk_lib-2.275.0.dist-info").rename(site / "aws_cdk_lib-2.276.0.dist-info")
    reason, _ = freshness.changed(
        stamp, app_dir=app, out_dir=app / "cdk.out", context={}, environment={}, manifest_sha256=""
    )
    assert reason == f"the packages installed in {site} changed"


def test_linked_folders_are_followed_once(tmp_path: Path) -> None:
    write(tmp_path / "app" / "stacks" / "jobs.py", "")
    write(tmp_path / "shared" / "settings.py", "")
    (tmp_path / "app" / "stacks" / "loop").symlink_to(tmp_path / "app")
    (tmp_path / "app" / "shared").symlink_to(tmp_path / "shared")
    files = sorted(relative for relative, _, _ in freshness.walk_files(tmp_path / "app"))
    assert files == ["shared/settings.py", "stacks/jobs.py"]


def test_a_large_file_is_compared_by_size_and_time_without_reading_it(tmp_path: Path) -> None:
    big = write(tmp_path / "big.bin", "x" * (freshness.CONTENT_HASH_MAX_BYTES + 1))
    small = write(tmp_path / "small.txt", "x")
    assert freshness.file_state(big)[2] is None
    assert freshness.file_state(small)[2] is not None


# ------------------------------------------------------------------------------------------ a real CDK app


CDK_APP = """
import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

app = cdk.App()
stack = cdk.Stack(app, "Assets")
for name, path in (("Inside", "functions/inside"), ("Outside", "../elsewhere/outside")):
    code = lambda_.Code.from_asset(path)
    lambda_.Function(stack, name, runtime=lambda_.Runtime.PYTHON_3_12, handler="h.handler", code=code)
app.synth()
"""


@pytest.mark.slow
def test_asset_folders_passed_to_jsii_count_wherever_they_are(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    write(app_dir / "app.py", CDK_APP)
    # cdk init's default exclude names **/__init__.py: an asset's own files count all the same
    write(
        app_dir / "cdk.json", json.dumps({"app": "python3 app.py", "watch": {"exclude": ["**/__init__.py"]}})
    )
    write(app_dir / "functions" / "inside" / "h.py", "def handler(e, c):\n    return 1\n")
    write(app_dir / "functions" / "inside" / "pkg" / "__init__.py", "X = 1\n")
    outside = write(tmp_path / "elsewhere" / "outside" / "h.py", "def handler(e, c):\n    return 2\n")
    assert synthesize(app_dir).synthesized

    write(app_dir / "functions" / "inside" / "pkg" / "__init__.py", "X = 2\n")
    assert synthesize(app_dir).reason == "functions/inside/pkg/__init__.py changed"
    outside.write_text("def handler(e, c):\n    return 3\n")
    assert synthesize(app_dir).reason == f"{outside.parent}/h.py changed"
    assert not synthesize(app_dir).synthesized


# ------------------------------------------------------------------------------------------ hangs and signals

HANGING_APP = """
import os, pathlib, subprocess, sys, time
child = subprocess.Popen(["sleep", "600"])
pathlib.Path("pids").write_text(f"{os.getpid()} {child.pid}")
print("connecting to the database", flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_for_pids(app_dir: Path, seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = (app_dir / "pids").read_text() if (app_dir / "pids").is_file() else ""
        if len(text.split()) >= 2:
            return [int(pid) for pid in text.split()]
        time.sleep(0.1)
    raise AssertionError("the app never started")


def all_gone(pids: list[int], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def test_a_hanging_app_is_stopped_at_the_timeout_with_what_it_said_last(tmp_path: Path) -> None:
    write(tmp_path / "app.py", HANGING_APP)

    started = time.monotonic()
    with pytest.raises(SynthesisError) as raised:
        synthesize(tmp_path, timeout=3)

    assert time.monotonic() - started < 3 + 10
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        f"the CDK app did not finish synthesizing within 3 s ({sys.executable} app.py in {tmp_path}), so it "
        "was stopped; its last output: connecting to the database -- if it needs longer, raise the limit "
        f"with --synth-timeout SECONDS (or {TIMEOUT_ENV})"
    )
    assert all_gone(wait_for_pids(tmp_path), seconds=1)  # the app and what it started


def test_the_timeout_comes_from_the_environment_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_timeout(None) == 300
    monkeypatch.setenv(TIMEOUT_ENV, "1.5")
    assert resolve_timeout(None) == 1.5 and resolve_timeout(20) == 20
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(
        SynthesisError, match=f"{TIMEOUT_ENV} must be a number of seconds above 0, got 'soon'"
    ):
        resolve_timeout(None)
    with pytest.raises(SynthesisError, match="must be a number of seconds above 0, got 0"):
        resolve_timeout(0)


def test_a_failing_app_shows_its_last_lines(tmp_path: Path) -> None:
    write(tmp_path / "app.py", "print('loading stacks')\nraise ValueError('no such stage: prod')\n")
    with pytest.raises(SynthesisError) as raised:
        synthesize(tmp_path)
    message = str(raised.value)
    assert f'File "{tmp_path / "app.py"}", line 2, in <module>' in message
    assert (
        "raise ValueError('no such stage: prod') | ValueError: no such stage: prod -- fix the app" in message
    )


def burstmap_run(app_dir: Path, **kwargs) -> subprocess.Popen:
    """`burstmap run` on the app, as a user starts it (the console script)."""
    script = Path(sys.executable).with_name("burstmap")
    command = [str(script), "run", "--app-dir", str(app_dir), "--size", "1"]
    return subprocess.Popen(command, preexec_fn=sigint_as_in_a_terminal, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_an_interrupted_burstmap_run_leaves_no_process_of_the_app(tmp_path: Path, signum: int) -> None:
    write(tmp_path / "app.py", HANGING_APP)
    parent = burstmap_run(tmp_path, stderr=subprocess.PIPE)
    pids = wait_for_pids(tmp_path)

    parent.send_signal(signum)  # SIGINT to burstmap alone is what Ctrl-C does: the app has its own group

    _, stderr = parent.communicate(timeout=30)
    assert parent.returncode != 0, stderr
    assert all_gone(pids, seconds=5), [pid for pid in pids if alive(pid)]


KILLABLE_CDK_APP = """
import os, pathlib, time
import aws_cdk  # starts jsii's node process

children = []
for task in os.listdir(f"/proc/{os.getpid()}/task"):
    children += pathlib.Path(f"/proc/{os.getpid()}/task/{task}/children").read_text().split()
pathlib.Path("pids").write_text(" ".join([str(os.getpid()), *children]))
time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_burstmap_run_takes_the_app_and_its_node_process_with_it(tmp_path: Path) -> None:
    write(tmp_path / "app.py", KILLABLE_CDK_APP)
    parent = burstmap_run(tmp_path)
    pids = wait_for_pids(tmp_path)
    assert len(pids) >= 2  # the app and jsii's node

    parent.kill()  # SIGKILL: no cleanup runs in the parent
    parent.wait()

    assert all_gone(pids, seconds=10), [pid for pid in pids if alive(pid)]
