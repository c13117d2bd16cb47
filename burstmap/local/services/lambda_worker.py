"""One warm Lambda execution environment: a child process that imports a handler once and serves
many invocations over two pipes.

`LambdaRuntime` starts this file *by path* with the standard library only (the burstmap package is
not imported here, so the handler's own modules are what the process loads, as in Lambda). What it
reproduces from the AWS Python runtime (awslambdaric ``bootstrap.py`` and ``lambda_context.py``):

- the handler named ``module.function`` (``/`` allowed in the module path) or ``module:function``;
- the init phase: an import failure answers every invocation with ``Runtime.ImportModuleError``
  (``Runtime.HandlerNotFound``, ``Runtime.UserCodeSyntaxError``) and ``requestId: ""``;
- the context object (``memory_limit_in_mb`` and ``function_version`` are strings from the
  environment, as in the runtime);
- the response: ``bytes`` returned as they are, anything else JSON-encoded with the default
  separators and ``ensure_ascii=False`` (the python3.12 runtime); an unencodable result gives
  ``Runtime.MarshalError``;
- a handler exception: ``{"errorMessage", "errorType", "requestId", "stackTrace"}``, the trace
  formatted by ``traceback.format_list`` over plain tuples from the handler's frame on (no column
  carets). An exception with a ``stack_trace`` attribute (a list of strings) uses it instead.

Wire format (both directions one length-prefixed message on a pipe, no pickling; the framing is
hand-written because importing ``multiprocessing.connection`` costs a new worker about 14 ms):
request  = function timeout in ms (``!d``) + request id (36 ASCII bytes) + ARN length (``!H``) + ARN
+ payload; the deadline starts when the worker takes the request from the pipe, as the parent may
queue one invocation behind another;
response = one status byte + body: ``R`` ready, ``I`` init failed (body = error document),
``0`` success (body = response payload), ``1`` function error (body = error document), ``U`` the
payload is not JSON (body = the parser's message; Lambda refuses such a request before any runtime).

The process leads its own process group (the parent starts it in a new session): Ctrl-C at the terminal
does not reach it (it ignores SIGINT besides), and when the parent dies, a thread that waits on the
lifeline pipe (process_groups.py) kills the whole group, the handler's subprocesses with it.
"""

from __future__ import annotations

import decimal
import importlib
import json
import os
import signal
import struct
import sys
import threading
import time
import traceback
from typing import Any

HEADER = struct.Struct("!d36sH")
READY, INIT_FAILED, OK, FUNCTION_ERROR, BAD_REQUEST = b"R", b"I", b"0", b"1", b"U"
_LENGTH = struct.Struct("!Q")
_SMALL = 64 * 1024


def send_message(fd: int, data: bytes) -> None:
    """Write one message: an 8-byte length, then the data (OSError if the reader is gone)."""
    if len(data) <= _SMALL:
        _write_all(fd, _LENGTH.pack(len(data)) + data)
    else:  # no concatenation copy for big payloads
        _write_all(fd, _LENGTH.pack(len(data)))
        _write_all(fd, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def recv_message(fd: int) -> bytes:
    """Read one message; EOFError when the writer has closed its end."""
    (length,) = _LENGTH.unpack(_read_exact(fd, _LENGTH.size))
    return _read_exact(fd, length)


def _read_exact(fd: int, size: int) -> bytes:
    chunk = os.read(fd, size)
    if len(chunk) == size:
        return chunk
    if not chunk and size:
        raise EOFError
    buffer = bytearray(chunk)
    while len(buffer) < size:
        chunk = os.read(fd, size - len(buffer))
        if not chunk:
            raise EOFError
        buffer += chunk
    return bytes(buffer)


class LambdaContext:
    """The ``context`` argument, with the attributes and method of the Python runtime's context."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline_ms: float) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = None
        self.identity = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        remaining = int(self._deadline_ms - time.time() * 1000)
        return remaining if remaining > 0 else 0

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name},"
            f"function_version={self.function_version},invoked_function_arn={self.invoked_function_arn}])"
        )


class _Encoder(json.JSONEncoder):
    """The runtime's encoder: default separators, non-ASCII kept (python3.12), Decimal as a number."""

    def __init__(self) -> None:
        super().__init__(ensure_ascii=False)

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):  # the runtime writes str(decimal) raw; int/float is the nearest
            return int(o) if o == o.to_integral_value() else float(o)
        return super().default(o)


ENCODER = _Encoder()


def to_json(value: Any) -> bytes:
    return ENCODER.encode(value).encode("utf-8")


def error_document(message: str, error_type: str, request_id: str, stack_trace: list[str]) -> bytes:
    """The runtime's ``make_error``: keys in this order, empty values as "" / []."""
    return to_json(
        {
            "errorMessage": message or "",
            "errorType": error_type or "",
            "requestId": request_id or "",
            "stackTrace": stack_trace or [],
        }
    )


def handler_stack_trace(exc: BaseException, skip_file: str) -> list[str]:
    """The trace as the runtime formats it: frames from the first one outside the runtime's own file."""
    override = getattr(exc, "stack_trace", None)
    if isinstance(override, list) and all(isinstance(line, str) for line in override):
        return list(override)
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(exc.__traceback__)]
    for index, frame in enumerate(frames):
        if frame[0] != skip_file:
            frames = frames[index:]
            break
    return traceback.format_list(frames)


