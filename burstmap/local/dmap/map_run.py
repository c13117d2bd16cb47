"""Distributed Map: item source, ItemSelector, ItemBatcher, concurrency, tolerance, ResultWriter.

`run_distributed_map` is called by the interpreter (states.py) with the Map state's effective input
(after InputPath) and returns the Map's raw result (before ResultSelector / ResultPath). Each item
(or batch) runs as a child workflow execution through the `run_child` callback, on a bounded thread
pool: at most MaxConcurrency children run at once, and at most a few per local worker process
whatever MaxConcurrency says, so a million items never mean a million threads or futures.

Memory is bounded by the concurrency: items are read lazily (item_reader.py), at most one batch
per running child is held, and with a ResultWriter each record is spooled to disk as it completes
(result_writer.py). Without a ResultWriter the outputs are the state's output and are kept, in
item order, as AWS returns them.

Sources for the behaviour: AWS developer guide pages "ItemReader (Map)", "ItemBatcher (Map)",
"ResultWriter (Map)" and "Distributed Map state", and the AWS-recorded conformance cases under
shared/conformance/cases/map_distributed and map_item_reader.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from itertools import repeat
from queue import Empty, SimpleQueue
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from burstmap.local.core.context import RealClock, Services
from burstmap.local.core.errors import DATA_LIMIT_EXCEEDED, StatesError, unsupported
from burstmap.local.core.limits import LAMBDA_INVOKE, LOCAL_ACCOUNT, LOCAL_REGION
from burstmap.local.core.limits import STATE_PAYLOAD_LIMIT_BYTES as PAYLOAD_LIMIT_BYTES
from burstmap.local.dmap import item_reader
from burstmap.local.dmap.result_writer import (
    OUTPUT_TYPES,
    PUT_OBJECT,
    RESULT_FILE_MAX_BYTES,
    TRANSFORMATIONS,
    ResultWriter,
    WriterConfig,
    transformed_entries,
)
from burstmap.local.flow.retry_catch import RetryPolicy, retrying
from burstmap.local.map_common import (
    InvalidDefinition,
    UnparsedIntegers,
    UnsupportedFeature,
    float_from_path,
    integer_from_path,
    is_states_error,
    iso_timestamp,
    item_separator_after,
    json_size,
    read_path,
    resolve_template,
    runtime_error,
    states_error,
    to_json,
    utf8_length,
)
from burstmap.local.states import lambda_function_error

__all__ = [
    "InvalidDefinition",
    "MapRun",
    "MapRunCounts",
    "UnsupportedFeature",
    "run_distributed_map",
    "validate_distributed_map",
]

TOLERANCE_EXCEEDED_CAUSE = "The specified tolerated failure threshold was exceeded"
THREADS_PER_WORKER = 2
"""Children in flight per local worker process when MaxConcurrency is 0 or larger: enough to keep
every worker busy while another child's result is being recorded, and no more."""

# Fields of a Map state that the interpreter (states.py) handles for every state type.
_COMMON_FIELDS = frozenset(
    {
        "Type",
        "Comment",
        "Next",
        "End",
        "InputPath",
        "OutputPath",
        "ResultPath",
        "ResultSelector",
        "Retry",
        "Catch",
        "Assign",
        "QueryLanguage",
        "ItemProcessor",
        "Iterator",
    }
)
# Fields this module runs.
_MAP_FIELDS = frozenset(
    {
        "ItemsPath",
        "ItemReader",
        "ItemSelector",
        "Parameters",
        "ItemBatcher",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
        "ResultWriter",
        "Label",
    }
)


# ----------------------------------------------------------------------------------------------
# Validation at load time
# ----------------------------------------------------------------------------------------------


def _unsupported(field_name: str, state_name: str) -> UnsupportedFeature:
    return unsupported(field_name, state_name)


def _invalid(message: str, state_name: str) -> InvalidDefinition:
    return InvalidDefinition(f"invalid distributed Map state '{state_name}': {message}")


def _field_names(template: dict[str, Any]) -> set[str]:
    return {key[:-2] if key.endswith(".$") else key for key in template}


def _check_exclusive(block: dict[str, Any], name: str, where: str, state_name: str) -> None:
    if name in block and f"{name}Path" in block:
        raise _invalid(f"provide either {where}{name} or {where}{name}Path, but not both", state_name)


