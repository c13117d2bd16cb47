"""One loopback HTTP/1.1 server that routes each request by its wire protocol.

- ``X-Amz-Target: AWSStepFunctions.<Operation>``: Step Functions (JSON 1.0);
- ``POST /`` with a form body, or ``GET /?Action=...``: the query protocol (CloudFormation);
- anything else: S3 REST, passed to the local S3 server.

Connections are kept alive (HTTP/1.1) and served by a thread each, so a client's polling costs one
request parse per call and no connection setup. The request path is kept short, since a polling
client's requests take the GIL from the executions it polls: headers are read without ``email.parser``
(http.server's way, about ten times slower), and a response goes out in one write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO
from urllib.parse import urlsplit

from burstmap.serve.s3_proxy import S3Proxy
from burstmap.serve.wire import JSON_CONTENT_TYPE, Reply

log = logging.getLogger(__name__)

MAX_API_BODY_BYTES = 16 * 1024 * 1024
"""Step Functions and CloudFormation requests are small (an execution input is at most 256 KiB)."""
MAX_LINE_BYTES = 65536
MAX_HEADERS = 100
_REASONS = {status.value: status.phrase for status in HTTPStatus}


class RequestHeaders:
    """A request's headers, read line by line: ``get`` ignores case, ``items`` keeps the client's
    spelling and order (what the S3 proxy forwards)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        self._by_name: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._by_name[key] = f"{self._by_name[key]}, {value}" if key in self._by_name else value

    @classmethod
    def read(cls, stream: BinaryIO) -> RequestHeaders | None:
        """The headers up to the blank line; None when a line is too long or there are too many."""
        pairs: list[tuple[str, str]] = []
        while True:
            line = stream.readline(MAX_LINE_BYTES + 1)
            if len(line) > MAX_LINE_BYTES or len(pairs) > MAX_HEADERS:
                return None
            if line in (b"\r\n", b"\n", b""):
                return cls(pairs)
            name, _, value = line.decode("iso-8859-1").partition(":")
            pairs.append((name.strip(), value.strip()))

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._by_name.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._by_name.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._pairs)


class EndpointServer(ThreadingHTTPServer):
    """The listening socket and what answers each protocol."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        stepfunctions: Callable[[str, bytes], Reply],
        cloudformation: Callable[[bytes | str], Reply],
        s3: S3Proxy,
    ) -> None:
        self.stepfunctions = stepfunctions
        self.cloudformation = cloudformation
        self.s3 = s3
        super().__init__(address, EndpointHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class EndpointHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: without TCP_NODELAY the second waits for the
    # client's delayed ACK (about 40 ms a response on Linux).
    disable_nagle_algorithm = True
    server: EndpointServer

    def parse_request(self) -> bool:
        """The request line as http.server reads it (HTTP/1.0 and 1.1), then the headers, read fast."""
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line ({self.requestline!r})")
            return False
        self.command, self.path, self.request_version = words
        self.close_connection = self.request_version == "HTTP/1.0"
        headers = RequestHeaders.read(self.rfile)
        if headers is None:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long or too many headers")
            return False
        self.headers = headers  # type: ignore[assignment]
        connection = (headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = (headers.get("Expect") or "").lower()
        if expect == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self._dispatch()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET  # noqa: N815

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
            target = self.headers.get("X-Amz-Target")
            query = self._query_request(body) if target is None else None
            if target is not None:
                self._reply(self.server.stepfunctions(target, body))
            elif query is not None:
                self._reply(self.server.cloudformation(query))
            else:
                self.server.s3.forward(self.command, self.path, self.headers.items(), body, _Writer(self))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log.exception("serve: internal error answering %s %s", self.command, self.path)
            message = {"__type": "InternalFailure", "message": "burstmap serve failed; see its stderr"}
            self._reply(Reply(500, {"Content-Type": JSON_CONTENT_TYPE}, json.dumps(message).encode()))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _query_request(self, body: bytes) -> bytes | str | None:
        """The query-protocol form of this request (``Action=...``), or None for S3."""
        parts = urlsplit(self.path)
        if parts.path != "/":
            return None
        if self.command == "POST" and self.headers.get("Content-Type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return body
        if self.command == "GET" and "Action=" in parts.query:
            return parts.query
        return None

    def _reply(self, reply: Reply) -> None:
        """Status line, headers and body in one write (one packet for a small answer)."""
        try:
            head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, '')}"]
            head += [f"{name}: {value}" for name, value in reply.headers.items()]
            head.append(f"Date: {self.date_time_string()}")
            head.append(f"Content-Length: {len(reply.body)}")
            if self.close_connection:
                head.append("Connection: close")
            data = ("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1")
            if self.command != "HEAD":
                data += reply.body
            self.wfile.write(data)
            self.wfile.flush()
            if log.isEnabledFor(logging.DEBUG):
                self.log_request(reply.status)
        finally:
            for then in reply.then:
                then()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s - %s", self.address_string(), format % args)


class _Writer:
    """The handler's response side, as the S3 proxy writes it."""

    def __init__(self, handler: EndpointHandler) -> None:
        self._handler = handler
        self.body: BinaryIO = handler.wfile

    def start(self, status: int, reason: str, headers: list[tuple[str, str]]) -> None:
        self._handler.send_response_only(status, reason)
        for name, value in headers:
            self._handler.send_header(name, value)

    def finish(self, content_length: str | None) -> None:
        if content_length is not None:
            self._handler.send_header("Content-Length", content_length)
        self._handler.end_headers()
