"""The options of the `burstmap` commands, each declared once (a name, a value label, a help text).

Value labels are upper case and name what is typed (N, FILE, DIR, JSON, SECONDS, URL ...); flags have none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Size = Annotated[
    int | None, typer.Option("--size", metavar="N", help="Run over the items 0..N-1.", show_default=False)
]
ItemsFile = Annotated[
    Path | None,
    typer.Option(
        "--items", metavar="FILE", help="A file of items: one JSON list, or JSON Lines.", show_default=False
    ),
]
Parameters = Annotated[
    str | None,
    typer.Option(
        "--parameters", metavar="JSON", help="A JSON object passed to every compute call.", show_default=False
    ),
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        metavar="N",
        help="Items per compute invocation. Default: the app's setting (plan without --app-dir: 1).",
        show_default=False,
    ),
]
MaxConcurrency = Annotated[
    int | None,
    typer.Option(
        "--max-concurrency",
        metavar="N",
        help="Child executions at once (local). Default: the app's setting.",
        show_default=False,
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        metavar="N",
        help="Local worker processes per function. Default: the CPU count.",
        show_default=False,
    ),
]
OutputDir = Annotated[
    Path | None,
    typer.Option(
        "--output-dir",
        metavar="DIR",
        help="Copy the manifest, the result files and failed_items.json here.",
        show_default=False,
    ),
]
Stats = Annotated[bool, typer.Option("--stats", help="Add a `stats` object to the printed JSON.")]
InjectThrottle = Annotated[
    float | None,
    typer.Option(
        "--inject-throttle",
        metavar="RATE",
        help="Local: fail this fraction of Lambda invocations with Lambda.TooManyRequestsException.",
        show_default=False,
    ),
]
RetryTimeScale = Annotated[
    float | None,
    typer.Option(
        "--retry-time-scale",
        metavar="FACTOR",
        help="Local: multiply Retry waits by FACTOR (0 skips them, for tests).",
        show_default=False,
    ),
]
EndpointUrl = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        metavar="URL",
        help="Local: an S3-compatible server to use instead of the embedded one.",
        show_default=False,
    ),
]
InputDir = Annotated[
    Path | None,
    typer.Option(
        "--input-dir",
        metavar="DIR",
        help="Local, for an app over S3 objects (BurstCompute input_prefix): upload the files under DIR "
        "as its input objects (DIR/a.txt -> <input_prefix>/a.txt), then run over them (no --size/--items).",
        show_default=False,
    ),
]
AppDir = Annotated[
    Path | None,
    typer.Option(
        "--app-dir",
        metavar="DIR",
        help="Local: the CDK app directory (cdk.json). Default: the current directory.",
        show_default=False,
    ),
]
Synth = Annotated[
    bool,
    typer.Option("--synth", help="Local: synthesize the app even when nothing it reads changed."),
]
SynthTimeout = Annotated[
    float | None,
    typer.Option(
        "--synth-timeout",
        metavar="SECONDS",
        help="Local: stop an app that takes longer to synthesize. Default: $BURSTMAP_SYNTH_TIMEOUT or 300.",
        show_default=False,
    ),
]
StateMachine = Annotated[
    str | None,
    typer.Option(
        "--state-machine",
        metavar="ID",
        help="Local: which state machine of the app, when it has several: its construct path "
        "(MyStack/JobB), logical id, name, or its stack's name when the stack has one job.",
        show_default=False,
    ),
]
Stack = Annotated[
    str | None,
    typer.Option(
        "--stack",
        metavar="NAME",
        help="Run on AWS: the deployed stack (outputs StateMachineArn, BucketName).",
        show_default=False,
    ),
]
StateMachineArn = Annotated[
    str | None,
    typer.Option(
        "--state-machine-arn", metavar="ARN", help="Run on AWS: this state machine.", show_default=False
    ),
]
NoWait = Annotated[bool, typer.Option("--no-wait", help="AWS: print the execution ARN and return at once.")]
ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress on stderr: a live bar on a terminal, else a plain line at most every 10 s "
        "(--no-progress hides it).",
        show_default=False,
    ),
]
PollSeconds = Annotated[
    float | None,
    typer.Option(
        "--poll-seconds",
        metavar="SECONDS",
        help="AWS: seconds between progress polls. Default: 2.",
        show_default=False,
    ),
]
ExecutionName = Annotated[
    str | None,
    typer.Option(
        "--name", metavar="NAME", help="AWS: the execution name. Default: a UUID.", show_default=False
    ),
]
Region = Annotated[
    str | None,
    typer.Option(
        "--region",
        metavar="REGION",
        help="AWS region. Default: the execution ARN's, else the AWS config.",
        show_default=False,
    ),
]
Profile = Annotated[
    str | None, typer.Option("--profile", metavar="PROFILE", help="AWS profile.", show_default=False)
]
ExecutionArn = Annotated[str, typer.Argument(help="The execution ARN.", metavar="EXECUTION_ARN")]