def _check_int(value: Any, name: str, state_name: str, minimum: int, maximum: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise _invalid(f"{name} must be an integer of at least {minimum}{bound}, got {value!r}", state_name)


def validate_distributed_map(state_name: str, state: dict[str, Any]) -> None:
    """Refuse, before anything runs, every field this engine would not run exactly as AWS does.

    Raises UnsupportedFeature naming the field and the state, or InvalidDefinition for values AWS
    rejects when the state machine is created.
    """
    if state.get("QueryLanguage") == "JSONata":
        raise _unsupported("QueryLanguage: JSONata (distributed Map)", state_name)
    for key in state:
        if key not in _COMMON_FIELDS and key not in _MAP_FIELDS:
            raise _unsupported(key, state_name)
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    execution_type = processor.get("ProcessorConfig", {}).get("ExecutionType", "STANDARD")
    if execution_type not in ("STANDARD", "EXPRESS"):
        raise _invalid(
            f"ProcessorConfig.ExecutionType must be STANDARD or EXPRESS, got {execution_type!r}", state_name
        )
    if "ItemSelector" in state and "Parameters" in state:
        raise _invalid("provide either ItemSelector or Parameters, but not both", state_name)
    for name in ("MaxConcurrency", "ToleratedFailureCount", "ToleratedFailurePercentage"):
        _check_exclusive(state, name, "", state_name)
    if "MaxConcurrency" in state:
        _check_int(state["MaxConcurrency"], "MaxConcurrency", state_name, 0)
    if "ToleratedFailureCount" in state:
        _check_int(state["ToleratedFailureCount"], "ToleratedFailureCount", state_name, 0)
    if "ToleratedFailurePercentage" in state:
        value = state["ToleratedFailurePercentage"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise _invalid(
                f"ToleratedFailurePercentage must be a number from 0 to 100, got {value!r}", state_name
            )
    label = state.get("Label")
    if label is not None and (not isinstance(label, str) or len(label) > 40):
        raise _invalid("Label must be a string of 40 characters or less", state_name)
    if "ItemReader" in state:
        _validate_item_reader(state["ItemReader"], state_name)
    if "ItemBatcher" in state:
        _validate_item_batcher(state["ItemBatcher"], state_name)
    if "ResultWriter" in state:
        _validate_result_writer(state["ResultWriter"], state_name)


def _validate_item_reader(reader: dict[str, Any], state_name: str) -> None:
    for key in reader:
        if key not in ("Resource", "Parameters", "ReaderConfig"):
            raise _unsupported(f"ItemReader.{key}", state_name)
    resource = reader.get("Resource")
    if resource == item_reader.GET_OBJECT:
        allowed, config_fields = (
            item_reader.GET_OBJECT_PARAMETERS,
            ("InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems", "MaxItemsPath"),
        )
    elif resource == item_reader.LIST_OBJECTS_V2:
        allowed, config_fields = item_reader.LIST_OBJECTS_PARAMETERS, ("MaxItems", "MaxItemsPath")
    else:
        raise _unsupported(f"ItemReader.Resource {resource}", state_name)
    parameters = reader.get("Parameters", {})
    for name in _field_names(parameters):
        if name not in allowed:
            raise _unsupported(f"ItemReader.Parameters.{name}", state_name)
    if "Bucket" not in _field_names(parameters):
        raise _invalid("ItemReader.Parameters must name the Bucket", state_name)
    config = reader.get("ReaderConfig", {})
    for key in config:
        if key not in config_fields:
            raise _unsupported(f"ItemReader.ReaderConfig.{key}", state_name)
    _check_exclusive(config, "MaxItems", "ItemReader.ReaderConfig.", state_name)
    if "MaxItems" in config:
        _check_int(
            config["MaxItems"], "ItemReader.ReaderConfig.MaxItems", state_name, 0, item_reader.MAX_ITEMS_LIMIT
        )
    if resource == item_reader.LIST_OBJECTS_V2:
        return
    if "Key" not in _field_names(parameters):
        raise _invalid("ItemReader.Parameters must name the Key of the object to read", state_name)
    input_type = config.get("InputType")
    if input_type is None:
        raise _invalid("ItemReader.ReaderConfig.InputType is required with s3:getObject", state_name)
    if input_type not in item_reader.INPUT_TYPES:
        raise _unsupported(f"ItemReader.ReaderConfig.InputType {input_type}", state_name)
    if input_type != "CSV":
        for key in ("CSVHeaderLocation", "CSVHeaders", "CSVDelimiter"):
            if key in config:
                raise _invalid(f"ItemReader.ReaderConfig.{key} applies to CSV only", state_name)
        return
    location = config.get("CSVHeaderLocation")
    if location not in ("FIRST_ROW", "GIVEN"):
        raise _invalid("ItemReader.ReaderConfig.CSVHeaderLocation must be FIRST_ROW or GIVEN", state_name)
    headers = config.get("CSVHeaders")
    if location == "GIVEN" and (
        not isinstance(headers, list) or not all(isinstance(h, str) for h in headers)
    ):
        raise _invalid("CSVHeaderLocation GIVEN needs CSVHeaders, a list of strings", state_name)
    if location == "FIRST_ROW" and headers is not None:
        raise _invalid("CSVHeaders is only allowed with CSVHeaderLocation GIVEN", state_name)
    if config.get("CSVDelimiter", "COMMA") not in item_reader.CSV_DELIMITERS:
        raise _invalid(f"CSVDelimiter must be one of {', '.join(item_reader.CSV_DELIMITERS)}", state_name)


def _validate_item_batcher(batcher: dict[str, Any], state_name: str) -> None:
    for key in batcher:
        if key not in (
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
            "BatchInput",
        ):
            raise _unsupported(f"ItemBatcher.{key}", state_name)
    for name in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
        _check_exclusive(batcher, name, "ItemBatcher.", state_name)
    if not any(key.startswith("Max") for key in batcher):
        raise _invalid(
            "ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch (or their Path forms)", state_name
        )
    if "MaxItemsPerBatch" in batcher:
        _check_int(batcher["MaxItemsPerBatch"], "ItemBatcher.MaxItemsPerBatch", state_name, 1)
    if "MaxInputBytesPerBatch" in batcher:
        _check_int(
            batcher["MaxInputBytesPerBatch"],
            "ItemBatcher.MaxInputBytesPerBatch",
            state_name,
            1,
            PAYLOAD_LIMIT_BYTES,
        )


def _validate_result_writer(writer: dict[str, Any], state_name: str) -> None:
    for key in writer:
        if key not in ("Resource", "Parameters", "WriterConfig"):
            raise _unsupported(f"ResultWriter.{key}", state_name)
    if not writer:
        raise _invalid(
            "ResultWriter cannot be empty: give Resource and Parameters, WriterConfig, or all three",
            state_name,
        )
    if ("Resource" in writer) != ("Parameters" in writer):
        raise _invalid("ResultWriter needs Resource and Parameters together", state_name)
    if "Resource" in writer:
        if writer["Resource"] != PUT_OBJECT:
            raise _unsupported(f"ResultWriter.Resource {writer['Resource']}", state_name)
        names = _field_names(writer["Parameters"])
        for name in names:
            if name not in ("Bucket", "Prefix"):
                raise _unsupported(f"ResultWriter.Parameters.{name}", state_name)
        if "Bucket" not in names:
            raise _invalid("ResultWriter.Parameters must name the Bucket", state_name)
    config = writer.get("WriterConfig", {})
    for key in config:
        if key not in ("Transformation", "OutputType"):
            raise _unsupported(f"ResultWriter.WriterConfig.{key}", state_name)
    if config.get("Transformation", "NONE") not in TRANSFORMATIONS:
        raise _invalid(f"WriterConfig.Transformation must be one of {', '.join(TRANSFORMATIONS)}", state_name)
    if config.get("OutputType", "JSON") not in OUTPUT_TYPES:
        raise _invalid(f"WriterConfig.OutputType must be one of {', '.join(OUTPUT_TYPES)}", state_name)


# ----------------------------------------------------------------------------------------------
# Map run bookkeeping (DescribeMapRun's names)
# ----------------------------------------------------------------------------------------------


@dataclass
class MapRunCounts:
    """Counts as DescribeMapRun reports them (itemCounts counts items, executionCounts children)."""

    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    timedOut: int = 0  # noqa: N815 - DescribeMapRun's name
    aborted: int = 0
    total: int = 0
    resultsWritten: int = 0  # noqa: N815 - DescribeMapRun's name

    def as_dict(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "timedOut": self.timedOut,
            "aborted": self.aborted,
            "total": self.total,
            "resultsWritten": self.resultsWritten,
        }


@dataclass
class MapRun:
    """One run of a distributed Map state: what ListMapRuns / DescribeMapRun would show."""

    map_run_arn: str
    state_name: str
    label: str
    max_concurrency: int
    tolerated_failure_count: int | None
    tolerated_failure_percentage: float | None
    status: str = "RUNNING"
    start_date: str = field(default_factory=iso_timestamp)
    stop_date: str | None = None
    item_counts: MapRunCounts = field(default_factory=MapRunCounts)
    execution_counts: MapRunCounts = field(default_factory=MapRunCounts)
    items_read_complete: bool = False
    """True once the item reader is exhausted: `total` is final from then on."""

    def describe(self) -> dict[str, Any]:
        """A DescribeMapRun-shaped snapshot."""
        return {
            "mapRunArn": self.map_run_arn,
            "status": self.status,
            "startDate": self.start_date,
            **({"stopDate": self.stop_date} if self.stop_date else {}),
            "maxConcurrency": self.max_concurrency,
            "toleratedFailurePercentage": self.tolerated_failure_percentage or 0.0,
            "toleratedFailureCount": self.tolerated_failure_count or 0,
            "itemCounts": self.item_counts.as_dict(),
            "executionCounts": self.execution_counts.as_dict(),
        }


# ----------------------------------------------------------------------------------------------
# Runtime settings resolved from the state and its effective input
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    max_concurrency: int
    tolerated_count: int | None
    tolerated_percentage: float | None
    batching: bool
    max_items_per_batch: int | None
    max_bytes_per_batch: int
    batch_input: Any
    has_batch_input: bool


def _resolve_settings(
    state_name: str, state: dict[str, Any], data: Any, context: dict[str, Any]
) -> _Settings:
    if "MaxConcurrencyPath" in state:
        path = state["MaxConcurrencyPath"]
        max_concurrency = integer_from_path(
            "MaxConcurrencyPath", path, read_path(path, data, context), state_name, context
        )
        if max_concurrency < 0:
            raise runtime_error(state_name, "MaxConcurrency cannot be negative.", context)
    else:
        max_concurrency = state.get("MaxConcurrency", 0)

    tolerated_count = state.get("ToleratedFailureCount")
    if "ToleratedFailureCountPath" in state:
        path = state["ToleratedFailureCountPath"]
        tolerated_count = integer_from_path(
            "ToleratedFailureCountPath", path, read_path(path, data, context), state_name, context
        )
        if tolerated_count < 0:
            raise runtime_error(state_name, "ToleratedFailureCount cannot be negative.", context)
    tolerated_percentage = state.get("ToleratedFailurePercentage")
    if "ToleratedFailurePercentagePath" in state:
        path = state["ToleratedFailurePercentagePath"]
        tolerated_percentage = float_from_path(
            "ToleratedFailurePercentagePath", path, read_path(path, data, context), state_name, context
        )
        if not 0 <= tolerated_percentage <= 100:
            raise runtime_error(state_name, "ToleratedFailurePercentage must be between 0 and 100.", context)

    batcher = state.get("ItemBatcher")
    max_items = None
    max_bytes = PAYLOAD_LIMIT_BYTES
    batch_input: Any = None
    if batcher is not None:
        if "MaxItemsPerBatchPath" in batcher:
            path = batcher["MaxItemsPerBatchPath"]
            max_items = integer_from_path(
                "MaxItemsPerBatchPath", path, read_path(path, data, context), state_name, context
            )
        else:
            max_items = batcher.get("MaxItemsPerBatch")
        if max_items is not None and max_items < 1:
            raise runtime_error(state_name, "MaxItemsPerBatch must be positive.", context)
        if "MaxInputBytesPerBatchPath" in batcher:
            path = batcher["MaxInputBytesPerBatchPath"]
            max_bytes = integer_from_path(
                "MaxInputBytesPerBatchPath", path, read_path(path, data, context), state_name, context
            )
        else:
            max_bytes = batcher.get("MaxInputBytesPerBatch", PAYLOAD_LIMIT_BYTES)
        if not 1 <= max_bytes <= PAYLOAD_LIMIT_BYTES:
            raise runtime_error(state_name, "MaxInputBytesPerBatch must be between 1 and 262144.", context)
        if "BatchInput" in batcher:
            batch_input = resolve_template(batcher["BatchInput"], data, context)
    return _Settings(
        max_concurrency=max_concurrency,
        tolerated_count=tolerated_count,
        tolerated_percentage=tolerated_percentage,
        batching=batcher is not None,
        max_items_per_batch=max_items,
        max_bytes_per_batch=max_bytes,
        batch_input=batch_input,
        has_batch_input=batcher is not None and "BatchInput" in batcher,
    )


# ----------------------------------------------------------------------------------------------
# Items -> child inputs (ItemSelector, ItemBatcher)
# ----------------------------------------------------------------------------------------------


_UNPARSED: Any = object()


class _Batch:
    """One child execution's work: its input and which items it carries.

    A batch cut from the item reader's text has `json_text` (the input's compact JSON) and parses
    it only when something asks for `child_input`."""

    __slots__ = ("sequence", "first_index", "item_count", "_child_input", "json_text")

    def __init__(
        self,
        sequence: int,
        first_index: int,
        item_count: int,
        child_input: Any = _UNPARSED,
        json_text: str | None = None,
    ) -> None:
        self.sequence = sequence
        self.first_index = first_index
        self.item_count = item_count
        self._child_input = child_input
        self.json_text = json_text

    @property
    def child_input(self) -> Any:
        if self._child_input is _UNPARSED:
            self._child_input = json.loads(self.json_text or "null")
        return self._child_input

    def input_json(self) -> str:
        """The child input as compact JSON (what records and payloads carry)."""
        return self.json_text if self.json_text is not None else to_json(self._child_input)


def _child_inputs(
    state_name: str,
    state: dict[str, Any],
    chunks: Iterator[list[Any] | UnparsedIntegers],
    data: Any,
    context: dict[str, Any],
    settings: _Settings,
    select_item: Callable[[Any, dict[str, Any]], Any] | None = None,
) -> Iterator[_Batch]:
    """ItemSelector on each item (with $$.Map.Item.Index/Value), then batches when ItemBatcher is set.

    `select_item(value, item_context)`, when given, replaces the JSONPath ItemSelector."""
    selected = _selected_chunks(
        state.get("ItemSelector", state.get("Parameters")), chunks, data, context, select_item
    )
    if settings.batching:
        yield from _batched(state_name, selected, settings, context)
        return
    index = 0
    for chunk in selected:
        for value in chunk:
            yield _Batch(index, index, 1, value)
            index += 1


# A selector field whose value does not depend on the item: a plain definite path into the state's
# input, or into the parts of the context object that are the same for every item.
_ITEM_INDEPENDENT_PATH = re.compile(
    r"\$(?:\$\.(?:Execution|StateMachine|State|Task))?(?:\.[A-Za-z_][A-Za-z0-9_-]*)*"
)
_ITEM_VALUE, _ITEM_INDEX, _CONSTANT = "$$.Map.Item.Value", "$$.Map.Item.Index", None


def _selector_fields(selector: Any) -> list[tuple[str, str | None]] | None:
    """The fields of an ItemSelector that can be filled without evaluating it per item: each is
    the item's value, its index, or a value that is the same for every item (a literal scalar or an
    item-independent path). None when the selector needs the general evaluation."""
    if not isinstance(selector, dict):
        return None
    fields: list[tuple[str, str | None]] = []
    for key, value in selector.items():
        if key.endswith(".$"):
            if not isinstance(value, str):
                return None
            if value in (_ITEM_VALUE, _ITEM_INDEX):
                fields.append((key[:-2], value))
            elif _ITEM_INDEPENDENT_PATH.fullmatch(value):
                fields.append((key[:-2], _CONSTANT))
            else:
                return None
        elif value is None or isinstance(value, (str, int, float, bool)):
            fields.append((key, _CONSTANT))
        else:
            return None  # an object or array is a fresh copy per item
    return fields


def _selected_chunks(
    selector: Any,
    chunks: Iterator[Any],
    data: Any,
    context: dict[str, Any],
    select_item: Callable[[Any, dict[str, Any]], Any] | None = None,
) -> Iterator[list[Any]]:
    """The selector applied to every item, chunk by chunk, in order.

    The first item always goes through the general evaluation (so a missing path fails exactly as
    before); after it, a selector made of item values, indexes and item-independent fields is
    filled column-wise from the first item's result. An error stops after the items before it.
    """
    if select_item is None:
        if selector is None:
            yield from chunks
            return

        def select_item(value: Any, item_context: dict[str, Any]) -> Any:
            return resolve_template(selector, data, item_context)

        fields = _selector_fields(selector)
    else:
        fields = None  # JSONata: evaluated per item
    index = 0
    first: Any = None  # the first item's selected value, once the general evaluation gave it
    for chunk in chunks:
        selected: list[Any] = []
        rest = chunk
        if fields is None or index == 0:
            for value in chunk if fields is None else chunk[:1]:
                item_context = {**context, "Map": {"Item": {"Index": index, "Value": value}}}
                try:
                    selected.append(select_item(value, item_context))
                except Exception:
                    if selected:
                        yield selected
                    raise
                index += 1
            if fields is None:
                yield selected
                continue
            first = selected[0]
            rest = chunk[1:]
        selected.extend(_filled(fields, first, rest, index))
        index += len(rest)
        yield selected


def _filled(
    fields: list[tuple[str, str | None]], first: dict[str, Any], values: list[Any], start: int
) -> Iterator[dict[str, Any]]:
    """The selector's result for each value (item indexes from `start`), built column-wise in C:
    the item, its index, or the first item's value of an item-independent field."""
    names = [name for name, _ in fields]
    if not names:
        return map(dict, repeat((), len(values)))  # ItemSelector {}: an empty object per item
    columns = [
        values
        if source == _ITEM_VALUE
        else range(start, start + len(values))
        if source == _ITEM_INDEX
        else repeat(first[name], len(values))
        for name, source in fields
    ]
    return map(dict, map(zip, repeat(names), zip(*columns, strict=True)))


class _ItemTexts:
    """The compact JSON text of the items read so far, for chunks that carry it
    (`BoundedChunk.json_text`), so a batch's payload is cut from the reader's text. Batches take
    items in order: each chunk keeps where its next item starts, so a cut costs a few C calls."""

    def __init__(self) -> None:
        # [first item index, end item index, text or None, next item's index, its position in text]
        self.chunks: deque[list[Any]] = deque()

    def add(self, first_index: int, chunk: list[Any]) -> None:
        self.chunks.append(
            [first_index, first_index + len(chunk), getattr(chunk, "json_text", None), first_index, 0]
        )

    def clear(self) -> None:
        self.chunks.clear()

    def cut(self, first_index: int, count: int) -> str | None:
        """The comma-joined text of items [first_index, first_index + count), or None when a chunk
        they come from has no text (the batch is then encoded as usual)."""
        chunks = self.chunks
        while chunks and chunks[0][1] <= first_index:
            chunks.popleft()
        parts: list[str] | None = []
        end_index = first_index + count
        index = first_index
        for chunk in chunks:
            start, end, text, next_index, position = chunk
            if index >= end_index:
                break
            take = min(end, end_index) - index
            if text is None:
                parts = None  # every chunk still moves on, so the next batches find their place
            else:
                width = len(text) / (end - start)
                if next_index != index:  # not where the last cut stopped: find the item's start
                    position = item_separator_after(text, 0, index - start, width) + 1 if index > start else 0
                stop = len(text) if index + take == end else item_separator_after(text, position, take, width)
                if parts is not None:
                    parts.append(text[position:stop])
                chunk[3], chunk[4] = index + take, stop + 1
            index += take
        if parts is None or index != end_index:
            return None
        return parts[0] if len(parts) == 1 else ",".join(parts)


def _batched(
    state_name: str,
    chunks: Iterator[list[Any] | UnparsedIntegers],
    settings: _Settings,
    context: dict[str, Any],
) -> Iterator[_Batch]:
    """Greedy batches: as many items as fit both MaxItemsPerBatch and MaxInputBytesPerBatch.

    The byte size is that of the whole child input {"Items": [...], "BatchInput": ...} as compact
    UTF-8 JSON, the text the child execution is started with. With MaxItemsPerBatch, a batch of
    that many items is measured whole (one encoding, in C); items are measured one by one only
    for a batch that would pass the byte limit, or when bytes alone bound the batches. A batch is
    handed out once the item after it has been read (or the items are exhausted), as a reader
    error right after a batch stops it from running.

    Items the reader left unparsed (`UnparsedIntegers`) are batched as text: a batch's input is
    cut from the reader's text, measured by its length, and parsed only if something asks for it.
    Parsed items with text (`BoundedChunk.json_text`) give their batches text the same way.
    """
    envelope = json_size({"Items": []})
    if settings.has_batch_input:
        envelope += len(b',"BatchInput":') + json_size(settings.batch_input)
    limit = settings.max_bytes_per_batch
    max_items = settings.max_items_per_batch

    batch_input_json = ',"BatchInput":' + to_json(settings.batch_input) if settings.has_batch_input else ""
    texts = _ItemTexts()

    def input_text(items_text: str) -> str:
        return '{"Items":[' + items_text + "]" + batch_input_json + "}"

    measured: list[Any] = []  # [first index, count, items' JSON] of the last batch measured whole

    def parsed_batch(sequence: int, first_index: int, items: list[Any]) -> _Batch:
        value: dict[str, Any] = {"Items": items}
        if settings.has_batch_input:
            value["BatchInput"] = settings.batch_input
        text = texts.cut(first_index, len(items))
        if text is not None:
            return _Batch(sequence, first_index, len(items), value, input_text(text))
        if measured[:2] == [first_index, len(items)]:
            json_text = '{"Items":' + measured[2] + batch_input_json + "}"
            return _Batch(sequence, first_index, len(items), value, json_text)
        return _Batch(sequence, first_index, len(items), value)

    # (item index after the chunk's last, the chunk's JSON size bound or None) of pending chunks
    bounds: list[tuple[int, int | None]] = []

    def bounded_size(first: int, count: int) -> int | None:
        """An upper bound on the batch's JSON size from its chunks' bounds (None if unknown)."""
        total = 0
        for end, bound in bounds:
            if end <= first:
                continue
            if bound is None:
                return None
            total += bound
            if end >= first + count:
                break
        return envelope + total + count - 1

    def fitting(pending: list[Any], start: int, first_index: int, complete: bool) -> int:
        """How many items from `start` form the next batch; 0 when more items must be read first."""
        available = len(pending) - start
        if max_items is not None:
            candidate = pending[start : start + max_items]
            estimate = bounded_size(first_index, len(candidate))
            fits = estimate is not None and estimate <= limit
            if not fits:
                items_json = to_json(candidate)
                fits = envelope - 2 + utf8_length(items_json) <= limit
                if fits:  # kept for the batch's payload, so it is not encoded twice
                    measured[:] = [first_index, len(candidate), items_json]
            if fits:
                # All fit: a batch if it is full with an item after it, or the last items.
                return len(candidate) if available > max_items or complete else 0
        size = envelope
        end = start + max_items if max_items is not None else len(pending)
        for position in range(start, min(end, len(pending))):
            item_bytes = json_size(pending[position])
            if position == start:
                if size + item_bytes > limit:
                    index = first_index + position - start
                    raise runtime_error(
                        state_name,
                        f"The item at index {index} makes a batch of {size + item_bytes} bytes on its "
                        f"own, more than MaxInputBytesPerBatch ({limit}); reduce the item with "
                        "ItemSelector or raise the limit.",
                        context,
                    )
                size += item_bytes
            elif size + 1 + item_bytes > limit:
                return position - start
            else:
                size += 1 + item_bytes
        count = min(end, len(pending)) - start
        # Full by count with an item after it, or the last items: a batch; otherwise read on.
        return count if (count == max_items and len(pending) > start + count) or complete else 0

    sequence = 0
    first_index = 0  # item index of the first item not yet in a batch
    pending: list[Any] = []  # parsed items, from first_index
    unparsed = _UnparsedQueue()  # or items not parsed yet, from first_index (one of the two is empty)
    exhausted = False
    chunk_iterator = iter(chunks)

    def add_parsed(chunk: list[Any]) -> None:
        nonlocal pending
        texts.add(first_index + len(pending), chunk)
        pending = pending + chunk if pending else chunk
        bounds.append((first_index + len(pending), getattr(chunk, "json_bytes_bound", None)))

    while not exhausted:
        chunk = next(chunk_iterator, None)
        if chunk is None:
            exhausted = True
        elif isinstance(chunk, UnparsedIntegers) and max_items is None:
            add_parsed(chunk.parsed())  # bytes alone bound the batches: measured item by item
        elif isinstance(chunk, UnparsedIntegers):
            if pending:  # the parsed items go back to text, or the new ones are parsed
                text = texts.cut(first_index, len(pending))
                if text is None:
                    add_parsed(chunk.parsed())
                    chunk = None
                else:
                    unparsed.append(UnparsedIntegers(text, len(pending)))
                    pending = []
                    bounds.clear()
                    texts.clear()
            if chunk is not None:
                unparsed.append(chunk)
        else:
            if unparsed:
                add_parsed(unparsed.take_all().parsed())
            add_parsed(chunk)
        while unparsed:  # whole batches cut from the text, while they fit MaxInputBytesPerBatch
            count = len(unparsed) if max_items is None else min(max_items, len(unparsed))
            if not (exhausted or (max_items is not None and len(unparsed) > max_items)):
                break  # a batch is handed out once the item after it is read
            items_text = unparsed.take(count, limit - envelope)
            if items_text is None:  # past the byte limit: measured item by item, parsed
                add_parsed(unparsed.take_all().parsed())
                break
            yield _Batch(sequence, first_index, count, json_text=input_text(items_text))
            sequence += 1
            first_index += count
        start = 0
        while start < len(pending):
            count = fitting(pending, start, first_index + start, exhausted)
            if count == 0:
                break
            yield parsed_batch(sequence, first_index + start, pending[start : start + count])
            sequence += 1
            start += count
        first_index += start
        pending = pending[start:]
        while bounds and bounds[0][0] <= first_index:
            del bounds[0]


class _UnparsedQueue:
    """Items not parsed yet (`UnparsedIntegers` chunks, in order), taken from the front as text."""

    def __init__(self) -> None:
        self.chunks: deque[UnparsedIntegers] = deque()
        self.count = 0
        self.front_taken = 0  # items already taken from the front chunk
        self.position = 0  # where the front chunk's next item starts in its text

    def __len__(self) -> int:
        return self.count

    def append(self, chunk: UnparsedIntegers) -> None:
        self.chunks.append(chunk)
        self.count += chunk.count

    def take(self, count: int, max_length: int) -> str | None:
        """The comma-joined text of the next `count` items, taken; None (nothing taken) when it
        is longer than `max_length` characters (ASCII: as many bytes)."""
        parts: list[str] = []
        length = -1  # no comma before the first part
        needed, taken, position = count, self.front_taken, self.position
        for chunk in self.chunks:
            text = chunk.json_text
            take = min(needed, chunk.count - taken)
            if take == chunk.count - taken:
                stop = len(text)
            else:
                stop = item_separator_after(text, position, take, len(text) / chunk.count)
            length += stop - position + 1
            if length > max_length:
                return None
            parts.append(text[position:stop])
            needed -= take
            if needed == 0:
                break
            taken = position = 0
        for _ in range(len(parts) - 1):
            self.chunks.popleft()
        if taken + take == self.chunks[0].count:
            self.chunks.popleft()
            self.front_taken = self.position = 0
        else:
            self.front_taken, self.position = taken + take, stop + 1
        self.count -= count
        return parts[0] if len(parts) == 1 else ",".join(parts)

    def take_all(self) -> UnparsedIntegers:
        """Every item left, taken, as one chunk."""
        parts = [chunk.json_text for chunk in self.chunks]
        parts[0] = parts[0][self.position :]
        rest = UnparsedIntegers(",".join(parts), self.count)
        self.chunks.clear()
        self.count = self.front_taken = self.position = 0
        return rest


# ----------------------------------------------------------------------------------------------
# The common child, run without the interpreter: one lambda:invoke Task on the whole child input
# ----------------------------------------------------------------------------------------------

_DIRECT_PROCESSOR_FIELDS = frozenset({"StartAt", "States", "ProcessorConfig", "Comment"})
_DIRECT_TASK_FIELDS = frozenset({"Type", "Resource", "Parameters", "OutputPath", "End", "Comment", "Retry"})


class _DirectLambdaTask:
    """A child execution that is exactly one Task
    `{"Resource": lambda:invoke, "Parameters": {"FunctionName": F, "Payload.$": "$"},
    "OutputPath": "$.Payload", "End": true}` (Retry allowed), run as the interpreter runs it
    (states.py: `_run_Task`, `_invoke_lambda`, `_with_retry_and_catch`, `_check_size`) - same
    payload, error names and causes, retries and counters - without building the child's context,
    event history or the lambda:invoke response envelope the OutputPath drops at once. A map of a
    million items spends most of its time here. tests/local/test_map_run.py holds both paths to
    the same results."""

    def __init__(self, name: str, task: dict[str, Any], services: Any) -> None:
        self.name = name
        self.function: str = task["Parameters"]["FunctionName"]
        self.retry = RetryPolicy.parse(task.get("Retry"), name)
        self.services = services

    @classmethod
    def for_processor(cls, processor: dict[str, Any], services: Any) -> _DirectLambdaTask | None:
        """The direct runner when the processor has that shape and the services a Lambda runtime."""
        if getattr(services, "runtime", None) is None or not all(
            hasattr(services, name) for name in ("stats", "rng", "retry_wait")
        ):
            return None
        states = processor.get("States")
        if not set(processor) <= _DIRECT_PROCESSOR_FIELDS or not isinstance(states, dict) or len(states) != 1:
            return None
        name, task = next(iter(states.items()))
        if (
            processor.get("StartAt") != name
            or not isinstance(task, dict)
            or not set(task) <= _DIRECT_TASK_FIELDS
            or task.get("Type") != "Task"
            or task.get("End") is not True
            or task.get("Resource") != LAMBDA_INVOKE
            or task.get("OutputPath") != "$.Payload"
        ):
            return None
        parameters = task.get("Parameters")
        if (
            not isinstance(parameters, dict)
            or set(parameters) != {"FunctionName", "Payload.$"}
            or parameters["Payload.$"] != "$"
            or not isinstance(parameters["FunctionName"], str)
        ):
            return None
        return cls(name, task, services)

    def __call__(self, child_input: Any, json_text: str | None = None) -> Any:
        payload = self.entered(child_input, json_text)
        return self.checked(retrying(lambda _: self._invoke(payload), self.retry, self.services))

    def entered(self, child_input: Any, json_text: str | None = None) -> bytes:
        """The child starts: its one state transition, and the payload every attempt sends
        (`json_text`: the input's compact JSON, when the batcher cut it from the reader's text)."""
        self.services.stats.add("state_transitions")
        if json_text is not None:
            return json_text.encode("utf-8")
        if isinstance(child_input, str):
            return child_input.encode("utf-8")  # a string Payload is sent verbatim
        if child_input is None:
            return b"{}"
        return to_json(child_input).encode("utf-8")

    def retry_delay(self, exc: StatesError, attempts: list[int]) -> float | None:
        """The backoff before the next attempt (counted as a retry), or None: the error stands."""
        delay = self.retry.next_delay(exc.error, attempts, self.services.rng)
        if delay is not None:
            self.services.stats.add("retries")
        return delay

    def checked(self, output: Any) -> Any:
        """The child's output, refused past the payload limit."""
        if isinstance(output, (dict, list, str)) and utf8_length(to_json(output)) > PAYLOAD_LIMIT_BYTES:
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                f"The state/task '{self.name}' returned a result with a size exceeding the maximum number "
                "of bytes service limit.",
            )
        return output

    def _invoke(self, payload: bytes) -> Any:
        self.services.stats.add("invocations")
        try:
            invocation = self.services.runtime.invoke(self.function, payload)
        except StatesError as exc:
            self.refused(exc)
            raise
        return self.output(invocation)

    def refused(self, exc: StatesError) -> None:
        """The Lambda service refused the invocation: counted as a failure (a throttle too)."""
        self.services.stats.add("failures")
        if exc.error == "Lambda.TooManyRequestsException":
            self.services.stats.add("throttles")

    def output(self, invocation: Any) -> Any:
        """The Task's result from what lambda:Invoke returned (a function error raises)."""
        services = self.services
        body: bytes = invocation.payload
        if invocation.function_error:
            services.stats.add("failures")
            raise lambda_function_error(body, integration=True)
        if len(body) > PAYLOAD_LIMIT_BYTES:
            raise StatesError(
                DATA_LIMIT_EXCEEDED,
                "The state/task 'lambda' returned a result with a size exceeding the maximum number of "
                "bytes service limit.",
            )
        try:
            return json.loads(body) if body.strip() else None
        except ValueError:
            raise StatesError(
                "Lambda.Unknown",
                f"The function '{self.function}' returned a payload that is not JSON: {body[:200]!r}",
            ) from None


@dataclass
class _DispatchedChild:
    outcome: _Outcome
    payload: bytes
    attempts: list[int]


class _DispatchedChildren:
    """The children of a map whose processor is a `_DirectLambdaTask` on a worker-served function,
    run from the map's own thread through one InvocationDispatcher: no thread per child, no
    hand-offs between threads. Each child goes through the same steps as `_DirectLambdaTask.__call__`
    (payload, counters, retries, output check); a child waiting for a Retry backoff sits in a heap
    of ready-at times, so it holds up no other child. With an injected clock other than the real
    one (a FakeClock in tests), the backoff goes through `services.retry_wait` as in the thread
    path."""

    def __init__(self, direct: _DirectLambdaTask, dispatcher: Any, identity: _Identity) -> None:
        self.direct = direct
        self.dispatcher = dispatcher
        self.identity = identity
        services = direct.services
        self.real_time = type(getattr(services, "clock", None)) is RealClock and (
            getattr(type(services), "retry_wait", None) is Services.retry_wait
        )
        self.running = 0
        self.waiting: list[tuple[float, int, _DispatchedChild]] = []  # (ready at, tie-break, child)
        self.tie = 0
        self.done: list[_Outcome] = []

    def __len__(self) -> int:
        return self.running

    def start(self, batch: _Batch) -> None:
        start = datetime.now(UTC)
        outcome = _Outcome(batch, self.identity, start, start)
        child = _DispatchedChild(
            outcome,
            self.direct.entered(None, batch.json_text)
            if batch.json_text is not None
            else self.direct.entered(batch.child_input),
            self.direct.retry.new_attempts(),
        )
        self.running += 1
        self._attempt(child)

    def _attempt(self, child: _DispatchedChild) -> None:
        self.direct.services.stats.add("invocations")
        try:
            self.dispatcher.submit(child.payload, child)
        except StatesError as exc:
            self.direct.refused(exc)
            self._attempt_failed(child, exc)

    def _attempt_failed(self, child: _DispatchedChild, exc: StatesError) -> None:
        delay = self.direct.retry_delay(exc, child.attempts)
        if delay is None:
            self._finish(child, exc)
            return
        services = self.direct.services
        ready_at = 0.0
        if self.real_time:
            ready_at = time.monotonic() + max(0.0, delay * services.retry_time_scale)
        else:
            services.retry_wait(delay)
        self.tie += 1
        heapq.heappush(self.waiting, (ready_at, self.tie, child))

    def _answered(self, child: _DispatchedChild, result: Any) -> None:
        if isinstance(result, StatesError):  # refused by the service (a payload that is not JSON)
            self.direct.refused(result)
            self._attempt_failed(child, result)
            return
        try:
            output = self.direct.output(result)
        except StatesError as exc:
            self._attempt_failed(child, exc)
            return
        try:
            child.outcome.output = self.direct.checked(output)
        except StatesError as exc:
            self._finish(child, exc)
            return
        self._finish(child, None)

    def _finish(self, child: _DispatchedChild, exc: StatesError | None) -> None:
        outcome = child.outcome
        if exc is not None:
            outcome.failed, outcome.error, outcome.cause = True, exc.error, exc.cause
        outcome.stop = datetime.now(UTC)
        self.done.append(outcome)

    def collect(self, record: Callable[[_Outcome], None]) -> None:
        """Wait for at least one running child to finish and record every finished one."""
        while not self.done:
            now = time.monotonic()
            while self.waiting and self.waiting[0][0] <= now:
                self._attempt(heapq.heappop(self.waiting)[2])
            if self.done:
                break
            timeout = max(0.0, self.waiting[0][0] - now) if self.waiting else None
            if not self.dispatcher.pending:
                if timeout is not None:
                    threading.Event().wait(timeout)
                continue
            for child, result in self.dispatcher.wait(timeout):
                self._answered(child, result)
        done, self.done = self.done, []
        for outcome in done:
            self.running -= 1
            record(outcome)

    def close(self, cancel: bool) -> None:
        if cancel:
            self.dispatcher.abandon()


class _ThreadedChildren:
    """Children run on a thread pool, one thread each while it runs (any ItemProcessor)."""

    def __init__(self, run_one: Callable[[_Batch], _Outcome], pool_size: int, label: str) -> None:
        self.run_one = run_one
        self.executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=f"map-{label}")
        self.in_flight: dict[Future[_Outcome], _Batch] = {}
        self.finished: SimpleQueue[Future[_Outcome]] = SimpleQueue()  # in_flight's, as they finish

    def __len__(self) -> int:
        return len(self.in_flight)

    def start(self, batch: _Batch) -> None:
        future = self.executor.submit(self.run_one, batch)
        self.in_flight[future] = batch
        future.add_done_callback(self.finished.put)

    def collect(self, record: Callable[[_Outcome], None]) -> None:
        """Wait for at least one running child and record every finished one."""
        future = self.finished.get()
        while True:
            self.in_flight.pop(future)
            record(future.result())
            try:
                future = self.finished.get_nowait()
            except Empty:
                break

    def close(self, cancel: bool) -> None:
        self.executor.shutdown(wait=True, cancel_futures=cancel)


