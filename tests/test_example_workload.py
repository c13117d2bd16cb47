"""The seed workload: the recurrence handler against the article's brute-force multinomial sum."""

from __future__ import annotations

import json
import math

import pytest
from burstmap.lambdas.example_compute.handler import (
    InvalidItem,
    compute,
    compute_batch,
    count_strings,
    count_strings_range,
    handler,
)

from burstmap.runtime.contracts import decimal_to_int


def multinomial(*vals: int) -> int:
    result = 1
    for i in vals:
        result *= math.factorial(i)
    return math.factorial(sum(vals)) // result


def article_reference(i: int, size: int) -> int:
    """The article's compute Lambda (seed 002), loop for loop: the job's ``size`` bounds the loops."""
    result = 0
    for j in range(0, size // 2 + 1):
        if 2 * j > i:
            break
        for k in range(0, size // 3 + 1):
            if 2 * j + 3 * k > i:
                break
            for l in range(0, size // 4 + 1):  # noqa: E741 - the article's name
                if 2 * j + 3 * k + 4 * l > i:
                    break
                result += (
                    multinomial(i - 2 * j - 3 * k - 4 * l, j, k, l)
                    * 128 ** (i - 2 * j - 3 * k - 4 * l)
                    * 1863 ** (j)
                    * 42451 ** (k)
                    * 78341 ** (l)
                )
    return result


def plain_recurrence(n: int) -> int:
    """a(n) stepped from a(0) = 1: an independent check of the jump used by the handler."""
    a0, a1, a2, a3 = 1, 0, 0, 0  # a(m), a(m-1), a(m-2), a(m-3)
    for _ in range(n):
        a0, a1, a2, a3 = 128 * a0 + 1863 * a1 + 42451 * a2 + 78341 * a3, a0, a1, a2
    return a0


REFERENCE_UP_TO = 60
REFERENCE = [article_reference(i, REFERENCE_UP_TO + 1) for i in range(REFERENCE_UP_TO + 1)]


def test_small_values_by_hand() -> None:
    # 0 bytes: the empty string; 1 byte: 128; 2 bytes: 128*128 + 1863.
    assert [count_strings(i) for i in range(3)] == [1, 128, 128 * 128 + 1863]


@pytest.mark.parametrize("i", range(REFERENCE_UP_TO + 1))
def test_every_item_up_to_60_equals_the_articles_sum(i: int) -> None:
    assert count_strings(i) == REFERENCE[i]
    assert compute(i, {}) == str(REFERENCE[i])


def test_the_article_loop_bound_by_a_larger_job_size_gives_the_same_values() -> None:
    assert [article_reference(i, 1024) for i in (0, 7, 33)] == [REFERENCE[0], REFERENCE[7], REFERENCE[33]]


def test_a_consecutive_batch_equals_the_articles_sum() -> None:
    assert count_strings_range(0, REFERENCE_UP_TO + 1) == REFERENCE
    assert count_strings_range(17, 23) == REFERENCE[17:23]
    assert count_strings_range(5, 7) == REFERENCE[5:7]
    assert count_strings_range(9, 9) == []


@pytest.mark.usefixtures("default_int_digits_limit")
def test_item_1000_is_exact() -> None:
    expected = plain_recurrence(1000)
    assert count_strings(1000) == expected
    assert decimal_to_int(compute(1000, {})) == expected
    assert expected % 128 != 0 and len(str(expected)) > 2000  # a real 2,000+ digit value, not a stand-in


@pytest.mark.usefixtures("default_int_digits_limit")
def test_item_16383_converts_past_the_4300_digit_limit() -> None:
    result = compute(16_383, {})
    assert len(result) > 35_000
    assert decimal_to_int(result) == count_strings_range(16_380, 16_384)[-1]


def test_the_handler_takes_single_and_batched_events() -> None:
    assert handler({"item": 5, "index": 5, "parameters": {}}, None) == str(REFERENCE[5])
    event = {
        "Items": [{"item": i, "index": i} for i in (3, 4, 5, 10, 11, 2)],
        "BatchInput": {"parameters": {}},
    }
    assert handler(event, None) == [str(REFERENCE[i]) for i in (3, 4, 5, 10, 11, 2)]
    json.dumps(handler(event, None))


def test_a_batch_of_consecutive_indices_jumps_once() -> None:
    """Batch-aware: one jump per run of consecutive indices, not one per item."""
    import burstmap.lambdas.example_compute.handler as workload

    jumps: list[int] = []
    original = workload._x_power

    def counting(n: int) -> list[int]:
        jumps.append(n)
        return original(n)

    workload._x_power = counting  # type: ignore[assignment]
    try:
        results = compute_batch(list(range(500, 600)), {})
        compute_batch([700, 701, 900], {})
    finally:
        workload._x_power = original  # type: ignore[assignment]
    assert len(results) == 100
    assert results[0] == str(plain_recurrence(500)) and results[-1] == str(plain_recurrence(599))
    assert jumps == [500, 700, 900]


@pytest.mark.parametrize("item", [-1, 2.0, "3", True, None])
def test_items_must_be_byte_counts(item: object) -> None:
    with pytest.raises(InvalidItem, match="each item must be a non-negative integer"):
        handler({"item": item, "index": 0, "parameters": {}}, None)
