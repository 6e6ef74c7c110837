"""The revocation list (DynamoTokenRevocations) and `vidpipe token` against a
stack "deployed on AWS" (moto): outputs read with the caller's credentials,
the api-tokens key set read from Secrets Manager, revocations written to the
table the authorizer reads."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.moto_resources import REGION, create_revoked_tokens_table, use_fake_credentials
from vidpipe.adapters.token_revocations import DynamoTokenRevocations
from vidpipe.domain.access import API_TOKENS, MAX_TOKEN_TTL_S, SigningKeys, mint_api_token, read_api_token
from vidpipe.domain.errors import JobStoreError
from vidpipe_cli.main import main
from vidpipe_cli.tokens import TokenCommandError, revoke_token, stack_outputs

TABLE = "vidpipe-prod-RevokedTokensTable-1X2Y3Z"
STACK = "vidpipe-prod"
API_KEYS = SigningKeys(API_TOKENS, "k1", {"k1": "prod-api-key-7d1e4b9a2c6f0e8d3b5a7c9e1f2d4b6a"})


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    use_fake_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_revoked_tokens_table(client, TABLE)
        yield client


def item_of(dynamodb: Any, token_id: str) -> dict[str, Any]:
    return dynamodb.get_item(TableName=TABLE, Key={"token_id": {"S": token_id}}, ConsistentRead=True).get("Item", {})


def test_GIVEN_a_revoked_token_id_WHEN_asked_THEN_revoked_and_other_ids_are_not(dynamodb: Any) -> None:
    revocations = DynamoTokenRevocations(dynamodb, TABLE)

    revocations.revoke("tok-revoked-0001", until=2_000_000_000)

    assert revocations.is_revoked("tok-revoked-0001")
    assert not revocations.is_revoked("tok-still-good-0002")


def test_GIVEN_the_table_WHEN_read_THEN_items_expire_by_the_ttl_attribute_set_to_the_tokens_expiry(
    dynamodb: Any,
) -> None:
    DynamoTokenRevocations(dynamodb, TABLE).revoke("tok-revoked-0001", until=2_000_000_000)

    ttl = dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expires_at"
    assert item_of(dynamodb, "tok-revoked-0001")["expires_at"] == {"N": "2000000000"}


def test_GIVEN_a_token_revoked_twice_WHEN_read_THEN_one_item_keeping_the_first_expiry(dynamodb: Any) -> None:
    revocations = DynamoTokenRevocations(dynamodb, TABLE)

    revocations.revoke("tok-revoked-0001", until=2_000_000_000)
    revocations.revoke("tok-revoked-0001", until=1_900_000_000)

    assert item_of(dynamodb, "tok-revoked-0001")["expires_at"] == {"N": "2000000000"}
    assert dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"] == 1


def test_GIVEN_a_missing_table_WHEN_asked_THEN_job_store_error_not_a_yes_or_no(dynamodb: Any) -> None:
    # The authorizer lets this propagate: a list it cannot read must not let a revoked token in.
    with pytest.raises(JobStoreError, match="revocation"):
        DynamoTokenRevocations(dynamodb, "no-such-table").is_revoked("tok-revoked-0001")


def test_GIVEN_a_whole_token_WHEN_revoked_THEN_kept_until_its_expiry_and_by_id_until_the_longest_lifetime(
    dynamodb: Any,
) -> None:
    outputs = {"RevokedTokensTableName": TABLE}
    issued = mint_api_token(API_KEYS, "alice", ttl_s=3600)
    by_id = mint_api_token(API_KEYS, "bob", ttl_s=3600)

    assert revoke_token(dynamodb, outputs, issued.token) == (issued.claims.token_id, issued.claims.expires_at)
    token_id, until = revoke_token(dynamodb, outputs, by_id.claims.token_id, now=1_000)

    assert (token_id, until) == (by_id.claims.token_id, 1_000 + MAX_TOKEN_TTL_S)
    assert DynamoTokenRevocations(dynamodb, TABLE).is_revoked(issued.claims.token_id)


@pytest.mark.parametrize("given", ["", "short", "vp1.alice.mac", "a b c d e f g h", "vp2.k1.bad.mac"])
def test_GIVEN_something_that_is_no_token_or_id_WHEN_revoked_THEN_a_reason_and_nothing_written(
    dynamodb: Any, given: str
) -> None:
    with pytest.raises(TokenCommandError):
        revoke_token(dynamodb, {"RevokedTokensTableName": TABLE}, given)

    assert dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"] == 0


# ------------------------------------------------------------------ `vidpipe token --stack` on "AWS"


class FakeCloudFormation:
    """describe_stacks of one stack. (moto's CloudFormation needs
    openapi_spec_validator, which the project does not install.)"""

    def __init__(self, stacks: dict[str, dict[str, str]]) -> None:
        self.stacks = stacks

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        if StackName not in self.stacks:
            raise ClientError(
                {"Error": {"Code": "ValidationError", "Message": f"Stack with id {StackName} does not exist"}},
                "DescribeStacks",
            )
        outputs = [{"OutputKey": key, "OutputValue": value} for key, value in self.stacks[StackName].items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}


OUR_OUTPUTS = {"SigningKeysPrefix": f"{STACK}/keys/", "RevokedTokensTableName": TABLE, "ApiUrl": "https://x/"}


@pytest.fixture
def deployed(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A stack with the outputs of ours, and its api-tokens key set; the command
    line's boto3 session gets the fake CloudFormation, moto for the rest."""
    cloudformation = FakeCloudFormation({STACK: OUR_OUTPUTS})
    real_client = boto3.Session.client

    def client(self: boto3.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        return cloudformation if service == "cloudformation" else real_client(self, service, *args, **kwargs)

    monkeypatch.setattr(boto3.Session, "client", client)
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"{STACK}/keys/api-tokens", SecretString=json.dumps({"current": "k1", **API_KEYS.keys})
    )
    return dynamodb


