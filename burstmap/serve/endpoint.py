"""The served endpoint with everything behind it: the local S3, the warm functions, the backend, the APIs.

``LocalEndpoint.from_app_dir(DIR)`` loads an app as ``burstmap run`` does (synthesizes it, or reuses an
up-to-date cdk.out); ``LocalEndpoint(machines, stacks, functions)`` serves what it is given (tests,
apps assembled in code). ``start()`` returns once the port listens; ``stop()`` stops the executions
still running (ABORTED, error ``burstmap.ServerStopped``), keeps the state when a state directory is
set, and shuts every process down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from burstmap.client.local_app import function_specs, prepare_app
from burstmap.local.services.lambda_runtime import LambdaRuntime
from burstmap.local.services.s3 import LocalS3
from burstmap.serve import DEFAULT_HOST, DEFAULT_PORT
from burstmap.serve.backend import NotSupportedLocally, StateMachineSpec
from burstmap.serve.cloudformation import CloudFormationApi
from burstmap.serve.engine_backend import EngineBackend
from burstmap.serve.http_server import EndpointServer
from burstmap.serve.machines import StackSpec, load_served_app
from burstmap.serve.s3_proxy import S3Proxy
from burstmap.serve.s3_state import restore_objects, save_objects
from burstmap.serve.stepfunctions import StepFunctionsApi
from burstmap.serve.store import SERVER_STOPPED_CAUSE, SERVER_STOPPED_ERROR, ExecutionStore

log = logging.getLogger(__name__)


class LocalEndpoint:
    """Step Functions, S3 and CloudFormation on one loopback port, for the app it is given."""

    def __init__(
        self,
        machines: Iterable[StateMachineSpec],
        stacks: Iterable[StackSpec] = (),
        functions: Iterable[Any] = (),
        *,
        buckets: Iterable[str] = (),
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        state_dir: Path | str | None = None,
        workers: int | None = None,
        retry_time_scale: float = 1.0,
    ) -> None:
        self.machines = list(machines)
        self.stacks = list(stacks)
        self.functions = list(functions)
        self.buckets = list(buckets)
        self.host, self.port = host, port
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.workers = workers
        self.retry_time_scale = retry_time_scale
        self.s3: Any = None
        self.runtime: Any = None
        self.backend: EngineBackend | None = None
        self.store: ExecutionStore | None = None
        self.stepfunctions: StepFunctionsApi | None = None
        self._server: EndpointServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_app_dir(cls, app_dir: Path | str, **options: Any) -> LocalEndpoint:
        """The app in ``app_dir``, synthesized (or its cdk.out reused) as ``burstmap run`` does."""
        app = prepare_app(Path(app_dir))
        machines, stacks = load_served_app(app)
        return cls(machines, stacks, function_specs(app), buckets=[b.name for b in app.buckets], **options)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the endpoint is not started")
        return self._server.url

    def start(self) -> LocalEndpoint:
        try:
            self.s3 = LocalS3(buckets=self.buckets).start()
            if self.state_dir is not None:
                restored = restore_objects(self.s3.client(), self.state_dir / "s3", self.s3.ensure_bucket)
                log.info("restored %d S3 objects from %s", restored, self.state_dir / "s3")
            self.store = ExecutionStore(self.state_dir)
            self._server = EndpointServer(
                (self.host, self.port),
                stepfunctions=lambda target, body: self._api().handle(target, body),
                cloudformation=CloudFormationApi(self.stacks).handle,
                s3=S3Proxy(self.s3.endpoint_url),
            )
            # Workers reach S3 directly and every other AWS API (Step Functions, ...) through this server.
            worker_env = {**self.s3.env(), "AWS_ENDPOINT_URL": self.url}
            self.runtime = LambdaRuntime(self.functions, workers=self.workers, extra_env=worker_env)
            self.backend = EngineBackend(
                self.runtime,
                self.s3.client(),
                retry_time_scale=self.retry_time_scale,
                max_workers=self.workers,
            )
            self.stepfunctions = StepFunctionsApi(self._runnable(self.machines), self.backend, self.store)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="burstmap-serve"
            )
            self._thread.daemon = True
            self._thread.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _api(self) -> StepFunctionsApi:
        assert self.stepfunctions is not None
        return self.stepfunctions

    def _runnable(self, machines: list[StateMachineSpec]) -> list[StateMachineSpec]:
        """The machines, each marked with why it cannot run locally (StartExecution says so), if so."""
        assert self.backend is not None
        checked = []
        for machine in machines:
            if machine.unsupported is None:
                try:
                    self.backend.check_runnable(machine)
                except NotSupportedLocally as exc:
                    machine = replace(machine, unsupported=str(exc))
            checked.append(machine)
        return checked

    def stop(self) -> None:
        """Stop serving; running executions end ABORTED; the state is saved when a directory is set."""
        if self._server is not None:
            if self._thread is not None:  # serve_forever runs: shutdown() waits for it to return
                self._server.shutdown()
            self._server.server_close()
        if self.store is not None:
            now = datetime.now(UTC)
            for record in self.store.all():
                record.stop(SERVER_STOPPED_ERROR, SERVER_STOPPED_CAUSE, now)
        if self.backend is not None:
            self.backend.close()
        if self.runtime is not None:
            self.runtime.close()
        if self.s3 is not None:
            if self.state_dir is not None and self.s3.running:
                saved = save_objects(self.s3.client(), self.state_dir / "s3")
                log.info("saved %d S3 objects to %s", saved, self.state_dir / "s3")
            self.s3.stop()
        self._server = self._thread = None
        self.backend = self.runtime = self.s3 = None

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
