"""Every fenced code block of README.md, run as a reader would run it (read from README.md itself).

* ``python``: the block as a script, in a fresh folder that holds what the examples name
  (``compute/handler.py``, ``items.jsonl``), with CDK bundling skipped (no Docker here);
* ``bash``: each command: ``burstmap`` against a copy of the example app (a trailing ``# ... exit code N``
  comment is the exit code it must end with, else 0), ``pytest`` collected in this checkout, ``ruff`` run,
  ``./scripts/setup`` taken as done (this test runs in what it set up); any other command fails the test;
* ``json``: parsed, as one document or one document a line.

A block that cannot run here has a comment on the line right before it saying why:
``<!-- readme-test: skip (needs an AWS account) -->``; a skip without a reason fails. The blocks of a
section marked ``<!-- own-app-test -->`` are run by their own test. Any other block, a new one included,
is run: a block of a language this test cannot run fails until it is marked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
README = PROJECT_DIR / "README.md"
VENV_BIN = Path(sys.executable).parent
SKIP = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->$")
DIRECTIVE = re.compile(r"^<!--\s*readme-test:")
ELSEWHERE = re.compile(r"^<!--\s*own-app-test\b")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<language>[\w+-]*)")
HEADING = re.compile(r"^(?P<level>#{1,6})\s")
EXPECTED_EXIT = re.compile(r"#.*\bexit code (?P<code>\d+)")
COMMAND_SECONDS = 600

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Block:
    line: int
    """Of the opening fence, counting from 1."""
    language: str
    code: str
    skip: str | None = None
    """Why it cannot run here (its marker's reason)."""
    marker_problem: str | None = None
    elsewhere: bool = False
    """In a section another test runs (``<!-- own-app-test -->``)."""

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.language or 'text'}"


def read_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, each with the marker on the line before it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    level = 0
    elsewhere_level: int | None = None
    number = 0
    while number < len(lines):
        line = lines[number]
        heading = HEADING.match(line)
        if heading:
            level = len(heading.group("level"))
            if elsewhere_level is not None and level <= elsewhere_level:
                elsewhere_level = None
        if ELSEWHERE.match(line.strip()):
            elsewhere_level = level
        opening = FENCE.match(line)
        if not opening:
            number += 1
            continue
        fence = opening.group("fence")
        end = number + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        previous = next((lines[i].strip() for i in range(number - 1, -1, -1) if lines[i].strip()), "")
        skip = SKIP.match(previous)
        problem = None
        if DIRECTIVE.match(previous) and not (skip and skip.group("reason").strip()):
            problem = f"line {number}: {previous!r}: write <!-- readme-test: skip (the reason) -->"
        blocks.append(
            Block(
                line=number + 1,
                language=opening.group("language").lower(),
                code="\n".join(lines[number + 1 : end]) + "\n",
                skip=(skip.group("reason").strip() or None) if skip else None,
                marker_problem=problem,
                elsewhere=elsewhere_level is not None,
            )
        )
        number = end + 1
    return blocks


