"""Read infra/template.yaml and turn it into the CloudFormation the local stack deploys.

The SAM transform runs here, with aws-sam-translator, exactly as the
CloudFormation service runs it on AWS; the local folders named by ``CodeUri``
and ``ContentUri`` are replaced by the S3 locations of their zips, which is
what ``sam deploy`` does before it calls CloudFormation.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from vidpipe_cli.packaging import PROJECT_ROOT

TEMPLATE_PATH = PROJECT_ROOT / "infra" / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that understands the short intrinsic-function tags (!Ref, !Sub...)."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 - our SafeLoader subclass


def with_artifact_locations(template: dict[str, Any], locations: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Replace each ``CodeUri``/``ContentUri`` folder with the S3 (bucket, key) of its zip.

    ``locations`` maps the folder's last name (``upload_api``, ``dependencies``...)
    to where its zip was uploaded."""
    packaged = copy.deepcopy(template)
    for name, resource in packaged.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for field, bucket_key, key_key in (("CodeUri", "Bucket", "Key"), ("ContentUri", "Bucket", "Key")):
            folder = properties.get(field)
            if not isinstance(folder, str):
                continue
            artefact = Path(folder).name
            if artefact not in locations:
                raise KeyError(f"{name}.{field} names {folder!r}, which the build did not produce")
            bucket, key = locations[artefact]
            properties[field] = {bucket_key: bucket, key_key: key}
    return packaged


def translate_sam(template: dict[str, Any], region: str) -> dict[str, Any]:
    """Expand ``AWS::Serverless::*`` resources into plain CloudFormation."""
    import os

    from samtranslator.translator.transform import transform

    class _NoManagedPolicies:
        # SAM asks IAM for managed policy ARNs only when a template names one
        # by its short name; ours uses none, so no IAM call is needed.
        def load(self) -> dict[str, str]:
            return {}

    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        return transform(copy.deepcopy(template), {}, _NoManagedPolicies())
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous
