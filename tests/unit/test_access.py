"""vidpipe.access: API tokens, output grants, the Authorization header and the
deployment secret. Anything forged, malformed or expired is refused without
raising."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from vidpipe import access, aws_clients
from vidpipe.access import bearer_token, grant_is_valid, mint_api_token, output_grant, user_of_token

SECRET = "test-secret-2f9c4e1a7b3d5f8e0a6c"
OTHER_SECRET = "test-secret-of-another-deployment"
JOB_ID = "3f2b8c1e7d4a4e2b9c612a5d8e0f4b17"
NOW = 1_741_944_401.5
BASE64URL_MAC = re.compile(r"^[A-Za-z0-9_-]{43}$")  # SHA-256, base64url without padding


def as_query(grant: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in grant.split("&"))


# ------------------------------------------------------------------ API tokens


@pytest.mark.parametrize("user", ["alice", "bob", "user@example.com", "a.b-c_d", "x", "7" * 64, "alice.smith"])
def test_GIVEN_a_minted_token_WHEN_checked_with_the_same_secret_THEN_it_names_its_user(user: str) -> None:
    token = mint_api_token(SECRET, user)

    assert token.startswith(f"vp1.{user}.")
    assert BASE64URL_MAC.match(token.rpartition(".")[2])
    assert user_of_token(SECRET, token) == user


def test_GIVEN_a_user_WHEN_minted_twice_THEN_the_same_token_and_another_users_differs() -> None:
    assert mint_api_token(SECRET, "alice") == mint_api_token(SECRET, "alice")
    assert mint_api_token(SECRET, "alice").rpartition(".")[2] != mint_api_token(SECRET, "bob").rpartition(".")[2]
    assert mint_api_token(SECRET, "alice") != mint_api_token(OTHER_SECRET, "alice")


def test_GIVEN_a_token_of_another_deployment_WHEN_checked_THEN_none() -> None:
    token = mint_api_token(OTHER_SECRET, "alice")

    assert user_of_token(SECRET, token) is None


def _alices_mac() -> str:
    return mint_api_token(SECRET, "alice").rpartition(".")[2]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "vp1",
        "vp1.",
        "vp1.alice",
        "vp1.alice.",
        f"vp1..{_alices_mac()}",
        f"alice.{_alices_mac()}",
        f"vp2.alice.{_alices_mac()}",
        f"VP1.alice.{_alices_mac()}",
        f"vp1.bob.{_alices_mac()}",
        f"vp1.Alice.{_alices_mac()}",
        f"vp1.alice.{_alices_mac()}x",
        f"vp1.alice.{_alices_mac()[:-1]}",
        f"vp1.alice.{_alices_mac()}=",
        f"vp1.alice.{_alices_mac()}.extra",
        f"vp1.alice.{_alices_mac()} ",
        f"vp1.alice\n.{_alices_mac()}",
        f"vp1.al ice.{_alices_mac()}",
        f"vp1.{'a' * 65}.{_alices_mac()}",
        "vp1.alice.é" + _alices_mac()[1:],
        "vp1.alice.\x00",
        "Bearer " + mint_api_token(SECRET, "alice"),
    ],
    ids=[
        "empty", "prefix-only", "prefix-dot", "no-mac", "empty-mac", "no-user", "no-prefix", "other-version",
        "prefix-case", "other-user", "user-case", "mac-longer", "mac-shorter", "mac-padded", "trailing-part",
        "trailing-space", "newline-in-user", "space-in-user", "user-too-long", "non-ascii-mac", "nul-mac",
        "whole-header",
    ],
)
def test_GIVEN_a_malformed_or_forged_token_WHEN_checked_THEN_none_without_raising(token: str) -> None:
    assert user_of_token(SECRET, token) is None


@pytest.mark.parametrize(
    "user",
    ["", "a" * 65, "alice bob", "alice/bob", "alice:x", "alice\n", "\nalice", "ålice", "alice\x00", "al\tice"],
    ids=["empty", "too-long", "space", "slash", "colon", "trailing-newline", "leading-newline", "non-ascii",
         "nul", "tab"],
)
def test_GIVEN_a_user_name_we_do_not_accept_WHEN_minting_THEN_value_error(user: str) -> None:
    with pytest.raises(ValueError, match="user name"):
        mint_api_token(SECRET, user)


# ------------------------------------------------------------------ the Authorization header


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"Authorization": "Bearer vp1.alice.mac"}, "vp1.alice.mac"),
        ({"authorization": "Bearer vp1.alice.mac"}, "vp1.alice.mac"),
        ({"AUTHORIZATION": "bearer vp1.alice.mac"}, "vp1.alice.mac"),
        ({"aUtHoRiZaTiOn": "BeArEr vp1.alice.mac"}, "vp1.alice.mac"),
        ({"authorization": "Bearer   vp1.alice.mac  "}, "vp1.alice.mac"),
        ({"content-type": "application/json", "authorization": "Bearer t"}, "t"),
        ({"authorization": "Basic YWxpY2U6cGFzc3dvcmQ="}, ""),
        ({"authorization": "Token vp1.alice.mac"}, ""),
        ({"authorization": "Bearervp1.alice.mac"}, ""),
        ({"authorization": "Bearer"}, ""),
        ({"authorization": "vp1.alice.mac"}, ""),
        ({"authorization": ""}, ""),
        ({"x-authorization": "Bearer vp1.alice.mac"}, ""),
        ({}, ""),
        (None, ""),
    ],
)
def test_GIVEN_request_headers_WHEN_the_bearer_token_is_read_THEN_only_a_bearer_scheme_gives_one(
    headers: dict[str, str] | None, token: str
) -> None:
    assert bearer_token(headers) == token


def test_GIVEN_a_minted_token_in_a_header_WHEN_read_and_checked_THEN_its_user() -> None:
    headers = {"Authorization": f"Bearer {mint_api_token(SECRET, 'alice')}"}

    assert user_of_token(SECRET, bearer_token(headers)) == "alice"


# ------------------------------------------------------------------ output grants


def test_GIVEN_a_grant_WHEN_minted_THEN_it_is_a_query_string_with_its_expiry_and_a_mac() -> None:
    grant = output_grant(SECRET, JOB_ID, ttl_s=600, now=NOW)

    query = as_query(grant)
    assert list(query) == ["expires", "grant"]
    assert query["expires"] == str(int(NOW + 600))
    assert BASE64URL_MAC.match(query["grant"])
    assert output_grant(SECRET, JOB_ID, ttl_s=600, now=NOW) == grant


def test_GIVEN_a_fresh_grant_WHEN_checked_for_its_job_THEN_valid_until_it_expires() -> None:
    query = as_query(output_grant(SECRET, JOB_ID, ttl_s=600, now=NOW))
    expires = int(query["expires"])

    assert grant_is_valid(SECRET, JOB_ID, query, now=NOW)
    assert grant_is_valid(SECRET, JOB_ID, query, now=expires)
    assert not grant_is_valid(SECRET, JOB_ID, query, now=expires + 1)
    assert not grant_is_valid(SECRET, JOB_ID, query, now=NOW + 3600)


def test_GIVEN_a_grant_minted_now_WHEN_checked_without_a_clock_THEN_valid() -> None:
    assert grant_is_valid(SECRET, JOB_ID, as_query(output_grant(SECRET, JOB_ID, ttl_s=60)))


def test_GIVEN_a_grant_minted_in_the_past_WHEN_checked_now_THEN_expired() -> None:
    query = as_query(output_grant(SECRET, JOB_ID, ttl_s=600, now=NOW))

    assert not grant_is_valid(SECRET, JOB_ID, query)


def _valid() -> dict[str, str]:
    return as_query(output_grant(SECRET, JOB_ID, ttl_s=600, now=NOW))


def _flip_first(text: str) -> str:
    return ("A" if text[0] != "A" else "B") + text[1:]


@pytest.mark.parametrize(
    "query",
    [
        {**_valid(), "grant": _flip_first(_valid()["grant"])},
        {**_valid(), "grant": _valid()["grant"][:-1]},
        {**_valid(), "grant": _valid()["grant"] + "="},
        {**_valid(), "grant": ""},
        {**_valid(), "grant": "é" + _valid()["grant"][1:]},
        {**_valid(), "expires": str(int(_valid()["expires"]) + 1)},
        {**_valid(), "expires": "tomorrow"},
        {**_valid(), "expires": ""},
        {**_valid(), "expires": "1e12"},
        {"expires": _valid()["expires"]},
        {"grant": _valid()["grant"]},
        as_query(output_grant(SECRET, "another-job", ttl_s=600, now=NOW)),
        as_query(output_grant(OTHER_SECRET, JOB_ID, ttl_s=600, now=NOW)),
        {},
        None,
    ],
    ids=[
        "tampered-grant", "truncated-grant", "padded-grant", "empty-grant", "non-ascii-grant", "extended-expiry",
        "expiry-not-a-number", "empty-expiry", "expiry-in-exponent-form", "no-grant", "no-expiry",
        "other-jobs-grant", "other-secret", "empty-query", "no-query",
    ],
)
def test_GIVEN_a_forged_or_foreign_grant_WHEN_checked_THEN_invalid_without_raising(
    query: dict[str, str] | None,
) -> None:
    assert not grant_is_valid(SECRET, JOB_ID, query, now=NOW)


def test_GIVEN_a_valid_grant_with_other_parameters_WHEN_checked_THEN_still_valid() -> None:
    # A player may add its own parameters (cache busters): they do not matter.
    assert grant_is_valid(SECRET, JOB_ID, {**_valid(), "_HLS_msn": "3"}, now=NOW)


# ------------------------------------------------------------------ the deployment secret


@dataclass
class FakeSecrets:
    calls: list[str] = field(default_factory=list)

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        self.calls.append(SecretId)
        return {"ARN": f"arn:aws:secretsmanager:us-east-1:111122223333:secret:{SecretId}-AbCdEf",
                "SecretString": SECRET}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = FakeSecrets()
    monkeypatch.setattr(aws_clients, "secrets_client", lambda: fake)
    access.deployment_secret.cache_clear()
    yield fake
    access.deployment_secret.cache_clear()


def test_GIVEN_the_secret_id_WHEN_the_secret_is_read_twice_THEN_secrets_manager_is_asked_once(
    secrets: FakeSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_SECRET_ID", "vidpipe/api-secret")

    first, second = access.deployment_secret(), access.deployment_secret()

    assert first == second == SECRET
    assert secrets.calls == ["vidpipe/api-secret"]


def test_GIVEN_no_secret_id_WHEN_the_secret_is_read_THEN_runtime_error_and_no_call(
    secrets: FakeSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_SECRET_ID", raising=False)

    with pytest.raises(RuntimeError, match="API_SECRET_ID"):
        access.deployment_secret()

    assert secrets.calls == []
