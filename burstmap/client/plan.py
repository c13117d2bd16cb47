"""What a job will consume on AWS before it runs: child executions, state transitions, Lambda use, cost.

The model (Standard workflows, distributed Map with Standard child executions, the default):

* The parent execution runs each state on its path once: the start task, the Choice on ``$.source``,
  the Distributed Map, the combine task -> 4 transitions (`StateMachineShape.parent_states`).
* The Distributed Map starts one child execution per batch: ``ceil(items / batch_size)`` children, and
  AWS charges one state transition for each child it starts (Step Functions developer guide,
  "Transitions in Distributed Map state").
* Each Standard child execution runs its own states, here the compute task: 1 transition a child
  (`StateMachineShape.child_states`).
* Lambda: 1 start + one compute invocation per child + 1 combine. A compute invocation of a batch lasts
  ``items_in_batch * duration_ms`` rounded up to the millisecond (Lambda bills 1 ms steps); start and
  combine are assumed to take ``overhead_ms`` each. GB-seconds = billed seconds * memory_mb / 1024.

With ``max_concurrency`` the children run in waves of that many: ``ceil(children / max_concurrency)``
waves of one batch's duration each is the compute's wall time (no limit: AWS's 10,000 at once). With
``timeout_seconds`` a batch that takes longer than the function's timeout is flagged.

Not counted: retries (each adds a transition and an invocation), free tiers (4,000 transitions and
400,000 GB-s a month), S3 requests and storage of the ResultWriter files, CloudWatch Logs.
With `--definition` the state counts come from a real ASL definition instead of the default shape.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from burstmap.runtime.contracts import MAX_DISTRIBUTED_CONCURRENCY

Architecture = Literal["arm64", "x86_64"]

#: Environment variable naming a JSON file of price overrides (same keys as `Prices`).
PRICES_ENV = "BURSTMAP_PRICES"


@dataclass(frozen=True)
class Prices:
    """List prices in USD, on-demand, first pricing tier, no free tier.

    Checked 2026-11-23 for us-east-1 (US East, N. Virginia):
    - https://aws.amazon.com/step-functions/pricing/ : Standard workflows $0.025 per 1,000 state
      transitions (us-east-1 row of the state transitions table: $0.0250).
    - https://aws.amazon.com/lambda/pricing/ : requests $0.20 per 1M; duration per GB-second
      x86 $0.0000166667 (first 6 billion GB-s a month), Arm $0.0000133334 (first 7.5 billion GB-s).
      The AWS page renders its rate table client-side; the figures were read from third-party copies
      of that table (cloudchipr.com's 2025 guide; artillery's prices.js base rates 1666670 and
      1333340 x 1e-11) and agree with each other.
    Override with a JSON file (``--prices FILE`` or the BURSTMAP_PRICES variable) for another region.
    """

    region: str = "us-east-1"
    checked: str = "2026-11-23"
    sfn_standard_per_transition: Decimal = Decimal("0.025") / 1000
    lambda_per_request: Decimal = Decimal("0.20") / 1_000_000
    lambda_arm64_per_gb_second: Decimal = Decimal("0.0000133334")
    lambda_x86_64_per_gb_second: Decimal = Decimal("0.0000166667")

    def per_gb_second(self, architecture: Architecture) -> Decimal:
        if architecture == "arm64":
            return self.lambda_arm64_per_gb_second
        return self.lambda_x86_64_per_gb_second


DEFAULT_PRICES = Prices()


class InvalidPlan(ValueError):
    """A plan input is out of range, or a prices file is malformed."""


def load_prices(path: Path | str | None = None) -> Prices:
    """The default prices, overridden by a JSON file (`path`, else the BURSTMAP_PRICES variable)."""
    path = path or os.environ.get(PRICES_ENV)
    if not path:
        return DEFAULT_PRICES
    try:
        overrides = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or not UTF-8
        raise InvalidPlan(f"cannot read prices file {path}: {exc}") from exc
    if not isinstance(overrides, dict):
        raise InvalidPlan(f"prices file {path} must hold a JSON object")
    known = {f.name: f for f in fields(Prices)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InvalidPlan(
            f"unknown price keys in {path}: {', '.join(unknown)}; valid keys: {', '.join(known)}"
        )
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in ("region", "checked"):
            values[key] = str(value)
            continue
        try:
            values[key] = Decimal(str(value))
        except ArithmeticError as exc:
            raise InvalidPlan(f"price {key!r} in {path} is not a number: {value!r}") from exc
        if isinstance(value, bool) or not (values[key].is_finite() and values[key] >= 0):
            raise InvalidPlan(f"price {key!r} in {path} must be a finite number, 0 or more: {value!r}")
    return Prices(**{**asdict(DEFAULT_PRICES), **values})


@dataclass(frozen=True)
class StateMachineShape:
    """How many states run once per job (parent) and once per child execution."""

    parent_states: int = 4  # start task, Choice on $.source, Distributed Map, combine task
    child_states: int = 1  # the compute task


def shape_from_definition(definition: dict[str, Any]) -> StateMachineShape:
    """Count the states on the success path of an ASL definition and of its distributed Map's children.

    A Choice is followed through its first rule, which is how both of burstmap's branches are equal
    in length (each leads to one Distributed Map).
    """
    try:
        parent, child_definition = _walk(definition)
        if child_definition is None:
            raise InvalidPlan(
                "the definition has no distributed Map state: it is not a burstmap state machine"
            )
        child, _ = _walk(child_definition)
    except (AttributeError, KeyError, TypeError) as exc:
        raise InvalidPlan(
            f"the definition is not an ASL state machine ({type(exc).__name__}: {exc}): give the JSON of "
            '{"StartAt": ..., "States": {...}}'
        ) from None
    return StateMachineShape(parent_states=parent, child_states=child)


def _walk(definition: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    states = definition.get("States", {})
    name: str | None = definition.get("StartAt")
    count = 0
    processor: dict[str, Any] | None = None
    seen: set[str] = set()
    while name is not None and name not in seen:
        seen.add(name)
        state = states[name]
        count += 1
        if state.get("Type") == "Map" and processor is None:
            config = (state.get("ItemProcessor") or {}).get("ProcessorConfig", {})
            if config.get("Mode") == "DISTRIBUTED":
                processor = state["ItemProcessor"]
        if state.get("Type") == "Choice":
            choices = state.get("Choices") or []
            name = choices[0]["Next"] if choices else state.get("Default")
        elif state.get("End") or state.get("Type") in ("Succeed", "Fail"):
            name = None
        else:
            name = state.get("Next")
    return count, processor


@dataclass(frozen=True)
class Plan:
    """What one job consumes, and its estimated cost in USD."""

    items: int
    batch_size: int
    duration_ms: float
    memory_mb: int
    architecture: Architecture
    overhead_ms: float
    child_executions: int
    state_transitions: int
    lambda_invocations: int
    compute_gb_seconds: Decimal
    overhead_gb_seconds: Decimal
    cost_transitions: Decimal
    cost_requests: Decimal
    cost_duration: Decimal
    prices: Prices
    max_concurrency: int | None = None
    """Children at once (None: no limit, AWS runs up to 10,000)."""
    timeout_seconds: float | None = None
    """The compute function's timeout (None: not known)."""
    source: str | None = None
    """Where the settings were read from (an app's state machine), for the reader."""

    @property
    def batch_seconds(self) -> float:
        """How long one full batch computes."""
        return min(self.items, self.batch_size) * self.duration_ms / 1000

    @property
    def compute_wall_seconds(self) -> float:
        """The children in waves of ``max_concurrency``, each wave one batch long."""
        at_once = self.max_concurrency or MAX_DISTRIBUTED_CONCURRENCY
        return math.ceil(self.child_executions / at_once) * self.batch_seconds

    @property
    def over_timeout(self) -> bool:
        return self.timeout_seconds is not None and self.batch_seconds > self.timeout_seconds

    @property
    def gb_seconds(self) -> Decimal:
        return self.compute_gb_seconds + self.overhead_gb_seconds

    @property
    def cost_total(self) -> Decimal:
        return self.cost_transitions + self.cost_requests + self.cost_duration

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "batch_size": self.batch_size,
            "duration_ms_per_item": self.duration_ms,
            "memory_mb": self.memory_mb,
            "architecture": self.architecture,
            "child_executions": self.child_executions,
            "state_transitions": self.state_transitions,
            "lambda_invocations": self.lambda_invocations,
            "lambda_gb_seconds": str(self.gb_seconds),
            "cost_usd": {
                "state_transitions": str(self.cost_transitions),
                "lambda_requests": str(self.cost_requests),
                "lambda_duration": str(self.cost_duration),
                "total": str(self.cost_total),
            },
            "prices": {"region": self.prices.region, "checked": self.prices.checked},
            "max_concurrency": self.max_concurrency,
            "timeout_seconds": self.timeout_seconds,
            "batch_seconds": self.batch_seconds,
            "compute_wall_seconds": self.compute_wall_seconds,
            "over_timeout": self.over_timeout,
            "source": self.source,
        }


