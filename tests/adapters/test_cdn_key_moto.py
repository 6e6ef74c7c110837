"""`vidpipe cdn-key` against Secrets Manager (moto): the key pair the outputs CDN checks URLs with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from moto import mock_aws

from tests.moto_resources import use_fake_credentials
from vidpipe.adapters.cloudfront_signing import load_private_key
from vidpipe_cli.cdn_key import CdnKeyError, create_cdn_signing_key
from vidpipe_cli.main import main

REGION = "us-east-1"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def test_GIVEN_a_new_stack_WHEN_cdn_key_runs_THEN_the_secret_holds_a_matching_rsa_pair_the_template_can_read(
    secrets: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cdn-key", "--stack-name", "vidpipe-prod", "--region", REGION]) == 0

    stored = json.loads(secrets.get_secret_value(SecretId="vidpipe-prod/cdn-signing-key")["SecretString"])
    private_key = load_private_key(stored["private_key"])
    assert private_key.key_size == 2048  # what CloudFront accepts
    # The template's EncodedKey reads public_key: it must be the private key's own half, in PEM.
    assert stored["public_key"].startswith("-----BEGIN PUBLIC KEY-----\n")
    assert stored["public_key"].encode() == private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert "vidpipe-prod/cdn-signing-key" in capsys.readouterr().out


def test_GIVEN_a_stack_that_has_its_key_WHEN_cdn_key_runs_again_THEN_it_refuses_and_keeps_the_trusted_key(
    secrets: Any,
) -> None:
    create_cdn_signing_key(secrets, "vidpipe-prod")
    before = secrets.get_secret_value(SecretId="vidpipe-prod/cdn-signing-key")["SecretString"]

    with pytest.raises(CdnKeyError, match="already exists"):
        create_cdn_signing_key(secrets, "vidpipe-prod")

    assert secrets.get_secret_value(SecretId="vidpipe-prod/cdn-signing-key")["SecretString"] == before
    assert main(["cdn-key", "--stack-name", "vidpipe-prod", "--region", REGION]) == 1
