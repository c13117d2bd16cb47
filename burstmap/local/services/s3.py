"""The S3 endpoint of a local run: moto's server on loopback, or an S3-compatible server the user runs.

The embedded server runs in a **child process** (moto's ``ThreadedMotoServer`` on a free port), not
in the engine's process. Measured on the 2-core machine (500 small puts/gets, one 50 MB put):
the same request rate either way (~180 puts/s, ~220 gets/s: moto's own cost), but in-process the
objects and moto's imports count against the engine's memory (peak RSS 252 MB against 100 MB) and
its request threads compete with the engine's threads for one GIL. Objects above
``key_buffer_bytes`` are spilled by moto to temporary files, so a large result set stays on disk.
The child reads its stdin and exits when it closes, so it never outlives the engine, even when
the engine is killed (its stdin is its lifeline); it runs in a session of its own and ignores SIGINT,
so Ctrl-C reaches the engine only, which stops it.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import Any

from burstmap.local.core.limits import LOCAL_REGION

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
"""What moto accepts; workers get these so nothing they do can reach a real AWS account."""
_PASS_THROUGH = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)
"""For an external endpoint: the caller's own credentials, passed on to the workers."""
DEFAULT_KEY_BUFFER_BYTES = 256 * 1024
STARTUP_TIMEOUT_SECONDS = 60.0

_SERVER_CODE = """
import logging, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.server import ThreadedMotoServer
MotoRequestHandler.protocol_version = "HTTP/1.1"  # keep-alive: no new connection per request
server = ThreadedMotoServer(ip_address=sys.argv[1], port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # end-of-file: the engine closed it, or died
os._exit(0)  # the data goes with the process; no graceful shutdown needed
"""


class LocalS3Error(RuntimeError):
    """The S3 endpoint could not be started or used; the message says what to check."""


class LocalS3:
    """An S3 endpoint for a local run, as a context manager (or ``start()`` / ``stop()``).

    ``LocalS3()`` starts moto's server on 127.0.0.1 at a free port; ``LocalS3(endpoint_url=...)``
    wraps a server the user already runs (nothing is started or stopped).
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        buckets: Iterable[str] = (),
        region: str = LOCAL_REGION,
        host: str = "127.0.0.1",
        key_buffer_bytes: int = DEFAULT_KEY_BUFFER_BYTES,
    ) -> None:
        self.external = endpoint_url is not None
        self.region = region
        self.host = host
        self.key_buffer_bytes = key_buffer_bytes
        self._endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self._buckets = list(buckets)
        self._process: subprocess.Popen[str] | None = None
        self._client: Any = None
        self._lock = threading.Lock()
        self._known_buckets: set[str] = set()

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> LocalS3:
        """Start the embedded server (no-op for an external endpoint or when already running)."""
        if not self.external and self._process is None:
            self._endpoint_url = self._start_server()
        for bucket in self._buckets:
            self.ensure_bucket(bucket)
        return self

    def _start_server(self) -> str:
        env = dict(os.environ)
        env["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"] = str(self.key_buffer_bytes)
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER_CODE, self.host],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,  # out of the terminal's process group
        )
        assert process.stdout is not None
        readable, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_SECONDS)
        line = process.stdout.readline().strip() if readable else ""
        if not line.isdigit():
            process.kill()
            process.wait()
            raise LocalS3Error(
                f"moto's S3 server did not start (exit code {process.returncode}, output {line!r}); "
                "check that burstmap's dependencies are installed in this Python environment "
                f"({sys.executable} -m pip install 'moto[s3]' flask flask-cors), "
                "or pass endpoint_url= to use an S3-compatible server you run"
            )
        self._process = process
        return f"http://{self.host}:{int(line)}"

    def stop(self) -> None:
        """Stop the embedded server and drop its data (no-op for an external endpoint)."""
        process, self._process = self._process, None
        self._client = None
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.close()  # the server's signal to shut down
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()
        self._endpoint_url = None
        self._known_buckets.clear()

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.external or (self._process is not None and self._process.poll() is None)

    # ------------------------------------------------------------------------------------- access

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise LocalS3Error(
                "the local S3 server is not running: call start() or use 'with LocalS3() as s3'"
            )
        return self._endpoint_url

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint (fake credentials for the embedded server, the
        caller's for an external one), region us-east-1 by default, path-style addressing."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            credentials: dict[str, str] = {}
            if not self.external:
                credentials = {
                    "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    "aws_session_token": FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
                }
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                config=Config(
                    s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}
                ),
                **credentials,
            )
        return self._client

    def env(self) -> dict[str, str]:
        """The variables a worker process needs so that its boto3 talks to this endpoint.

        For the embedded server every service endpoint points at it too (``AWS_ENDPOINT_URL``:
        moto serves them all), so a handler can never reach a real AWS account by accident.
        """
        env = {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        if self.external:
            env.update({k: os.environ[k] for k in _PASS_THROUGH if k in os.environ})
        else:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
            env.update(FAKE_CREDENTIALS)
        return env

    def ensure_bucket(self, name: str) -> None:
        """Create the bucket unless it exists (buckets are made on demand, once)."""
        with self._lock:
            if name in self._known_buckets:
                return
        client = self.client()
        try:
            if self.region == "us-east-1":
                client.create_bucket(Bucket=name)
            else:
                client.create_bucket(
                    Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region}
                )
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except client.exceptions.ClientError as error:
            raise LocalS3Error(f"cannot create bucket {name!r} at {self.endpoint_url}: {error}") from error
        with self._lock:
            self._known_buckets.add(name)
