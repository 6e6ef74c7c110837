"""What the moto-backed adapter tests share: fake credentials, and AWS
resources shaped exactly as infra/template.yaml declares them (read from the
template, so a test can never drift from what is deployed)."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest

from vidpipe_cli.template import load_template

REGION = "us-east-1"


def use_fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials moto accepts, and nothing that could reach a real account or a local stack."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)


@functools.cache
def _template_resources() -> dict[str, Any]:
    # Parsed once per test run: the YAML parse costs about 0.4 s, and the API
    # route tests create four tables for each of a few hundred tests.
    return dict(load_template()["Resources"])


def _properties(logical_id: str) -> dict[str, Any]:
    """The template's properties of one resource (a copy: a test may not change the cached one)."""
    return copy.deepcopy(_template_resources()[logical_id]["Properties"])


def create_jobs_table(client: Any, table_name: str) -> None:
    """The jobs table with the key schema and indexes of the template's JobsTable."""
    properties = _properties("JobsTable")
    client.create_table(
        TableName=table_name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )


def create_job_events_table(client: Any, table_name: str) -> None:
    """The job events table (timelines) as the template's JobEventsTable declares it."""
    properties = _properties("JobEventsTable")
    client.create_table(
        TableName=table_name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
    )


def create_webhooks_table(client: Any, table_name: str) -> None:
    """The webhooks table as the template's WebhooksTable declares it."""
    properties = _properties("WebhooksTable")
    client.create_table(
        TableName=table_name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
    )


def create_revoked_tokens_table(client: Any, table_name: str) -> None:
    """The revoked tokens table as the template's RevokedTokensTable declares it."""
    properties = _properties("RevokedTokensTable")
    client.create_table(
        TableName=table_name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
    )
    client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=properties["TimeToLiveSpecification"])
