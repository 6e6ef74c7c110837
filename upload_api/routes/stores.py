"""The stores and signers the routes work with, built from this deployment's settings."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from upload_api.domain_logic.uploads import OwnerQuota
from vidpipe.aws_clients import dynamodb_client, s3_client, secrets_client
from vidpipe.cloudfront_signing import CloudFrontOutputUrls, load_private_key
from vidpipe.errors import ValidationFailed
from vidpipe.job_store import DynamoJobStore
from vidpipe.settings import get_settings
from vidpipe.storage import S3ObjectStore
from vidpipe.timeline import DynamoTimeline
from vidpipe.usage_store import DynamoUsageStore
from vidpipe.webhook_store import DynamoWebhookStore


def jobs_store() -> DynamoJobStore:
    return DynamoJobStore(dynamodb_client(), get_settings().jobs_table)


def usage_store() -> DynamoUsageStore:
    return DynamoUsageStore(dynamodb_client(), get_settings().jobs_table)


def owner_quota() -> OwnerQuota:
    return OwnerQuota(limits=get_settings().owner_limits(), usage=usage_store(), jobs=jobs_store())


def timeline() -> DynamoTimeline:
    return DynamoTimeline(dynamodb_client(), get_settings().job_events_table)


def webhooks_store() -> DynamoWebhookStore:
    return DynamoWebhookStore(dynamodb_client(), get_settings().webhooks_table)


def uploads_store() -> S3ObjectStore:
    return S3ObjectStore(s3_client(), get_settings().uploads_bucket)


def outputs_store() -> S3ObjectStore:
    return S3ObjectStore(s3_client(), get_settings().outputs_bucket)


def output_urls() -> S3ObjectStore | CloudFrontOutputUrls:
    """Where players fetch segments and images: the CDN when the stack has one
    in use (OutputsDelivery=cloudfront), otherwise presigned S3 GETs. Either
    way each URL expires. One per response (the CDN signs once per job)."""
    settings = get_settings()
    if not settings.outputs_cdn_url:
        return outputs_store()
    if not (settings.outputs_cdn_key_pair_id and settings.outputs_cdn_signing_key_secret_id):
        raise ValidationFailed("the outputs CDN has no signing key configured", code="MISCONFIGURED")
    return CloudFrontOutputUrls(
        base_url=settings.outputs_cdn_url,
        key_pair_id=settings.outputs_cdn_key_pair_id,
        key=cdn_signing_key(settings.outputs_cdn_signing_key_secret_id),
    )


@lru_cache(maxsize=1)
def cdn_signing_key(secret_id: str) -> Any:
    """The CloudFront signing key, read once per container (``vidpipe cdn-key``
    wrote it: JSON with ``private_key`` and ``public_key`` in PEM)."""
    answer = secrets_client().get_secret_value(SecretId=secret_id)
    try:
        pem = json.loads(answer["SecretString"])["private_key"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"secret {secret_id} holds no private_key", code="MISCONFIGURED") from exc
    return load_private_key(pem)
