"""Running one execution of a state machine on this machine: `execute` and `load_definition`."""

from __future__ import annotations

import importlib.util
import json
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from burstmap.local.core.context import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    DEFAULT_STATE_MACHINE_NAME,
    Cancellation,
    Clock,
    EventCounter,
    EventSink,
    ExecutionResult,
    RealClock,
    Services,
    Stats,
    execution_context,
)
from burstmap.local.core.errors import DefinitionError, ExecutionAborted, StatesError
from burstmap.local.core.history import HistoryEvent
from burstmap.local.core.json_text import json_size
from burstmap.local.core.limits import STATE_PAYLOAD_LIMIT_BYTES
from burstmap.local.core.progress import Progress
from burstmap.local.dmap.map_run import MapRun, MapRunRedrive
from burstmap.local.query.variables import VariableScope
from burstmap.local.states.definition import validate_definition
from burstmap.local.states.interpreter import Interpreter
from burstmap.local.states.redrive import NotRedrivable, RedrivePoint


class InputTooLarge(ValueError):
    """An execution input past 256 KiB: AWS refuses StartExecution, so the engine does too."""


class ExecuteArgumentError(ValueError):
    """An argument of :func:`execute` that cannot run; the message names it (``retry_time_scale=inf``)."""


class ExecuteArgumentTypeError(ExecuteArgumentError, TypeError):
    """An argument of :func:`execute` of the wrong type."""


def load_definition(definition: Mapping[str, Any] | str) -> dict[str, Any]:
    """Parse (if JSON text) and validate a definition; raises UnsupportedFeature or DefinitionError."""
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except ValueError as exc:
            raise DefinitionError(f"the definition is not valid JSON: {exc}") from exc
    definition = dict(definition)
    validate_definition(definition)
    return definition


def _function_name(key: str) -> str:
    """'arn:aws:lambda:r:a:function:name[:qualifier]' or 'name' -> 'name'."""
    if ":function:" in key:
        return key.split(":function:", 1)[1].split(":", 1)[0]
    return key


def _runtime_for(functions: Mapping[str, Any]) -> Any:
    """A LambdaRuntime over the given handlers (callables, "module.function" strings or FunctionSpecs)."""
    from burstmap.local.services.burstmap_layer import burstmap_layer
    from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime

    specs = []
    for key, handler in functions.items():
        if isinstance(handler, FunctionSpec):
            specs.append(handler)
            continue
        code_paths: list[Path] = []
        layers: list[Path] = []
        if isinstance(handler, str):
            # A worker as Lambda would run it: the handler's folder as its code, burstmap's runtime as its
            # layer (what BurstmapLayer gives a function of an app), nothing else of this process's path.
            code_paths, layers = [_import_root(key, handler)], [burstmap_layer()]
            handler = handler.replace(":", ".")  # Lambda's form, as _HANDLER shows it
        elif not callable(handler):
            raise ExecuteArgumentTypeError(
                f"functions[{key!r}]={handler!r}: give a callable handler(event, context), a "
                "'module.function' string or a FunctionSpec"
            )
        specs.append(
            FunctionSpec(
                name=_function_name(key),
                handler=handler,
                code_paths=code_paths,
                layers=layers,
                environment={},
            )
        )
    return LambdaRuntime(specs)


def _import_root(key: str, handler: str) -> Path:
    """Where this process would import a "module.function" handler's module from: its worker imports it
    from there too (a worker starts with no folder of yours on its path)."""
    module, separator, function = handler.partition(":") if ":" in handler else handler.rpartition(".")
    if not (separator and module and function):
        raise ExecuteArgumentError(
            f"functions[{key!r}]={handler!r}: give the handler as 'module.function' (Lambda's handler "
            "setting, e.g. 'handler.handler') or 'module:function'"
        )
    top = module.replace("/", ".").split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not (spec.origin or spec.submodule_search_locations):
        raise ExecuteArgumentError(
            f"functions[{key!r}]={handler!r}: no module {top!r} on this process's path (sys.path); run from "
            "its folder, add the folder to PYTHONPATH, or pass a FunctionSpec with code_paths=[folder]"
        )
    if spec.submodule_search_locations:  # a package: the folder that holds it
        return Path(next(iter(spec.submodule_search_locations))).parent
    return Path(str(spec.origin)).parent