# ----------------------------------------------------------------------------------------------
# Running the children
# ----------------------------------------------------------------------------------------------


@dataclass
class _Outcome:
    batch: _Batch
    identity: _Identity
    start: datetime
    stop: datetime
    output: Any = None
    failed: bool = False
    error: str | None = None
    cause: str | None = None

    @property
    def succeeded(self) -> bool:
        return not self.failed

    @cached_property
    def name(self) -> str:
        """The child's name, made when a record needs it (a hash per child otherwise wasted)."""
        return self.identity.child_name(self.batch.sequence)

    @cached_property
    def execution_arn(self) -> str:
        return self.identity.child_execution_arn(self.name)


@dataclass(frozen=True)
class _Identity:
    """ARNs of a map run and of its child executions, shaped like AWS's."""

    region: str
    account: str
    state_machine_name: str
    label: str
    map_run_id: str
    execution_type: str

    @property
    def map_run_arn(self) -> str:
        return (
            f"arn:aws:states:{self.region}:{self.account}:mapRun:"
            f"{self.state_machine_name}/{self.label}:{self.map_run_id}"
        )

    @property
    def child_state_machine_name(self) -> str:
        return f"{self.state_machine_name}/{self.label}"

    @property
    def child_state_machine_arn(self) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{self.child_state_machine_name}"

    def child_name(self, sequence: int) -> str:
        """A UUID per child, stable for a map run (AWS names children with UUIDs too)."""
        return str(uuid.uuid5(uuid.UUID(self.map_run_id), str(sequence)))

    def child_execution_arn(self, name: str) -> str:
        kind = "express" if self.execution_type == "EXPRESS" else "execution"
        return f"arn:aws:states:{self.region}:{self.account}:{kind}:{self.child_state_machine_name}:{name}"


