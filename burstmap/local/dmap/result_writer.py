"""ResultWriter: the child executions' results in S3, in AWS's layout.

Layout (AWS developer guide, "ResultWriter (Map)"): under `<Prefix>/<map run id>/` Step Functions
writes `manifest.json` ({DestinationBucket, MapRunArn, ResultFiles: {FAILED, PENDING, SUCCEEDED:
[{Key, Size}]}}) and one or more result files per status, `SUCCEEDED_n.json`, `FAILED_n.json`,
`PENDING_n.json` (n from 0); a new file starts when one would pass 5 GB. Failed, timed-out and
aborted children go to FAILED, children never started because the map run failed go to PENDING.

`WriterConfig.Transformation`: NONE (default with an S3 destination) writes one record per child
(ExecutionArn, Input, Output as JSON text, Status, dates, ...); COMPACT writes the outputs alone;
FLATTEN writes the outputs with array outputs flattened one level. Failed children are always
written as NONE records. `WriterConfig.OutputType` JSON writes a JSON array, JSONL one value a line.

Records are spooled to temporary files as they arrive and uploaded at the end (managed multipart
upload), so memory is bounded by the records in flight, never by the item count.

An aborted map run (StopExecution) writes what it has, its aborted children in FAILED_n. A redriven
map run writes under the same map run id: its SUCCEEDED files are numbered after the ones already
there, which stay (their children are not run again); FAILED_n and PENDING_n are written anew (the old
ones that are not rewritten are deleted); manifest.json lists the old and new SUCCEEDED files and the
new FAILED and PENDING ones, so a reader of the manifest sees every child once. (AWS documents that a
redrive reruns only the unsuccessful children; the files' layout after a redrive is this engine's
reading of it.)
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from burstmap.local.core.errors import (
    EXCEED_TOLERATED_FAILURE_THRESHOLD,
    RESULT_WRITER_FAILED,
    StatesError,
    unsupported,
)
from burstmap.local.core.json_text import to_json
from burstmap.local.dmap.child import (
    Batch,
    ChildOutcome,
    MapRunIdentity,
    failed_record,
    pending_record,
    succeeded_record,
)
from burstmap.local.dmap.child_ledger import ChildLedger
from burstmap.local.dmap.fields import field_names, invalid
from burstmap.local.query.payload_template import resolve_template

PUT_OBJECT = "arn:aws:states:::s3:putObject"
RESULT_FILE_MAX_BYTES = 5 * 1024**3
"""AWS: "Step Functions supports individual result files of up to 5 GB" (then it starts the next file)."""
STATUSES = ("FAILED", "PENDING", "SUCCEEDED")
TRANSFORMATIONS = ("NONE", "COMPACT", "FLATTEN")
OUTPUT_TYPES = ("JSON", "JSONL")
TOLERANCE_EXCEEDED_CAUSE = "The specified tolerated failure threshold was exceeded"


def validate_result_writer(writer: dict[str, Any], state_name: str) -> None:
    for key in writer:
        if key not in ("Resource", "Parameters", "WriterConfig"):
            raise unsupported(f"ResultWriter.{key}", state_name)
    if not writer:
        raise invalid(
            "ResultWriter cannot be empty: give Resource and Parameters, WriterConfig, or all three",
            state_name,
        )
    if ("Resource" in writer) != ("Parameters" in writer):
        raise invalid("ResultWriter needs Resource and Parameters together", state_name)
    if "Resource" in writer:
        if writer["Resource"] != PUT_OBJECT:
            raise unsupported(f"ResultWriter.Resource {writer['Resource']}", state_name)
        names = field_names(writer["Parameters"])
        for name in names:
            if name not in ("Bucket", "Prefix"):
                raise unsupported(f"ResultWriter.Parameters.{name}", state_name)
        if "Bucket" not in names:
            raise invalid("ResultWriter.Parameters must name the Bucket", state_name)
    config = writer.get("WriterConfig", {})
    for key in config:
        if key not in ("Transformation", "OutputType"):
            raise unsupported(f"ResultWriter.WriterConfig.{key}", state_name)
    if config.get("Transformation", "NONE") not in TRANSFORMATIONS:
        raise invalid(f"WriterConfig.Transformation must be one of {', '.join(TRANSFORMATIONS)}", state_name)
    if config.get("OutputType", "JSON") not in OUTPUT_TYPES:
        raise invalid(f"WriterConfig.OutputType must be one of {', '.join(OUTPUT_TYPES)}", state_name)


@dataclass(frozen=True)
class WriterConfig:
    """ResultWriter.WriterConfig, with AWS's defaults for an S3 destination."""

    transformation: str = "NONE"
    output_type: str = "JSON"

    @classmethod
    def from_state(cls, result_writer: dict[str, Any] | None) -> WriterConfig:
        """Defaults: NONE when exporting to S3 without WriterConfig, COMPACT without a ResultWriter."""
        if result_writer is None:
            return cls(transformation="COMPACT")
        config = result_writer.get("WriterConfig")
        if config is None:
            return cls()
        return cls(config.get("Transformation", "NONE"), config.get("OutputType", "JSON"))


