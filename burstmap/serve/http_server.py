"""One loopback HTTP/1.1 server that routes each request by its wire protocol.

- ``X-Amz-Target: AWSStepFunctions.<Operation>``: Step Functions (JSON 1.0);
- ``POST /`` with a form body, or ``GET /?Action=...``: the query protocol (CloudFormation);
- anything else: S3 REST, passed to the local S3 server.

Connections are kept alive (HTTP/1.1) and served by a thread each, so a client's polling costs one
request parse per call and no connection setup.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO
from urllib.parse import urlsplit

from burstmap.serve.s3_proxy import S3Proxy
from burstmap.serve.wire import JSON_CONTENT_TYPE, Reply

log = logging.getLogger(__name__)

MAX_API_BODY_BYTES = 16 * 1024 * 1024
"""Step Functions and CloudFormation requests are small (an execution input is at most 256 KiB)."""


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
            log.exception("burstmap serve: internal error answering %s %s", self.command, self.path)
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
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
            self.wfile.flush()
        finally:
            for then in reply.then:
                then()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
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