def _identity(state_name: str, state: dict[str, Any], context: dict[str, Any], services: Any) -> _Identity:
    machine = context.get("StateMachine") or {}
    name = machine.get("Name") or getattr(services, "state_machine_name", None) or "StateMachine"
    arn = machine.get("Id") or getattr(services, "state_machine_arn", None) or ""
    parts = arn.split(":")
    region, account = (
        (parts[3], parts[4]) if len(parts) > 5 and parts[0] == "arn" else (LOCAL_REGION, LOCAL_ACCOUNT)
    )
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    execution_type = processor.get("ProcessorConfig", {}).get("ExecutionType", "STANDARD")
    return _Identity(
        region, account, name, state.get("Label") or state_name, str(uuid.uuid4()), execution_type
    )


def _pool_size(max_concurrency: int, services: Any) -> int:
    """MaxConcurrency, capped by what the machine usefully runs (0 means AWS's maximum: the cap)."""
    workers = getattr(services, "max_workers", None) or os.cpu_count() or 1
    cap = max(1, THREADS_PER_WORKER * workers)
    return cap if max_concurrency == 0 else min(max_concurrency, cap)


def _succeeded_record(outcome: _Outcome, identity: _Identity) -> dict[str, Any]:
    return {
        "ExecutionArn": outcome.execution_arn,
        "Input": outcome.batch.input_json(),
        "InputDetails": {"Included": True},
        "Name": outcome.name,
        "Output": to_json(outcome.output),
        "OutputDetails": {"Included": True},
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE",
        "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven",
        "StartDate": iso_timestamp(outcome.start),
        "StateMachineArn": identity.child_state_machine_arn,
        "Status": "SUCCEEDED",
        "StopDate": iso_timestamp(outcome.stop),
    }


