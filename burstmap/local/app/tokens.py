"""CloudFormation tokens -> local values, for one stack template of a cloud assembly.

``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap`` and
``Fn::Base64`` resolve to deterministic local values: function ARNs in the local account and region,
lowercase bucket names, pseudo parameters. A function's code and its layers resolve to their asset
directories (the BurstmapLayer's is built, ready, in burstmap's cache even when bundling is skipped).
A token without a local value is an ``UnresolvableToken`` naming the resource and property.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from burstmap.local.app.errors import AssemblyError, UnresolvableToken, read_json
from burstmap.local.core.limits import LOCAL_ACCOUNT, LOCAL_PARTITION, LOCAL_REGION, LOCAL_URL_SUFFIX


class TemplateResolver:
    """Resolves the intrinsic functions of one stack template to local values."""

    def __init__(self, stack: str, template: dict[str, Any], assembly_dir: Path) -> None:
        self.stack = stack
        self.template = template
        self.assembly_dir = assembly_dir
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters: dict[str, Any] = template.get("Parameters", {})
        self.mappings: dict[str, Any] = template.get("Mappings", {})
        self._asset_files: dict[str, Any] | None = None

    # -- names

    def physical_name(self, logical_id: str) -> str:
        """The deterministic local name CloudFormation would generate (``Stack-LogicalId``)."""
        return f"{self.stack}-{logical_id}"[:64]

    def bucket_name(self, logical_id: str) -> str:
        explicit = self.resources[logical_id].get("Properties", {}).get("BucketName")
        if explicit is not None:
            return str(self.resolve(explicit, logical_id, "BucketName"))
        name = re.sub(r"[^a-z0-9-]", "-", f"{self.stack}-{logical_id}".lower()).strip("-")
        return name[:63].rstrip("-")

    def function_name(self, logical_id: str) -> str:
        explicit = self.resources[logical_id].get("Properties", {}).get("FunctionName")
        if explicit is not None:
            return str(self.resolve(explicit, logical_id, "FunctionName"))
        return self.physical_name(logical_id)

    def state_machine_name(self, logical_id: str) -> str:
        """Its ``StateMachineName``, else the name CloudFormation would generate."""
        return self._named(logical_id, "StateMachineName")

    def _named(self, logical_id: str, prop: str) -> str:
        explicit = self.resources[logical_id].get("Properties", {}).get(prop)
        if explicit is not None:
            return str(self.resolve(explicit, logical_id, prop))
        return self.physical_name(logical_id)

    # -- Ref and Fn::GetAtt

    def ref(self, target: str, where: str, prop: str) -> Any:
        pseudo = {
            "AWS::Partition": LOCAL_PARTITION,
            "AWS::Region": LOCAL_REGION,
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::URLSuffix": LOCAL_URL_SUFFIX,
            "AWS::StackName": self.stack,
            "AWS::StackId": f"arn:aws:cloudformation:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stack/{self.stack}/local",
        }
        if target in pseudo:
            return pseudo[target]
        if target in self.parameters:
            parameter = self.parameters[target]
            if "Default" in parameter:
                return parameter["Default"]
            raise UnresolvableToken(
                self.stack, where, prop, {"Ref": target}, f"parameter {target} has no default value"
            )
        resource = self.resources.get(target)
        if resource is None:
            raise UnresolvableToken(
                self.stack, where, prop, {"Ref": target}, f"no resource {target} in the stack"
            )
        kind = resource.get("Type")
        if kind == "AWS::S3::Bucket":
            return self.bucket_name(target)
        if kind == "AWS::Lambda::Function":
            return self.function_name(target)
        if kind == "AWS::Lambda::LayerVersion":
            name = self._named(target, "LayerName")
            return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:layer:{name}:1"
        if kind == "AWS::StepFunctions::StateMachine":
            return self.get_att(target, "Arn", where, prop)
        if kind == "AWS::IAM::Role":
            return self._named(target, "RoleName")
        if kind == "AWS::Logs::LogGroup":
            return self._named(target, "LogGroupName")
        raise UnresolvableToken(
            self.stack, where, prop, {"Ref": target}, f"{target} is a {kind}, which has no local value"
        )

    def get_att(self, target: str, attribute: str, where: str, prop: str) -> Any:
        token = {"Fn::GetAtt": [target, attribute]}
        resource = self.resources.get(target)
        if resource is None:
            raise UnresolvableToken(self.stack, where, prop, token, f"no resource {target} in the stack")
        kind = resource.get("Type")
        values: dict[str, Any] = {}
        if kind == "AWS::Lambda::Function":
            name = self.function_name(target)
            values = {"Arn": f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{name}"}
        elif kind == "AWS::S3::Bucket":
            name = self.bucket_name(target)
            values = {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{LOCAL_REGION}.amazonaws.com",
                "DualStackDomainName": f"{name}.s3.dualstack.{LOCAL_REGION}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{LOCAL_REGION}.amazonaws.com",
            }
        elif kind == "AWS::StepFunctions::StateMachine":
            name = self._named(target, "StateMachineName")
            values = {
                "Arn": f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:{name}",
                "Name": name,
            }
        elif kind == "AWS::IAM::Role":
            name = self._named(target, "RoleName")
            values = {
                "Arn": f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{name}",
                "RoleId": f"AROALOCAL{target.upper()}",
            }
        elif kind == "AWS::Logs::LogGroup":
            name = self._named(target, "LogGroupName")
            values = {"Arn": f"arn:aws:logs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:log-group:{name}:*"}
        if attribute not in values:
            raise UnresolvableToken(
                self.stack, where, prop, token, f"attribute {attribute} of a {kind} has no local value"
            )
        return values[attribute]

    # -- the intrinsic functions

    def resolve(self, value: Any, where: str, prop: str) -> Any:
        """``value`` with every intrinsic function replaced by its local value."""
        if isinstance(value, list):
            return [self.resolve(v, where, prop) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg, where, prop)
            if key == "Fn::GetAtt":
                target, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(target, self.resolve(attribute, where, prop), where, prop)
            if key == "Fn::Join":
                separator, parts = arg
                return str(separator).join(
                    self._string(p, where, prop, value) for p in self.resolve(parts, where, prop)
                )
            if key == "Fn::Sub":
                return self._sub(arg, where, prop)
            if key == "Fn::Select":
                index, items = self.resolve(arg, where, prop)
                return items[int(index)]
            if key == "Fn::Split":
                separator, text = self.resolve(arg, where, prop)
                return str(text).split(separator)
            if key == "Fn::FindInMap":
                name, top, second = self.resolve(arg, where, prop)[:3]
                try:
                    return self.mappings[name][top][second]
                except KeyError:
                    raise UnresolvableToken(
                        self.stack, where, prop, value, f"mapping {name} has no {top}.{second}"
                    ) from None
            if key == "Fn::Base64":
                return base64.b64encode(str(self.resolve(arg, where, prop)).encode()).decode()
            if key.startswith("Fn::") or key == "Condition":
                raise UnresolvableToken(self.stack, where, prop, value, f"{key} is not evaluated locally")
        return {k: self.resolve(v, where, f"{prop}.{k}") for k, v in value.items()}

    def _string(self, part: Any, where: str, prop: str, token: Any) -> str:
        if isinstance(part, str):
            return part
        if isinstance(part, bool | int | float):
            return json.dumps(part)
        raise UnresolvableToken(
            self.stack, where, prop, token, f"a joined part resolved to {part!r}, not a string"
        )

    def _sub(self, arg: Any, where: str, prop: str) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1], where, prop))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                target, attribute = name.split(".", 1)
                return str(self.get_att(target, attribute, where, prop))
            return str(self.ref(name, where, prop))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # -- assets

    def code_directory(self, logical_id: str, resource: dict[str, Any]) -> Path:
        """The directory holding the function's code, from asset metadata, assets.json or inline code."""
        props = resource.get("Properties", {})
        code = props.get("Code", {})
        if "ZipFile" in code:  # Code.from_inline: Lambda stores it as index.py
            directory = self.assembly_dir / "burstmap-inline" / logical_id
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "index.py").write_text(
                str(self.resolve(code["ZipFile"], logical_id, "Code.ZipFile"))
            )
            return directory
        return self._asset_directory(logical_id, resource, "Code")

    def layer_content(self, layer: Any, function_id: str, prop: str) -> Path:
        """A layer's content, as Lambda extracts it to ``/opt`` (its ``python/`` folder is imported from)."""
        target = layer.get("Ref") if isinstance(layer, dict) else None
        resource = self.resources.get(target) if isinstance(target, str) else None
        if resource is None or resource.get("Type") != "AWS::Lambda::LayerVersion":
            raise UnresolvableToken(
                self.stack,
                function_id,
                prop,
                layer,
                "only layers defined in the same stack from a local asset can run locally",
            )
        return self._asset_directory(target, resource, "Content")

    def _asset_directory(self, logical_id: str, resource: dict[str, Any], prop: str) -> Path:
        metadata = resource.get("Metadata", {})
        relative = (
            metadata.get("aws:asset:path") if metadata.get("aws:asset:property", prop) == prop else None
        )
        if relative is None:  # synthesized without asset metadata: find the asset by its S3 key
            key = resource.get("Properties", {}).get(prop, {}).get("S3Key")
            entry = self._assets().get(str(key).split(".", 1)[0]) if isinstance(key, str) else None
            relative = entry["source"]["path"] if entry else None
        if relative is None:
            raise UnresolvableToken(
                self.stack,
                logical_id,
                prop,
                resource.get("Properties", {}).get(prop),
                "no local asset directory for it (not built with Code.from_asset?)",
            )
        directory = (self.assembly_dir / relative).resolve()
        if not directory.is_dir():
            raise AssemblyError(
                f"{self.stack}/{logical_id} {prop}: asset {directory} is not a directory (a zip file asset "
                "cannot be run locally; point Code.from_asset at a directory)"
            )
        return directory

    def _assets(self) -> dict[str, Any]:
        if self._asset_files is None:
            self._asset_files = {}
            for path in self.assembly_dir.glob("*.assets.json"):
                self._asset_files.update(read_json(path).get("files", {}))
        return self._asset_files


def bundling_skipped(resource: dict[str, Any]) -> bool:
    """Whether CDK was to bundle this resource's asset and did not (a local synth skips bundling): the
    asset is then the bundling's input folder, not staged into the assembly (its path is absolute)."""
    metadata = resource.get("Metadata") or {}
    path = metadata.get("aws:asset:path")
    return metadata.get("aws:asset:is-bundled") is True and isinstance(path, str) and Path(path).is_absolute()


def bundled(resource: dict[str, Any]) -> bool:
    """Whether this resource's asset folder is its bundling's output (a synth that ran the bundling)."""
    return (resource.get("Metadata") or {}).get("aws:asset:is-bundled") is True and not bundling_skipped(
        resource
    )
