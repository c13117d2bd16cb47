"""The backend over today's public engine API: ``burstmap.local.execute`` on a thread per execution.

One LambdaRuntime and one S3 client serve every execution for the server's life, so functions stay warm
between executions. Each execution gets its own view of them: a runtime that refuses new invocations
once the execution is stopped, and a clock whose waits (Wait states, Retry backoffs) end at the stop,
so a stopped execution winds down instead of running its job to the end.

What ``execute`` does not expose yet, this backend cannot do (see ``CAPABILITIES``): history events
per state, map runs while they run (``ExecutionResult.map_runs`` arrives at the end, without dates or
settings), aborting children already invoked, and redriving only the failed children.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from burstmap.local import DefinitionError, InputTooLarge, RealClock, StatesError, execute, load_definition
from burstmap.serve.backend import (
    BackendCapabilities,
    ExecutionHandle,
    ExecutionListener,
    ExecutionOutcome,
    ExecutionRequest,
    MapRunSnapshot,
    NotSupportedLocally,
    StateMachineSpec,
)

log = logging.getLogger(__name__)

STOPPED_ERROR = "States.Runtime"
"""What a stopped execution's refused invocations and cut waits raise inside the engine: no Retry or
Catch matches it, so the execution ends at once (its record already says ABORTED)."""
STOPPED_CAUSE = "The execution was stopped (StopExecution) before this step could run."

REDRIVE_MISSING = (
    "not supported locally yet: a redrive reruns only the failed, aborted and timed-out children of a "
    "map run, which needs the engine to resume an execution from its unsuccessful state with the map "
    "run's child records; burstmap.local.execute always runs an execution from its start"
)
CAPABILITIES = BackendCapabilities(
    state_history=(
        "history events per state, map run and Lambda task need an engine hook; this server records "
        "ExecutionStarted and the execution's end only"
    ),
    live_map_runs=(
        "map runs appear when the execution ends: burstmap.local.execute reports progress without the "
        "map run's ARN while it runs"
    ),
    stop_aborts_children=(
        "a stopped execution invokes no more functions and cuts its waits, but invocations already "
        "running finish, and its map run counts the refused children as failed, not aborted"
    ),
    redrive=REDRIVE_MISSING,
)


class _StoppableDispatcher:
    """An InvocationDispatcher that refuses new invocations once its execution is stopped."""

    def __init__(self, dispatcher: Any, stopped: threading.Event) -> None:
        self._dispatcher = dispatcher
        self._stopped = stopped

    @property
    def pending(self) -> int:
        return self._dispatcher.pending

    def submit(self, payload: bytes, token: Any) -> None:
        if self._stopped.is_set():
            raise StatesError(STOPPED_ERROR, STOPPED_CAUSE)
        self._dispatcher.submit(payload, token)

    def wait(self, timeout: float | None = None) -> list[tuple[Any, Any]]:
        return self._dispatcher.wait(timeout)

    def abandon(self) -> None:
        self._dispatcher.abandon()


class _StoppableRuntime:
    """The shared LambdaRuntime as one execution sees it: no new invocation after the stop."""

    def __init__(self, runtime: Any, stopped: threading.Event) -> None:
        self._runtime = runtime
        self._stopped = stopped
        self.workers = getattr(runtime, "workers", None)

    def invoke(self, function: str, payload: bytes) -> Any:
        if self._stopped.is_set():
            raise StatesError(STOPPED_ERROR, STOPPED_CAUSE)
        return self._runtime.invoke(function, payload)

    def dispatcher(self, function: str) -> Any:
        make = getattr(self._runtime, "dispatcher", None)
        dispatcher = make(function) if make is not None else None
        return None if dispatcher is None else _StoppableDispatcher(dispatcher, self._stopped)


class _StoppableClock(RealClock):
    """Wall-clock time whose waits end early, with an error, when the execution is stopped."""

    def __init__(self, stopped: threading.Event) -> None:
        self._stopped = stopped

    def sleep(self, seconds: float) -> None:
        if self._stopped.wait(seconds) if seconds > 0 else self._stopped.is_set():
            raise StatesError(STOPPED_ERROR, STOPPED_CAUSE)


class _ThreadHandle:
    def __init__(self, stopped: threading.Event, done: threading.Event) -> None:
        self._stopped = stopped
        self._done = done

    def stop(self) -> None:
        self._stopped.set()

    def join(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class ThreadBackend:
    """Runs each execution with ``burstmap.local.execute`` on its own thread."""

    capabilities = CAPABILITIES

    def __init__(
        self,
        runtime: Any,
        s3_client: Any,
        *,
        retry_time_scale: float = 1.0,
        max_workers: int | None = None,
    ) -> None:
        self._runtime = runtime
        self._s3 = s3_client
        self._retry_time_scale = retry_time_scale
        self._max_workers = max_workers
        self._handles: dict[str, _ThreadHandle] = {}
        self._lock = threading.Lock()

    def check_runnable(self, state_machine: StateMachineSpec) -> None:
        try:
            load_definition(state_machine.definition)
        except DefinitionError as exc:  # UnsupportedFeature is one
            raise NotSupportedLocally(str(exc)) from exc

    def start(self, request: ExecutionRequest, listener: ExecutionListener) -> ExecutionHandle:
        stopped, done = threading.Event(), threading.Event()
        thread = threading.Thread(
            target=self._run,
            args=(request, listener, stopped, done),
            name=f"execution-{request.name}"[:60],
            daemon=True,
        )
        handle = _ThreadHandle(stopped, done)
        with self._lock:
            self._handles[request.execution_arn] = handle
        thread.start()
        return handle

    def redrive(
        self, request: ExecutionRequest, previous: ExecutionOutcome, listener: ExecutionListener
    ) -> ExecutionHandle:
        raise NotSupportedLocally(REDRIVE_MISSING)

    def close(self) -> None:
        """Stop every running execution and wait briefly for their threads (the runtime is the caller's)."""
        with self._lock:
            handles = list(self._handles.values())
        for handle in handles:
            handle.stop()
        for handle in handles:
            handle.join(timeout=10)

    def _run(
        self,
        request: ExecutionRequest,
        listener: ExecutionListener,
        stopped: threading.Event,
        done: threading.Event,
    ) -> None:
        machine = request.state_machine
        try:
            result = execute(
                machine.definition,
                request.input,
                runtime=_StoppableRuntime(self._runtime, stopped),
                s3_client=self._s3,
                clock=_StoppableClock(stopped),
                retry_time_scale=self._retry_time_scale,
                name=request.name,
                state_machine_name=machine.name,
                role_arn=machine.role_arn,
                max_workers=self._max_workers,
            )
            stop_date = datetime.now(UTC)
            outcome = ExecutionOutcome(
                status=result.status,
                stop_date=stop_date,
                output=result.output,
                error=result.error,
                cause=result.cause,
                map_runs=[
                    _snapshot(summary, request, stop_date, stopped.is_set()) for summary in result.map_runs
                ],
            )
        except (DefinitionError, InputTooLarge) as exc:  # checked before the start; kept as a failure
            outcome = ExecutionOutcome("FAILED", datetime.now(UTC), error="States.Runtime", cause=str(exc))
        except Exception as exc:  # a bug in the engine must not leave the execution RUNNING for ever
            log.exception("the local engine failed while running %s", request.execution_arn)
            outcome = ExecutionOutcome(
                "FAILED",
                datetime.now(UTC),
                error="States.Runtime",
                cause=f"the local engine failed: {type(exc).__name__}: {exc}",
            )
        try:
            listener.finished(outcome)
        finally:
            done.set()
            with self._lock:
                self._handles.pop(request.execution_arn, None)


def _snapshot(summary: Any, request: ExecutionRequest, stop_date: datetime, stopped: bool) -> MapRunSnapshot:
    """A finished map run as DescribeMapRun shows it. ``MapRunSummary`` carries neither dates nor the
    run's settings: the dates are the execution's and the settings the Map state's literal fields."""
    state = _find_state(request.state_machine.definition, summary.state_name) or {}
    status = summary.status
    if stopped and status != "SUCCEEDED":
        status = "ABORTED"
    return MapRunSnapshot(
        map_run_arn=summary.map_run_arn,
        execution_arn=request.execution_arn,
        state_name=summary.state_name,
        status=status,
        start_date=request.start_date,
        stop_date=stop_date,
        max_concurrency=_literal_number(state.get("MaxConcurrency"), 0),
        tolerated_failure_percentage=float(_literal_number(state.get("ToleratedFailurePercentage"), 0)),
        tolerated_failure_count=int(_literal_number(state.get("ToleratedFailureCount"), 0)),
        item_counts=dict(summary.item_counts),
        execution_counts=dict(summary.execution_counts),
        redrive_count=request.redrive_count,
    )


def _literal_number(value: Any, default: int) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else default


def _find_state(definition: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The state called ``name`` anywhere in the definition (Parallel branches and Map processors too)."""
    for state_name, state in _states(definition):
        if state_name == name:
            return state
    return None


def _states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for state_name, state in (machine.get("States") or {}).items():
        if not isinstance(state, dict):
            continue
        yield state_name, state
        for branch in state.get("Branches") or []:
            yield from _states(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, dict):
            yield from _states(processor)