def _failed_record(outcome: _Outcome, identity: _Identity) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if outcome.cause is not None:
        record["Cause"] = outcome.cause
    if outcome.error is not None:
        record["Error"] = outcome.error
    record.update(
        {
            "ExecutionArn": outcome.execution_arn,
            "Input": outcome.batch.input_json(),
            "InputDetails": {"Included": True},
            "Name": outcome.name,
            "RedriveCount": 0,
            "RedriveStatus": "REDRIVABLE_BY_MAP_RUN"
            if identity.execution_type == "EXPRESS"
            else "REDRIVABLE",
            "StartDate": iso_timestamp(outcome.start),
            "StateMachineArn": identity.child_state_machine_arn,
            "Status": "FAILED",
            "StopDate": iso_timestamp(outcome.stop),
        }
    )
    return record


def _pending_record(batch: _Batch) -> dict[str, Any]:
    return {"Input": batch.input_json(), "InputDetails": {"Included": True}, "Status": "PENDING"}


def _tolerance_exceeded(settings: _Settings, run: MapRun) -> bool:
    """Past the threshold: more failed items than ToleratedFailureCount, or a larger share than
    ToleratedFailurePercentage of all items (decided once the total is known). With neither field,
    one failed item is past it."""
    failed = run.item_counts.failed
    if failed == 0:
        return False
    count, percentage = settings.tolerated_count, settings.tolerated_percentage
    if count is None and percentage is None:
        return True
    if count is not None and failed > count:
        return True
    if percentage is not None and run.items_read_complete:
        return failed * 100 > percentage * run.item_counts.total
    return False


