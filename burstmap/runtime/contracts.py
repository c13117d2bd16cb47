"""The wire shapes between the states of a burstmap job, and the checks on the execution input.

Data path: execution input -> start -> Distributed Map of compute -> combine (docs/architecture.md).
This module is imported inside Lambda (through the burstmap layer), so it uses the standard library only.

Exceptions raised by a handler become the Step Functions error name (the class name), so every
class here is named for what went wrong and every message says what to change.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

# ---------------------------------------------------------------------------------------------------
# limits

STATE_PAYLOAD_LIMIT_BYTES = 256 * 1024
"""AWS: a state's input or output is at most 256 KiB (then ``States.DataLimitExceeded``)."""

PAYLOAD_ITEMS_MAX_BYTES = 128 * 1024
"""Largest item list (bytes of JSON) the start function returns in the state payload. Larger lists go to S3,
so the start output plus the Map's ``results`` and the job parameters stay well under the 256 KiB limit."""

PARAMETERS_MAX_BYTES = 64 * 1024
"""Largest ``parameters`` object (bytes of JSON): it rides in the start output and in every child's input."""

MAX_SIZE = 100_000_000
"""AWS: a Distributed Map ItemReader reads at most 100,000,000 items."""

MAX_DISTRIBUTED_CONCURRENCY = 10_000
"""AWS: a Distributed Map runs at most 10,000 child executions at once (MaxConcurrency 0 means that)."""

FAILED_ITEMS_LIMIT = 100
"""The combine output lists at most this many failed items (their count is always exact)."""

MAX_BATCH_INPUT_BYTES = 262_144
"""AWS: the largest ItemBatcher ``MaxInputBytesPerBatch`` (256 KiB)."""

BATCH_ENVELOPE_BYTES = 1024
"""Room in a child's input for ``{"Items": [], "BatchInput": {"parameters": }}`` around the items."""

DEFAULT_MAX_INPUT_BYTES_PER_BATCH = MAX_BATCH_INPUT_BYTES - PARAMETERS_MAX_BYTES - BATCH_ENVELOPE_BYTES
"""Items of a batch: 256 KiB minus the largest job parameters (they ride in every batch) and the envelope."""

SAFE_JSON_INTEGER = 2**53
"""Integers at or beyond this magnitude do not survive every JSON parser: they travel as decimal strings."""

# ---------------------------------------------------------------------------------------------------
# the environment BurstCompute gives the start and combine functions

ENV_BUCKET = "BURSTMAP_BUCKET"
"""The job bucket: item lists (under the items prefix) and results (under the result prefix)."""
ENV_RESULT_PREFIX = "BURSTMAP_RESULT_PREFIX"
ENV_ITEMS_PREFIX = "BURSTMAP_ITEMS_PREFIX"
ENV_SUMMED_RESULTS = "BURSTMAP_SUMMED_RESULTS"
"""Set ("1") on the compute function when the job's combiner is burstmap's exact sum: compute_handler then
refuses a result the sum cannot add as soon as it is computed, instead of the combiner after every item."""
ENV_COMBINE_WORKERS = "BURSTMAP_COMBINE_WORKERS"
"""Result files the default combine function reads at once (set it on the function to tune)."""
DEFAULT_RESULT_PREFIX = "results"
"""Where the ResultWriter writes, unless BurstCompute's ``result_prefix`` says otherwise."""
DEFAULT_ITEMS_PREFIX = "items"
"""Where start writes item lists, unless BurstCompute's ``items_prefix`` says otherwise."""

# ---------------------------------------------------------------------------------------------------
# item sources

ItemsFormat = Literal["JSONL", "CSV", "JSON"]

ITEM_FORMATS: dict[str, ItemsFormat] = {".jsonl": "JSONL", ".csv": "CSV", ".json": "JSON"}
"""File extension of an ``items_s3`` list -> the ItemReader ``InputType`` that reads it."""

INPUT_KEYS = ("size", "items", "items_s3", "parameters", "via_s3")
ITEM_SOURCE_KEYS = ("size", "items", "items_s3")

# ---------------------------------------------------------------------------------------------------
# errors (the class name is the Step Functions error name)


class InvalidInput(Exception):  # noqa: N818 - the ASL error name users see and match in Catch
    """The execution input cannot be run; the message says what to change. Nothing was computed."""


class InvalidComputeEvent(Exception):  # noqa: N818 - the ASL error name
    """A compute handler received an event of neither the single nor the batched shape."""


class InvalidComputeResult(Exception):  # noqa: N818 - the ASL error name
    """A batch compute function returned something other than one result per item, or an item's result is
    one the job's combiner cannot take (the default sum adds integers only)."""


