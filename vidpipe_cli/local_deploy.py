"""Deploying infra/template.yaml into the running local stack (CloudFormation,
after SAM translation), with the bucket settings ministack's CloudFormation
does not apply set afterwards (:func:`_apply_bucket_settings_ministack_ignores`),
the chunk functions held to the machine's cores (:func:`with_local_concurrency`),
and the local API token minted for the endpoints.

What can go wrong: ``LocalStackError`` with the failing resource's status reason.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import replace
from typing import Any

from vidpipe.domain.access import TokenRefused, unverified_claims
from vidpipe_cli.local_stack_settings import (
    ARTIFACT_BUCKET,
    LOCAL_TOKEN_RENEW_S,
    LOCAL_TOKEN_TTL_S,
    LOCAL_USER,
    LOCAL_WEBHOOK_RECEIVERS,
    REGION,
    STACK_NAME,
    Endpoints,
    LocalStackError,
    LocalStackSettings,
    aws_client,
)
from vidpipe_cli.packaging import BuildOutput
from vidpipe_cli.template import load_template, translate_sam, with_artifact_locations
from vidpipe_cli.tokens import mint_token as mint_stack_token


def local_parameters(api_url: str, overrides: dict[str, str]) -> dict[str, str]:
    """The template parameters the local stack deploys with (``overrides`` from
    VIDPIPE_PARAMETERS win).

    Receivers on this machine listen on plain http:// (the template's default
    is https only), on loopback, which webhooks reach only on the ports allowed
    here (LOCAL_WEBHOOK_RECEIVERS, or WebhookAllowedHosts in the overrides)."""
    return {
        "PublicApiUrl": api_url,
        "OutputsDelivery": "s3-presigned",
        "WebhookAllowHttp": "true",
        "WebhookAllowedHosts": LOCAL_WEBHOOK_RECEIVERS,
        # The local stack speaks plain http: a bucket policy denying it would deny everything.
        "BucketsRequireTls": "false",
        # A revoked token is refused within seconds here (30 s on AWS by default),
        # so the stack test of revocation does not wait out a long cache.
        "AuthorizerCacheSeconds": "5",
        **overrides,
    }


# AWS's floor for an SQS mapping's MaximumConcurrency.
MIN_MAPPING_CONCURRENCY = 2


def with_local_concurrency(template: dict[str, Any], cores: int) -> dict[str, Any]:
    """``template`` with every SQS mapping's MaximumConcurrency at most ``cores``.

    On AWS each chunk function gets its own vCPUs, so 20 at once is 20 times
    the work. Here every function is a process on this machine: 19 chunk
    encodes of a 10-minute upload at once each got a tenth of a core, ran past
    the chunk function's 300 s timeout and failed the job (make bench). Bounded
    to the cores, they take turns and each finishes in seconds. The handlers
    and the rest of the template are unchanged."""
    bounded = copy.deepcopy(template)
    limit = max(MIN_MAPPING_CONCURRENCY, cores)
    for resource in bounded.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        scaling = resource.get("Properties", {}).get("ScalingConfig") or {}
        if int(scaling.get("MaximumConcurrency", 0)) > limit:
            scaling["MaximumConcurrency"] = limit
    return bounded


def deploy(settings: LocalStackSettings, build: BuildOutput) -> Endpoints:
    """Upload the zips, translate the template and create or update the stack."""
    endpoint = settings.endpoint_url
    s3 = aws_client("s3", endpoint)
    if ARTIFACT_BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    locations: dict[str, tuple[str, str]] = {}
    for name, path in [*build.functions.items(), *build.layers.items()]:
        key = f"{name}/{hashlib.sha256(path.read_bytes()).hexdigest()}.zip"
        s3.upload_file(str(path), ARTIFACT_BUCKET, key)
        locations[name] = (ARTIFACT_BUCKET, key)
    declared = load_template()
    template = with_local_concurrency(
        translate_sam(with_artifact_locations(declared, locations), REGION), os.cpu_count() or 2
    )
    cloudformation = aws_client("cloudformation", endpoint)
    # Through S3, as `sam deploy` does: CloudFormation takes at most 51,200
    # bytes inline, 1 MB behind a TemplateURL, and the translated template
    # (SAM's Globals copied into every function) is past the inline limit.
    body = json.dumps(template, separators=(",", ":")).encode()
    template_key = f"templates/{hashlib.sha256(body).hexdigest()}.json"
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=template_key, Body=body)
    template_url = f"{endpoint}/{ARTIFACT_BUCKET}/{template_key}"
    # The HttpApi's ms-custom-id tag pins its id to the stack name, so the
    # API's public URL is known before the stack exists.
    api_url = f"{endpoint}/_aws/execute-api/{STACK_NAME}"
    # ministack's CloudFront answers 502 for an S3 origin, so locally players
    # get presigned S3 GETs; the distribution is still deployed, unused.
    chosen = local_parameters(api_url, dict(settings.parameters))
    parameters = [{"ParameterKey": key, "ParameterValue": value} for key, value in chosen.items()]
    capabilities = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    if stack_exists(settings):
        try:
            cloudformation.update_stack(
                StackName=STACK_NAME, TemplateURL=template_url, Capabilities=capabilities, Parameters=parameters
            )
        except cloudformation.exceptions.ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
        _wait_for_stack(cloudformation, ("UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"))
    else:
        cloudformation.create_stack(
            StackName=STACK_NAME, TemplateURL=template_url, Capabilities=capabilities, Parameters=parameters
        )
        _wait_for_stack(cloudformation, ("CREATE_COMPLETE",))
    outputs = _stack_outputs(cloudformation)
    _apply_bucket_settings_ministack_ignores(s3, outputs["UploadsBucketName"], declared)
    if outputs["ApiId"] != STACK_NAME:
        raise LocalStackError(f"the HTTP API got id {outputs['ApiId']!r}, not {STACK_NAME!r}")
    endpoints = Endpoints(
        api_url=api_url, web_url="", aws_endpoint_url=endpoint, api_token="", stack_name=STACK_NAME, outputs=outputs
    )
    return with_token(endpoints, mint_token(settings, outputs, LOCAL_USER))


def with_token(endpoints: Endpoints, token: str) -> Endpoints:
    # The page keeps the token from the fragment (never sent to a server).
    return replace(endpoints, api_token=token, web_url=f"{endpoints.api_url}/#token={token}")


def expires_soon(token: str) -> bool:
    try:
        return unverified_claims(token).expires_at - time.time() < LOCAL_TOKEN_RENEW_S
    except TokenRefused:
        return True  # a token of the old format: never accepted any more


def mint_token(settings: LocalStackSettings, outputs: dict[str, str], user: str, ttl_s: int = LOCAL_TOKEN_TTL_S) -> str:
    """An API token for ``user``, signed with the stack's key (read with the admin keys)."""
    return mint_stack_token(aws_client("secretsmanager", settings.endpoint_url), outputs, user, ttl_s=ttl_s).token