def run_distributed_map(
    state_name: str,
    state: dict[str, Any],
    effective_input: Any,
    context: dict[str, Any],
    services: Any,
    run_child: Callable[[Any, dict[str, Any]], Any],
    *,
    on_progress: Callable[[MapRun], None] | None = None,
    result_file_max_bytes: int = RESULT_FILE_MAX_BYTES,
    select_item: Callable[[Any, dict[str, Any]], Any] | None = None,
) -> Any:
    """Run one distributed Map state and return its raw result (before ResultSelector/ResultPath).

    Without a ResultWriter destination: the list of child outputs in item order (a failed child
    within tolerance appears as its full execution record, as AWS documents). With one:
    {"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}. Past the tolerated failures it raises
    States.ExceedToleratedFailureThreshold, after writing the results (PENDING for unstarted items).

    `services` provides `.s3` (boto3 S3 client or None), optionally `.max_workers`, `.map_runs` (a
    list the MapRun is appended to) and `.on_map_run_progress` (callback, like `on_progress`).
    `select_item(value, item_context)` replaces the state's ItemSelector (a JSONata ItemSelector).
    """
    settings = _resolve_settings(state_name, state, effective_input, context)
    identity = _identity(state_name, state, context, services)
    pool_size = _pool_size(settings.max_concurrency, services)
    run = MapRun(
        identity.map_run_arn,
        state_name,
        identity.label,
        settings.max_concurrency,
        settings.tolerated_count,
        settings.tolerated_percentage,
    )
    map_runs = getattr(services, "map_runs", None)
    if isinstance(map_runs, list):
        map_runs.append(run)
    progress = on_progress or getattr(services, "on_map_run_progress", None)
    writer_config = WriterConfig.from_state(state.get("ResultWriter"))
    writer = _open_writer(
        state_name, state, effective_input, context, services, identity, writer_config, result_file_max_bytes
    )
    role_arn = (context.get("Execution") or {}).get("RoleArn")

    direct = _DirectLambdaTask.for_processor(
        state.get("ItemProcessor") or state.get("Iterator") or {}, services
    )

    def run_one(batch: _Batch) -> _Outcome:
        start = datetime.now(UTC)
        if direct is not None:
            outcome = _Outcome(batch, identity, start, start)
            try:
                if batch.json_text is not None:
                    outcome.output = direct(None, batch.json_text)
                else:
                    outcome.output = direct(batch.child_input)
            except StatesError as exc:
                outcome.failed, outcome.error, outcome.cause = True, exc.error, exc.cause
            outcome.stop = datetime.now(UTC)
            return outcome
        outcome = _Outcome(batch, identity, start, start)
        name, arn = outcome.name, outcome.execution_arn
        child_context: dict[str, Any] = {
            "Execution": {
                "Id": arn,
                "Name": name,
                "Input": batch.child_input,
                "StartTime": iso_timestamp(start),
                "RedriveCount": 0,
            },
            "StateMachine": {
                "Id": identity.child_state_machine_arn,
                "Name": identity.child_state_machine_name,
            },
        }
        if role_arn is not None:
            child_context["Execution"]["RoleArn"] = role_arn
        try:
            outcome.output = run_child(batch.child_input, child_context)
        except Exception as exc:
            if not is_states_error(exc):
                raise
            outcome.failed, outcome.error, outcome.cause = True, exc.error, getattr(exc, "cause", None)
        outcome.stop = datetime.now(UTC)
        return outcome

    outputs: dict[int, Any] = {}
    lock = threading.Lock()  # counts are read by progress callbacks on other threads

    def record(outcome: _Outcome) -> None:
        items = outcome.batch.item_count
        with lock:
            run.item_counts.running -= items
            run.execution_counts.running -= 1
            if outcome.succeeded:
                run.item_counts.succeeded += items
                run.execution_counts.succeeded += 1
            else:
                run.item_counts.failed += items
                run.execution_counts.failed += 1
        if writer is not None:
            if outcome.succeeded:
                writer.add_succeeded(_succeeded_record(outcome, identity), outcome.output)
            else:
                writer.add_failed(_failed_record(outcome, identity))
            with lock:
                run.item_counts.resultsWritten += items
                run.execution_counts.resultsWritten += 1
        elif outcome.succeeded:
            outputs[outcome.batch.sequence] = (
                outcome.output
                if writer_config.transformation != "NONE"
                else _succeeded_record(outcome, identity)
            )
        else:
            outputs[outcome.batch.sequence] = _failed_record(outcome, identity)
        if progress is not None:
            progress(run)

    batches = _child_inputs(
        state_name,
        state,
        item_reader.iter_item_chunks(
            state_name,
            state,
            effective_input,
            context,
            getattr(services, "s3", None),
            # Children that send their whole input as the payload need only the items' text.
            unparsed_integers=direct is not None
            and settings.max_items_per_batch is not None
            and state.get("ItemSelector", state.get("Parameters")) is None
            and select_item is None,
        ),
        effective_input,
        context,
        settings,
        select_item,
    )
    dispatcher = None
    if direct is not None and hasattr(services.runtime, "dispatcher"):
        dispatcher = services.runtime.dispatcher(direct.function)
    children: _DispatchedChildren | _ThreadedChildren = (
        _DispatchedChildren(direct, dispatcher, identity)
        if direct is not None and dispatcher is not None
        else _ThreadedChildren(run_one, pool_size, identity.label)
    )
    exceeded = False
    try:

        def collect() -> None:
            """Wait for at least one running child, record every finished one, check tolerance."""
            nonlocal exceeded
            children.collect(record)
            if _tolerance_exceeded(settings, run):
                exceeded = True

        for batch in batches:
            with lock:
                run.item_counts.total += batch.item_count
                run.execution_counts.total += 1
            while len(children) >= pool_size:
                collect()
            if exceeded:
                _record_pending(batch, batches, run, writer, lock)
                break
            with lock:
                run.item_counts.running += batch.item_count
                run.execution_counts.running += 1
            children.start(batch)
        with lock:
            run.items_read_complete = True
        while len(children):
            collect()
        exceeded = exceeded or _tolerance_exceeded(settings, run)
    except BaseException:
        run.status = "FAILED"
        run.stop_date = iso_timestamp()
        children.close(cancel=True)
        if writer is not None:
            writer.close()
        raise
    children.close(cancel=False)

    run.status = "FAILED" if exceeded else "SUCCEEDED"
    run.stop_date = iso_timestamp()
    if progress is not None:
        progress(run)
    if writer is not None:
        try:
            details = writer.finish()
        except (ClientError, BotoCoreError) as exc:
            raise states_error(
                "States.ResultWriterFailed", f"writing the results to S3 failed: {exc}"
            ) from exc
        finally:
            writer.close()
        if exceeded:
            raise states_error("States.ExceedToleratedFailureThreshold", TOLERANCE_EXCEEDED_CAUSE)
        return {"MapRunArn": identity.map_run_arn, "ResultWriterDetails": details}
    if exceeded:
        raise states_error("States.ExceedToleratedFailureThreshold", TOLERANCE_EXCEEDED_CAUSE)
    ordered = (outputs.pop(sequence) for sequence in range(len(outputs)))
    if writer_config.transformation == "FLATTEN":
        return [entry for value in ordered for entry in _flatten_one(value)]
    return list(ordered)