class InvalidCombineEvent(Exception):  # noqa: N818 - the ASL error name
    """The combine function's event does not name a ResultWriter manifest."""


class InvalidResult(Exception):  # noqa: N818 - the ASL error name
    """A child's result is not what the combiner can aggregate; the message names the item."""


class InvalidResultFile(Exception):  # noqa: N818 - the ASL error name
    """A ResultWriter manifest or result file is not in any layout Step Functions writes."""


# ---------------------------------------------------------------------------------------------------
# wire shapes


class ExecutionInput(TypedDict, total=False):
    """What a job is started with: exactly one of size / items / items_s3, optional parameters."""

    size: int
    items: list[Any]
    items_s3: str
    parameters: dict[str, Any]
    via_s3: bool


class PayloadStartOutput(TypedDict):
    """The start output when the items travel in the state payload (Map ``ItemsPath: $.items``)."""

    source: Literal["payload"]
    items: list[Any]
    count: int
    parameters: dict[str, Any]


class S3StartOutput(TypedDict):
    """The start output when the items are an S3 object (Map ``ItemReader``)."""

    source: Literal["s3"]
    items_bucket: str
    items_key: str
    items_format: ItemsFormat
    count: int
    parameters: dict[str, Any]


StartOutput = PayloadStartOutput | S3StartOutput


class ComputeEvent(TypedDict):
    """One item per child (no ItemBatcher)."""

    item: Any
    index: int
    parameters: dict[str, Any]


class BatchItem(TypedDict):
    """One entry of a batch's ``Items`` (the ItemSelector's output without the parameters)."""

    item: Any
    index: int


class BatchInput(TypedDict):
    parameters: dict[str, Any]


class BatchedComputeEvent(TypedDict):
    """ItemBatcher: the compute function returns a list of results aligned with ``Items``."""

    Items: list[BatchItem]
    BatchInput: BatchInput


class ResultWriterDetails(TypedDict):
    Bucket: str
    Key: str


class MapResults(TypedDict):
    """A Distributed Map's output with a ResultWriter (the combine event's ``results``)."""

    MapRunArn: str
    ResultWriterDetails: ResultWriterDetails


class CombineEvent(TypedDict):
    results: MapResults
    parameters: NotRequired[dict[str, Any]]
    count: NotRequired[int]


class FailedItemReport(TypedDict):
    """One entry of ``failed_items``: the item as the compute function received it, and the error name."""

    index: int | None
    item: Any
    error: str | None


class CombineOutput(TypedDict):
    """The execution's output: the exact sum and the item counts."""

    total_sum: str
    succeeded: int
    failed: int
    failed_items: list[FailedItemReport]
    manifest: str


# ---------------------------------------------------------------------------------------------------
# the compute Map: what BurstCompute renders around the compute task (and `--batch-size` rewrites)

MAP_ITEM_VALUE = "$$.Map.Item.Value"
MAP_ITEM_INDEX = "$$.Map.Item.Index"
JOB_PARAMETERS_PATH = "$.parameters"
"""Where the job parameters are in the Map's input (the start output, or the objects job's input)."""
COMBINE_BATCHED_FIELD = "batched"
"""The combine payload's flag: is a COMPACT record a batch's list of results or one item's output."""


def compute_item_selector(item_field: Mapping[str, Any], *, batched: bool) -> dict[str, Any]:
    """A compute Map's ItemSelector: the item (``{"item.$": path}`` or ``{"item": value}``) and its index,
    and the job parameters when each child gets one item (a batch gets them once, in its BatchInput)."""
    selector = {**item_field, "index.$": MAP_ITEM_INDEX}
    if not batched:
        selector["parameters.$"] = JOB_PARAMETERS_PATH
    return selector


def compute_batch_input() -> dict[str, Any]:
    """A batched compute Map's ItemBatcher ``BatchInput``: the job parameters, once per batch."""
    return {"parameters.$": JOB_PARAMETERS_PATH}


def compute_item_field(selector: Any) -> dict[str, Any] | None:
    """The item field of an ItemSelector that :func:`compute_item_selector` rendered (batched or not), or
    None when the selector has any other shape."""
    if not isinstance(selector, Mapping):
        return None
    item_keys = [key for key in ("item.$", "item") if key in selector]
    if len(item_keys) != 1:
        return None
    item_field = {item_keys[0]: selector[item_keys[0]]}
    if dict(selector) in (
        compute_item_selector(item_field, batched=False),
        compute_item_selector(item_field, batched=True),
    ):
        return item_field
    return None


# ---------------------------------------------------------------------------------------------------
# S3 locations


_BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_items_s3(uri: Any) -> tuple[S3Location, ItemsFormat]:
    """``s3://bucket/key.jsonl|.csv|.json`` -> location and ItemReader InputType; InvalidInput otherwise."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise InvalidInput(
            f'items_s3 must be an S3 URI like "s3://my-bucket/lists/items.jsonl", got {_show(uri)}.'
        )
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not _BUCKET_PATTERN.match(bucket) or not key or key.endswith("/"):
        raise InvalidInput(
            f'items_s3 must name a bucket and an object key, like "s3://my-bucket/lists/items.jsonl", '
            f"got {uri!r}."
        )
    for extension, item_format in ITEM_FORMATS.items():
        if key.lower().endswith(extension):
            return S3Location(bucket, key), item_format
    raise InvalidInput(
        f"items_s3 must end with .jsonl (one JSON value a line), .csv (a header row, then one item a row) "
        f"or .json (one JSON array), got {uri!r}: rename the object or convert it."
    )


# ---------------------------------------------------------------------------------------------------
# the execution input


@dataclass(frozen=True)
class JobRequest:
    """A validated execution input: exactly one item source is set."""

    size: int | None = None
    items: list[Any] | None = None
    items_s3: S3Location | None = None
    items_format: ItemsFormat | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    via_s3: bool = False


def parse_execution_input(event: Any) -> JobRequest:
    """Check the execution input against the contract; InvalidInput says what to change."""
    if not isinstance(event, Mapping):
        raise InvalidInput(
            f'The execution input must be a JSON object such as {{"size": 1024}}, got {_json_type(event)}.'
        )
    unknown = [key for key in event if key not in INPUT_KEYS]
    if unknown:
        raise InvalidInput(
            f"Unknown key(s) in the execution input: {', '.join(map(repr, sorted(map(str, unknown))))}. "
            f'Use only {", ".join(INPUT_KEYS)}; job settings for the compute function go inside "parameters".'
        )
    given = [key for key in ITEM_SOURCE_KEYS if key in event]
    if not given:
        raise InvalidInput(
            'The execution input names no items: give one of {"size": N} (items 0..N-1), '
            '{"items": [...]} or {"items_s3": "s3://bucket/key.jsonl"}.'
        )
    if len(given) > 1:
        raise InvalidInput(
            f"The execution input gives {' and '.join(given)}: give only one of size, items or items_s3."
        )
    parameters = event.get("parameters", {})
    if not isinstance(parameters, Mapping):
        raise InvalidInput(
            f"parameters must be a JSON object (every compute call receives it), "
            f"got {_json_type(parameters)}: "
            'wrap the value, e.g. {"parameters": {"value": ...}}.'
        )
    parameters_bytes = json_size(parameters)
    if parameters_bytes > PARAMETERS_MAX_BYTES:
        raise InvalidInput(
            f"parameters take {parameters_bytes} bytes of JSON, more than {PARAMETERS_MAX_BYTES} "
            "(they travel in every child's input): put large data in S3 and pass its URI in parameters."
        )
    via_s3 = event.get("via_s3", False)
    if not isinstance(via_s3, bool):
        raise InvalidInput(f"via_s3 must be true or false, got {_show(via_s3)}.")
    common = {"parameters": dict(parameters), "via_s3": via_s3}
    source = given[0]
    if source == "size":
        return JobRequest(size=_check_size(event["size"]), **common)
    if source == "items":
        items = event["items"]
        if not isinstance(items, list):
            raise InvalidInput(
                f"items must be a JSON array of items, got {_json_type(items)}: "
                'write {"items": [...]} (or {"size": N} for the items 0..N-1).'
            )
        return JobRequest(items=items, **common)
    location, item_format = parse_items_s3(event["items_s3"])
    return JobRequest(items_s3=location, items_format=item_format, **common)


def _check_size(size: Any) -> int:
    # bool is an int subclass in Python, but true/false is not a size.
    if isinstance(size, bool) or not isinstance(size, int):
        raise InvalidInput(
            f'size must be a whole number of items, like {{"size": 1024}}, got {_show(size)} '
            f"({_json_type(size)})."
        )
    if size < 0:
        raise InvalidInput(f"size must be zero or more, got {size}.")
    if size > MAX_SIZE:
        raise InvalidInput(
            f"size must be at most {MAX_SIZE} (the Distributed Map item limit), got {size}: split the job."
        )
    return size


def check_state_payload(value: Any, what: str) -> None:
    """InvalidInput when ``value`` would pass the 256 KiB state payload limit."""
    size = json_size(value)
    if size > STATE_PAYLOAD_LIMIT_BYTES:
        raise InvalidInput(
            f"{what} takes {size} bytes of JSON, more than the {STATE_PAYLOAD_LIMIT_BYTES}-byte "
            'state payload limit: pass the items as an S3 list ({"items_s3": "s3://bucket/key.jsonl"}).'
        )


# ---------------------------------------------------------------------------------------------------
# sizes and numbers


def json_size(value: Any) -> int:
    """Bytes of ``value`` as JSON with Python's default separators (what the Lambda runtime sends)."""
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def range_json_size(count: int) -> int:
    """Bytes of ``json.dumps(list(range(count)))``, computed without building the list."""
    if count <= 0:
        return 2
    digits_total = 0
    low, digits = 0, 1
    while low < count:
        high = min(count, 10**digits)
        digits_total += (high - low) * digits
        low, digits = high, digits + 1
    return 2 + digits_total + 2 * (count - 1)


