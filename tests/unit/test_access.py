"""vidpipe.domain.access: API tokens (id, expiry, revocation), output grants, the
Authorization header and the per-purpose key sets. Anything forged, malformed,
expired, revoked or signed with a removed kid is refused with a reason."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from vidpipe.adapters import aws_clients
from vidpipe.adapters import secrets as secrets_module
from vidpipe.domain import access
from vidpipe.domain.access import (
    API_TOKENS,
    OUTPUT_GRANTS,
    WEBHOOK_SIGNING,
    IssuedToken,
    SigningKeys,
    TokenRefused,
    admit,
    bearer_token,
    grant_is_valid,
    mint_api_token,
    output_grant,
    read_api_token,
    unverified_claims,
)

KEY_1 = "k1-key-2f9c4e1a7b3d5f8e0a6c9d8e7f6a5b4c3d2e1f0a"
KEY_2 = "k2-key-0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b"
OTHER_KEY = "key-of-another-deployment-0123456789abcdef"
API_KEYS = SigningKeys(API_TOKENS, "k1", {"k1": KEY_1})
GRANT_KEYS = SigningKeys(OUTPUT_GRANTS, "k1", {"k1": KEY_1})
JOB_ID = "3f2b8c1e7d4a4e2b9c612a5d8e0f4b17"
NOW = 1_741_944_401.5
DAY = 86400
BASE64URL_MAC = re.compile(r"^[A-Za-z0-9_-]{43}$")  # SHA-256, base64url without padding


def as_query(grant: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in grant.split("&"))


def mint(keys: SigningKeys = API_KEYS, user: str = "alice", ttl_s: int = DAY) -> IssuedToken:
    return mint_api_token(keys, user, ttl_s=ttl_s, now=NOW)


def refusal(keys: SigningKeys, token: str, now: float = NOW) -> str:
    with pytest.raises(TokenRefused) as refused:
        read_api_token(keys, token, now=now)
    return refused.value.message


@dataclass
class FakeRevocations:
    revoked: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def is_revoked(self, token_id: str) -> bool:
        self.asked.append(token_id)
        return token_id in self.revoked


# ------------------------------------------------------------------ key sets


def test_GIVEN_the_secret_the_template_generates_WHEN_parsed_THEN_one_current_kid_with_its_key() -> None:
    # What GenerateSecretString makes of SecretStringTemplate {"current": "k1"} + GenerateStringKey k1.
    keys = SigningKeys.from_secret_string(API_TOKENS, json.dumps({"current": "k1", "k1": KEY_1}))

    assert keys == SigningKeys(API_TOKENS, "k1", {"k1": KEY_1})


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"k1": KEY_1}),
        json.dumps({"current": "k2", "k1": KEY_1}),
        json.dumps({"current": "k1", "k1": "short"}),
        json.dumps({"current": "k1", "k1": 12345}),
        json.dumps({"current": "k 1", "k 1": KEY_1}),
        json.dumps({"current": "k1", "k1": KEY_1, "bad kid": KEY_2}),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-current",
        "current-without-key",
        "short-key",
        "key-not-text",
        "kid-with-space",
        "other-bad-kid",
    ],
)
def test_GIVEN_a_malformed_key_set_WHEN_parsed_THEN_value_error_naming_the_purpose(text: str) -> None:
    with pytest.raises(ValueError, match=API_TOKENS):
        SigningKeys.from_secret_string(API_TOKENS, text)


# ------------------------------------------------------------------ API tokens


@pytest.mark.parametrize("user", ["alice", "bob", "user@example.com", "a.b-c_d", "x", "7" * 64, "alice.smith"])
def test_GIVEN_a_minted_token_WHEN_read_with_the_same_keys_THEN_its_user_id_and_expiry(user: str) -> None:
    issued = mint(user=user, ttl_s=3600)

    assert issued.token.startswith("vp2.k1.")
    assert BASE64URL_MAC.match(issued.token.rpartition(".")[2])
    assert issued.claims.user == user and issued.claims.expires_at == int(NOW + 3600)
    assert read_api_token(API_KEYS, issued.token, now=NOW) == issued.claims


def test_GIVEN_a_user_WHEN_minted_twice_THEN_two_tokens_with_their_own_ids() -> None:
    first, second = mint(), mint()

    assert first.token != second.token
    assert first.claims.token_id != second.claims.token_id
    assert len(first.claims.token_id) >= 16


def test_GIVEN_a_token_WHEN_read_before_and_after_its_expiry_THEN_valid_then_refused() -> None:
    issued = mint(ttl_s=3600)

    assert read_api_token(API_KEYS, issued.token, now=NOW + 3599).user == "alice"
    assert "expired" in refusal(API_KEYS, issued.token, now=NOW + 3600)
    assert "expired" in refusal(API_KEYS, issued.token, now=NOW + 400 * DAY)


def test_GIVEN_a_token_minted_now_WHEN_read_without_a_clock_THEN_valid() -> None:
    token = mint_api_token(API_KEYS, "alice", ttl_s=60).token

    assert read_api_token(API_KEYS, token).user == "alice"


@pytest.mark.parametrize("ttl_s", [0, -1, access.MAX_TOKEN_TTL_S + 1])
def test_GIVEN_a_lifetime_out_of_bounds_WHEN_minting_THEN_value_error(ttl_s: int) -> None:
    with pytest.raises(ValueError, match="lives between"):
        mint(ttl_s=ttl_s)


def test_GIVEN_a_token_of_another_deployment_WHEN_read_THEN_refused() -> None:
    token = mint(SigningKeys(API_TOKENS, "k1", {"k1": OTHER_KEY})).token

    assert "signature" in refusal(API_KEYS, token)


def test_GIVEN_a_token_naming_a_kid_we_do_not_have_WHEN_read_THEN_refused() -> None:
    token = mint(SigningKeys(API_TOKENS, "k9", {"k9": KEY_1})).token

    assert "signature" in refusal(API_KEYS, token)


def test_GIVEN_keys_of_another_purpose_WHEN_minting_or_reading_a_token_THEN_refused() -> None:
    # The same key bytes under another purpose sign another message: a grant key
    # set pasted into the api-tokens secret by mistake mints nothing the API accepts.
    with pytest.raises(ValueError, match="api-tokens"):
        mint(GRANT_KEYS)
    token = mint().token

    assert "signature" in refusal(SigningKeys(OUTPUT_GRANTS, "k1", {"k1": KEY_1}), token)


def test_GIVEN_a_rotation_WHEN_tokens_of_the_old_and_new_kid_are_read_THEN_both_valid_until_the_old_kid_goes() -> None:
    old_token = mint(SigningKeys(API_TOKENS, "k1", {"k1": KEY_1})).token
    rotated = SigningKeys(API_TOKENS, "k2", {"k1": KEY_1, "k2": KEY_2})
    new_token = mint(rotated).token
    removed = SigningKeys(API_TOKENS, "k2", {"k2": KEY_2})

    assert new_token.startswith("vp2.k2.")
    assert read_api_token(rotated, old_token, now=NOW).user == "alice"
    assert read_api_token(rotated, new_token, now=NOW).user == "alice"
    assert read_api_token(removed, new_token, now=NOW).user == "alice"
    assert "signature" in refusal(removed, old_token)


def _claims_part(**claims: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


def test_GIVEN_a_token_whose_claims_were_changed_WHEN_read_THEN_refused() -> None:
    prefix, kid, _, mac = mint(ttl_s=60).token.split(".")
    longer = _claims_part(sub="alice", jti=mint().claims.token_id, exp=int(NOW + 400 * DAY))
    other_user = _claims_part(sub="bob", jti=mint().claims.token_id, exp=int(NOW + 60))

    assert "signature" in refusal(API_KEYS, f"{prefix}.{kid}.{longer}.{mac}")
    assert "signature" in refusal(API_KEYS, f"{prefix}.{kid}.{other_user}.{mac}")
    # ... and a token moved to another kid of the same key set
    two_kids = SigningKeys(API_TOKENS, "k1", {"k1": KEY_1, "k2": KEY_1})
    assert "signature" in refusal(two_kids, f"{prefix}.k2.{mint().token.split('.')[2]}.{mac}")


def test_GIVEN_an_old_format_token_WHEN_read_THEN_refused_with_a_reason_saying_to_mint_a_new_one() -> None:
    # vp1.<user>.<mac>: what every deployment minted before tokens had an id and an expiry.
    message = refusal(API_KEYS, "vp1.alice.MlYkG2Nd4CD5Xa8T1m3ffTyY1V6MSbXQb0jHcX7nFqE")

    assert "old-format" in message and "vidpipe token" in message


def _alices() -> str:
    return mint().token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "vp2",
        "vp2.",
        "vp2.k1",
        "vp2.k1.",
        "vp2.k1..",
        "vp2.k1...",
        _alices().replace("vp2.", "VP2."),
        _alices().replace("vp2.", "vp3."),
        _alices() + "x",
        _alices()[:-1],
        _alices() + "=",
        _alices() + ".extra",
        _alices() + " ",
        " " + _alices(),
        "Bearer " + _alices(),
        "vp2.k1.é" + _alices().split(".", 2)[2][1:],
        "vp2.k1.\x00.\x00",
        "vp2.k1.{}.mac".format(_claims_part(sub="alice", jti="short", exp=int(NOW + 60))),
        "vp2.k1.{}.mac".format(_claims_part(sub="al ice", jti="a" * 16, exp=int(NOW + 60))),
        "vp2.k1.{}.mac".format(_claims_part(sub="alice", jti="a" * 16, exp="tomorrow")),
        "vp2.k1.{}.mac".format(_claims_part(sub="alice", jti="a" * 16, exp=True)),
        "vp2.k1.{}.mac".format(_claims_part(sub="alice", jti="a" * 16)),
        "vp2.k1.{}.mac".format(base64.urlsafe_b64encode(b"[1, 2]").decode()),
        "vp2.k1.{}.mac".format(base64.urlsafe_b64encode(b"not json").decode()),
    ],
    ids=[
        "empty",
        "prefix-only",
        "prefix-dot",
        "no-claims",
        "empty-claims",
        "empty-claims-and-mac",
        "five-parts",
        "prefix-case",
        "other-version",
        "mac-longer",
        "mac-shorter",
        "mac-padded",
        "trailing-part",
        "trailing-space",
        "leading-space",
        "whole-header",
        "non-ascii-claims",
        "nul",
        "short-id",
        "space-in-user",
        "expiry-not-a-number",
        "expiry-a-boolean",
        "no-expiry",
        "claims-not-an-object",
        "claims-not-json",
    ],
)
def test_GIVEN_a_malformed_or_forged_token_WHEN_read_THEN_refused_with_a_reason_and_nothing_else(token: str) -> None:
    assert refusal(API_KEYS, token)


def test_GIVEN_a_genuine_token_WHEN_admitted_THEN_the_revocation_list_is_asked_and_its_claims_given() -> None:
    issued = mint()
    revocations = FakeRevocations()

    assert admit(API_KEYS, issued.token, revocations=revocations, now=NOW) == issued.claims
    assert revocations.asked == [issued.claims.token_id]


def test_GIVEN_a_revoked_token_WHEN_admitted_THEN_refused_while_another_token_of_the_same_user_still_works() -> None:
    revoked, kept = mint(), mint()
    revocations = FakeRevocations(revoked={revoked.claims.token_id})

    with pytest.raises(TokenRefused, match="revoked"):
        admit(API_KEYS, revoked.token, revocations=revocations, now=NOW)
    assert admit(API_KEYS, kept.token, revocations=revocations, now=NOW).user == "alice"


def test_GIVEN_a_forged_token_WHEN_admitted_THEN_refused_without_reading_the_revocation_list() -> None:
    revocations = FakeRevocations()

    with pytest.raises(TokenRefused):
        admit(API_KEYS, mint().token[:-2] + "xx", revocations=revocations, now=NOW)
    assert revocations.asked == []


def test_GIVEN_a_token_WHEN_its_unverified_claims_are_read_THEN_its_id_and_expiry_without_a_key() -> None:
    issued = mint()

    assert unverified_claims(issued.token) == issued.claims


@pytest.mark.parametrize(
    "user",
    ["", "a" * 65, "alice bob", "alice/bob", "alice:x", "alice\n", "\nalice", "ålice", "alice\x00", "al\tice"],
    ids=[
        "empty",
        "too-long",
        "space",
        "slash",
        "colon",
        "trailing-newline",
        "leading-newline",
        "non-ascii",
        "nul",
        "tab",
    ],
)
def test_GIVEN_a_user_name_we_do_not_accept_WHEN_minting_THEN_value_error(user: str) -> None:
    with pytest.raises(ValueError, match="user name"):
        mint(user=user)


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
    headers = {"Authorization": f"Bearer {mint(user='alice').token}"}

    assert read_api_token(API_KEYS, bearer_token(headers), now=NOW).user == "alice"


# ------------------------------------------------------------------ output grants


def test_GIVEN_a_grant_WHEN_minted_THEN_a_query_string_with_its_expiry_its_kid_and_a_mac() -> None:
    grant = output_grant(GRANT_KEYS, JOB_ID, ttl_s=600, now=NOW)

    query = as_query(grant)
    assert list(query) == ["expires", "kid", "grant"]
    assert query["expires"] == str(int(NOW + 600)) and query["kid"] == "k1"
    assert BASE64URL_MAC.match(query["grant"])
    assert output_grant(GRANT_KEYS, JOB_ID, ttl_s=600, now=NOW) == grant


def test_GIVEN_a_fresh_grant_WHEN_checked_for_its_job_THEN_valid_until_it_expires() -> None:
    query = as_query(output_grant(GRANT_KEYS, JOB_ID, ttl_s=600, now=NOW))
    expires = int(query["expires"])

    assert grant_is_valid(GRANT_KEYS, JOB_ID, query, now=NOW)
    assert grant_is_valid(GRANT_KEYS, JOB_ID, query, now=expires)
    assert not grant_is_valid(GRANT_KEYS, JOB_ID, query, now=expires + 1)
    assert not grant_is_valid(GRANT_KEYS, JOB_ID, query, now=NOW + 3600)


def test_GIVEN_a_grant_minted_now_WHEN_checked_without_a_clock_THEN_valid() -> None:
    assert grant_is_valid(GRANT_KEYS, JOB_ID, as_query(output_grant(GRANT_KEYS, JOB_ID, ttl_s=60)))


def test_GIVEN_a_grant_minted_in_the_past_WHEN_checked_now_THEN_expired() -> None:
    query = as_query(output_grant(GRANT_KEYS, JOB_ID, ttl_s=600, now=NOW))

    assert not grant_is_valid(GRANT_KEYS, JOB_ID, query)


def test_GIVEN_a_grant_key_rotation_WHEN_grants_of_both_kids_are_checked_THEN_valid_until_the_old_kid_is_removed() -> (
    None
):
    old = as_query(output_grant(GRANT_KEYS, JOB_ID, ttl_s=600, now=NOW))
    rotated = SigningKeys(OUTPUT_GRANTS, "k2", {"k1": KEY_1, "k2": KEY_2})
    new = as_query(output_grant(rotated, JOB_ID, ttl_s=600, now=NOW))
    removed = SigningKeys(OUTPUT_GRANTS, "k2", {"k2": KEY_2})

    assert new["kid"] == "k2"
    assert grant_is_valid(rotated, JOB_ID, old, now=NOW) and grant_is_valid(rotated, JOB_ID, new, now=NOW)
    assert grant_is_valid(removed, JOB_ID, new, now=NOW)
    assert not grant_is_valid(removed, JOB_ID, old, now=NOW)


def _valid() -> dict[str, str]:
    return as_query(output_grant(GRANT_KEYS, JOB_ID, ttl_s=600, now=NOW))


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
        {**_valid(), "kid": "k2"},
        {**_valid(), "kid": ""},
        {"expires": _valid()["expires"], "grant": _valid()["grant"]},
        {"expires": _valid()["expires"], "kid": "k1"},
        {"grant": _valid()["grant"], "kid": "k1"},
        as_query(output_grant(GRANT_KEYS, "another-job", ttl_s=600, now=NOW)),
        as_query(output_grant(SigningKeys(OUTPUT_GRANTS, "k1", {"k1": OTHER_KEY}), JOB_ID, ttl_s=600, now=NOW)),
        {},
        None,
    ],
    ids=[
        "tampered-grant",
        "truncated-grant",
        "padded-grant",
        "empty-grant",
        "non-ascii-grant",
        "extended-expiry",
        "expiry-not-a-number",
        "empty-expiry",
        "expiry-in-exponent-form",
        "unknown-kid",
        "empty-kid",
        "no-kid-(old-format)",
        "no-grant",
        "no-expiry",
        "other-jobs-grant",
        "other-deployment",
        "empty-query",
        "no-query",
    ],
)
def test_GIVEN_a_forged_or_foreign_grant_WHEN_checked_THEN_invalid_without_raising(
    query: dict[str, str] | None,
) -> None:
    assert not grant_is_valid(GRANT_KEYS, JOB_ID, query, now=NOW)


def test_GIVEN_a_grant_checked_with_the_key_of_another_purpose_WHEN_the_bytes_are_the_same_THEN_invalid() -> None:
    # One key pasted into two purposes by mistake still does not make a grant out of a token's MAC or back.
    query = _valid()

    assert not grant_is_valid(SigningKeys(API_TOKENS, "k1", {"k1": KEY_1}), JOB_ID, query, now=NOW)
    assert not grant_is_valid(SigningKeys(WEBHOOK_SIGNING, "k1", {"k1": KEY_1}), JOB_ID, query, now=NOW)


def test_GIVEN_a_valid_grant_with_other_parameters_WHEN_checked_THEN_still_valid() -> None:
    # A player may add its own parameters (cache busters): they do not matter.
    assert grant_is_valid(GRANT_KEYS, JOB_ID, {**_valid(), "_HLS_msn": "3"}, now=NOW)


# ------------------------------------------------------------------ the key sets of a deployment


@dataclass
class FakeSecrets:
    calls: list[str] = field(default_factory=list)

    def get_secret_value(self, SecretId: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        self.calls.append(SecretId)
        return {
            "ARN": f"arn:aws:secretsmanager:us-east-1:111122223333:secret:{SecretId}-AbCdEf",
            "SecretString": json.dumps({"current": "k1", "k1": KEY_1 if "api" in SecretId else KEY_2}),
        }


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = FakeSecrets()
    monkeypatch.setattr(aws_clients, "secrets_client", lambda: fake)
    secrets_module.forget_signing_keys()
    yield fake
    secrets_module.forget_signing_keys()


def test_GIVEN_the_prefix_WHEN_each_purposes_keys_are_read_twice_THEN_each_secret_is_asked_once(
    secrets: FakeSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNING_KEYS_PREFIX", "vidpipe/keys/")

    first, second = secrets_module.signing_keys(API_TOKENS), secrets_module.signing_keys(API_TOKENS)
    grants = secrets_module.signing_keys(OUTPUT_GRANTS)

    assert first == second == SigningKeys(API_TOKENS, "k1", {"k1": KEY_1})
    assert grants == SigningKeys(OUTPUT_GRANTS, "k1", {"k1": KEY_2})
    assert secrets.calls == ["vidpipe/keys/api-tokens", "vidpipe/keys/output-grants"]


def test_GIVEN_cached_keys_WHEN_the_cache_time_has_passed_THEN_read_again_so_a_rotation_arrives(
    secrets: FakeSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNING_KEYS_PREFIX", "vidpipe/keys/")
    clock = [1000.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: clock[0])

    secrets_module.signing_keys(API_TOKENS)
    clock[0] += access.KEYS_CACHE_S - 1
    secrets_module.signing_keys(API_TOKENS)
    clock[0] += 2
    secrets_module.signing_keys(API_TOKENS)

    assert secrets.calls == ["vidpipe/keys/api-tokens"] * 2


def test_GIVEN_no_prefix_WHEN_keys_are_read_THEN_runtime_error_and_no_call(
    secrets: FakeSecrets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIGNING_KEYS_PREFIX", raising=False)

    with pytest.raises(RuntimeError, match="SIGNING_KEYS_PREFIX"):
        secrets_module.signing_keys(API_TOKENS)

    assert secrets.calls == []
