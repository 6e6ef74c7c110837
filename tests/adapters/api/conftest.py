"""The ``aws`` fixture of the API route tests: moto's S3, DynamoDB and Secrets
Manager with the buckets, tables and signing keys the API reads."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.adapters.api.api_requests import (
    API_KEYS,
    API_URL,
    EVENTS_TABLE,
    GRANT_KEYS,
    KEYS_PREFIX,
    MULTIPART_THRESHOLD,
    OUTPUTS_BUCKET,
    REGION,
    REVOKED_TABLE,
    TABLE,
    UPLOADS_BUCKET,
    WEBHOOK_KEYS,
    WEBHOOKS_TABLE,
    Aws,
    clear_caches,
)
from tests.moto_resources import (
    create_job_events_table,
    create_jobs_table,
    create_revoked_tokens_table,
    create_webhooks_table,
    use_fake_credentials,
)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    use_fake_credentials(monkeypatch)
    for name, value in {
        "JOBS_TABLE": TABLE,
        "UPLOADS_BUCKET": UPLOADS_BUCKET,
        "OUTPUTS_BUCKET": OUTPUTS_BUCKET,
        "EVENT_BUS_NAME": "vidpipe-test-events",
        "PUBLIC_API_URL": API_URL + "/",
        "MAX_UPLOAD_BYTES": str(100 * 1024 * 1024),
        "MULTIPART_THRESHOLD_BYTES": str(MULTIPART_THRESHOLD),
        "UPLOAD_URL_TTL_SECONDS": "900",
        "OUTPUT_URL_TTL_SECONDS": "600",
        "SIGNING_KEYS_PREFIX": KEYS_PREFIX,
        "REVOKED_TOKENS_TABLE": REVOKED_TABLE,
        "JOB_EVENTS_TABLE": EVENTS_TABLE,
        "WEBHOOKS_TABLE": WEBHOOKS_TABLE,
        "POWERTOOLS_SERVICE_NAME": "upload-api",
    }.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=UPLOADS_BUCKET)
        s3.create_bucket(Bucket=OUTPUTS_BUCKET)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_jobs_table(dynamodb, TABLE)
        create_job_events_table(dynamodb, EVENTS_TABLE)
        create_webhooks_table(dynamodb, WEBHOOKS_TABLE)
        create_revoked_tokens_table(dynamodb, REVOKED_TABLE)
        secrets = boto3.client("secretsmanager", region_name=REGION)
        for keys in (API_KEYS, GRANT_KEYS, WEBHOOK_KEYS):
            secrets.create_secret(
                Name=KEYS_PREFIX + keys.purpose, SecretString=json.dumps({"current": keys.current, **keys.keys})
            )
        yield Aws(s3=s3, dynamodb=dynamodb)
    clear_caches()