_DECIMAL = re.compile(r"^[+-]?[0-9]+$")
_CHUNK_DIGITS = 4000
"""Below Python's default int<->str limit (4300 digits): pieces this long convert with the builtins."""


def decimal_to_int(text: str) -> int:
    """Exact ``int`` from a decimal string of any length, whatever ``sys.set_int_max_str_digits`` says."""
    text = text.strip()
    if not _DECIMAL.match(text):
        raise ValueError(f"not a decimal integer: {text[:80]!r}")
    negative = text[0] == "-"
    digits = text.lstrip("+-")
    value = _digits_to_int(digits)
    return -value if negative else value


def _digits_to_int(digits: str) -> int:
    if len(digits) <= _CHUNK_DIGITS:
        return int(digits)
    half = len(digits) // 2
    low = digits[-half:]
    return _digits_to_int(digits[:-half]) * 10**half + _digits_to_int(low)


def int_to_decimal(value: int) -> str:
    """Decimal string of an ``int`` of any size, whatever ``sys.set_int_max_str_digits`` says."""
    if value < 0:
        return "-" + int_to_decimal(-value)
    # 3.32 bits a digit: below 4000 digits the builtin is allowed and fast.
    if value.bit_length() <= _CHUNK_DIGITS * 3:
        return str(value)
    half = math.ceil(value.bit_length() * 0.30103 / 2)
    high, low = divmod(value, 10**half)
    return int_to_decimal(high) + int_to_decimal(low).rjust(half, "0")


def to_wire(result: Any) -> Any:
    """A result as it should travel: an integer past 2**53 becomes its decimal string (JSON-safe, exact)."""
    if isinstance(result, int) and not isinstance(result, bool) and abs(result) >= SAFE_JSON_INTEGER:
        return int_to_decimal(result)
    return result


def summable(result: Any) -> bool:
    """Whether the default combiner can add this result: an integer, or the decimal string of one."""
    if isinstance(result, int) and not isinstance(result, bool):
        return True
    return isinstance(result, str) and _DECIMAL.match(result.strip()) is not None


# ---------------------------------------------------------------------------------------------------
# which item of a batch failed

_FAILED_ITEM = re.compile(r"""^(["']?)\[item (\d+)\] """)


def mark_failed_item(error: BaseException, index: int) -> None:
    """Name the item of a batch that raised ``error`` in its message: ``[item 7] <message>``.

    A batch child fails as a whole, with one error, so the ResultWriter's FAILED record holds every item
    of the batch; Lambda's error document (``errorMessage``, ``errorType``) has no field for the item, so
    the message carries it, and :func:`failed_item_index` reads it back. The type (the ASL error name
    Retry and Catch match) is unchanged. An exception whose message does not come from its arguments is
    left as it is.
    """
    if _FAILED_ITEM.match(str(error)):
        return
    original = error.args
    if original and isinstance(original[0], str):
        error.args = (f"[item {index}] {original[0]}", *original[1:])
    else:
        error.args = (f"[item {index}] {error}",)
    if not _FAILED_ITEM.match(str(error)):
        error.args = original


def failed_item_index(message: str | None) -> int | None:
    """The index :func:`mark_failed_item` put in an error message, if any."""
    found = _FAILED_ITEM.match(message or "")
    return int(found.group(2)) if found else None


def without_item_mark(message: str) -> str:
    """The message as the function raised it (the ``[item i]`` mark removed)."""
    return _FAILED_ITEM.sub(r"\1", message, count=1)


# ---------------------------------------------------------------------------------------------------
# message helpers


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, as the user wrote it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction" if not float(value).is_integer() else "a number written as a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value) if _jsonable(value) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def short_json(value: Any, limit: int = 100) -> str:
    """A value as JSON for an error message: cut to ``limit`` characters, a huge integer by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