def _progress_callback(
    on_progress: Callable[[Any], None], stats: Stats, started: float
) -> Callable[[Any], None]:
    def report(run: Any) -> None:
        counts = run.item_counts
        on_progress(
            Progress(
                total=counts.total if run.items_read_complete else None,
                succeeded=counts.succeeded,
                failed=counts.failed,
                running=counts.running,
                pending=counts.pending,
                retries=stats.retries,
                elapsed_seconds=time.monotonic() - started,
                children_running=run.execution_counts.running,
            )
        )

    return report


def execute(
    definition: Mapping[str, Any] | str,
    input: Any = None,  # noqa: A002 - the ASL name
    *,
    functions: Mapping[str, Callable[..., Any] | str | Any] | None = None,
    runtime: Any = None,
    s3_endpoint_url: str | None = None,
    s3_client: Any = None,
    clock: Clock | None = None,
    retry_time_scale: float = 1.0,
    name: str | None = None,
    state_machine_name: str = DEFAULT_STATE_MACHINE_NAME,
    role_arn: str | None = None,
    region: str = DEFAULT_REGION,
    account: str = DEFAULT_ACCOUNT,
    max_workers: int | None = None,
    seed: int | None = None,
    on_progress: Callable[[Any], None] | None = None,
    on_event: Callable[[HistoryEvent], None] | None = None,
    first_event_id: int = 2,
    on_map_run: Callable[[MapRun], None] | None = None,
    keep_child_records: bool = False,
    cancellation: Cancellation | None = None,
    redrive: RedrivePoint | None = None,
    start_time: datetime | None = None,
) -> ExecutionResult:
    """Run one execution and return how it ended (a failed execution is a result, not an exception).

    `functions` maps a function name or ARN to a handler: a callable `(event, context)`, a
    "module.function" string (its worker imports the module from the folder this process would import it
    from), or a FunctionSpec; alternatively pass a started `runtime`. The S3
    client for ItemReader/ResultWriter comes from `s3_client` or `s3_endpoint_url`. `clock` decides
    how Wait and Retry wait (FakeClock in tests); `retry_time_scale` scales retry backoffs (0 = none).
    Raises UnsupportedFeature / DefinitionError before running anything the engine would not run
    as AWS does, InputTooLarge for an input past 256 KiB, and ExecuteArgumentError (a ValueError; the
    TypeError subclass for a wrong type) naming an argument that cannot run.

    What a server needs to show a running execution as AWS does (nothing of it costs a run that does
    not ask): `on_event` receives each history event (core/history.py), numbered from
    `first_event_id` (ExecutionStarted, 1, and the execution's end are the caller's); `on_map_run`
    receives each MapRun as it starts and ends, whose counts move in between (`MapRun.describe()`);
    `keep_child_records` keeps each map run's children (`MapRun.ledger`); `cancellation` stops the
    run (the result is ABORTED, its map runs end ABORTED). An unsuccessful result has a
    `redrive_point`; `execute(..., redrive=point)` resumes there (states/redrive.py), with the original
    `start_time` of the execution.
    """
    machine = load_definition(definition)
    _check_arguments(input, functions, retry_time_scale, max_workers)
    if json_size(input) > STATE_PAYLOAD_LIMIT_BYTES:
        raise InputTooLarge("the execution input is larger than 256 KiB: pass large item lists through S3")
    if redrive is not None and redrive.unsupported is not None:
        raise NotRedrivable(redrive.unsupported)
    owned_runtime = _runtime_for(functions) if runtime is None and functions else None
    if owned_runtime is not None:
        runtime = owned_runtime
    clock = clock or RealClock()
    if cancellation is None and machine.get("TimeoutSeconds") is not None:
        cancellation = Cancellation()  # a run past its TimeoutSeconds is stopped, not left running
    services = Services(
        runtime=runtime,
        s3=_s3_client(s3_client, s3_endpoint_url, region),
        clock=clock,
        retry_time_scale=retry_time_scale,
        rng=random.Random(seed),
        max_workers=max_workers or getattr(runtime, "workers", None),
        region=region,
        account=account,
        on_map_run=on_map_run,
        keep_child_records=keep_child_records or redrive is not None,
        cancellation=cancellation,
    )
    if on_progress is not None:
        services.on_map_run_progress = _progress_callback(on_progress, services.stats, time.monotonic())
    redrive_count = 0 if redrive is None else redrive.redrive_count + 1
    context = execution_context(
        execution_input=input,
        start_time=start_time or clock.now(),
        region=region,
        account=account,
        state_machine_name=state_machine_name,
        execution_name=name,
        role_arn=role_arn,
        redrive_count=redrive_count,
    )
    events = EventCounter(first_event_id, _sink(on_event, clock), first_event_id - 1 if redrive else 0)
    try:
        result = _run(machine, input, context, services, events, redrive, redrive_count)
    finally:
        if owned_runtime is not None:
            owned_runtime.close()
    result.map_runs = [run.summary() for run in services.map_runs]
    return result


