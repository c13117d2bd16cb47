"""``burstmap serve``: the local engine behind the real Step Functions, S3 and CloudFormation APIs.

Unmodified clients (the AWS CLI, boto3, burstmap's own AWS commands) reach it with ``AWS_ENDPOINT_URL``
or ``--endpoint-url``. The API layer speaks the wire protocols from botocore's service models; what
runs executions sits behind ``backend.ExecutionBackend``.
"""

DEFAULT_HOST = "127.0.0.1"
"""Loopback: the endpoint has no authentication, so it listens where only this machine reaches it."""
DEFAULT_PORT = 8083
