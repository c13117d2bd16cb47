"""Constants the engine, its services and the client share, each defined once.

AWS's own quotas that the Lambda side needs too live in :mod:`burstmap.runtime.contracts` and are
re-exported here, so the engine has one place to import them from.
"""

from __future__ import annotations

from burstmap.runtime.contracts import STATE_PAYLOAD_LIMIT_BYTES

__all__ = [
    "LAMBDA_INVOKE",
    "LAMBDA_RESPONSE_LIMIT_BYTES",
    "LOCAL_ACCOUNT",
    "LOCAL_PARTITION",
    "LOCAL_REGION",
    "LOCAL_URL_SUFFIX",
    "STATE_PAYLOAD_LIMIT_BYTES",
]

LOCAL_PARTITION = "aws"
LOCAL_REGION = "us-east-1"
"""The region local ARNs, the context object and the loopback S3 server use."""
LOCAL_ACCOUNT = "111111111111"
"""The account id in local ARNs (a placeholder; no AWS account is involved)."""
LOCAL_URL_SUFFIX = "amazonaws.com"

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
"""The optimized Lambda integration's Resource."""
LAMBDA_RESPONSE_LIMIT_BYTES = 6_291_556
"""AWS: a synchronous Lambda response payload is at most 6 MB (then ``Function.ResponseSizeTooLarge``)."""