def _flatten_one(value: Any) -> Iterator[Any]:
    return transformed_entries(WriterConfig(transformation="FLATTEN"), {}, value)


def _record_pending(
    first: _Batch, rest: Iterator[_Batch], run: MapRun, writer: ResultWriter | None, lock: threading.Lock
) -> None:
    """Items never started because the map run failed: counted as pending, written to PENDING_n."""
    with lock:
        run.item_counts.pending += first.item_count
        run.execution_counts.pending += 1
    if writer is not None:
        writer.add_pending(_pending_record(first))
    for batch in rest:
        with lock:
            run.item_counts.total += batch.item_count
            run.execution_counts.total += 1
            run.item_counts.pending += batch.item_count
            run.execution_counts.pending += 1
        if writer is not None:
            writer.add_pending(_pending_record(batch))


def _open_writer(
    state_name: str,
    state: dict[str, Any],
    data: Any,
    context: dict[str, Any],
    services: Any,
    identity: _Identity,
    config: WriterConfig,
    max_file_bytes: int,
) -> ResultWriter | None:
    spec = state.get("ResultWriter")
    if spec is None or "Resource" not in spec:
        return None
    s3 = getattr(services, "s3", None)
    if s3 is None:
        raise states_error(
            "States.ResultWriterFailed",
            f"state '{state_name}' writes its results to S3 but the engine has no S3 client; "
            "start the local S3 endpoint or pass --endpoint-url",
        )
    parameters = resolve_template(spec["Parameters"], data, context)
    return ResultWriter(
        s3,
        parameters["Bucket"],
        parameters.get("Prefix", ""),
        identity.map_run_arn,
        identity.map_run_id,
        config,
        max_file_bytes=max_file_bytes,
    )
