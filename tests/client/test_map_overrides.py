"""--batch-size and --max-concurrency on the loaded definition: BurstCompute's maps become exactly what the
construct renders for those props; any other map takes them where ASL allows, or is refused by name."""

from __future__ import annotations

import copy
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_support import fast_app, inline_function, only_state_machine, template_of

from burstmap.cdk.construct import BurstCompute
from burstmap.client.job_input import JobInputError
from burstmap.client.map_overrides import MapOverrideError, MapOverrides, apply_map_overrides
from burstmap.runtime.contracts import compute_item_field


def rendered(**props: Any) -> dict[str, Any]:
    """The definition BurstCompute renders with these props (same stack and ids every time)."""
    stack = cdk.Stack(fast_app(), "Jobs")
    BurstCompute(stack, "Job", compute=inline_function(stack, "Compute"), **props)
    return only_state_machine(template_of(stack))


@pytest.mark.parametrize("mode", [{}, {"input_prefix": "input"}], ids=["items", "objects"])
@pytest.mark.parametrize(("deployed", "asked"), [(1, 5), (5, 1), (50, 7), (1, 1), (50, 50)])
def test_a_burstcompute_map_becomes_what_the_construct_renders_for_that_batch_size(
    mode: dict[str, Any], deployed: int, asked: int
) -> None:
    definition = rendered(batch_size=deployed, **mode)
    before = copy.deepcopy(definition)

    changed = apply_map_overrides(definition, MapOverrides(batch_size=asked), state_machine="Jobs/Job")

    assert changed == rendered(batch_size=asked, **mode)
    assert definition == before  # the loaded definition itself is left alone


@pytest.mark.parametrize("mode", [{}, {"input_prefix": "input"}], ids=["items", "objects"])
def test_max_concurrency_is_what_the_construct_renders(mode: dict[str, Any]) -> None:
    changed = apply_map_overrides(
        rendered(**mode), MapOverrides(max_concurrency=7, batch_size=3), state_machine="Jobs/Job"
    )
    assert changed == rendered(max_concurrency=7, batch_size=3, **mode)


def test_the_shared_shape_recognises_both_selectors_and_nothing_else() -> None:
    unbatched = rendered(batch_size=1)["States"]["MapPayloadItems"]["ItemSelector"]
    batched = rendered(batch_size=5)["States"]["MapPayloadItems"]["ItemSelector"]
    assert compute_item_field(unbatched) == compute_item_field(batched) == {"item.$": "$$.Map.Item.Value"}
    assert compute_item_field({**unbatched, "extra": 1}) is None
    assert compute_item_field({"item.$": "$$.Map.Item.Value", "index.$": "$.i"}) is None
    assert compute_item_field("$$.Map.Item.Value") is None


# -- any other Distributed Map --------------------------------------------------------------------


def distributed_map(**fields: Any) -> dict[str, Any]:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:w", "End": True}
        },
    }
    return {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}


def machine(**states: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states}


def test_a_batched_map_of_any_app_takes_the_batch_size_and_loses_its_path() -> None:
    definition = machine(
        Fan=distributed_map(ItemBatcher={"MaxItemsPerBatchPath": "$.n", "BatchInput": {"a": 1}})
    )

    changed = apply_map_overrides(definition, MapOverrides(batch_size=5), state_machine="S/M")

    assert changed["States"]["Fan"]["ItemBatcher"] == {"MaxItemsPerBatch": 5, "BatchInput": {"a": 1}}


def test_concurrency_reaches_nested_maps_and_replaces_a_path() -> None:
    inner = distributed_map(MaxConcurrencyPath="$.c")
    outer = {
        "Type": "Parallel",
        "Branches": [machine(Inner=inner)],
        "End": True,
    }
    changed = apply_map_overrides(machine(Outer=outer), MapOverrides(max_concurrency=0), state_machine="S/M")

    assert changed["States"]["Outer"]["Branches"][0]["States"]["Inner"]["MaxConcurrency"] == 0
    assert "MaxConcurrencyPath" not in changed["States"]["Outer"]["Branches"][0]["States"]["Inner"]


def test_an_unbatched_map_of_another_shape_is_refused_with_the_machine_the_state_and_why() -> None:
    definition = machine(Fan=distributed_map(ItemSelector={"value.$": "$$.Map.Item.Value"}))

    with pytest.raises(MapOverrideError) as raised:
        apply_map_overrides(definition, MapOverrides(batch_size=5), state_machine="MyStack/Other")

    assert str(raised.value).startswith(
        "batch_size (--batch-size) cannot apply to state machine MyStack/Other, map state 'Fan': it has no "
        "ItemBatcher, so each child execution gets one item"
    )
    # one item a child is what it already does
    assert apply_map_overrides(definition, MapOverrides(batch_size=1), state_machine="S") == definition


def test_burstcompute_selector_without_its_combine_is_refused() -> None:
    definition = rendered(batch_size=1)
    definition["States"]["Combine"]["Parameters"]["Payload"].pop("batched")

    with pytest.raises(MapOverrideError, match='not a Combine task whose payload says "batched": false'):
        apply_map_overrides(definition, MapOverrides(batch_size=5), state_machine="Jobs/Job")


def test_flattened_results_cannot_be_batched() -> None:
    definition = rendered(batch_size=1)
    for name in ("MapPayloadItems", "MapS3JsonlItems", "MapS3CsvItems", "MapS3JsonItems"):
        definition["States"][name]["ResultWriter"]["WriterConfig"]["Transformation"] = "FLATTEN"

    with pytest.raises(MapOverrideError, match="FLATTENs results"):
        apply_map_overrides(definition, MapOverrides(batch_size=5), state_machine="Jobs/Job")


def test_a_machine_without_a_distributed_map_is_refused() -> None:
    definition = machine(Only={"Type": "Pass", "End": True})
    with pytest.raises(
        MapOverrideError,
        match="max_concurrency applies to Distributed Map states, and state machine S/M has none",
    ):
        apply_map_overrides(definition, MapOverrides(max_concurrency=3), state_machine="S/M")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, "batch_size must be 1 or more, got 0"),
        ({"batch_size": True}, "batch_size must be 1 or more, got True"),
        ({"max_concurrency": -1}, "max_concurrency must be 0 (no limit) to 10000, got -1"),
        ({"max_concurrency": 10_001}, "max_concurrency must be 0 (no limit) to 10000, got 10001"),
    ],
)
def test_bad_values_are_job_input_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(JobInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MapOverrides(**overrides)