def _billed_ms(milliseconds: float) -> int:
    """Lambda bills duration rounded up to the next millisecond."""
    return math.ceil(milliseconds)


def plan_job(
    *,
    items: int,
    batch_size: int = 1,
    duration_ms: float = 100.0,
    memory_mb: int = 1024,
    architecture: Architecture = "arm64",
    overhead_ms: float = 1000.0,
    shape: StateMachineShape | None = None,
    prices: Prices | None = None,
    max_concurrency: int | None = None,
    timeout_seconds: float | None = None,
    source: str | None = None,
) -> Plan:
    """Count and price one job (see the module docstring for the model)."""
    if items < 0:
        raise InvalidPlan(f"--size must be 0 or more, got {items}")
    if batch_size < 1:
        raise InvalidPlan(f"--batch-size must be 1 or more, got {batch_size}")
    for option, value in (("--duration-ms", duration_ms), ("--overhead-ms", overhead_ms)):
        if not (math.isfinite(value) and value >= 0):
            raise InvalidPlan(f"{option} must be a finite number, 0 or more, got {value}")
    if not 128 <= memory_mb <= 10240:
        raise InvalidPlan(f"--memory-mb must be between 128 and 10240 (Lambda's range), got {memory_mb}")
    if architecture not in ("arm64", "x86_64"):
        raise InvalidPlan(f"--architecture must be arm64 or x86_64, got {architecture!r}")
    if max_concurrency is not None and not 0 <= max_concurrency <= MAX_DISTRIBUTED_CONCURRENCY:
        raise InvalidPlan(
            f"--max-concurrency must be 0 (no limit) to {MAX_DISTRIBUTED_CONCURRENCY}, got {max_concurrency}"
        )
    shape = shape or StateMachineShape()
    prices = prices or DEFAULT_PRICES

    full_batches, remainder = divmod(items, batch_size)
    children = full_batches + (1 if remainder else 0)
    transitions = shape.parent_states + children * (1 + shape.child_states)
    invocations = 2 + children

    compute_ms = full_batches * _billed_ms(batch_size * duration_ms) + (
        _billed_ms(remainder * duration_ms) if remainder else 0
    )
    memory_gb = Decimal(memory_mb) / 1024
    compute_gb_s = Decimal(compute_ms) / 1000 * memory_gb
    overhead_gb_s = Decimal(2 * _billed_ms(overhead_ms)) / 1000 * memory_gb

    return Plan(
        items=items,
        batch_size=batch_size,
        duration_ms=duration_ms,
        memory_mb=memory_mb,
        architecture=architecture,
        overhead_ms=overhead_ms,
        child_executions=children,
        state_transitions=transitions,
        lambda_invocations=invocations,
        compute_gb_seconds=compute_gb_s,
        overhead_gb_seconds=overhead_gb_s,
        cost_transitions=transitions * prices.sfn_standard_per_transition,
        cost_requests=invocations * prices.lambda_per_request,
        cost_duration=(compute_gb_s + overhead_gb_s) * prices.per_gb_second(architecture),
        prices=prices,
        max_concurrency=max_concurrency or None,
        timeout_seconds=timeout_seconds,
        source=source,
    )


