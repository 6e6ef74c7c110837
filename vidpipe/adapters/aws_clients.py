"""boto3 clients, created once per Lambda container and reused across invocations.

They read the region, credentials and ``AWS_ENDPOINT_URL`` from the environment:
on AWS that is the real service, on the local stack ministack sets
``AWS_ENDPOINT_URL`` for its workers. No code path differs between the two."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

_RETRIES = {"max_attempts": 5, "mode": "standard"}


@lru_cache(maxsize=1)
def s3_client() -> Any:
    # SigV4 for presigned URLs and POST policies (the SDK's default for
    # presigning is still the legacy signature).
    return boto3.client("s3", config=Config(signature_version="s3v4", retries=_RETRIES))


@lru_cache(maxsize=1)
def dynamodb_client() -> Any:
    return boto3.client("dynamodb", config=Config(retries=_RETRIES))


@lru_cache(maxsize=1)
def events_client() -> Any:
    return boto3.client("events", config=Config(retries=_RETRIES))


@lru_cache(maxsize=1)
def secrets_client() -> Any:
    return boto3.client("secretsmanager", config=Config(retries=_RETRIES))


@lru_cache(maxsize=1)
def sqs_client() -> Any:
    return boto3.client("sqs", config=Config(retries=_RETRIES))


@lru_cache(maxsize=1)
def mediaconvert_client() -> Any:
    # The regional endpoint: MediaConvert no longer needs the account-specific
    # one from DescribeEndpoints.
    return boto3.client("mediaconvert", config=Config(retries=_RETRIES))


@lru_cache(maxsize=4)
def lambda_client(read_timeout_s: int) -> Any:
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
