"""Execution records in a state directory: one JSON file per execution, written whole and atomically (a
temporary file renamed) when the execution starts, ends or is stopped, read back when the server starts.

A file holds what the record shows (status, input, output, history events, map runs with their children's
records) and its redrive point, so an execution that failed before a restart can still be redriven.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from burstmap.local.dmap.child_ledger import ChildLedger
from burstmap.serve.backend import MapRunSnapshot

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
_DATE_FIELDS = ("start_date", "stop_date", "redrive_date")
_RUN_DATE_FIELDS = ("start_date", "stop_date", "redrive_date")


def to_json_text(value: Any) -> str:
    """An execution input or output as Step Functions returns it: compact JSON text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class RecordFiles:
    """The ``executions`` folder of a state directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, execution_arn: str) -> Path:
        return self.directory / f"{hashlib.sha256(execution_arn.encode()).hexdigest()[:32]}.json"

    def save(self, execution_arn: str, snapshot: dict[str, Any]) -> None:
        path = self._path(execution_arn)
        temporary = path.with_suffix(f".{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(_encode(snapshot), separators=(",", ":")))
        os.replace(temporary, path)

    def load(self) -> Iterator[dict[str, Any]]:
        """Each readable record's fields (an unreadable file is skipped with a warning)."""
        for path in sorted(self.directory.glob("*.json")):
            try:
                yield _decode(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping unreadable execution record %s: %s", path, exc)


def _encode(snapshot: dict[str, Any]) -> dict[str, Any]:
    data = {key: value for key, value in snapshot.items() if key not in ("events", "map_runs")}
    for key in _DATE_FIELDS:
        data[key] = _date_text(data[key])
    data["events"] = [{**event, "timestamp": _date_text(event["timestamp"])} for event in snapshot["events"]]
    data["map_runs"] = [_encode_run(run) for run in snapshot["map_runs"]]
    data["schema"] = SCHEMA_VERSION
    return data


def _encode_run(run: MapRunSnapshot) -> dict[str, Any]:
    data = {field.name: getattr(run, field.name) for field in fields(run)}
    for key in _RUN_DATE_FIELDS:
        data[key] = _date_text(data[key])
    data["children"] = run.children.to_json() if run.children is not None else None
    return data


def _decode(data: dict[str, Any]) -> dict[str, Any]:
    if data.pop("schema", None) != SCHEMA_VERSION:
        raise ValueError(f"not a version {SCHEMA_VERSION} execution record")
    for key in _DATE_FIELDS:
        data[key] = _date_value(data[key])
    data["events"] = [{**event, "timestamp": _date_value(event["timestamp"])} for event in data["events"]]
    data["map_runs"] = [_decode_run(run) for run in data["map_runs"]]
    return data


def _decode_run(data: dict[str, Any]) -> MapRunSnapshot:
    for key in _RUN_DATE_FIELDS:
        data[key] = _date_value(data[key])
    children = data.pop("children")
    return MapRunSnapshot(**data, children=ChildLedger.from_json(children) if children is not None else None)


def _date_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _date_value(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
