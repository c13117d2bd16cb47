"""README, "Use it in your own app", run as written: the commands and files are taken from README.md itself.

Each step of the section is a code block after a marker line:

- ``<!-- own-app-test -->``: shell commands, run in order in one bash session (so ``cd`` carries over);
- ``<!-- own-app-test file=PATH -->``: the block is written to PATH in the app's folder;
- ``<!-- own-app-test skip: why -->``: shown to readers, run by no test (it needs a real AWS account or is
  the reader's own setting). The README test that runs every other code block skips all three.

The run differs from a reader's in three declared ways: ``BURSTMAP`` is this checkout; ``npx cdk deploy``
becomes ``npx cdk synth`` (there is no AWS account here; synth still bundles the requirements with pip);
and to keep the test to about a minute, pip installs burstmap without its dependencies (``PIP_NO_DEPS``),
which the new venv reads from this checkout's venv through PYTHONPATH. burstmap itself is a real
(non-editable) install in the new venv, the CDK CLI a real npm install of the pinned version.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
README = PROJECT_DIR / "README.md"
MARKER = re.compile(r"^<!-- own-app-test(?P<rest>.*)-->$")


@dataclass(frozen=True)
class Step:
    kind: str  # "run", "file" or "skip"
    text: str
    path: str | None = None


def own_app_steps(readme: str) -> list[Step]:
    """The marked blocks of the README, in order."""
    steps: list[Step] = []
    lines = readme.splitlines()
    for number, line in enumerate(lines):
        marker = MARKER.match(line.strip())
        if marker is None:
            continue
        rest = marker.group("rest").strip()
        opening = next(i for i in range(number + 1, len(lines)) if lines[i].strip())
        assert lines[opening].startswith("```"), (
            f"README line {number + 1}: a marker must precede a code block"
        )
        closing = next(i for i in range(opening + 1, len(lines)) if lines[i].startswith("```"))
        text = "\n".join(lines[opening + 1 : closing]) + "\n"
        if rest.startswith("file="):
            steps.append(Step("file", text, rest.removeprefix("file=").strip()))
        elif rest.startswith("skip"):
            steps.append(Step("skip", text))
        else:
            assert rest == "", f"README line {number + 1}: unknown marker {line!r}"
            steps.append(Step("run", text))
    return steps


STEPS = own_app_steps(README.read_text())
PINNED_CDK_CLI = json.loads((PROJECT_DIR / "package.json").read_text())["devDependencies"]["aws-cdk"]


def test_the_section_walks_every_step_a_reader_needs() -> None:
    commands = "".join(step.text for step in STEPS if step.kind == "run")
    files = [step.path for step in STEPS if step.kind == "file"]
    assert '.venv/bin/pip install "$BURSTMAP"' in commands
    assert f"npm install --save-dev aws-cdk@{PINNED_CDK_CLI}" in commands  # the version burstmap pins
    assert {"cdk.json", "app.py", "tests/test_jobs.py"} <= set(files)
    assert any(path.endswith("requirements.txt") for path in files)
    assert "--state-machine MyJobs/Squares" in commands and "--state-machine MyJobs/Digits" in commands
    assert "-m pytest" in commands and "npx cdk deploy" in commands


def script(steps: list[Step]) -> str:
    """One bash script doing what the section says (npx cdk deploy -> npx cdk synth)."""
    parts = ["set -euo pipefail"]
    for index, step in enumerate(steps):
        if step.kind == "run":
            parts.append(f"echo '>>> step {index}' >&2")
            parts.append(step.text.replace("npx cdk deploy", "npx cdk synth --quiet"))
        elif step.kind == "file":
            delimiter = f"OWN_APP_FILE_{index}"
            assert delimiter not in step.text
            parts.append(f"mkdir -p \"$(dirname '{step.path}')\"")
            parts.append(f"cat > '{step.path}' <<'{delimiter}'\n{step.text}{delimiter}")
    return "\n".join(parts) + "\n"


@pytest.mark.slow
def test_the_own_app_section_runs_as_written(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python3").symlink_to(sys.executable)  # the interpreter this checkout's venv is built on
    environment = {
        **os.environ,
        "BURSTMAP": str(PROJECT_DIR),
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "PIP_NO_DEPS": "1",
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", script(STEPS)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, f"after {seconds:.0f} s:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"

    app = tmp_path / "my-jobs"
    where = subprocess.run(
        [str(app / ".venv" / "bin" / "python"), "-c", "import burstmap, aws_cdk; print(burstmap.__file__)"],
        cwd=app,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(app / ".venv"), where  # the app's own install, not this checkout
    outputs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    squares, digits, digits_batched = outputs[:3]
    assert squares["total_sum"] == str(sum(i * i for i in range(1000)))
    assert digits["succeeded"] == 100 and digits["stats"]["invocations"] == 2 + 100
    assert digits_batched["total_sum"] != digits["total_sum"]  # 30 digits, not 10
    assert digits_batched["stats"]["invocations"] == 2 + 10
    assert "2 passed" in done.stdout
    assert "burstmap: synthesized " in done.stderr and "burstmap: reused the assembly in " in done.stderr
    template = json.loads((app / "cdk.out" / "MyJobs.template.json").read_text())
    bundled = [
        resource["Metadata"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and "burstmap:dependencies" in resource.get("Metadata", {})
    ]
    (digits_function,) = bundled
    assert (app / "cdk.out" / digits_function["aws:asset:path"] / "mpmath" / "__init__.py").is_file()
    print(f"own-app section: {seconds:.0f} s")  # noqa: T201 - the measured cost, shown with -s