def load_handler(handler: str) -> Any:
    """Import the handler like the runtime's ``_get_handler``; raises ``_InitError``."""
    if ":" in handler:
        module_name, _, function_name = handler.partition(":")
    else:
        module_name, dot, function_name = handler.rpartition(".")
        if not dot:
            raise _InitError(
                "Runtime.MalformedHandlerName",
                f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)",
            )
    module_name = module_name.replace("/", ".")
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise _InitError(
                "Runtime.BuiltInModuleConflict",
                f"Cannot use built-in module {module_name} as a handler module",
            )
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise _InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}"
        ) from error
    except SyntaxError as error:
        trace = [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}']
        raise _InitError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}", trace
        ) from error
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _InitError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None


class _InitError(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def set_import_path(import_path: list[str], site_dirs: list[str]) -> None:
    """The handler's ``sys.path``: ``import_path`` first, then what the interpreter had (the standard
    library, when started with ``-I -S``); the ``.pth`` files of ``site_dirs`` are read, as the runtime's
    bootstrap reads those of the task root and the layers (``site.addsitedir``)."""
    sys.path[:0] = [p for p in import_path if p not in sys.path]
    if not site_dirs:
        return
    import site

    for directory in site_dirs:
        site.addsitedir(directory)
    if sys.flags.no_site:  # -S: the interpreter skipped site's builtins; the runtime's Python has them
        for install in ("setquit", "setcopyright", "sethelper"):
            getattr(site, install, lambda: None)()


def watch_lifeline(fd: int) -> None:
    """Kill this process's group once the parent is gone (the lifeline pipe reads end-of-file)."""

    def wait() -> None:
        while True:
            try:
                if not os.read(fd, 4096):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        end_group()

    threading.Thread(target=wait, name="lifeline", daemon=True).start()


def end_group() -> None:
    """SIGKILL this process and everything it spawned (only when it leads its own group)."""
    if os.getpgrp() == os.getpid():
        os.killpg(0, signal.SIGKILL)
    os._exit(0)


def serve(requests: int, responses: int, handler_name: str) -> None:
    """The runtime loop: init once, then answer invocations until the request pipe closes."""
    init_failure: bytes | None = None
    handler: Any = None
    try:
        handler = load_handler(handler_name)
    except _InitError as error:
        init_failure = error_document(error.message, error.error_type, "", error.trace)
    except Exception as error:  # an exception raised while the module body runs
        init_failure = error_document(
            str(error), type(error).__name__, "", handler_stack_trace(error, __file__)
        )
    if init_failure is None:
        send_message(responses, READY)
    else:
        send_message(responses, INIT_FAILED + init_failure)

    this_file = __file__
    header_size = HEADER.size
    while True:
        try:
            message = recv_message(requests)
        except EOFError:  # the parent closed the pipe (or died): nothing the handler started outlives it
            end_group()
        timeout_ms, raw_id, arn_length = HEADER.unpack_from(message)
        deadline_ms = time.time() * 1000 + timeout_ms
        request_id = raw_id.decode("ascii")
        arn = message[header_size : header_size + arn_length].decode("utf-8")
        payload = message[header_size + arn_length :]
        if init_failure is not None:
            send_message(responses, FUNCTION_ERROR + init_failure)
            continue
        try:
            event = json.loads(payload) if payload else {}
        except ValueError as error:
            send_message(responses, BAD_REQUEST + str(error).encode("utf-8"))
            continue
        try:
            result = handler(event, LambdaContext(request_id, arn, deadline_ms))
        except Exception as error:
            trace = handler_stack_trace(error, this_file)
            send_message(
                responses,
                FUNCTION_ERROR + error_document(str(error), type(error).__name__, request_id, trace),
            )
            continue
        if isinstance(result, bytes):
            send_message(responses, OK + result)
            continue
        try:
            body = to_json(result)
        except Exception as error:
            body = error_document(
                f"Unable to marshal response: {error}", "Runtime.MarshalError", request_id, []
            )
            send_message(responses, FUNCTION_ERROR + body)
            continue
        send_message(responses, OK + body)


def main(argv: list[str]) -> None:
    """``lambda_worker.py REQUEST_FD RESPONSE_FD CONFIG_JSON`` (started by LambdaRuntime); the config holds
    ``handler``, ``import_path``, ``site_dirs``, ``lifeline`` (the lifeline pipe's descriptor) and
    ``environment`` (the names of the variables it was given: any other, such as the ``LC_CTYPE`` Python
    sets when it coerces a locale this machine lacks, is removed)."""
    # Started by path, so this file's folder is sys.path[0]: drop it, or burstmap/local's modules
    # (errors.py, paths.py, ...) would shadow the handler's own imports.
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    requests, responses = int(argv[0]), int(argv[1])
    config = json.loads(argv[2])
    if config.get("lifeline") is not None:
        watch_lifeline(int(config["lifeline"]))
    if config.get("environment") is not None:  # what the interpreter added (a coerced LC_CTYPE) goes
        for key in set(os.environ) - set(config["environment"]):
            del os.environ[key]
    set_import_path(config.get("import_path", []), config.get("site_dirs", []))
    serve(requests, responses, config["handler"])


if __name__ == "__main__":
    main(sys.argv[1:])