BLOCKS = read_blocks(README.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------ the parser
def test_markers_skip_with_a_reason_and_sections_run_elsewhere() -> None:
    text = "\n".join(
        [
            "# Title",
            "<!-- readme-test: skip (needs AWS) -->",
            "```bash",
            "aws s3 ls",
            "```",
            "## Yours",
            "<!-- own-app-test -->",
            "```python",
            "x = 1",
            "```",
            "### Deeper",
            "```bash",
            "burstmap run",
            "```",
            "## Next",
            "<!-- readme-test: skip () -->",
            "~~~json",
            "{}",
            "~~~",
        ]
    )
    first, second, third, fourth = read_blocks(text)
    assert (first.language, first.skip, first.code, first.elsewhere) == (
        "bash",
        "needs AWS",
        "aws s3 ls\n",
        False,
    )
    assert (second.elsewhere, third.elsewhere, fourth.elsewhere) == (True, True, False)
    assert fourth.skip is None and fourth.marker_problem is not None  # a skip needs its reason


def test_the_readme_has_blocks_to_run_and_every_skip_says_why() -> None:
    assert sum(1 for block in BLOCKS if block.skip is None and not block.elsewhere) >= 8
    assert [block.marker_problem for block in BLOCKS if block.marker_problem] == []


# ------------------------------------------------------------------------------------------ running
@pytest.fixture(scope="module")
def example_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example app (what `burstmap run` in a checkout runs), and the items file it names."""
    copy = tmp_path_factory.mktemp("example_app")
    for name in ("app.py", "cdk.json"):
        shutil.copy2(PROJECT_DIR / name, copy / name)
    for folder in ("infra", "lambdas", "tests/fixtures"):  # the README's examples name fixture apps too
        shutil.copytree(
            PROJECT_DIR / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__", "cdk.out")
        )
    (copy / "items.jsonl").write_text("1\n2\n3\n")
    return copy


README_COMPUTE_HANDLER = next(
    block.code
    for block in BLOCKS
    if block.language == "python" and "handler = compute_handler(" in block.code
)
"""The README's own compute handler (compute/handler.py in its "Use the construct" example)."""


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A fresh folder with what the Python examples name: a compute handler folder and an items file."""
    (tmp_path / "compute").mkdir()
    (tmp_path / "compute" / "handler.py").write_text(README_COMPUTE_HANDLER)
    (tmp_path / "items.jsonl").write_text("1\n2\n3\n")
    return tmp_path


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_readme_block(block: Block, example_app: Path, sandbox: Path) -> None:
    if block.elsewhere:
        pytest.skip("run by the test of its section (<!-- own-app-test -->)")
    if block.skip is not None:
        pytest.skip(block.skip)
    assert block.marker_problem is None, block.marker_problem
    if block.language == "python":
        run_python(block, sandbox)
    elif block.language in ("bash", "sh", "shell", "console"):
        for command, expected in commands(block.code):
            run_command(block, command, expected, example_app)
    elif block.language == "json":
        parse_json(block)
    else:
        pytest.fail(
            f"README.md line {block.line}: no way to run a {block.language or 'plain'} block here; run it "
            "(python, bash, json) or mark it <!-- readme-test: skip (the reason) -->"
        )


def run_python(block: Block, sandbox: Path) -> None:
    script = sandbox / "readme_block.py"
    script.write_text(block.code, encoding="utf-8")
    environment = {
        **os.environ,
        "CDK_OUTDIR": str(sandbox / "cdk.out"),
        "CDK_CONTEXT_JSON": json.dumps({"aws:cdk:bundling-stacks": []}),  # PythonFunction bundles in Docker
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=sandbox,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
    )
    assert done.returncode == 0, f"README.md line {block.line}:\n{done.stdout}\n{done.stderr}"


def commands(code: str) -> list[tuple[list[str], int]]:
    """Each command of a shell block (``a && b`` is two) and the exit code its line's comment names."""
    found: list[tuple[list[str], int]] = []
    for line in code.replace("\\\n", " ").splitlines():
        expected = EXPECTED_EXIT.search(line)
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            command, words = words[:cut], words[cut + 1 :]
            last = not words
            found.append((command, int(expected.group("code")) if expected and last else 0))
    return found


def run_command(block: Block, command: list[str], expected: int, example_app: Path) -> None:
    where = f"README.md line {block.line}: {shlex.join(command)}"
    program = Path(command[0]).name
    if command[0] == "./scripts/setup":
        assert (PROJECT_DIR / "scripts" / "setup").is_file() and VENV_BIN.is_dir(), where
        return  # this test runs in the environment it sets up
    if program == "burstmap":
        done = run([str(VENV_BIN / "burstmap"), *command[1:]], example_app)
        assert done.returncode == expected, f"{where}: exit {done.returncode}\n{done.stderr}"
        if expected == 0 and command[1] == "run":
            [line] = done.stdout.splitlines()
            assert isinstance(json.loads(line), dict), where
        if expected == 2:
            assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr, where
        return
    if program == "pytest":  # the suite this test belongs to: collected, not run again
        done = run([str(VENV_BIN / "pytest"), *command[1:], "--collect-only", "-q", "-p", "no:cacheprovider"])
        assert done.returncode == 0, f"{where}\n{done.stdout[-2000:]}\n{done.stderr}"
        return
    if program == "ruff":
        done = run([str(VENV_BIN / "ruff"), *command[1:]])
        assert done.returncode == 0, f"{where}\n{done.stdout}"
        return
    pytest.fail(f"{where}: cannot run {program} here: mark the block <!-- readme-test: skip (the reason) -->")


def run(arguments: list[str], cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(arguments, cwd=cwd, capture_output=True, text=True, timeout=COMMAND_SECONDS)


def parse_json(block: Block) -> None:
    try:
        json.loads(block.code)
    except json.JSONDecodeError:
        for number, line in enumerate(block.code.splitlines(), start=block.line + 1):
            if line.strip():
                try:
                    json.loads(line)
                except json.JSONDecodeError as exc:
                    pytest.fail(f"README.md line {number} is not JSON: {exc}")
