"""The stores and signers the routes work with, built from this deployment's settings."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from upload_api.domain_logic.uploads import OwnerQuota
from vidpipe.adapters.aws_clients import dynamodb_client, s3_client, sqs_client
from vidpipe.adapters.cloudfront_signing import CloudFrontOutputUrls, load_private_key
from vidpipe.adapters.import_queue import SqsImportQueue
from vidpipe.adapters.job_store import DynamoJobStore
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.adapters.secrets import secret_json
from vidpipe.adapters.timeline_store import DynamoTimeline
from vidpipe.adapters.usage_store import DynamoUsageStore
from vidpipe.adapters.webhook_store import DynamoWebhookStore
from vidpipe.domain.errors import ValidationFailed
from vidpipe.runtime.settings import get_settings


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


def import_queue() -> SqsImportQueue:
    return SqsImportQueue(sqs_client(), get_settings().import_queue_url)


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
    try:
        pem = secret_json(secret_id)["private_key"]
    except (KeyError, ValidationFailed) as exc:
        raise ValidationFailed(f"secret {secret_id} holds no private_key", code="MISCONFIGURED") from exc
    return load_private_key(pem)
