#!/usr/bin/env python3
"""The example CDK app: one stack with BurstCompute and the example compute.

``cdk synth`` / ``cdk deploy`` run this file (see cdk.json). ``python app.py`` alone works too: cdk.json's
feature flags are loaded into the App either way (the CDK CLI passes its context on top of them).
Override some construct props with context, e.g. ``cdk deploy -c burstmap:tolerated_failure_count=10``
(infra/stack.py lists them).
"""

from infra.stack import build_app

if __name__ == "__main__":
    build_app().synth()
