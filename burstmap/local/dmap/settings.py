"""A distributed Map state's own fields: which the engine runs, their load-time checks, and the
values they take for one map run (MaxConcurrency, the tolerated failures, the ItemBatcher).

Each "X or XPath" field is read by query.jsonpath.field_or_path; the ItemReader, ItemBatcher and
ResultWriter blocks are checked by the modules named after them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from burstmap.local.core.errors import StateRuntimeError, unsupported
from burstmap.local.dmap.fields import check_exclusive, check_int, invalid
from burstmap.local.dmap.item_batcher import BatcherSettings, validate_item_batcher
from burstmap.local.dmap.item_reader import validate_item_reader
from burstmap.local.dmap.result_writer import validate_result_writer
from burstmap.local.query.jsonpath import field_or_path, read_number_path


def is_distributed(state: dict[str, Any]) -> bool:
    """A Map state whose ItemProcessor runs in DISTRIBUTED mode (child workflow executions)."""
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    return (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"


# Fields of a Map state that the states layer (states/definition.py, flow/io.py) handles for every state.
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


def validate_distributed_map(state_name: str, state: dict[str, Any]) -> None:
    """Refuse, before anything runs, every field this engine would not run exactly as AWS does.

    Raises UnsupportedFeature naming the field and the state, or InvalidDefinition for values AWS
    rejects when the state machine is created.
    """
    if state.get("QueryLanguage") == "JSONata":
        raise unsupported("QueryLanguage: JSONata (distributed Map)", state_name)
    for key in state:
        if key not in _COMMON_FIELDS and key not in _MAP_FIELDS:
            raise unsupported(key, state_name)
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    execution_type = processor.get("ProcessorConfig", {}).get("ExecutionType", "STANDARD")
    if execution_type not in ("STANDARD", "EXPRESS"):
        raise invalid(
            f"ProcessorConfig.ExecutionType must be STANDARD or EXPRESS, got {execution_type!r}", state_name
        )
    if "ItemSelector" in state and "Parameters" in state:
        raise invalid("provide either ItemSelector or Parameters, but not both", state_name)
    for name in ("MaxConcurrency", "ToleratedFailureCount", "ToleratedFailurePercentage"):
        check_exclusive(state, name, "", state_name)
    if "MaxConcurrency" in state:
        check_int(state["MaxConcurrency"], "MaxConcurrency", state_name, 0)
    if "ToleratedFailureCount" in state:
        check_int(state["ToleratedFailureCount"], "ToleratedFailureCount", state_name, 0)
    if "ToleratedFailurePercentage" in state:
        value = state["ToleratedFailurePercentage"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise invalid(
                f"ToleratedFailurePercentage must be a number from 0 to 100, got {value!r}", state_name
            )
    label = state.get("Label")
    if label is not None and (not isinstance(label, str) or len(label) > 40):
        raise invalid("Label must be a string of 40 characters or less", state_name)
    if "ItemReader" in state:
        validate_item_reader(state["ItemReader"], state_name)
    if "ItemBatcher" in state:
        validate_item_batcher(state["ItemBatcher"], state_name)
    if "ResultWriter" in state:
        validate_result_writer(state["ResultWriter"], state_name)


@dataclass(frozen=True)
class MapSettings:
    """A distributed Map's values for one map run (the `...Path` forms read from the state's input)."""

    max_concurrency: int
    tolerated_count: int | None
    tolerated_percentage: float | None
    batcher: BatcherSettings | None

    @classmethod
    def resolve(cls, state: dict[str, Any], data: Any, context: dict[str, Any]) -> MapSettings:
        max_concurrency = field_or_path(state, "MaxConcurrency", data, context, default=0)
        if max_concurrency < 0:
            raise StateRuntimeError("MaxConcurrency cannot be negative.")
        tolerated_count = field_or_path(state, "ToleratedFailureCount", data, context)
        if tolerated_count is not None and tolerated_count < 0:
            raise StateRuntimeError("ToleratedFailureCount cannot be negative.")
        tolerated_percentage = field_or_path(
            state, "ToleratedFailurePercentage", data, context, read=read_number_path
        )
        if tolerated_percentage is not None and not 0 <= tolerated_percentage <= 100:
            raise StateRuntimeError("ToleratedFailurePercentage must be between 0 and 100.")
        batcher = state.get("ItemBatcher")
        return cls(
            max_concurrency,
            tolerated_count,
            tolerated_percentage,
            BatcherSettings.resolve(batcher, data, context) if batcher is not None else None,
        )