def test_GIVEN_a_deployed_stack_WHEN_a_token_is_minted_with_the_callers_credentials_THEN_it_verifies_with_its_keys(
    deployed: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "alice", "--ttl", "2h", "--stack", STACK, "--region", REGION]) == 0

    printed = capsys.readouterr()
    claims = read_api_token(API_KEYS, printed.out.strip())
    assert claims.user == "alice"
    assert 2 * 3600 - 60 <= claims.expires_at - time.time() <= 2 * 3600
    # The id, for a later --revoke, goes to stderr (stdout is the token alone, for scripts).
    assert f"vidpipe token --revoke={claims.token_id}" in printed.err


def test_GIVEN_a_deployed_stack_WHEN_a_token_is_revoked_by_id_THEN_the_authorizers_table_lists_it(
    deployed: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = mint_api_token(API_KEYS, "alice")

    # The printed form: a token id may start with "-".
    assert main(["token", f"--revoke={issued.claims.token_id}", "--stack", STACK, "--region", REGION]) == 0

    assert f"revoked token {issued.claims.token_id}" in capsys.readouterr().out
    assert DynamoTokenRevocations(deployed, TABLE).is_revoked(issued.claims.token_id)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["token", "--stack", STACK], "give a USER"),
        (["token", "alice", "--revoke", "tok-revoked-0001", "--stack", STACK], "give a USER"),
        (["token", "alice", "--ttl", "forever", "--stack", STACK], "--ttl"),
        (["token", "alice", "--ttl", "400d", "--stack", STACK], "--ttl"),
        (["token", "alice", "--ttl", "0", "--stack", STACK], "--ttl"),
        (["token", "al ice", "--stack", STACK], "user name"),
        (["token", "alice", "--stack", "not-deployed"], "cannot read stack not-deployed"),
    ],
)
def test_GIVEN_a_request_we_cannot_serve_WHEN_run_THEN_exit_1_with_the_reason(
    deployed: Any, capsys: pytest.CaptureFixture[str], argv: list[str], reason: str
) -> None:
    assert main([*argv, "--region", REGION]) == 1

    assert reason in capsys.readouterr().err


def test_GIVEN_a_stack_without_our_outputs_WHEN_read_THEN_a_reason_naming_them() -> None:
    cloudformation = FakeCloudFormation({"someone-else": {"QueueUrl": "https://sqs/q"}})

    with pytest.raises(TokenCommandError, match="RevokedTokensTableName, SigningKeysPrefix"):
        stack_outputs(cloudformation, "someone-else")
