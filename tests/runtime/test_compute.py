"""burstmap.runtime.compute: one handler for single and batched events, batch functions, malformed events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from burstmap.runtime.compute import batch_compute_handler, compute_handler, parse_compute_event
from burstmap.runtime.contracts import (
    ENV_SUMMED_RESULTS,
    InvalidComputeEvent,
    InvalidComputeResult,
    failed_item_index,
    mark_failed_item,
    without_item_mark,
)


def square_plus(item: Any, parameters: dict[str, Any]) -> Any:
    return item * item + parameters.get("plus", 0)


handler = compute_handler(square_plus)


def batched(items: list[int], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Items": [{"item": item, "index": position} for position, item in enumerate(items)],
        "BatchInput": {"parameters": parameters or {}},
    }


def test_single_item_event() -> None:
    assert handler({"item": 7, "index": 3, "parameters": {"plus": 1}}, None) == 50


def test_single_item_without_parameters_gets_an_empty_object() -> None:
    seen: list[Any] = []
    compute_handler(lambda item, parameters: seen.append(parameters))({"item": 1, "index": 0}, None)
    assert seen == [{}]


def test_batched_event_returns_results_aligned_with_items() -> None:
    assert handler(batched([1, 2, 3], {"plus": 10}), None) == [11, 14, 19]


def test_batched_event_without_batch_input() -> None:
    assert handler({"Items": [{"item": 2, "index": 0}]}, None) == [4]


def test_empty_batch() -> None:
    assert handler(batched([]), None) == []


def test_batch_fn_computes_the_batch_in_one_call() -> None:
    calls: list[list[int]] = []

    def squares(items: list[int], parameters: dict[str, Any]) -> list[int]:
        calls.append(items)
        return [item * item for item in items]

    both = compute_handler(square_plus, batch_fn=squares)
    assert both(batched([4, 5]), None) == [16, 25]
    assert both({"item": 6, "index": 0, "parameters": {}}, None) == 36  # single items still use fn
    assert calls == [[4, 5]]


def test_batch_compute_handler_treats_one_item_as_a_batch_of_one() -> None:
    only_batches = batch_compute_handler(lambda items, parameters: [-item for item in items])
    assert only_batches({"item": 3, "index": 0, "parameters": {}}, None) == -3
    assert only_batches(batched([1, 2]), None) == [-1, -2]


def test_big_integer_results_travel_as_decimal_strings() -> None:
    big = compute_handler(lambda item, parameters: 10**item)
    assert big({"item": 30, "index": 0}, None) == "1" + "0" * 30
    assert big({"item": 3, "index": 0}, None) == 1000
    assert big(batched([3, 20]), None) == [1000, "1" + "0" * 20]
    json.dumps(big({"item": 6000, "index": 0}, None))  # the Lambda runtime can serialise it


def test_handler_keeps_the_functions_for_reuse() -> None:
    assert handler.compute is square_plus  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            [1, 2],
            r"A compute handler expects \{\"item\": <value>, .*got list\. Check the Map state's ItemSelector",
        ),
        ({"value": 1}, r"got an object with keys \['value'\]\. Check the Map state's ItemSelector"),
        ({"Items": {"item": 1}}, r"A batch's Items must be a list; got dict"),
        ({"Items": [], "BatchInput": [1]}, r"A batch's BatchInput must be an object; got list"),
        ({"Items": [{"item": 1}, 5]}, r"Items\[1\] must be an object with \"item\""),
        ({"item": 1, "parameters": [1]}, r"parameters must be an object; got list"),
    ],
)
def test_malformed_events_name_the_expected_shapes(event: Any, message: str) -> None:
    with pytest.raises(InvalidComputeEvent, match=message) as caught:
        handler(event, None)
    assert '{"Items": [{"item": <value>, "index": <int>}, ...], "BatchInput"' in str(caught.value)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ([1], r"returned 1 results for a batch of 2 items: return exactly one result per item"),
        ("12", r"must return a list with one result per item; it returned str"),
        (None, r"must return a list with one result per item; it returned NoneType"),
    ],
)
def test_batch_fn_must_return_one_result_per_item(returned: Any, message: str) -> None:
    def wrong(items: list[Any], parameters: dict[str, Any]) -> Any:
        return returned

    with pytest.raises(InvalidComputeResult, match=message):
        compute_handler(square_plus, batch_fn=wrong)(batched([1, 2]), None)


def test_parse_compute_event_reports_the_shape() -> None:
    assert parse_compute_event({"item": "a", "index": 0, "parameters": {"k": 1}}) == (["a"], {"k": 1}, False)
    assert parse_compute_event(batched(["a", "b"], {"k": 2})) == (["a", "b"], {"k": 2}, True)


# ------------------------------------------------------------------------------------------ which item failed
class Rejected(Exception):
    """A user's error type: the ASL error name Retry and Catch match must not change."""


