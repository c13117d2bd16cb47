"""The backend over the local engine: ``burstmap.local.execute`` on a thread per execution, with every
hook a server needs.

One LambdaRuntime and one S3 client serve every execution for the server's life, so functions stay warm
between executions. Each execution reports its history events (``on_event``, numbered from the id the
record gives), its map runs as they start and end (``on_map_run``; their counts move in between and are
read on every DescribeMapRun), keeps its map runs' child records (``keep_child_records``), and stops on
its ``Cancellation`` (StopExecution). An unsuccessful end carries the engine's redrive point, which
``redrive`` resumes from.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from burstmap.local import (
    Cancellation,
    DefinitionError,
    InputTooLarge,
    NotRedrivable,
    RedrivePoint,
    execute,
    load_definition,
)
from burstmap.local.dmap.map_run import MapRun
from burstmap.serve.backend import (
    ExecutionHandle,
    ExecutionListener,
    ExecutionOutcome,
    ExecutionRequest,
    MapRunSnapshot,
    NotSupportedLocally,
    StateMachineSpec,
)

log = logging.getLogger(__name__)


class EngineMapRun:
    """An engine MapRun as the server reads it: a fresh snapshot on every read."""

    def __init__(self, run: MapRun) -> None:
        self.run = run

    def snapshot(self) -> MapRunSnapshot:
        described = self.run.describe()
        identity = self.run.identity
        return MapRunSnapshot(
            map_run_arn=described["mapRunArn"],
            execution_arn=described["executionArn"],
            state_name=self.run.state_name,
            status=described["status"],
            start_date=_date(described["startDate"]),
            stop_date=_date(described.get("stopDate")),
            max_concurrency=described["maxConcurrency"],
            tolerated_failure_percentage=float(described["toleratedFailurePercentage"]),
            tolerated_failure_count=int(described["toleratedFailureCount"]),
            item_counts=described["itemCounts"],
            execution_counts=described["executionCounts"],
            redrive_count=described["redriveCount"],
            redrive_date=_date(described.get("redriveDate")),
            execution_type=identity.execution_type if identity is not None else "STANDARD",
            children=self.run.ledger,
        )


def _date(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


class _Handle:
    def __init__(self, cancellation: Cancellation, done: threading.Event) -> None:
        self._cancellation = cancellation
        self._done = done

    def stop(self) -> None:
        self._cancellation.cancel()

    def join(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class EngineBackend:
    """Runs each execution with ``burstmap.local.execute`` on its own thread."""

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
        self._handles: dict[str, _Handle] = {}
        self._lock = threading.Lock()

    def check_runnable(self, state_machine: StateMachineSpec) -> None:
        try:
            load_definition(state_machine.definition)
        except DefinitionError as exc:  # UnsupportedFeature is one
            raise NotSupportedLocally(str(exc)) from exc

    def start(self, request: ExecutionRequest, listener: ExecutionListener) -> ExecutionHandle:
        return self._begin(request, listener, None)

    def redrive(
        self, request: ExecutionRequest, previous: ExecutionOutcome, listener: ExecutionListener
    ) -> ExecutionHandle:
        if previous.redrive_point is None:
            raise NotSupportedLocally("the execution ended before any state ran: there is nothing to redrive")
        point = RedrivePoint.from_json(previous.redrive_point)
        if point.unsupported is not None:
            raise NotSupportedLocally(point.unsupported)
        return self._begin(request, listener, point)

    def _begin(
        self, request: ExecutionRequest, listener: ExecutionListener, redrive: RedrivePoint | None
    ) -> ExecutionHandle:
        cancellation, done = Cancellation(), threading.Event()
        handle = _Handle(cancellation, done)
        thread = threading.Thread(
            target=self._run,
            args=(request, listener, cancellation, done, redrive),
            name=f"execution-{request.name}"[:60],
            daemon=True,
        )
        with self._lock:
            self._handles[request.execution_arn] = handle
        thread.start()
        return handle

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
        cancellation: Cancellation,
        done: threading.Event,
        redrive: RedrivePoint | None,
    ) -> None:
        machine = request.state_machine
        runs: dict[str, MapRun] = {}

        def map_run_changed(run: MapRun) -> None:
            runs[run.map_run_arn] = run
            listener.map_run_changed(EngineMapRun(run))

        region, account = _region_and_account(machine.arn)
        try:
            result = execute(
                machine.definition,
                request.input,
                runtime=self._runtime,
                s3_client=self._s3,
                retry_time_scale=self._retry_time_scale,
                name=request.name,
                state_machine_name=machine.name,
                role_arn=machine.role_arn,
                region=region,
                account=account,
                max_workers=self._max_workers,
                on_event=listener.history_event,
                first_event_id=request.next_event_id,
                on_map_run=map_run_changed,
                keep_child_records=True,
                cancellation=cancellation,
                redrive=redrive,
                start_time=request.start_date,
            )
            outcome = ExecutionOutcome(
                status=result.status,
                stop_date=datetime.now(UTC),
                output=result.output,
                error=result.error,
                cause=result.cause,
                map_runs=[EngineMapRun(run).snapshot() for run in runs.values()],
                redrive_point=result.redrive_point.to_json() if result.redrive_point is not None else None,
            )
        except (DefinitionError, InputTooLarge, NotRedrivable) as exc:  # checked before the start
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


def _region_and_account(state_machine_arn: str) -> tuple[str, str]:
    """The region and account of ``arn:aws:states:<region>:<account>:stateMachine:<name>``: the map
    runs' and children's ARNs are the execution's."""
    parts = state_machine_arn.split(":")
    return parts[3], parts[4]
