"""S3 through the served endpoint: path-style and virtual-hosted requests, multipart, errors."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3.s3.transfer
import botocore.exceptions
import pytest
from served_app import RESULTS_BUCKET, client

from burstmap.serve.endpoint import LocalEndpoint
from burstmap.serve.s3_proxy import path_style


@pytest.fixture(scope="module")
def s3(endpoint: LocalEndpoint) -> Any:
    return client("s3", endpoint.url)


def test_objects_round_trip_path_style(s3: Any) -> None:
    s3.put_object(Bucket=RESULTS_BUCKET, Key="in/a b.json", Body=b'{"x": 1}', ContentType="application/json")
    got = s3.get_object(Bucket=RESULTS_BUCKET, Key="in/a b.json")
    assert (got["Body"].read(), got["ContentType"]) == (b'{"x": 1}', "application/json")
    assert s3.head_object(Bucket=RESULTS_BUCKET, Key="in/a b.json")["ContentLength"] == 8
    listed = s3.list_objects_v2(Bucket=RESULTS_BUCKET, Prefix="in/")["Contents"]
    assert [entry["Key"] for entry in listed] == ["in/a b.json"]
    s3.delete_object(Bucket=RESULTS_BUCKET, Key="in/a b.json")
    assert s3.list_objects_v2(Bucket=RESULTS_BUCKET, Prefix="in/")["KeyCount"] == 0


def test_s3_errors_pass_through(s3: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3.get_object(Bucket=RESULTS_BUCKET, Key="missing")
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        s3.head_object(Bucket="no-such-bucket-here", Key="k")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_a_multipart_upload_and_ranged_download(s3: Any, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * (24 * 1024))  # 6 MiB: two parts of 5 MiB and 1 MiB
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
    )
    s3.upload_file(str(source), RESULTS_BUCKET, "big.bin", Config=config)
    target = tmp_path / "back.bin"
    s3.download_file(RESULTS_BUCKET, "big.bin", str(target), Config=config)
    assert target.read_bytes() == source.read_bytes()
    ranged = s3.get_object(Bucket=RESULTS_BUCKET, Key="big.bin", Range="bytes=256-511")["Body"].read()
    assert ranged == bytes(range(256))


def test_virtual_hosted_requests_reach_the_bucket(endpoint: LocalEndpoint, monkeypatch: Any) -> None:
    """botocore's virtual-hosted style, with ``*.localhost`` resolving to loopback as RFC 6761 has it
    (systemd-resolved does; this machine's resolver does not, so the test resolves it)."""
    real_getaddrinfo = socket.getaddrinfo

    def loopback_for_localhost(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_for_localhost)
    port = urlsplit(endpoint.url).port
    virtual = client("s3", f"http://localhost:{port}", s3={"addressing_style": "virtual"})
    sent: list[str] = []
    virtual.meta.events.register("before-send", lambda request, **_: sent.append(request.url))
    virtual.put_object(Bucket=RESULTS_BUCKET, Key="virtual/k.txt", Body=b"hosted")
    assert virtual.get_object(Bucket=RESULTS_BUCKET, Key="virtual/k.txt")["Body"].read() == b"hosted"
    assert sent[0] == f"http://{RESULTS_BUCKET}.localhost:{port}/virtual/k.txt"
    listed = virtual.list_objects_v2(Bucket=RESULTS_BUCKET, Prefix="virtual/")["Contents"]
    assert [entry["Key"] for entry in listed] == ["virtual/k.txt"]


def test_presigned_urls_work_path_style_and_virtual_hosted(endpoint: LocalEndpoint, s3: Any) -> None:
    """A presigned GET (what a browser or curl is given), as signed and with the bucket in the host."""
    s3.put_object(Bucket=RESULTS_BUCKET, Key="raw.txt", Body=b"raw")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": RESULTS_BUCKET, "Key": "raw.txt"})
    presigned = urlsplit(url)
    assert presigned.path == f"/{RESULTS_BUCKET}/raw.txt"
    connection = http.client.HTTPConnection(presigned.hostname, presigned.port, timeout=10)
    for target, host in (
        (f"{presigned.path}?{presigned.query}", presigned.netloc),
        (f"/raw.txt?{presigned.query}", f"{RESULTS_BUCKET}.s3.localhost:{presigned.port}"),
    ):
        connection.request("GET", target, headers={"Host": host})
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"raw")
    connection.close()


@pytest.mark.parametrize(
    ("target", "host", "expected"),
    [
        ("/bucket/key", "127.0.0.1:8083", "/bucket/key"),
        ("/bucket/key", "localhost:8083", "/bucket/key"),
        ("/bucket?list-type=2", "s3.localhost:8083", "/bucket?list-type=2"),
        ("/key?x=1", "my-bucket.localhost:8083", "/my-bucket/key?x=1"),
        ("/", "my-bucket.s3.localhost", "/my-bucket/"),
    ],
)
def test_path_style_rewrites_only_bucket_host_names(target: str, host: str, expected: str) -> None:
    assert path_style(target, host) == expected
