"""S3 REST on the server's port: every request that is not Step Functions or CloudFormation is passed
to the app's local S3 server (moto, in its own process) and its answer passed back.

Why a proxy and not moto's WSGI app in the server's process: the engine and the worker processes talk
to the S3 child directly (the same endpoint ``burstmap run`` uses), so only outside clients pay the extra
hop, and moto's request handling does not compete with the engine for the server's GIL. The hop costs
about 0.6-1.5 ms a small GetObject on 2 busy cores (bench/serve_latency.py: 4-7 ms direct).

Path-style requests pass unchanged; virtual-hosted ones (``Host: <bucket>.localhost:<port>``, what
botocore sends with ``addressing_style="virtual"``) are rewritten to path style, the only style moto's
server reads without a DNS name for it.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterable
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",
        "host",
        "content-length",
    }
)
LOCAL_HOST_NAMES = ("s3.localhost", "localhost")
"""Host names of the endpoint itself; ``<bucket>.`` before one of them names the bucket (botocore's
virtual-hosted style on a local endpoint)."""
BLOCK_BYTES = 1 << 20


class S3Proxy:
    """Forwards S3 requests to ``upstream_url`` over one keep-alive connection per server thread."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the S3 upstream must be http://host:port, got {upstream_url!r}")
        self.upstream_url = upstream_url
        self._host, self._port = parts.hostname, parts.port
        self._local = threading.local()

    def forward(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        respond: ResponseWriter,
    ) -> None:
        """Send one request upstream and write its answer with ``respond``."""
        headers = list(headers)
        host = next((value for name, value in headers if name.lower() == "host"), "")
        path = path_style(target, host)
        sent = [(name, value) for name, value in headers if name.lower() not in HOP_BY_HOP]
        sent.append(("Host", f"{self._host}:{self._port}"))
        sent.append(("Content-Length", str(len(body))))
        response = self._exchange(method, path, sent, body)
        try:
            respond.start(
                response.status,
                response.reason,
                [(name, value) for name, value in response.getheaders() if name.lower() not in HOP_BY_HOP],
            )
            if method == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
                respond.finish(response.getheader("Content-Length"))
                return
            length = response.getheader("Content-Length")
            if length is None or response.getheader("Transfer-Encoding"):
                data = response.read()  # moto answered chunked or close-delimited: send it with a length
                respond.finish(str(len(data)))
                respond.body.write(data)
                return
            respond.finish(length)
            while block := response.read(BLOCK_BYTES):
                respond.body.write(block)
        finally:
            response.close()

    def _exchange(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> http.client.HTTPResponse:
        """One request on this thread's connection; a connection the server closed is reopened once."""
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    connection.putheader(name, value)
                connection.endheaders(body if body else None)
                return connection.getresponse()
            except (ConnectionError, http.client.BadStatusLine, http.client.CannotSendRequest):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=300)
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.connection = connection
        return connection


class ResponseWriter(Protocol):
    """What the proxy needs from the HTTP handler to answer: status and headers, then the body."""

    body: BinaryIO

    def start(self, status: int, reason: str, headers: list[tuple[str, str]]) -> None: ...

    def finish(self, content_length: str | None) -> None: ...


def path_style(target: str, host: str) -> str:
    """``target`` as a path-style request: ``/key`` on ``bucket.localhost`` becomes ``/bucket/key``."""
    name = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host
    if name in LOCAL_HOST_NAMES:
        return target
    for base in LOCAL_HOST_NAMES:
        if name.endswith(f".{base}"):
            bucket = name[: -len(base) - 1]
            return f"/{bucket}{target}" if target.startswith("/") else f"/{bucket}/{target}"
    return target