def stack_exists(settings: LocalStackSettings) -> bool:
    cloudformation = aws_client("cloudformation", settings.endpoint_url)
    try:
        stacks = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"]
    except cloudformation.exceptions.ClientError:
        return False
    return bool(stacks) and stacks[0]["StackStatus"] in {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
    }


def _wait_for_stack(cloudformation: Any, success: tuple[str, ...], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        status = stack["StackStatus"]
        if status in success:
            if status == "UPDATE_ROLLBACK_COMPLETE":
                raise LocalStackError(f"stack update rolled back: {_failure_reasons(cloudformation)}")
            return
        if status.endswith("_FAILED") or status.endswith("ROLLBACK_COMPLETE"):
            raise LocalStackError(f"stack {status}: {_failure_reasons(cloudformation)}")
        time.sleep(0.5)
    raise LocalStackError(f"stack not ready within {timeout_s:.0f} s")


def _failure_reasons(cloudformation: Any) -> str:
    events = cloudformation.describe_stack_events(StackName=STACK_NAME).get("StackEvents", [])
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e.get("ResourceStatus", "").endswith("FAILED")
    ]
    return "; ".join(reasons[:5]) or "no reason given"


def _stack_outputs(cloudformation: Any) -> dict[str, str]:
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def _apply_bucket_settings_ministack_ignores(s3: Any, bucket: str, template: dict[str, Any]) -> None:
    """ministack gap: its CloudFormation ignores two properties of the uploads
    bucket that the template declares (and AWS applies): the EventBridge
    notifications and the lifecycle rules. Here we set them from the template
    itself, so the template stays the one source of truth."""
    properties = template["Resources"]["UploadsBucket"]["Properties"]
    if "EventBridgeConfiguration" in properties.get("NotificationConfiguration", {}):
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    # A rule that depends on a parameter (Fn::If, e.g. ExpireSources) is left to
    # AWS: reading it here would mean evaluating the template ourselves.
    rules = [rule for rule in properties.get("LifecycleConfiguration", {}).get("Rules", []) if "Id" in rule]
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]}
        )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape of the S3 API."""
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": rule["ExpirationInDays"]}
    return converted
