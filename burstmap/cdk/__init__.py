"""The CDK side (needs aws-cdk-lib; never shipped to Lambda). Import from the modules, not from here:
``burstmap.cdk.assets`` is used by the local engine without loading aws-cdk-lib.

props        BurstComputeProps: every prop, its default and its doc; validate() -> plain sentences
construct    BurstCompute: creates or takes the parts, wires them, exposes them, grant_* methods
resources    the job bucket, the default start and combine functions, the upload rule
definition   the state machine: Start -> ItemSource Choice -> Distributed Maps -> Combine
grants       data access from grants, each on its prefix only
nag          the cdk-nag findings accepted by design, each with its reason
layer        BurstmapLayer: burstmap/runtime shipped as a Lambda layer, bundled locally
assets       where the package and its Lambda handlers live (checkout or wheel)
"""
