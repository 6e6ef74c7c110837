"""boto3 clients, created once per Lambda container and reused across invocations.

They read the region, credentials and ``AWS_ENDPOINT_URL`` from the environment:
on AWS that is the real service, on the local stack ministack sets
``AWS_ENDPOINT_URL`` for its workers. No code path differs between the two."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:  # the boto3-stubs service types: a development dependency, not in the Lambda layer
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_mediaconvert import MediaConvertClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

_RETRYING = Config(retries={"max_attempts": 5, "mode": "standard"})


@lru_cache(maxsize=1)
def s3_client() -> S3Client:
    # SigV4 for presigned URLs and POST policies (the SDK's default for
    # presigning is still the legacy signature).
    return boto3.client("s3", config=_RETRYING.merge(Config(signature_version="s3v4")))


@lru_cache(maxsize=1)
def dynamodb_client() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_RETRYING)


@lru_cache(maxsize=1)
def events_client() -> EventBridgeClient:
    return boto3.client("events", config=_RETRYING)


@lru_cache(maxsize=1)
def secrets_client() -> SecretsManagerClient:
    return boto3.client("secretsmanager", config=_RETRYING)


@lru_cache(maxsize=1)
def sqs_client() -> SQSClient:
    return boto3.client("sqs", config=_RETRYING)


@lru_cache(maxsize=1)
def mediaconvert_client() -> MediaConvertClient:
    # The regional endpoint: MediaConvert no longer needs the account-specific
    # one from DescribeEndpoints.
    return boto3.client("mediaconvert", config=_RETRYING)
