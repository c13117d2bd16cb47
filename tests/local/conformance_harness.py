"""Replays the AWS-recorded conformance cases (shared/conformance) through the local engine.

Each case's `functions` become Python handlers run by the engine's LambdaRuntime (the `raise`
behaviour raises an exception carrying the recorded stack trace, so causes match AWS's text), its
`s3_setup` goes to moto's in-process S3, and every execution (input + more_executions) is compared
with AWS's result following the README's placeholder rules. Waits and retry backoffs run on a fake
clock, so nothing sleeps.

    python -m tests.local.conformance_harness --summary      # pass/skip/fail per group
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFORMANCE_DIR = Path(
    os.environ.get("BURSTMAP_CONFORMANCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "conformance")
)
STATE_MACHINE_NAME = "statemachinelocal"
"""The recorded names were `statemachine_<id>`-like, without '-'."""

_PLACEHOLDER = re.compile(
    r"<(uuid:\d+|request_id|ArnPart_0idx|ExecArnPart_0idx|MapRunArnPart1_0idx|timestamp|role-arn|date|"
    r"RequestId|x-amzn-RequestId|X-Amzn-Trace-Id|json-input:\d+)>"
)
_BOUND = re.compile(r"^(uuid:\d+|ArnPart_0idx|ExecArnPart_0idx|MapRunArnPart1_0idx)$")
"""Placeholders that must stand for the same text at each occurrence in one execution."""
_TOKEN = re.compile(_PLACEHOLDER.pattern + r"|(?<=event id )#\d+")


# ---------------------------------------------------------------------------------------- cases


@dataclass
class Execution:
    """One recorded execution of a case: an input and AWS's result."""

    case: dict[str, Any]
    index: int
    input: Any
    expected: dict[str, Any]

    @property
    def group(self) -> str:
        return self.case["group"]

    @property
    def id(self) -> str:
        return f"{self.case['group']}/{self.case['name']}#{self.index}"


def load_cases(directory: Path = CONFORMANCE_DIR) -> list[dict[str, Any]]:
    index = json.loads((directory / "index.json").read_text())
    return [json.loads((directory / entry["path"]).read_text()) for entry in index["cases"]]


def executions(cases: list[dict[str, Any]]) -> Iterator[Execution]:
    for case in cases:
        yield Execution(case, 0, case["input"], case["expected"])
        for number, extra in enumerate(case.get("more_executions") or [], start=1):
            yield Execution(case, number, extra["input"], extra["expected"])


# ------------------------------------------------------------------------------------ functions


def _raising(error_type: str, message: str, stack_trace: list[str]) -> Callable[..., Any]:
    """A handler raising an exception of class `error_type` whose str() is `message`; the exception
    carries the recorded trace as `stack_trace`, which the runtime puts in the error document."""
    exception_class = type(error_type, (Exception,), {})

    def handler(event: Any, context: Any) -> Any:
        exc = exception_class(message) if message else exception_class()
        exc.stack_trace = list(stack_trace)
        raise exc

    return handler


def handler_for(behaviour: dict[str, Any], clock: Any) -> Callable[..., Any]:
    """A Python handler that behaves as the README's vocabulary says."""
    kind = behaviour["behaviour"]
    if kind == "echo":
        return lambda event, context: event
    if kind == "constant":
        value = behaviour["value"]
        return lambda event, context: value
    if kind == "raise":
        return _raising(behaviour["error_type"], behaviour["message"], behaviour["stack_trace"])
    if kind == "return_raw":
        if "raw_repeat" in behaviour:
            raw = behaviour["raw_repeat"]["text"] * behaviour["raw_repeat"]["count"]
        else:
            raw = behaviour["raw"]
        body = raw.encode("utf-8")
        return lambda event, context: body
    if kind == "sleep_then_echo":
        seconds = behaviour["seconds"]

        def sleep_then_echo(event: Any, context: Any) -> Any:
            clock.sleep(seconds)
            return event

        return sleep_then_echo
    raise ValueError(f"unknown function behaviour {kind!r}")


# ------------------------------------------------------------------------------------ comparing


