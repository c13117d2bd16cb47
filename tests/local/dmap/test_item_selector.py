"""ItemSelector (burstmap.local.dmap.item_selector): the column-wise fast path gives what the template
gives per item, and fails on the first item as the template does."""

from __future__ import annotations

import pytest
from map_support import CONTEXT, distributed, run

from burstmap.local.core.errors import StateRuntimeError
from burstmap.local.dmap import item_selector


def test_item_selector_fast_path_matches_the_template_per_item():
    """The column-wise selector gives what resolve_template gives for each item, constants and
    context fields included, and shares nothing that resolve_template would copy."""
    from burstmap.local.query.payload_template import resolve_template

    selector = {
        "item.$": "$$.Map.Item.Value",
        "index.$": "$$.Map.Item.Index",
        "parameters.$": "$.parameters",
        "execution.$": "$$.Execution.Name",
        "literal": "x",
        "nothing": None,
    }
    data = {"parameters": {"p": 1}}
    items = [{"n": i} for i in range(10_000)]
    chunks = iter([items[:1], items[1:4000], items[4000:]])
    got = [
        value for chunk in item_selector.selected_chunks(selector, chunks, data, CONTEXT) for value in chunk
    ]
    expected = [
        resolve_template(selector, data, {**CONTEXT, "Map": {"Item": {"Index": i, "Value": v}}})
        for i, v in enumerate(items)
    ]
    assert got == expected
    assert [list(value) for value in got[:3]] == [list(value) for value in expected[:3]]  # key order
    assert item_selector.selector_fields({"nested": {"a.$": "$$.Map.Item.Value"}}) is None
    assert item_selector.selector_fields({"v.$": "$$.Map.Item.Value.k"}) is None
    assert item_selector.selector_fields({"f.$": "States.Format('{}', $.a)"}) is None
    assert item_selector.selector_fields({"all.$": "$$"}) is None


def test_item_selector_fast_path_fails_on_the_first_item_like_the_template():
    state = distributed(ItemSelector={"v.$": "$$.Map.Item.Value", "p.$": "$.missing"})
    with pytest.raises(StateRuntimeError, match=r"\$\.missing"):
        run(state, [1, 2, 3])
