"""What the moto-backed adapter tests share: fake credentials, and AWS
resources shaped exactly as infra/template.yaml declares them (read from the
template, so a test can never drift from what is deployed)."""

from __future__ import annotations

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


def create_jobs_table(client: Any, table_name: str) -> None:
    """The jobs table with the key schema and indexes of the template's JobsTable."""
    properties = load_template()["Resources"]["JobsTable"]["Properties"]
    client.create_table(
        TableName=table_name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )


def create_job_events_table(client: Any, table_name: str) -> None:
    """The job events table (timelines) as the template's JobEventsTable declares it."""
    properties = load_template()["Resources"]["JobEventsTable"]["Properties"]
    client.create_table(
        TableName=table_name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
    )


def create_webhooks_table(client: Any, table_name: str) -> None:
    """The webhooks table as the template's WebhooksTable declares it."""
    properties = load_template()["Resources"]["WebhooksTable"]["Properties"]
    client.create_table(
        TableName=table_name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
    )


def create_revoked_tokens_table(client: Any, table_name: str) -> None:
    """The revoked tokens table as the template's RevokedTokensTable declares it."""
    properties = load_template()["Resources"]["RevokedTokensTable"]["Properties"]
    client.create_table(
        TableName=table_name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
    )
    client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=properties["TimeToLiveSpecification"])
