"""The construct's ItemBatcher on the local engine: 50 small items a batch, large items split by bytes."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_support import fast_app, inline_function, only_state_machine, template_of

from burstmap.cdk.construct import BurstCompute
from burstmap.local import execute
from burstmap.runtime.contracts import DEFAULT_MAX_INPUT_BYTES_PER_BATCH


def batch_sizes(event: dict[str, Any], context: Any) -> list[int]:  # noqa: ARG001 - Lambda's signature
    """A compute that reports, per item, how many items its batch had and the batch input's size."""
    size = len(json.dumps(event, separators=(",", ":")).encode())
    return [len(event["Items"]) * 1_000_000 + size] * len(event["Items"])


@pytest.fixture(scope="module")
def payload_map() -> dict[str, Any]:
    """The default construct's payload Map, alone: compute is a local callable, results stay in the state."""
    app = fast_app()
    stack = cdk.Stack(app, "Batching")
    BurstCompute(stack, "Job", compute=inline_function(stack, "Compute"))
    state = dict(only_state_machine(template_of(stack))["States"]["MapPayloadItems"])
    del state["ResultWriter"], state["Next"]
    state["End"] = True
    processor = state["ItemProcessor"]
    (compute_name,) = processor["States"]
    processor["States"][compute_name]["Parameters"]["FunctionName"] = "compute"
    text = json.dumps({"StartAt": "Map", "States": {"Map": state}})
    return json.loads(text.replace("${Ref:AWS::Partition}", "aws"))


def run(definition: dict[str, Any], items: list[Any]) -> list[tuple[int, int]]:
    result = execute(
        definition,
        {"source": "payload", "items": items, "count": len(items), "parameters": {"p": 1}},
        functions={"compute": batch_sizes},
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    # Without a ResultWriter the Map's output is the children's outputs: one list per batch.
    return [divmod(output[0], 1_000_000) for output in result.output["results"]]


def test_small_items_go_50_to_a_batch(payload_map: dict[str, Any]) -> None:
    batches = run(payload_map, list(range(120)))
    assert [count for count, _ in batches] == [50, 50, 20]


def test_large_items_split_by_bytes_below_256_kib(payload_map: dict[str, Any]) -> None:
    """12 items of ~20 KB: one batch of 12 would be ~240 KB; MaxInputBytesPerBatch splits them."""
    items = [{"blob": "x" * 20_000, "n": n} for n in range(12)]
    batches = run(payload_map, items)
    assert [count for count, _ in batches] == [9, 3]  # 9 items: ~180 KB <= 195,584 bytes; 10 would not fit
    assert all(size <= DEFAULT_MAX_INPUT_BYTES_PER_BATCH for _, size in batches)