def transformed_entries(config: WriterConfig, record: dict[str, Any], output: Any) -> Iterator[Any]:
    """What one successful child contributes to the results under the configured Transformation."""
    if config.transformation == "NONE":
        yield record
    elif config.transformation == "FLATTEN" and isinstance(output, list):
        yield from output
    else:
        yield output


@dataclass
class _ResultFile:
    handle: IO[bytes]
    size: int = 0
    entries: int = 0


@dataclass
class _StatusSpool:
    """The result files of one status, on local disk until the map run ends."""

    status: str
    json_array: bool
    max_bytes: int
    files: list[_ResultFile] = field(default_factory=list)

    def write(self, entry: Any) -> None:
        data = to_json(entry).encode("utf-8")
        current = self.files[-1] if self.files else None
        extra = len(data) + 1  # "," before it (JSON) or "\n" after it (JSONL)
        closing = 2 if self.json_array else 0  # "[" and "]"
        if current is None or (current.entries and current.size + extra + closing > self.max_bytes):
            current = _ResultFile(tempfile.TemporaryFile())  # noqa: SIM115 - closed by close()
            self.files.append(current)
        if self.json_array:
            current.handle.write(b"," if current.entries else b"[")
            current.handle.write(data)
        else:
            current.handle.write(data)
            current.handle.write(b"\n")
        current.size += extra
        current.entries += 1

    def finished_files(self) -> Iterator[tuple[IO[bytes], int]]:
        for result_file in self.files:
            if self.json_array:
                result_file.handle.write(b"]")
            result_file.handle.flush()
            size = result_file.handle.tell()
            result_file.handle.seek(0)
            yield result_file.handle, size

    def close(self) -> None:
        for result_file in self.files:
            result_file.handle.close()


