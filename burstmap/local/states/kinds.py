"""Each state type, by its `Type`: the module that checks and runs it (both query languages)."""

from __future__ import annotations

from types import ModuleType

from burstmap.local.states import choice, fail, map_inline, parallel, pass_, succeed, task, wait

STATE_TYPES: dict[str, ModuleType] = {
    "Pass": pass_,
    "Task": task,
    "Choice": choice,
    "Wait": wait,
    "Succeed": succeed,
    "Fail": fail,
    "Parallel": parallel,
    "Map": map_inline,
}
"""Every module has FIELDS {query language: the fields it runs} and `run(step)`; most have
`validate(check)` for their own fields."""
