"""AWS wire protocols, shaped by botocore's own service models: JSON 1.0 (Step Functions) and query/XML
(CloudFormation).

Requests are checked against the operation's input shape with botocore's ``ParamValidator`` (required
members, types, unknown members) plus the model's ``min``/``max``/``enum`` constraints, which the client
validator leaves to the server; responses are rendered member by member from the output shape, so a
response can only carry what the model declares. Timestamps are epoch seconds in JSON and ISO 8601 in
XML, as botocore's parsers expect.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import botocore.session
from botocore.model import OperationModel, OperationNotFoundError, ServiceModel, Shape
from botocore.validate import ParamValidator

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
XML_CONTENT_TYPE = "text/xml"

_session = botocore.session.get_session()


@dataclass
class Reply:
    """One response, and what to do once it is sent (start an execution: not before the client has
    its answer, since the run would hold the GIL while the response waits to be written)."""

    status: int
    headers: dict[str, str]
    body: bytes
    then: list[Callable[[], None]] = field(default_factory=list)


class ApiError(Exception):
    """An error response: its code (the model's error shape name), message and HTTP status."""

    def __init__(self, code: str, message: str, *, status: int = 400, sender: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender


def service_model(name: str) -> ServiceModel:
    return _session.get_service_model(name)


def operation(model: ServiceModel, name: str) -> OperationModel:
    try:
        return model.operation_model(name)
    except OperationNotFoundError:
        raise ApiError(
            "UnknownOperationException", f"{model.service_name} has no operation {name!r}"
        ) from None


# -------------------------------------------------------------------------------------- validation


def validate(params: Mapping[str, Any], shape: Shape) -> None:
    """Raise ValidationException naming every member that breaks the input shape."""
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ApiError("ValidationException", report.generate_report())
    problems = list(_constraint_errors(params, shape, ""))
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ApiError("ValidationException", f"{count} validation {noun} detected: " + "; ".join(problems))


def _constraint_errors(value: Any, shape: Shape, path: str) -> Any:
    """AWS's own wording for values outside the model's length, range and enum constraints."""
    metadata = shape.metadata
    where = path or shape.name
    if shape.type_name == "structure" and isinstance(value, Mapping):
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                yield from _constraint_errors(value[name], member, f"{path}.{name}" if path else name)
        return
    if shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from _constraint_errors(item, shape.member, f"{where}.{index + 1}.member")
        return
    shown = value if len(str(value)) <= 200 else f"{str(value)[:200]}..."
    if shape.type_name == "string" and isinstance(value, str):
        if "max" in metadata and len(value) > metadata["max"]:
            yield (
                f"Value '{shown}' at '{where}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {metadata['max']}"
            )
        if "min" in metadata and len(value) < metadata["min"]:
            yield (
                f"Value '{shown}' at '{where}' failed to satisfy constraint: "
                f"Member must have length greater than or equal to {metadata['min']}"
            )
        if shape.enum and value not in shape.enum:
            yield (
                f"Value '{shown}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            )
    if shape.type_name in ("integer", "long") and isinstance(value, int):
        if "max" in metadata and value > metadata["max"]:
            yield (
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {metadata['max']}"
            )
        if "min" in metadata and value < metadata["min"]:
            yield (
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {metadata['min']}"
            )


# -------------------------------------------------------------------------------------- JSON 1.0


def parse_json_request(op: OperationModel, body: bytes) -> dict[str, Any]:
    """The request's parameters, validated against the operation's input shape."""
    try:
        params = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError("SerializationException", f"the request body is not JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "the request body must be a JSON object")
    validate(params, op.input_shape)
    return params


def render_json(shape: Shape | None, value: Mapping[str, Any]) -> bytes:
    """A JSON 1.0 response body for ``value``, member by member from ``shape``."""
    return json.dumps(_to_json(value, shape) if shape is not None else {}, separators=(",", ":")).encode()


def _to_json(value: Any, shape: Shape) -> Any:
    kind = shape.type_name
    if kind == "structure":
        unknown = set(value) - set(shape.members)
        if unknown:
            raise ValueError(f"{shape.name} has no member(s) {sorted(unknown)}")
        return {
            name: _to_json(value[name], member)
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if kind == "list":
        return [_to_json(item, shape.member) for item in value]
    if kind == "map":
        return {key: _to_json(item, shape.value) for key, item in value.items()}
    if kind == "timestamp":
        return round(_utc(value).timestamp(), 3)
    if kind == "blob":
        return base64.b64encode(value).decode()
    return value


def json_error(error: ApiError) -> Reply:
    """Status, headers and body of a JSON 1.0 error: ``{"__type": code, "message": ...}``."""
    body = json.dumps({"__type": error.code, "message": error.message}).encode()
    return Reply(error.status, {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-ErrorType": error.code}, body)


# -------------------------------------------------------------------------------------- query / XML


def parse_query_request(model: ServiceModel, form: bytes | str) -> tuple[OperationModel, dict[str, Any]]:
    """A query-protocol request (``Action=...&Version=...&Member=...``): its operation and parameters."""
    text = form.decode("utf-8") if isinstance(form, bytes) else form
    fields = dict(parse_qsl(text, keep_blank_values=True))
    action = fields.pop("Action", None)
    if not action:
        raise ApiError("MissingAction", "the request names no Action")
    fields.pop("Version", None)
    try:
        op = model.operation_model(action)
    except OperationNotFoundError:
        raise ApiError("InvalidAction", f"The action {action} is not valid for this web service.") from None
    params = _from_query(fields, op.input_shape)
    validate(params, op.input_shape)
    return op, params


def _from_query(fields: dict[str, str], shape: Shape) -> dict[str, Any]:
    """Flat query fields to the input shape's members (scalars and ``Name.member.N`` lists)."""
    params: dict[str, Any] = {}
    lists: dict[str, dict[int, str]] = {}
    for key, text in fields.items():
        name, _, rest = key.partition(".")
        member = shape.members.get(name)
        if member is None:
            params[key] = text  # reported as an unknown parameter by the validator
        elif member.type_name == "list" and rest.startswith("member."):
            lists.setdefault(name, {})[int(rest.split(".", 1)[1])] = text
        else:
            params[name] = _scalar(text, member)
    for name, items in lists.items():
        params[name] = [_scalar(items[index], shape.members[name].member) for index in sorted(items)]
    return params


def _scalar(text: str, shape: Shape) -> Any:
    if shape.type_name in ("integer", "long"):
        return int(text) if text.lstrip("-").isdigit() else text
    if shape.type_name == "boolean":
        return {"true": True, "false": False}.get(text.lower(), text)
    return text


def render_xml(model: ServiceModel, op: OperationModel, value: Mapping[str, Any]) -> bytes:
    """A query-protocol response: ``<OpResponse><OpResult>...</OpResult><ResponseMetadata>``."""
    namespace = model.metadata.get("xmlNamespace", "")
    inner = ""
    if op.output_shape is not None:
        wrapper = op.output_shape.serialization.get("resultWrapper", f"{op.name}Result")
        inner = f"<{wrapper}>{_xml_members(value, op.output_shape)}</{wrapper}>"
    request_id = uuid.uuid4()
    return (
        f'<{op.name}Response xmlns="{namespace}">{inner}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op.name}Response>"
    ).encode()


def _xml_members(value: Mapping[str, Any], shape: Shape) -> str:
    unknown = set(value) - set(shape.members)
    if unknown:
        raise ValueError(f"{shape.name} has no member(s) {sorted(unknown)}")
    parts = []
    for name, member in shape.members.items():
        if value.get(name) is None:
            continue
        tag = member.serialization.get("name", name)
        parts.append(f"<{tag}>{_xml_value(value[name], member)}</{tag}>")
    return "".join(parts)


def _xml_value(value: Any, shape: Shape) -> str:
    kind = shape.type_name
    if kind == "structure":
        return _xml_members(value, shape)
    if kind == "list":
        tag = shape.member.serialization.get("name", "member")
        return "".join(f"<{tag}>{_xml_value(item, shape.member)}</{tag}>" for item in value)
    if kind == "timestamp":
        return _utc(value).strftime("%Y-%m-%dT%H:%M:%S.") + f"{_utc(value).microsecond // 1000:03d}Z"
    if kind == "boolean":
        return "true" if value else "false"
    return escape(str(value))


def xml_error(model: ServiceModel, error: ApiError) -> Reply:
    """A query-protocol error: ``<ErrorResponse><Error><Type><Code><Message>``."""
    namespace = model.metadata.get("xmlNamespace", "")
    kind = "Sender" if error.sender else "Receiver"
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type><Code>{escape(error.code)}</Code>'
        f"<Message>{escape(error.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
        "</ErrorResponse>"
    ).encode()
    return Reply(error.status, {"Content-Type": XML_CONTENT_TYPE}, body)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