class ResultWriter:
    """Collects a map run's child records and writes them, with the manifest, to S3."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        prefix: str,
        map_run_arn: str,
        map_run_id: str,
        config: WriterConfig,
        *,
        max_file_bytes: int = RESULT_FILE_MAX_BYTES,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.directory = f"{prefix}/{map_run_id}" if prefix else map_run_id
        self.map_run_arn = map_run_arn
        self.config = config
        json_array = config.output_type == "JSON"
        self.extension = "json" if json_array else "jsonl"
        self._spools = {status: _StatusSpool(status, json_array, max_file_bytes) for status in STATUSES}
        self._previous: dict[str, list[dict[str, Any]]] = {status: [] for status in STATUSES}

    def continue_previous(self) -> None:
        """A redriven map run: keep the SUCCEEDED files its manifest lists (see the module docstring)."""
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.manifest_key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return  # the first attempt wrote nothing
            raise
        files = json.loads(body).get("ResultFiles") or {}
        self._previous = {status: list(files.get(status) or []) for status in STATUSES}

    @property
    def manifest_key(self) -> str:
        return f"{self.directory}/manifest.json"

    def add_succeeded(self, record: dict[str, Any], output: Any) -> None:
        for entry in transformed_entries(self.config, record, output):
            self._spools["SUCCEEDED"].write(entry)

    def add_failed(self, record: dict[str, Any]) -> None:
        self._spools["FAILED"].write(record)

    def add_pending(self, record: dict[str, Any]) -> None:
        self._spools["PENDING"].write(record)

    def finish(self) -> dict[str, str]:
        """Upload every result file, then the manifest; returns ResultWriterDetails {Bucket, Key}."""
        result_files: dict[str, list[dict[str, Any]]] = {}
        for status in STATUSES:
            kept = self._previous[status] if status == "SUCCEEDED" else []
            entries = list(kept)
            spool = self._spools[status]
            for number, (handle, size) in enumerate(spool.finished_files(), start=len(kept)):
                key = f"{self.directory}/{status}_{number}.{self.extension}"
                self.s3.upload_fileobj(handle, self.bucket, key)
                entries.append({"Key": key, "Size": size})
            result_files[status] = entries
        manifest = {
            "DestinationBucket": self.bucket,
            "MapRunArn": self.map_run_arn,
            "ResultFiles": result_files,
        }
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self.manifest_key,
            Body=to_json(manifest).encode("utf-8"),
            ContentType="application/json",
        )
        written = {entry["Key"] for entries in result_files.values() for entry in entries}
        for status in ("FAILED", "PENDING"):
            for entry in self._previous[status]:
                if entry["Key"] not in written:
                    self.s3.delete_object(Bucket=self.bucket, Key=entry["Key"])
        return {"Bucket": self.bucket, "Key": self.manifest_key}

    def close(self) -> None:
        for spool in self._spools.values():
            spool.close()


def _open_writer(
    state_name: str,
    spec: dict[str, Any] | None,
    data: Any,
    context: dict[str, Any],
    s3: Any,
    identity: MapRunIdentity,
    config: WriterConfig,
    max_file_bytes: int,
) -> ResultWriter | None:
    """The ResultWriter of a map run, or None without an S3 destination."""
    if spec is None or "Resource" not in spec:
        return None
    if s3 is None:
        raise StatesError(
            RESULT_WRITER_FAILED,
            f"state '{state_name}' writes its results to S3 but the engine has no S3 client; "
            "start the local S3 endpoint or pass --endpoint-url",
        )
    parameters = resolve_template(spec["Parameters"], data, context)
    return ResultWriter(
        s3,
        parameters["Bucket"],
        parameters.get("Prefix", ""),
        identity.map_run_arn,
        identity.map_run_id,
        config,
        max_file_bytes=max_file_bytes,
    )


class MapResults:
    """Where a map run's child results go: the ResultWriter's files, or (without an S3
    destination) the state's output, in item order, shaped by the WriterConfig."""

    def __init__(self, config: WriterConfig, writer: ResultWriter | None) -> None:
        self.config = config
        self.writer = writer
        self.outputs: dict[int, Any] = {}

    @classmethod
    def open(
        cls,
        state_name: str,
        state: dict[str, Any],
        data: Any,
        context: dict[str, Any],
        s3: Any,
        identity: MapRunIdentity,
        max_file_bytes: int = RESULT_FILE_MAX_BYTES,
        *,
        redriven: ChildLedger | None = None,
    ) -> MapResults:
        """The results of a map run of `state` (its ResultWriter's Parameters resolved from `data`);
        on a redrive (`redriven`, the map run's children so far) they continue the earlier ones."""
        spec = state.get("ResultWriter")
        config = WriterConfig.from_state(spec)
        writer = _open_writer(state_name, spec, data, context, s3, identity, config, max_file_bytes)
        results = cls(config, writer)
        if redriven is not None:
            if writer is not None:
                try:
                    writer.continue_previous()
                except (ClientError, BotoCoreError) as exc:
                    raise StatesError(
                        RESULT_WRITER_FAILED, f"reading the earlier manifest failed: {exc}"
                    ) from exc
            for sequence, text in redriven.outputs.items():
                results.outputs[sequence] = json.loads(text)
        return results

    def add(self, outcome: ChildOutcome) -> None:
        """A finished child: a succeeded output or record, or a failed child's full record."""
        if self.writer is not None:
            if outcome.succeeded:
                self.writer.add_succeeded(succeeded_record(outcome), outcome.output)
            else:
                self.writer.add_failed(failed_record(outcome))
        elif outcome.succeeded:
            self.outputs[outcome.batch.sequence] = (
                outcome.output if self.config.transformation != "NONE" else succeeded_record(outcome)
            )
        else:
            self.outputs[outcome.batch.sequence] = failed_record(outcome)

    def add_pending(self, batch: Batch) -> None:
        """A child never started because the map run failed (written to PENDING_n)."""
        if self.writer is not None:
            self.writer.add_pending(pending_record(batch))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def write_what_is_done(self) -> None:
        """An aborted map run: write the records so far (best effort: the execution ends ABORTED
        whatever S3 says)."""
        if self.writer is None:
            return
        try:
            self.writer.finish()
        except (ClientError, BotoCoreError):
            pass
        finally:
            self.writer.close()

    def finish(self, map_run_arn: str, exceeded: bool) -> Any:
        """The Map's raw result once every child ended; past the tolerated failures it raises
        States.ExceedToleratedFailureThreshold, after writing the results."""
        if self.writer is not None:
            try:
                details = self.writer.finish()
            except (ClientError, BotoCoreError) as exc:
                raise StatesError(RESULT_WRITER_FAILED, f"writing the results to S3 failed: {exc}") from exc
            finally:
                self.writer.close()
        if exceeded:
            raise StatesError(EXCEED_TOLERATED_FAILURE_THRESHOLD, TOLERANCE_EXCEEDED_CAUSE)
        if self.writer is not None:
            return {"MapRunArn": map_run_arn, "ResultWriterDetails": details}
        ordered = (self.outputs.pop(sequence) for sequence in range(len(self.outputs)))
        if self.config.transformation == "FLATTEN":
            return [entry for value in ordered for entry in transformed_entries(self.config, {}, value)]
        return list(ordered)
