"""The execution input and --items files, built once for local and remote runs (burstmap.client.job_input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from burstmap.client import aws_job, job_input, local_job
from burstmap.client.job_input import (
    InvalidArgument,
    InvalidArgumentType,
    InvalidItemsFile,
    JobInput,
    JobInputError,
    build_execution_input,
    items_as_json_lines,
    needs_staging,
    read_items_file,
    stage_items,
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_local_and_remote_runs_share_one_input_and_one_staging() -> None:
    """Both backends take the same JobInput and stage a large list with the same function."""
    assert aws_job.JobInput is local_job.JobInput is JobInput
    assert aws_job.stage_items is local_job.stage_items is stage_items
    assert aws_job.needs_staging is local_job.needs_staging is needs_staging
    assert local_job.JobInputError is JobInputError


def test_a_job_input_remembers_its_item_source(tmp_path: Path) -> None:
    items = _write(tmp_path / "items.json", "[3, 4]")

    assert JobInput.of(size=2) == JobInput({"size": 2}, "size")
    assert JobInput.of(items_file=items, parameters={"k": 1}) == JobInput(
        {"items": [3, 4], "parameters": {"k": 1}}, "items_file"
    )
    assert JobInput.of(items_s3="s3://b/k.jsonl").source == "items_s3"
    # No item source: a job over S3 objects, whose input is its parameters alone.
    over_objects = JobInput.of(parameters='{"k": 1}')
    assert over_objects == JobInput({"parameters": {"k": 1}}, None) and over_objects.over_objects
    assert JobInput.of() == JobInput({}, None)
    with pytest.raises(JobInputError, match=r"exactly one of size, items or items_s3 \(got size, items\)"):
        JobInput.of(size=1, items=[1])
    with pytest.raises(JobInputError, match=r"^parameters='\[1\]': must be a JSON object"):
        JobInput.of(parameters="[1]")


def test_parameters_are_named_as_the_api_and_the_command_line_caller_typed_them() -> None:
    with pytest.raises(InvalidArgument) as not_json:
        job_input.parse_parameters("{oops")
    assert str(not_json.value).startswith("parameters='{oops': not JSON (Expecting")
    assert not_json.value.for_option("--parameters").startswith("--parameters '{oops': not JSON (Expecting")
    with pytest.raises(InvalidArgument) as not_object:
        job_input.parse_parameters("[1]")
    assert not_object.value.for_option("--parameters") == (
        "--parameters '[1]': must be a JSON object, like '{\"scale\": 2}', got a JSON array"
    )


def test_staging_uploads_json_lines_under_the_items_prefix_and_names_them() -> None:
    uploaded: list[dict] = []
    staged = stage_items(
        {"items": [1, {"a": 2}], "parameters": {"p": 1}}, "bkt", lambda **kw: uploaded.append(kw)
    )

    [upload] = uploaded
    assert upload["Bucket"] == "bkt" and upload["Body"] == b'1\n{"a":2}\n'
    assert upload["Key"].startswith("items/") and upload["Key"].endswith(".jsonl")
    assert staged == {"parameters": {"p": 1}, "items_s3": f"s3://bkt/{upload['Key']}"}


def test_input_is_built_per_contract(tmp_path: Path) -> None:
    items = _write(tmp_path / "items.jsonl", '{"a": 1}\n\n2\n')

    assert build_execution_input(size=-5) == {"size": -5}  # validated by the start Lambda, like on AWS
    assert build_execution_input(items=[1, "a"], parameters={"k": 1}) == {
        "items": [1, "a"],
        "parameters": {"k": 1},
    }
    assert build_execution_input(items=[1, "x"], parameters='{"k": 1}') == {
        "items": [1, "x"],
        "parameters": {"k": 1},
    }
    assert build_execution_input(items_file=items, parameters={}) == {
        "items": [{"a": 1}, 2],
        "parameters": {},
    }
    assert build_execution_input(items_s3="s3://b/k.csv") == {"items_s3": "s3://b/k.csv"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 3, "items": [1]}, r"exactly one of size, items or items_s3 \(got size, items\)"),
        ({}, "got none"),
        ({"size": 1, "parameters": "[1]"}, "parameters='\\[1\\]': must be a JSON object.*got a JSON array"),
        ({"size": 1, "parameters": "{oops"}, "parameters='{oops': not JSON"),
    ],
)
def test_an_input_that_cannot_be_built_is_refused(kwargs, message) -> None:
    with pytest.raises(JobInputError, match=message):
        build_execution_input(**kwargs)


@pytest.mark.parametrize(
    ("name", "text", "items"),
    [
        ("items.json", '[1, {"a": 2}, "x"]', [1, {"a": 2}, "x"]),
        ("items.jsonl", '1\n{"a": 2}\n\n"x"\n', [1, {"a": 2}, "x"]),
        ("items.jsonl", "[1, 2]\n[3]\n", [[1, 2], [3]]),  # JSON Lines whose items are arrays
        ("items.jsonl", "[1, 2]\n", [[1, 2]]),  # a .jsonl file is JSON Lines even when it is one array
        ("items.txt", "[1,\n 2]\n", [1, 2]),  # no telling extension: the content decides
        ("items.txt", '{"a": 1}\n{"a": 2}\n', [{"a": 1}, {"a": 2}]),
        ("items", '"only"\n', ["only"]),
        ("empty.jsonl", "", []),
        # Nothing in the file is zero items whatever the extension, like [] and --size 0.
        ("empty.json", "", []),
        ("blank.json", "\n  \n", []),
        ("empty", "", []),
    ],
)
def test_items_files_are_json_arrays_or_json_lines(tmp_path: Path, name: str, text: str, items) -> None:
    assert read_items_file(_write(tmp_path / name, text)) == items


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("o.json", '{"a": 1}', r"o\.json': holds a JSON object, not an array of items"),
        ("bad.json", "[1, 2", r"bad\.json': not a JSON array \(.* line 1 column 6\)"),
        ("bad.txt", "[1, 2\n3]\n[", r"bad\.txt': not a JSON array"),
        ("items.jsonl", "1\n2\n{oops\n", r"items\.jsonl': line 3 is not JSON"),
        ("items.txt", "1\nnope\n", r"items\.txt': line 2 is not JSON"),
        ("escape.json", '[1, "\\udcff"]', r"escape\.json': items\[1\] holds the lone surrogate '\\udcff'"),
    ],
)
def test_a_bad_items_file_names_the_file_and_the_fix(tmp_path: Path, name: str, text: str, message) -> None:
    with pytest.raises(InvalidItemsFile, match=message):
        read_items_file(_write(tmp_path / name, text))


def test_an_unreadable_items_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidItemsFile, match=r"^items_file='.*missing\.json': cannot be read \(No such file"
    ):
        read_items_file(tmp_path / "missing.json")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidItemsFile, match=r"binary\.json': cannot be read \(.*utf-8"):
        read_items_file(binary)
    with pytest.raises(InvalidItemsFile) as folder:
        read_items_file(tmp_path)
    assert folder.value.for_option("--items") == f"--items {tmp_path}: cannot be read (Is a directory)"


def test_only_large_item_lists_are_staged_and_as_json_lines() -> None:
    small = {"items": list(range(10))}
    large = {"items": ["x" * 1000 for _ in range(210)]}  # over 200 KiB
    assert not needs_staging(small)
    assert needs_staging(large)
    assert not needs_staging({"size": 10**8, "parameters": {"p": "x" * 1000}})
    assert len(json.dumps(large).encode()) > job_input.MAX_INLINE_INPUT_BYTES
    body = items_as_json_lines([1, {"a": [2, 3]}, "x"])
    assert body == b'1\n{"a":[2,3]}\n"x"\n'


# ------------------------------------------------------------------------------------------ bad API input
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"items": "abc"},
            "items='abc': must be a list of items (JSON values), got str; one item is ['abc']",
        ),
        ({"items": {"a": 1}}, "items={'a': 1}: must be a list of items (JSON values), got dict; one item is"),
        ({"items": b"ab"}, "items=b'ab': must be a list of items (JSON values), got bytes; one item is"),
        ({"items": (i for i in range(2))}, "items=<generator object"),
        ({"items": [{1, 2}]}, "items=[{1, 2}]: items[0] is a set, not a JSON value"),
        ({"items": [1, float("nan")]}, "items=[1, nan]: items[1] is nan, not a JSON number"),
        (
            {"items": ["\udcff"]},
            "items=['\\udcff']: items[0] holds the lone surrogate '\\udcff', which is not",
        ),
        ({"size": "5"}, "size='5': must be a whole number of items (an int), got str"),
        ({"size": 5.0}, "size=5.0: must be a whole number of items (an int), got float"),
        ({"size": True}, "size=True: must be a whole number of items (an int), got bool"),
        ({"items_s3": 3}, "items_s3=3: must be an S3 URI string"),
        ({"items_file": 3}, "items_file=3: must be a path (str or pathlib.Path), got int"),
        (
            {"size": 1, "parameters": [1]},
            "parameters=[1]: must be a JSON object, like '{\"scale\": 2}', got list",
        ),
        (
            {"size": 1, "parameters": {"x": {1}}},
            "parameters={'x': {1}}: parameters[\"x\"] is a set, not a JSON",
        ),
        ({"size": 1, "parameters": {"x": "\udcff"}}, "parameters[\"x\"] holds the lone surrogate '\\udcff'"),
    ],
)
def test_a_python_value_that_is_not_an_input_is_a_type_error_naming_the_argument(kwargs, message) -> None:
    with pytest.raises(InvalidArgumentType) as refused:
        JobInput.of(**kwargs)
    assert isinstance(refused.value, TypeError) and isinstance(refused.value, JobInputError)
    assert message in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1


def test_large_parameters_are_refused_as_parameters_not_as_a_large_input() -> None:
    """The PARAMETERS_MAX_BYTES contract (64 KiB), before the input's own 256 KiB limit could speak."""
    with pytest.raises(InvalidArgument) as refused:
        JobInput.of(size=3, parameters={"x": "a" * 1_000_000})
    message = str(refused.value)
    assert message.startswith("parameters={'x': 'aaaa")
    assert "takes 1000009 bytes of JSON, more than 65536 (they travel in every child's input)" in message
    assert len(message) < 300
    assert JobInput.of(size=3, parameters={"x": "a" * 65_000}).source == "size"  # under the limit


def test_a_lone_surrogate_typed_on_the_command_line_is_shown_escaped(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates: the message must still print."""
    with pytest.raises(InvalidArgument) as refused:
        job_input.parse_parameters('{"x": "\udcff"}')
    line = refused.value.for_option("--parameters")
    assert line.startswith('--parameters \'{"x": "\\udcff"}\': parameters["x"] holds the lone surrogate')
    line.encode("utf-8")  # printable
