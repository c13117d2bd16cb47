"""Every bad input answers with one line naming what the user typed, before anything runs.

The command line names its option (``--retry-time-scale inf: ...``, exit 2); the Python API names its
argument (``retry_time_scale=inf: ...``) with a ValueError subclass (a TypeError subclass too for a wrong
type). Nothing is synthesized, started or computed: the app directory of these runs is empty, and the
step that would synthesize it fails the test if it is reached.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from burstmap.cli import app
from burstmap.client import local_job, run_local
from burstmap.client.job_input import InvalidArgument, InvalidArgumentType, JobInputError


@pytest.fixture(autouse=True)
def nothing_is_synthesized(monkeypatch: pytest.MonkeyPatch) -> None:
    def synthesize(*args: object, **kwargs: object) -> None:
        raise AssertionError("the app was synthesized: the bad input was not refused first")

    monkeypatch.setattr(local_job, "prepare_app", synthesize)


def refused(args: list[str], tmp_path: Path) -> str:
    """`burstmap run ARGS` in an empty app directory: exit 2 and its one stderr line."""
    result = CliRunner().invoke(app, ["run", "--app-dir", str(tmp_path), *args])
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--retry-time-scale", "inf"], "--retry-time-scale inf: must be a finite number, 0 or more"),
        (["--retry-time-scale", "nan"], "--retry-time-scale nan: must be a finite number, 0 or more"),
        (["--retry-time-scale", "-1"], "--retry-time-scale -1.0: must be a finite number, 0 or more"),
        (["--inject-throttle", "nan"], "--inject-throttle nan: must be a fraction of invocations, 0 to 1"),
        (["--inject-throttle", "1.5"], "--inject-throttle 1.5: must be a fraction of invocations, 0 to 1"),
        (["--workers", "0"], "--workers 0: must be 1 or more"),
        (["--batch-size", "0"], "--batch-size 0: must be 1 or more"),
        (["--max-concurrency", "-1"], "--max-concurrency -1: must be 0 or more (0 is no limit)"),
        (
            ["--endpoint-url", "localhost:9000"],
            "--endpoint-url localhost:9000: must be an http:// or https://",
        ),
        (
            ["--parameters", "[1]"],
            "--parameters '[1]': must be a JSON object, like '{\"scale\": 2}', got a JSON",
        ),
        (["--parameters", "{oops"], "--parameters '{oops': not JSON (Expecting property name"),
        (["--parameters", '{"x": "\udcff"}'], '--parameters \'{"x": "\\udcff"}\': parameters["x"] holds'),
    ],
)
def test_a_bad_option_is_one_line_naming_the_option(args: list[str], line: str, tmp_path: Path) -> None:
    assert refused(["--size", "3", *args], tmp_path).startswith(f"burstmap: {line}")


def test_a_large_parameters_object_is_refused_as_parameters(tmp_path: Path) -> None:
    line = refused(["--size", "3", "--parameters", '{"x": "' + "a" * 100_000 + '"}'], tmp_path)
    assert line.startswith('burstmap: --parameters \'{"x": "aaaa')
    assert line.endswith(
        ": takes 100009 bytes of JSON, more than 65536 (they travel in every child's input): put large "
        "data in S3 and pass its URI in the parameters"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[1, "\\udcff"]', "items[1] holds the lone surrogate '\\udcff', which is not valid Unicode"),
        ("[1, 2", "not a JSON array (Expecting ',' delimiter at line 1 column 6)"),
        ('{"a": 1}', "holds a JSON object, not an array of items"),
    ],
)
def test_a_bad_items_file_is_one_line_naming_the_option_and_the_file(
    text: str, problem: str, tmp_path: Path
) -> None:
    items = tmp_path / "items.json"
    items.write_text(text)
    assert refused(["--items", str(items)], tmp_path).startswith(f"burstmap: --items {items}: {problem}")


def test_an_items_file_that_is_a_folder_or_missing(tmp_path: Path) -> None:
    assert refused(["--items", str(tmp_path)], tmp_path) == (
        f"burstmap: --items {tmp_path}: cannot be read (Is a directory)"
    )
    missing = tmp_path / "missing file.jsonl"
    assert refused(["--items", str(missing)], tmp_path) == (
        f"burstmap: --items '{missing}': cannot be read (No such file or directory)"
    )


def test_an_endpoint_where_no_server_answers(tmp_path: Path) -> None:
    line = refused(["--size", "3", "--endpoint-url", "http://127.0.0.1:9"], tmp_path)
    assert line.startswith("burstmap: --endpoint-url http://127.0.0.1:9: no S3 server answers there (")
    assert line.endswith("): start it, or check the address")


@pytest.mark.usefixtures("no_credentials")
def test_an_endpoint_without_credentials(tmp_path: Path) -> None:
    assert refused(["--size", "3", "--endpoint-url", "http://127.0.0.1:9"], tmp_path) == (
        "burstmap: --endpoint-url http://127.0.0.1:9: no AWS credentials to sign requests to it: export "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) with the server's keys"
    )


# ------------------------------------------------------------------------------------------ Python API
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"items": "abc"}, InvalidArgumentType, "items='abc': must be a list of items"),
        ({"items": {"a": 1}}, InvalidArgumentType, "items={'a': 1}: must be a list of items"),
        ({"items": b"abc"}, InvalidArgumentType, "items=b'abc': must be a list of items"),
        ({"items": [{1, 2}]}, InvalidArgumentType, "items=[{1, 2}]: items[0] is a set, not a JSON value"),
        ({"size": 3, "parameters": {"x": "a" * 1_000_000}}, InvalidArgument, "parameters={'x': 'aaaa"),
        ({"size": 3, "retry_time_scale": float("inf")}, InvalidArgument, "retry_time_scale=inf: must be"),
        ({"size": 3, "retry_time_scale": "0"}, InvalidArgumentType, "retry_time_scale='0': must be a finite"),
        ({"size": 3, "workers": 2.5}, InvalidArgumentType, "workers=2.5: must be a whole number (an int)"),
        ({"size": 3, "app_dir": 3}, InvalidArgumentType, "app_dir=3: must be a path"),
        (
            {"size": 3, "endpoint_url": "http://127.0.0.1:9"},
            InvalidArgument,
            "endpoint_url='http://127.0.0.1:9'",
        ),
    ],
)
def test_run_local_names_the_argument_with_a_typed_error(kwargs, error, message, tmp_path: Path) -> None:
    with pytest.raises(error) as raised:
        run_local(app_dir=kwargs.pop("app_dir", tmp_path), **kwargs)
    assert isinstance(raised.value, JobInputError)  # a ValueError
    assert isinstance(raised.value, TypeError) == (error is InvalidArgumentType)
    assert str(raised.value).startswith(message)
    assert len(str(raised.value).splitlines()) == 1


def test_an_app_dir_without_an_app(tmp_path: Path) -> None:
    assert refused(["--size", "3"], tmp_path) == (
        f"burstmap: --app-dir {tmp_path}: holds no CDK app (neither app.py nor cdk.json): give the folder "
        "of a CDK app (app.py or cdk.json)"
    )
    a_file = tmp_path / "app.py"
    a_file.write_text("")
    result = CliRunner().invoke(app, ["run", "--size", "3", "--app-dir", str(a_file)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"burstmap: --app-dir {a_file}: is not a folder: give the folder of")


def test_no_app_in_the_current_directory_names_both_ways_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--size", "3"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"burstmap: the current directory {tmp_path} holds no CDK app")
    with pytest.raises(JobInputError, match="run_local\\(app_dir=...\\)"):
        run_local(size=3)