def render(plan: Plan) -> str:
    """A short human-readable table of the plan."""

    def usd(value: Decimal) -> str:
        return f"${value:.6f}"

    at_once = f"{plan.max_concurrency:,} at once" if plan.max_concurrency else "no concurrency limit"
    wall = f"~{plan.compute_wall_seconds:,.1f} s ({at_once}, {plan.batch_seconds:g} s a batch)"
    timeout = []
    if plan.timeout_seconds is not None:
        verdict = "OVER it: lower --batch-size" if plan.over_timeout else "within it"
        timeout = [f"function timeout     {plan.timeout_seconds:g} s a batch ({verdict})"]
    return "\n".join(
        [
            *([f"settings from        {plan.source}"] if plan.source else []),
            f"items                {plan.items:,} (batch size {plan.batch_size})",
            f"child executions     {plan.child_executions:,}",
            f"state transitions    {plan.state_transitions:,}   {usd(plan.cost_transitions)}",
            f"Lambda invocations   {plan.lambda_invocations:,}   {usd(plan.cost_requests)}",
            f"Lambda GB-seconds    {plan.gb_seconds:,.3f} ({plan.memory_mb} MB, {plan.architecture}, "
            f"{plan.duration_ms:g} ms an item)   {usd(plan.cost_duration)}",
            f"compute wall time    {wall}",
            *timeout,
            f"estimated cost       {usd(plan.cost_total)}",
            f"prices: {plan.prices.region}, checked {plan.prices.checked}; no free tier, retries, S3 or logs",
        ]
    )
