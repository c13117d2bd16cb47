"""--output-dir: checked and locked before the run, replaced whole at its end (client.output_dir)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from burstmap.cli import app
from burstmap.client import local_job
from burstmap.client.output_dir import MARKER, OutputDir, OutputDirBusy, OutputDirError
from burstmap.client.results import DownloadedResults


def write_run(output: OutputDir, *names: str, execution: str = "arn:run") -> DownloadedResults:
    """What a run does at its end: its files into the staging folder, then commit."""
    staging = output.staging()
    for name in names:
        (staging / name).write_text(name)
    manifest = staging / "manifest.json"
    manifest.write_text("{}")
    files = [staging / name for name in names]
    return output.commit(
        DownloadedResults(directory=staging, manifest=manifest, result_files=files, manifests=[manifest]),
        execution=execution,
    )


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_new_folder_receives_the_files_and_the_marker(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    with OutputDir.claim(out) as output:
        written = write_run(output, "SUCCEEDED_0.json", execution="arn:first")
    assert listing(out) == [MARKER, "SUCCEEDED_0.json", "manifest.json"]
    assert written.directory == out and written.manifest == out / "manifest.json"
    assert written.result_files == [out / "SUCCEEDED_0.json"]
    assert json.loads((out / MARKER).read_text())["execution"] == "arn:first"
    assert listing(out.parent) == ["out"]  # no lock, staging or old folder left beside it
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_rerun_replaces_the_earlier_files_as_a_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputDir.claim(out) as output:
        write_run(output, "SUCCEEDED_0.json", "FAILED_0.json", "PENDING_0.json")
    with OutputDir.claim(out) as output:
        write_run(output, "SUCCEEDED_0.json")
    assert listing(out) == [MARKER, "SUCCEEDED_0.json", "manifest.json"]
    assert listing(tmp_path) == ["out"]


def test_a_run_that_ends_without_committing_leaves_the_earlier_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputDir.claim(out) as output:
        write_run(output, "FAILED_0.json")
    with OutputDir.claim(out) as output:
        (output.staging() / "half_written.json").write_text("[")
        # interrupted here: no commit
    assert listing(out) == [MARKER, "FAILED_0.json", "manifest.json"]
    assert listing(tmp_path) == ["out"]


def test_a_run_without_results_leaves_an_empty_failed_items_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with OutputDir.claim(out) as output:
        write_run(output, "SUCCEEDED_0.json")
    with OutputDir.claim(out) as output:
        written = output.commit(None, execution="arn:failed-at-start")
    assert listing(out) == [MARKER, "failed_items.json"]
    assert json.loads((out / "failed_items.json").read_text()) == []
    assert written.summary() == {
        "directory": str(out),
        "manifest": None,
        "result_files": [],
        "failed_items": str(out / "failed_items.json"),
        "failed_count": 0,
    }


def test_an_empty_folder_is_taken_and_a_folder_of_other_files_is_refused_untouched(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with OutputDir.claim(empty) as output:
        write_run(output, "SUCCEEDED_0.json")
    assert listing(empty) == [MARKER, "SUCCEEDED_0.json", "manifest.json"]

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputDirError) as refused:
        OutputDir.claim(mine)
    assert refused.value.for_option("--output-dir") == (
        f"--output-dir {mine}: holds files burstmap did not write (no {MARKER} in it): give a new or empty "
        "folder, or one an earlier burstmap run wrote (nothing in this one is deleted)"
    )
    assert listing(mine) == ["thesis.tex"]
    assert not any(name.startswith(".mine.") for name in listing(tmp_path))  # lock released


def test_a_file_and_an_unwritable_place_are_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "results.json"
    a_file.write_text("{}")
    with pytest.raises(OutputDirError, match=r"results\.json': is a file, not a folder"):
        OutputDir.claim(a_file)
    with pytest.raises(OutputDirError, match=r"^output_dir='/proc/burstmap-out': cannot be written \("):
        OutputDir.claim("/proc/burstmap-out")  # a file system nobody can create files in, root included
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputDirError, match="cannot be written"):
            OutputDir.claim(locked / "out")


def test_a_symlinked_folder_is_replaced_behind_its_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with OutputDir.claim(link) as output:
        write_run(output, "SUCCEEDED_0.json")
    assert link.is_symlink() and listing(real) == [MARKER, "SUCCEEDED_0.json", "manifest.json"]


def test_one_run_at_a_time_writes_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = OutputDir.claim(out)
    try:
        with pytest.raises(OutputDirBusy) as busy:
            OutputDir.claim(out)
        assert busy.value.for_option("--output-dir") == (
            f"--output-dir {out}: another burstmap run (process {os.getpid()}) is writing its results "
            "there: wait for it to end, or give another folder"
        )
        with OutputDir.claim(tmp_path / "other"):  # another folder is free
            pass
    finally:
        first.release()
    with OutputDir.claim(out):  # free again
        pass


HOLDER = """
import sys, time
from burstmap.client.output_dir import OutputDir
output = OutputDir.claim(sys.argv[1])
(output.staging() / "half.json").write_text("[")
print("claimed", flush=True)
time.sleep(60)
"""


def test_a_killed_run_frees_the_folder_and_its_leftovers_go(tmp_path: Path) -> None:
    """The lock is the kernel's: it goes with the process, even on SIGKILL; the next run clears the
    staging folder the killed one left."""
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "claimed\n"
        with pytest.raises(OutputDirBusy, match=rf"another burstmap run \(process {holder.pid}\)"):
            OutputDir.claim(out)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert any(".out.burstmap-partial-" in name for name in listing(tmp_path))
    with OutputDir.claim(out) as output:
        write_run(output, "SUCCEEDED_0.json")
    assert listing(tmp_path) == ["out"]


# ------------------------------------------------------------------------------------------ the CLI
@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the job was started: --output-dir was not checked first")

    monkeypatch.setattr(local_job, "prepare_app", refuse)


@pytest.mark.usefixtures("nothing_runs")
@pytest.mark.parametrize("where", ["file", "foreign", "unwritable"])
def test_a_bad_output_dir_exits_2_at_once_before_anything_runs(where: str, tmp_path: Path) -> None:
    path = {"file": tmp_path / "f.json", "foreign": tmp_path, "unwritable": Path("/proc/burstmap-out")}[where]
    (tmp_path / "f.json").write_text("{}")
    started = time.perf_counter()
    result = CliRunner().invoke(
        app, ["run", "--size", "3", "--app-dir", str(tmp_path), "--output-dir", str(path)]
    )
    assert time.perf_counter() - started < 1.0
    assert result.exit_code == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"burstmap: --output-dir {path}: ")


@pytest.mark.usefixtures("nothing_runs")
def test_an_output_dir_another_run_writes_is_refused(tmp_path: Path) -> None:
    with OutputDir.claim(tmp_path / "out"):
        result = CliRunner().invoke(
            app, ["run", "--size", "3", "--app-dir", str(tmp_path), "--output-dir", str(tmp_path / "out")]
        )
    assert result.exit_code == 2
    assert "another burstmap run (process" in result.stderr


def test_no_wait_has_no_end_to_write_results_at(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--size", "3", "--stack", "s", "--no-wait", "--output-dir", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("burstmap: --output-dir needs the job's end: drop --no-wait")


def test_a_folder_name_with_glob_characters_is_handled_literally(tmp_path: Path) -> None:
    out = tmp_path / "run[1]*"
    (tmp_path / "run1x").mkdir()  # what "run[1]*" would match as a pattern: never touched
    for _ in range(2):
        with OutputDir.claim(out) as output:
            write_run(output, "SUCCEEDED_0.json")
    assert listing(tmp_path) == ["run1x", "run[1]*"]
