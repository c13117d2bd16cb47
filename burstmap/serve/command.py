"""``burstmap serve``: the app's state machines behind the real Step Functions, S3 and CloudFormation APIs.

Added to the CLI with ``app.command(name="serve")(serve)`` (see burstmap/cli.py); runnable alone as
``python -m burstmap.serve.command``. It prints the endpoint on stderr, then serves until SIGINT or
SIGTERM; clients find it with ``AWS_ENDPOINT_URL`` or ``--endpoint-url``.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from burstmap.serve import DEFAULT_HOST, DEFAULT_PORT

if TYPE_CHECKING:  # pragma: no cover
    from burstmap.serve.endpoint import LocalEndpoint

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def serve(
    app_dir: Annotated[
        Path | None,
        typer.Option(
            "--app-dir",
            metavar="DIR",
            help="The CDK app directory (cdk.json). Default: the current directory.",
        ),
    ] = None,
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", help="The port to listen on (0: any free port).")
    ] = DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="HOST",
            help="The address to listen on; loopback unless you change it (no auth).",
        ),
    ] = DEFAULT_HOST,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="Keep executions (status, input, output, events, map runs) and the S3 data here across "
            "restarts. Default: nothing is kept.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the app's state machines behind the Step Functions, S3 and CloudFormation APIs."""
    # Imported here: the engine and botocore's models load only when serving, not for `burstmap --help`.
    from burstmap.local.app.errors import AssemblyError
    from burstmap.local.services.s3 import LocalS3Error
    from burstmap.serve.endpoint import LocalEndpoint

    if not 0 <= port <= 65535:
        raise typer.BadParameter(f"--port must be 0 to 65535, got {port}")
    try:
        endpoint = LocalEndpoint.from_app_dir(
            app_dir or Path.cwd(), host=host, port=port, state_dir=state_dir
        )
        endpoint.start()
    except (AssemblyError, LocalS3Error, OSError) as exc:
        typer.echo(f"burstmap: {exc}", err=True)
        raise typer.Exit(2) from None
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    _announce(endpoint, host)
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        typer.echo("burstmap: stopping (running executions end ABORTED)", err=True)
        endpoint.stop()


def _announce(endpoint: LocalEndpoint, host: str) -> None:
    say = lambda line: typer.echo(f"burstmap: {line}", err=True)  # noqa: E731
    say(f"serving Step Functions, S3 and CloudFormation on {endpoint.url}")
    for machine in endpoint.machines:
        note = f" (cannot run locally: {machine.unsupported})" if machine.unsupported else ""
        say(f"  state machine {machine.arn} [{machine.type}]{note}")
    for stack in endpoint.stacks:
        say(f"  stack {stack.name}: {', '.join(f'{o.key}={o.value}' for o in stack.outputs) or 'no outputs'}")
    say(f"clients: export AWS_ENDPOINT_URL={endpoint.url} (or aws ... --endpoint-url {endpoint.url})")
    if any(machine.type == "EXPRESS" for machine in endpoint.machines):
        say("StartSyncExecution: also export AWS_DISABLE_HOST_PREFIX_INJECTION=true (no sync- host locally)")
    if host not in LOOPBACK_HOSTS:
        say(f"warning: listening on {host}, not loopback: anyone who reaches it can run your functions")
    say("Ctrl-C stops it")


def main() -> None:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(serve)
    app(prog_name="burstmap serve")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
