"""The seed workload (the article, seed 002): how many byte strings of exactly ``i`` bytes are valid UTF-8
built from 1-, 2-, 3- and 4-byte characters with 128, 1863, 42451 and 78341 choices each.

The article sums a multinomial over every mix of character lengths. Splitting off the last character gives
the same count as a linear recurrence (the two are checked equal in tests/test_example_workload.py)::

    a(i) = 128 a(i-1) + 1863 a(i-2) + 42451 a(i-3) + 78341 a(i-4),   a(0) = 1,  a(i < 0) = 0

One ``i`` is computed by jumping (``x**i mod`` the characteristic polynomial, O(log i) big multiplications);
a batch of consecutive indices jumps once and then steps the recurrence, one pass. Results are exact
integers sent as decimal strings (tens of thousands of digits at i = 16,384).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from burstmap.runtime.compute import compute_handler
from burstmap.runtime.contracts import int_to_decimal

CHOICES: tuple[int, int, int, int] = (128, 1863, 42451, 78341)
"""Characters of 1, 2, 3 and 4 bytes (the article's counts)."""
ORDER = len(CHOICES)


class InvalidItem(Exception):  # noqa: N818 - the ASL error name
    """An item of the example job is not a byte count."""


def _initial_terms(count: int) -> list[int]:
    terms: list[int] = []
    for n in range(count):
        value = 1 if n == 0 else 0
        for back, choices in enumerate(CHOICES, start=1):
            if n - back >= 0:
                value += choices * terms[n - back]
        terms.append(value)
    return terms


_FIRST_TERMS = _initial_terms(2 * ORDER - 1)  # a(0) .. a(6): enough to start a window anywhere


def _mul_mod(p: Sequence[int], q: Sequence[int]) -> list[int]:
    """``p * q mod (x^4 - 128 x^3 - 1863 x^2 - 42451 x - 78341)``, coefficients lowest first."""
    product = [0] * (2 * ORDER - 1)
    for i, pi in enumerate(p):
        if pi:
            for j, qj in enumerate(q):
                product[i + j] += pi * qj
    return _reduce(product)


def _reduce(product: list[int]) -> list[int]:
    # x^4 = 128 x^3 + 1863 x^2 + 42451 x + 78341, applied from the top degree down.
    for degree in range(len(product) - 1, ORDER - 1, -1):
        top = product[degree]
        if top:
            for back, choices in enumerate(CHOICES, start=1):
                product[degree - back] += choices * top
        product[degree] = 0
    return product[:ORDER]


def _x_power(n: int) -> list[int]:
    """``x^n mod`` the characteristic polynomial, by square-and-multiply."""
    result = [1, 0, 0, 0]
    for bit in bin(n)[2:]:
        result = _mul_mod(result, result)
        if bit == "1":
            result = _reduce([0, *result])  # times x
    return result


def _window(start: int) -> list[int]:
    """``[a(start), ..., a(start+3)]``: a(start+j) = sum_k r_k a(k+j) where r = x^start mod P."""
    if start + ORDER <= len(_FIRST_TERMS):
        return _FIRST_TERMS[start : start + ORDER]
    r = _x_power(start)
    return [sum(r[k] * _FIRST_TERMS[k + j] for k in range(ORDER)) for j in range(ORDER)]


def count_strings(n: int) -> int:
    """a(n): byte strings of exactly ``n`` bytes (exact)."""
    return _window(n)[0]


def count_strings_range(start: int, stop: int) -> list[int]:
    """``[a(start), ..., a(stop - 1)]``: one jump, then the recurrence (each term from the previous four)."""
    if stop <= start:
        return []
    window = _window(start)
    values = window[: stop - start]
    c1, c2, c3, c4 = CHOICES
    a3, a2, a1, a0 = window  # a(n-4), a(n-3), a(n-2), a(n-1) for n = start + 4
    for _ in range(start + ORDER, stop):
        a3, a2, a1, a0 = a2, a1, a0, c1 * a0 + c2 * a1 + c3 * a2 + c4 * a3
        values.append(a0)
    return values


def _byte_count(item: Any) -> int:
    if isinstance(item, bool) or not isinstance(item, int) or item < 0:
        raise InvalidItem(
            f"The example workload counts byte strings of i bytes: each item must be a non-negative integer, "
            f'got {item!r:.60}. Start it with {{"size": N}} or integer items.'
        )
    return item


def compute(item: Any, parameters: dict[str, Any]) -> str:  # noqa: ARG001 - the compute contract
    """One item: a(item) as a decimal string."""
    return int_to_decimal(count_strings(_byte_count(item)))


def compute_batch(items: list[Any], parameters: dict[str, Any]) -> list[str]:  # noqa: ARG001
    """A batch: each run of consecutive indices in one pass (a size job's batches are one run each)."""
    counts = [_byte_count(item) for item in items]
    results: list[str] = []
    run_start = 0
    for position in range(1, len(counts) + 1):
        if position == len(counts) or counts[position] != counts[position - 1] + 1:
            first = counts[run_start]
            results.extend(
                int_to_decimal(v) for v in count_strings_range(first, first + position - run_start)
            )
            run_start = position
    return results


handler = compute_handler(compute, batch_fn=compute_batch)
