"""ItemSelector: what each item of a distributed Map becomes before batching, and the child inputs.

The selector sees the item as `$$.Map.Item.Value`, its index as `$$.Map.Item.Index` and where the
items come from as `$$.Map.Item.Source` (item_reader.py), and `$` is the Map state's input (after
InputPath). A selector made only of the item, its index and
values that are the same for every item is filled column-wise after the first item, which keeps
a million-item map fast; any other selector is evaluated per item.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import repeat
from typing import Any

from burstmap.local.dmap.child import Batch
from burstmap.local.dmap.item_batcher import BatcherSettings, batched
from burstmap.local.dmap.item_reader import STATE_DATA, Items
from burstmap.local.query.payload_template import resolve_template

SelectItem = Callable[[Any, dict[str, Any]], Any]
"""(item value, the item's context object) -> the selected value: a JSONata ItemSelector."""


def child_inputs(
    state_name: str,
    state: dict[str, Any],
    items: Items,
    data: Any,
    context: dict[str, Any],
    batcher: BatcherSettings | None,
    select_item: SelectItem | None = None,
) -> Iterator[Batch]:
    """ItemSelector on each item (with $$.Map.Item.Index/Value/Source), then batches when
    ItemBatcher is set.

    `select_item(value, item_context)`, when given, replaces the JSONPath ItemSelector."""
    selector = state.get("ItemSelector", state.get("Parameters"))
    selected = selected_chunks(selector, items.chunks, data, context, select_item, source=items.source)
    if batcher is not None:
        yield from batched(state_name, selected, batcher)
        return
    index = 0
    for chunk in selected:
        for value in chunk:
            yield Batch(index, index, 1, value)
            index += 1


# A selector field whose value does not depend on the item: a plain definite path into the state's
# input, or into the parts of the context object that are the same for every item (the items'
# source included).
_ITEM_INDEPENDENT_PATH = re.compile(
    r"\$\$\.Map\.Item\.Source|\$(?:\$\.(?:Execution|StateMachine|State|Task))?(?:\.[A-Za-z_][A-Za-z0-9_-]*)*"
)
_ITEM_VALUE, _ITEM_INDEX, _CONSTANT = "$$.Map.Item.Value", "$$.Map.Item.Index", None


def selector_fields(selector: Any) -> list[tuple[str, str | None]] | None:
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


def selected_chunks(
    selector: Any,
    chunks: Iterator[Any],
    data: Any,
    context: dict[str, Any],
    select_item: SelectItem | None = None,
    *,
    source: str = STATE_DATA,
) -> Iterator[list[Any]]:
    """The selector applied to every item, chunk by chunk, in order (`source` is the items'
    `$$.Map.Item.Source`).

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

        fields = selector_fields(selector)
    else:
        fields = None  # JSONata: evaluated per item
    index = 0
    first: Any = None  # the first item's selected value, once the general evaluation gave it
    for chunk in chunks:
        selected: list[Any] = []
        rest = chunk
        if fields is None or index == 0:
            for value in chunk if fields is None else chunk[:1]:
                item_context = {
                    **context,
                    "Map": {"Item": {"Index": index, "Value": value, "Source": source}},
                }
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