def reject_three(item: Any, parameters: dict[str, Any]) -> Any:
    if item == 3:
        raise Rejected(f"item {item} is not allowed")
    return item


def test_an_item_that_raises_in_a_batch_is_named_in_the_message_and_keeps_its_type() -> None:
    event = {"Items": [{"item": v, "index": 10 + v} for v in (1, 2, 3, 4)], "BatchInput": {"parameters": {}}}
    with pytest.raises(Rejected) as raised:
        compute_handler(reject_three)(event, None)
    assert str(raised.value) == "[item 13] item 3 is not allowed"
    assert failed_item_index(str(raised.value)) == 13
    assert without_item_mark(str(raised.value)) == "item 3 is not allowed"


def test_a_single_item_that_raises_is_left_as_raised() -> None:
    with pytest.raises(Rejected) as raised:
        compute_handler(reject_three)({"item": 3, "index": 3}, None)
    assert str(raised.value) == "item 3 is not allowed"


@pytest.mark.parametrize(
    ("error", "marked"),
    [
        (KeyError("k"), "'[item 5] k'"),  # KeyError shows its argument's repr
        (ValueError(), "[item 5] "),
        (
            OSError(2, "No such file or directory"),
            "[Errno 2] No such file or directory",
        ),  # str() ignores args
    ],
)
def test_marking_works_through_the_message_or_leaves_the_error_alone(error: Exception, marked: str) -> None:
    mark_failed_item(error, 5)
    assert str(error) == marked
    assert failed_item_index(str(error)) == (None if marked.startswith("[Errno") else 5)


# ------------------------------------------------------------------------------------------ the default sum
@pytest.fixture
def summed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compute function of a job whose combiner is the default sum (BurstCompute sets this)."""
    monkeypatch.setenv(ENV_SUMMED_RESULTS, "1")


def half(item: Any, parameters: dict[str, Any]) -> Any:
    return item / 2


@pytest.mark.usefixtures("summed")
def test_a_result_the_default_sum_cannot_add_fails_its_item_at_once() -> None:
    with pytest.raises(InvalidComputeResult) as single:
        compute_handler(half)({"item": 3, "index": 8}, None)
    assert str(single.value) == (
        "The result of item 8 is 1.5, which burstmap's default combiner (an exact sum) cannot add: return an "
        "integer (or its decimal string), or give BurstCompute a combine function that takes this result "
        "(burstmap.compute.combine_handler)."
    )
    with pytest.raises(InvalidComputeResult) as in_batch:
        compute_handler(half)(batched([2, 3]), None)  # 2 / 2 is 1.0: a float too
    assert str(in_batch.value).startswith("[item 0] The result of item 0 is 1.0, which")


@pytest.mark.usefixtures("summed")
def test_integers_and_decimal_strings_pass_the_sum_check() -> None:
    exact = compute_handler(lambda item, parameters: item**40 if item % 2 else str(item))
    assert exact(batched([1, 2, 3]), None) == [1, "2", str(3**40)]  # 3**40 travels as a decimal string


def test_without_the_default_sum_any_json_result_passes() -> None:
    assert compute_handler(half)(batched([2, 3]), None) == [1.0, 1.5]
