"""How `burstmap` answers when it has no result to print: one line on stderr and an exit code.

Every error, usage error and bad input is one line naming what the user typed (``--size abc``, an option's
value, an AWS error), never a traceback; a failed execution is its error and cause and the first failing
item; SIGINT and SIGTERM stop a command once, with one ``interrupted`` line.

Exit codes: 0 success; 1 the execution failed; 2 bad usage, a bad input or an AWS error; 128 + the signal
when interrupted (130 Ctrl-C, 143 SIGTERM).
"""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperGroup

from burstmap.client import plan as planning
from burstmap.client.aws import AwsError
from burstmap.client.job import JobFailed, NoResults
from burstmap.client.job_input import InvalidArgument, JobInputError
from burstmap.client.results import error_message
from burstmap.runtime.contracts import without_item_mark
from burstmap.runtime.results import ResultReadError

EXIT_FAILED = 1
EXIT_USAGE_OR_AWS = 2
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])

# click's exceptions, wherever this typer keeps click (its own copy since typer 0.22, else click itself).
_click = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp: type[Exception] = getattr(_click, "NoArgsIsHelpError", type("_Never", (Exception,), {}))


class OneLineUsageErrors(TyperGroup):
    """Usage errors (an unknown option, ``--size abc``, a flag given a value) as one line on stderr and
    exit 2, like every other bad input; click would print a usage block and a boxed message."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _NoArgsIsHelp as help_wanted:
            help_wanted.show()  # type: ignore[attr-defined] - `burstmap` alone: the help
            sys.exit(help_wanted.exit_code)  # type: ignore[attr-defined]
        except _click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "burstmap"
            typer.echo(f"burstmap: {exc.format_message()} (`{command} -h` lists the options)", err=True)
            sys.exit(exc.exit_code)
        except _click.ClickException as exc:
            typer.echo(f"burstmap: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except _click.Abort:
            typer.echo("burstmap: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)


class UsageError(Exception):
    """A bad combination of options: one line on stderr, exit 2."""


def say(message: str) -> None:
    typer.echo(f"burstmap: {message}", err=True)


def handles_errors(command: F) -> F:
    """Turn AWS errors and bad input into one line on stderr and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InvalidArgument as exc:
            say(exc.for_option(option_of(exc.argument)))
            raise typer.Exit(EXIT_USAGE_OR_AWS) from None
        except (AwsError, UsageError, JobInputError, planning.InvalidPlan, NoResults, ResultReadError) as exc:
            say(str(exc))
            raise typer.Exit(EXIT_USAGE_OR_AWS) from None
        except JobFailed as failed:
            report_failure(failed)
            raise typer.Exit(EXIT_FAILED) from None
        except KeyboardInterrupt as interrupt:  # before the job ran (synth, start): nothing to say of it
            say("interrupted")
            raise typer.Exit(interrupted_exit_code(interrupt)) from None

    return wrapper  # type: ignore[return-value]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt, so a job is stopped and
    everything it started is closed the same way."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number


def interrupted_exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal number, as a shell reports a process a signal stopped: 130 Ctrl-C, 143 SIGTERM."""
    return 128 + getattr(interrupt, "signal_number", signal.SIGINT)


def stop_on_signals() -> None:
    """SIGINT and SIGTERM stop the command once, with one line; a second signal while it closes what it
    started is ignored (the workers and the S3 server then end with it)."""

    def stop(signal_number: int, frame: object) -> None:
        for handled in (signal.SIGINT, signal.SIGTERM):
            signal.signal(handled, signal.SIG_IGN)
        raise Terminated(signal_number) if signal_number != signal.SIGINT else KeyboardInterrupt

    for handled in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(handled) is not signal.SIG_IGN:  # started with it ignored (nohup &): keep so
            signal.signal(handled, stop)


def short_cause(cause: str | None) -> str:
    """A Lambda error's cause is a JSON string; its errorMessage is what a person needs to read (without
    the ``[item i]`` mark compute_handler adds in a batch: the line names the item already)."""
    return without_item_mark(error_message(cause)) or "no cause given"


def report_failure(failed: JobFailed) -> None:
    say(f"execution {failed.status}: {failed.error or 'no error name'}: {short_cause(failed.cause)}")
    first = failed.first_failure
    if first is not None:
        where = f"item {first.index}" if first.index is not None else f"item {json.dumps(first.item)}"
        key = first.item.get("key") if isinstance(first.item, dict) else None
        if first.index is not None and isinstance(key, str):
            where += f" ({key})"  # a job over S3 objects: the object, which its index alone does not name
        others = failed.failed_items - 1
        say(
            f"first failing {where}: {first.error}: {short_cause(first.cause)}"
            + (f" ({others} other item{'s' if others != 1 else ''} failed)" if others > 0 else "")
        )


def count(things: list[Any], noun: str) -> str:
    return f"{len(things)} {noun}{'' if len(things) == 1 else 's'}"


_OPTIONS_NAMED_OTHERWISE = {"items_file": "--items"}


def option_of(argument: str) -> str:
    """The option a Python argument comes from: batch_size -> --batch-size, items_file -> --items."""
    return _OPTIONS_NAMED_OTHERWISE.get(argument) or flag(argument)


def listed(options: list[str]) -> str:
    """``--a applies only`` / ``--a, --b apply only``."""
    return f"{', '.join(options)} {'applies' if len(options) == 1 else 'apply'} only"


def flag(parameter: str) -> str:
    """The option of a `run` parameter (every one is named after it: batch_size -> --batch-size)."""
    return "--" + parameter.replace("_", "-")