def _match_text(expected: str, actual: str, bindings: dict[str, str]) -> bool:
    """A string with placeholders; an event id in a cause ("event id #4") counts as a wildcard."""
    pattern, names, position = [], [], 0
    for found in _TOKEN.finditer(expected):
        pattern.append(re.escape(expected[position : found.start()]))
        name = found.group(1)
        if name is None:
            pattern.append(r"#\d+")
        elif _BOUND.match(name):
            pattern.append("(.+?)")
            names.append(name)
        else:
            pattern.append("(?:.+?)")
        position = found.end()
    pattern.append(re.escape(expected[position:]))
    matched = re.fullmatch("".join(pattern), actual, flags=re.DOTALL)
    if matched is None:
        return False
    for name, text in zip(names, matched.groups(), strict=True):
        if bindings.setdefault(name, text) != text:
            return False
    return True


def match(
    expected: Any, actual: Any, bindings: dict[str, str], ignore_keys: frozenset[str] = frozenset()
) -> bool:
    """Structural comparison with placeholders (see the conformance README)."""
    if isinstance(expected, str) and _PLACEHOLDER.fullmatch(expected) and not isinstance(actual, str):
        return actual is not None  # a placeholder for a whole (e.g. list-valued) header
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        keys = set(expected) - ignore_keys
        if keys != set(actual) - ignore_keys:
            return False
        return all(match(expected[key], actual[key], bindings, ignore_keys) for key in keys)
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(match(e, a, bindings, ignore_keys) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, str):
        return isinstance(actual, str) and _match_text(expected, actual, bindings)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and expected == actual
    return expected == actual


def compare(execution: Execution, result: Any) -> str | None:
    """None when the result matches AWS's, else what differs."""
    expected = execution.expected
    bindings: dict[str, str] = {}
    ignore = (
        frozenset({"Content-Length"})
        if "original function name" in (execution.case.get("notes") or "")
        else frozenset()
    )
    if result.status != expected["status"]:
        got = f"{result.status} (error {result.error!r}, cause {result.cause!r})"
        return f"status {got}, expected {expected['status']}"
    if expected["status"] == "SUCCEEDED":
        if not match(expected.get("output"), result.output, bindings, ignore):
            got, want = json.dumps(result.output)[:1500], json.dumps(expected.get("output"))[:1500]
            return f"output {got}\n  expected {want}"
        return None
    if expected.get("error") != result.error and not (
        expected.get("error") is not None
        and result.error is not None
        and match(expected["error"], result.error, bindings)
    ):
        return f"error {result.error!r}, expected {expected.get('error')!r}"
    want = expected.get("cause")
    if want is None:
        return None if result.cause is None else f"cause {result.cause!r}, expected none"
    if expected.get("cause_is_json_text"):
        try:
            got = json.loads(result.cause)
        except (TypeError, ValueError):
            return f"cause {result.cause!r} is not JSON text"
        return None if match(want, got, bindings) else f"cause {result.cause!r}\n  expected {want!r}"
    if result.cause is None or not match(want, result.cause, bindings):
        return f"cause {result.cause!r}\n  expected {want!r}"
    return None


# -------------------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """pass, skip or fail, with the reason for a skip or the difference for a failure."""

    status: str
    detail: str = ""


@dataclass
class _Environment:
    stack: ExitStack = field(default_factory=ExitStack)
    s3: Any = None


def _skip_reason(case: dict[str, Any]) -> str | None:
    """Cases are skipped only when the engine refuses their definition (UnsupportedFeature, below)."""
    return None


