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
    from mypy_boto3_lambda import LambdaClient
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


@lru_cache(maxsize=4)
def lambda_client(read_timeout_s: int) -> LambdaClient:
    # A synchronous invoke waits for the image it asked for: no retry (it would
    # make the image twice) and a read timeout that ends within the caller's own
    # time limit, so that a slow first image (a cold start) is answered "in
    # progress, ask again" rather than cut off (vidpipe.adapters.image_maker).
    # total_max_attempts, not max_attempts: in botocore's default (legacy) mode
    # max_attempts counts retries, so 1 meant a second invoke after a timeout.
    return boto3.client(
        "lambda",
        config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=read_timeout_s, connect_timeout=2
        ),
    )
