"""BurstComputeProps: the one definition of BurstCompute's keyword API, its documented defaults, the
defaults resolved from other props, and the errors for a keyword that is not a prop."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn

from burstmap.cdk.construct import BurstCompute
from burstmap.cdk.props import BurstComputeProps, BurstComputeValidationError, prop_names

REQUIRED = inspect.Parameter.empty

#: BurstCompute's keyword arguments and defaults, in order, as they were before the props had a class.
KEYWORD_API: list[tuple[str, Any]] = [
    ("compute", REQUIRED),
    ("start", None),
    ("combine", None),
    ("batch_size", 50),
    ("max_input_bytes_per_batch", None),
    ("max_concurrency", 900),
    ("tolerated_failure_percentage", None),
    ("tolerated_failure_count", None),
    ("bucket", None),
    ("result_prefix", "results"),
    ("result_transformation", sfn.Transformation.COMPACT),
    ("items_prefix", "items"),
    ("expire_after_days", 30),
    ("item_source_buckets", ()),
    ("retry_attempts", 13),
    ("retry_interval", None),
    ("retry_backoff_rate", 2.0),
    ("retry_max_delay", None),
    ("job_timeout", None),
    ("log_level", sfn.LogLevel.ERROR),
    ("log_group", None),
    ("log_retention", logs.RetentionDays.ONE_MONTH),
    ("tracing", False),
    ("state_machine_name", None),
    ("runtime", "python3.13"),
    ("architecture", "arm64"),
    ("input_prefix", None),
    ("output_prefix", "output"),
    ("start_on_upload", False),
    ("compute_reserved_concurrency", None),
]


def _comparable(default: Any) -> Any:
    """Runtimes and architectures are jsii objects: compare them by name."""
    if isinstance(default, lambda_.Runtime | lambda_.Architecture):
        return default.name
    return default


def test_the_keyword_api_is_unchanged() -> None:
    parameters = list(inspect.signature(BurstCompute.__init__).parameters.values())[1:]  # after self
    assert [(p.name, p.kind) for p in parameters[:2]] == [
        ("scope", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("construct_id", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    keywords = parameters[2:]
    assert {p.kind for p in keywords} == {inspect.Parameter.KEYWORD_ONLY}
    assert [(p.name, _comparable(p.default)) for p in keywords] == KEYWORD_API


@pytest.mark.parametrize("prop", fields(BurstComputeProps), ids=lambda prop: prop.name)
def test_every_prop_documents_its_default(prop: Any) -> None:
    doc = prop.metadata["doc"]
    assert doc.endswith(".") and len(doc) > 30
    assert ("Default:" in doc) != (doc.endswith("Required."))


def test_defaults_that_depend_on_other_props_resolve_once(compute: lambda_.Function) -> None:
    default = BurstComputeProps(compute=compute)
    assert default.batched and default.resolved_max_input_bytes_per_batch == 195_584
    assert default.resolved_retry_interval.to_seconds() == 1
    assert default.resolved_retry_max_delay.to_seconds() == 30
    assert default.resolved_job_timeout.to_hours() == 24
    assert default.prefixes == {
        "result_prefix": "results",
        "items_prefix": "items",
        "output_prefix": "output",
    }
    single = BurstComputeProps(compute=compute, batch_size=1, input_prefix="in")
    assert not single.batched and single.resolved_max_input_bytes_per_batch is None
    assert single.prefixes["input_prefix"] == "in"
    given = BurstComputeProps(
        compute=compute, max_input_bytes_per_batch=1000, job_timeout=cdk.Duration.minutes(5)
    )
    assert given.resolved_max_input_bytes_per_batch == 1000
    assert given.resolved_job_timeout.to_minutes() == 5


def test_validate_lists_every_contradiction_as_a_sentence(compute: lambda_.Function) -> None:
    props = BurstComputeProps(compute=compute, batch_size=0, expire_after_days=0, retry_backoff_rate=0.5)
    assert props.validate() == [
        "batch_size must be an integer of at least 1, got 0",
        "expire_after_days must be an integer of at least 1, got 0",
        "retry_backoff_rate must be at least 1.0, got 0.5",
    ]
    assert BurstComputeProps(compute=compute).validate() == []


def test_invalid_props_add_nothing_to_the_tree(stack: cdk.Stack, compute: lambda_.Function) -> None:
    with pytest.raises(BurstComputeValidationError):
        BurstCompute(stack, "Job", compute=compute, batch_size=0)
    assert stack.node.try_find_child("Job") is None
    assert BurstCompute(stack, "Job", compute=compute).node.id == "Job"  # the id is still free


def test_a_misspelled_prop_is_a_type_error_that_suggests_the_prop(
    stack: cdk.Stack, compute: lambda_.Function
) -> None:
    with pytest.raises(
        TypeError,
        match=r"BurstCompute\(\) got an unexpected keyword argument 'batchsize'; did you mean 'batch_size'\?",
    ):
        BurstCompute(stack, "Job", compute=compute, batchsize=10)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'colour': see BurstComputeProps"):
        BurstCompute(stack, "Other", compute=compute, colour="blue")


def test_compute_is_required(stack: cdk.Stack) -> None:
    with pytest.raises(TypeError, match=r"missing the required keyword argument 'compute'"):
        BurstCompute(stack, "Job", batch_size=10)


def test_the_readme_props_table_lists_every_prop() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("### Props") : readme.index("###", readme.index("### Props") + 1)]
    listed = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", table, flags=re.MULTILINE))
    names = {name for row in listed for name in row if name}
    assert names == set(prop_names())