def run_execution(execution: Execution) -> Outcome:
    """Run one recorded execution in the engine and compare it with AWS's result."""
    case = execution.case
    reason = _skip_reason(case)
    if reason:
        return Outcome("skip", reason)
    try:
        from burstmap.local import FakeClock, UnsupportedFeature, execute, load_definition
    except ImportError as exc:
        return Outcome("skip", f"engine module missing: {exc}")
    try:
        load_definition(case["definition"])
    except UnsupportedFeature as exc:
        return Outcome("skip", str(exc))
    except ImportError as exc:
        return Outcome("skip", f"engine module missing: {exc}")
    clock = FakeClock()
    env = _Environment()
    with env.stack:
        runtime = None
        if case.get("functions"):
            try:
                from burstmap.local.services.lambda_runtime import FunctionSpec, LambdaRuntime
            except ImportError as exc:
                return Outcome("skip", f"engine module missing: {exc}")
            specs = [
                FunctionSpec(name=name, handler=handler_for(behaviour, clock), timeout_seconds=900)
                for name, behaviour in case["functions"].items()
            ]
            runtime = env.stack.enter_context(LambdaRuntime(specs))
        if case.get("s3_setup") or _uses_s3(case["definition"]):
            env.s3 = _moto_s3(env.stack, case.get("s3_setup") or {})
        try:
            result = execute(
                case["definition"],
                execution.input,
                runtime=runtime,
                s3_client=env.s3,
                clock=clock,
                state_machine_name=STATE_MACHINE_NAME,
                seed=0,
            )
        except ImportError as exc:
            return Outcome("skip", f"engine module missing: {exc}")
        except Exception as exc:  # a crash of the engine is a failure of the case, with its reason
            return Outcome("fail", f"engine raised {type(exc).__name__}: {exc}")
        difference = compare(execution, result)
        if difference is None and "s3_after" in execution.expected:
            difference = _check_s3_after(env.s3, execution.expected["s3_after"], result.output)
    return Outcome("pass") if difference is None else Outcome("fail", difference)


def _uses_s3(definition: Any) -> bool:
    return "arn:aws:states:::s3:" in json.dumps(definition)


def _moto_s3(stack: ExitStack, setup: dict[str, Any]) -> Any:
    import boto3
    from moto import mock_aws

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    stack.enter_context(mock_aws())
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in setup.get("buckets", []):
        s3.create_bucket(Bucket=bucket)
    for item in setup.get("objects", []):
        s3.put_object(Bucket=item["bucket"], Key=item["key"], Body=item["body"].encode("utf-8"))
    return s3


def _check_s3_after(s3: Any, expected: dict[str, Any], output: Any) -> str | None:
    details = (output or {}).get("ResultWriterDetails") or {}
    try:
        body = s3.get_object(Bucket=details["Bucket"], Key=details["Key"])["Body"].read()
    except Exception as exc:  # the manifest is missing or unreadable
        return f"no manifest at {details}: {exc}"
    manifest = json.loads(body)
    want = expected.get("manifest", expected)
    bindings: dict[str, str] = {}
    for key in ("DestinationBucket", "ResultFiles"):
        if key in want and not match(want[key], manifest.get(key), bindings):
            return f"manifest {key} {manifest.get(key)!r}, expected {want[key]!r}"
    if manifest.get("MapRunArn") != output.get("MapRunArn"):
        return "manifest MapRunArn differs from the output's"
    return None


# -------------------------------------------------------------------------------------- summary


def summary(
    cases: list[dict[str, Any]] | None = None, stream: Any = sys.stdout, verbose: bool = True
) -> dict:
    """Run every execution; print a pass/skip/fail table per group, then every skip and failure."""
    cases = cases if cases is not None else load_cases()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    notes: list[tuple[str, str, str]] = []
    for execution in executions(cases):
        outcome = run_execution(execution)
        counts[execution.group][outcome.status] += 1
        if outcome.status != "pass":
            notes.append((outcome.status, execution.id, outcome.detail))
    total: Counter[str] = Counter()
    print(f"| {'group':<20} | pass | skip | fail |", file=stream)
    print(f"|{'-' * 22}|-----:|-----:|-----:|", file=stream)
    for group in sorted(counts):
        total.update(counts[group])
        row = counts[group]
        print(f"| {group:<20} | {row['pass']:>4} | {row['skip']:>4} | {row['fail']:>4} |", file=stream)
    print(f"| {'total':<20} | {total['pass']:>4} | {total['skip']:>4} | {total['fail']:>4} |", file=stream)
    if verbose:
        for status, execution_id, detail in sorted(notes):
            print(f"\n{status.upper()} {execution_id}: {detail}", file=stream)
    return {"counts": {group: dict(row) for group, row in counts.items()}, "notes": notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", action="store_true", help="print pass/skip/fail per group (default)")
    parser.add_argument("--group", action="append", help="only these groups")
    parser.add_argument("--quiet", action="store_true", help="the table only, without skip/fail details")
    options = parser.parse_args(argv)
    cases = load_cases()
    if options.group:
        cases = [case for case in cases if case["group"] in options.group]
    result = summary(cases, verbose=not options.quiet)
    return 1 if any(row.get("fail") for row in result["counts"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
