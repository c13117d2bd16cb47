"""CloudFormation's DescribeStacks (query protocol, XML) for the app's stacks, outputs resolved locally.

This is what ``burstmap run --stack NAME`` (and any script reading ``StateMachineArn`` or ``BucketName``
from a stack) asks first; the stacks are "deployed" as the cloud assembly describes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from burstmap.serve.machines import StackSpec
from burstmap.serve.wire import (
    XML_CONTENT_TYPE,
    ApiError,
    Reply,
    parse_query_request,
    render_xml,
    service_model,
    xml_error,
)

SUPPORTED_ACTIONS = ("DescribeStacks",)


class CloudFormationApi:
    """Answers CloudFormation query requests about the served app's stacks."""

    def __init__(self, stacks: Iterable[StackSpec]) -> None:
        self.model = service_model("cloudformation")
        self.stacks = list(stacks)

    def handle(self, form: bytes | str) -> Reply:
        try:
            op, params = parse_query_request(self.model, form)
            if op.name not in SUPPORTED_ACTIONS:
                raise ApiError(
                    "InvalidAction",
                    f"not supported locally: burstmap serve answers {', '.join(SUPPORTED_ACTIONS)} for the "
                    f"app's stacks, not {op.name}",
                )
            result = self.describe_stacks(params)
            return Reply(200, {"Content-Type": XML_CONTENT_TYPE}, render_xml(self.model, op, result))
        except ApiError as error:
            return xml_error(self.model, error)

    def describe_stacks(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("NextToken") is not None:
            raise ApiError("ValidationError", "Invalid NextToken: DescribeStacks returns every stack at once")
        wanted = params.get("StackName")
        stacks = [s for s in self.stacks if wanted is None or wanted in (s.name, s.stack_id)]
        if wanted is not None and not stacks:
            raise ApiError("ValidationError", f"Stack with id {wanted} does not exist")
        return {"Stacks": [_stack(stack) for stack in stacks]}


def _stack(stack: StackSpec) -> dict[str, Any]:
    return {
        "StackId": stack.stack_id,
        "StackName": stack.name,
        "Description": stack.description,
        "CreationTime": stack.creation_time,
        "StackStatus": "CREATE_COMPLETE",
        "DisableRollback": False,
        "Outputs": [
            {
                "OutputKey": output.key,
                "OutputValue": output.value,
                "Description": output.description,
                "ExportName": output.export_name,
            }
            for output in stack.outputs
        ],
    }