def _check_arguments(data: Any, functions: Any, retry_time_scale: Any, max_workers: Any) -> None:
    """execute()'s arguments, before anything starts: ExecuteArgumentError names the one that is wrong."""
    try:
        json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:  # a set, NaN, a lone surrogate ("\\udcff"), ...
        raise ExecuteArgumentTypeError(f"input={data!r:.60}: not JSON ({exc})") from None
    if functions is not None and not isinstance(functions, Mapping):
        raise ExecuteArgumentTypeError(
            f"functions={functions!r:.60}: give a mapping {{function name or ARN: handler}}"
        )
    if isinstance(retry_time_scale, bool) or not isinstance(retry_time_scale, int | float):
        raise ExecuteArgumentTypeError(f"retry_time_scale={retry_time_scale!r}: give a number, 0 or more")
    if not (math.isfinite(retry_time_scale) and retry_time_scale >= 0):
        raise ExecuteArgumentError(
            f"retry_time_scale={retry_time_scale!r}: must be a finite number, 0 or more (0 skips the waits)"
        )
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)):
        raise ExecuteArgumentTypeError(f"max_workers={max_workers!r}: give a whole number, 1 or more")
    if max_workers is not None and max_workers < 1:
        raise ExecuteArgumentError(f"max_workers={max_workers!r}: must be 1 or more")


def _sink(on_event: Callable[[HistoryEvent], None] | None, clock: Clock) -> EventSink | None:
    if on_event is None:
        return None

    def sink(event_id: int, event_type: str, previous: int, details: dict[str, Any] | None) -> None:
        on_event(HistoryEvent(event_id, event_type, clock.now(), previous, details))

    return sink


def _s3_client(s3_client: Any, endpoint_url: str | None, region: str) -> Any:
    """The given S3 client, else one for the endpoint (None: no S3 for ItemReader/ResultWriter)."""
    if s3_client is None and endpoint_url is not None:
        import boto3

        return boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    return s3_client


WIND_DOWN_SECONDS = 30.0
"""How long a timed-out run may take to stop (its map runs abort their children) before the result."""


def _run(
    machine: dict[str, Any],
    data: Any,
    context: dict[str, Any],
    services: Services,
    events: EventCounter,
    redrive: RedrivePoint | None,
    redrive_count: int,
) -> ExecutionResult:
    """Run the machine (from a redrive point, if given) under its TimeoutSeconds: how it ended (a
    failure is a result), with where a redrive would resume."""
    result = ExecutionResult(status="RUNNING", stats=services.stats)
    timeout = machine.get("TimeoutSeconds")
    interpreter = Interpreter(services)
    stopped_at: dict[str, Any] = {}
    ended = threading.Event()
    scope, start_at = None, None
    if redrive is not None:
        data, start_at = redrive.input, redrive.state
        scope = VariableScope()
        scope.restore(redrive.variables)
        if redrive.map_run is not None:
            services.map_run_redrives[redrive.state] = MapRunRedrive.from_state(redrive.map_run)

    def run() -> Any:
        try:
            return interpreter.run_machine(machine, data, context, events, scope=scope, start_at=start_at)
        except (StatesError, ExecutionAborted) as exc:
            stopped_at["at"] = getattr(exc, "unsuccessful", None)
            raise
        finally:
            ended.set()

    try:
        result.output = run() if timeout is None else services.clock.call_with_timeout(run, float(timeout))
        result.status = "SUCCEEDED"
    except TimeoutError:
        # The execution's own TimeoutSeconds: AWS stops it with status TIMED_OUT and States.Timeout.
        result.status, result.error = "TIMED_OUT", "States.Timeout"
        result.cause = f"The execution ran longer than its TimeoutSeconds ({timeout} s)."
        if services.cancellation is not None:
            services.cancellation.cancel()
            ended.wait(WIND_DOWN_SECONDS)
    except ExecutionAborted:
        result.status = "ABORTED"
    except StatesError as exc:
        result.status, result.error, result.cause = "FAILED", exc.error, exc.cause
    where = stopped_at.get("at")
    if result.status != "SUCCEEDED" and where is not None:
        execution_arn = context["Execution"]["Id"]
        result.redrive_point = RedrivePoint.at(
            where, machine, services.map_runs, execution_arn, redrive_count
        )
    return result
