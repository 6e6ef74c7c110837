"""Who gets in: the authorizer (tokens, revocation, key rotation) and the API (the caller owns the job)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from tests.adapters.api.api_requests import (
    API_KEYS,
    EVENTS,
    GRANT_KEYS,
    JOB_ID,
    KEYS_PREFIX,
    MULTIPART_THRESHOLD,
    REGION,
    REVOKED_TABLE,
    WEBHOOK_KEYS,
    Aws,
    FakeLambdaContext,
    call_json,
    http_event,
    new_job,
    post_upload,
)
from vidpipe.adapters import secrets as secrets_module
from vidpipe.domain import access
from vidpipe.domain.access import API_TOKENS, SigningKeys, mint_api_token
from vidpipe.domain.jobs import JobStatus
from vidpipe_cli.tokens import revoke_token

# ------------------------------------------------------------------ authentication and ownership


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/uploads", {"filename": "a.mp4", "content_type": "video/mp4", "size": 10}),
        ("GET", "/jobs", None),
        ("GET", f"/jobs/{JOB_ID}", None),
        ("POST", f"/uploads/{JOB_ID}/parts", {"part_numbers": [1]}),
        ("GET", f"/uploads/{JOB_ID}/parts", None),
        ("POST", f"/uploads/{JOB_ID}/complete", {"parts": [{"part_number": 1, "etag": "abc"}]}),
        ("DELETE", f"/uploads/{JOB_ID}", None),
    ],
)
def test_GIVEN_a_request_without_authorizer_context_WHEN_handled_THEN_401_unauthenticated_and_nothing_changes(
    aws: Aws, method: str, path: str, body: Any
) -> None:
    # GIVEN alice's job exists, and a request API Gateway did not pass through the authorizer
    aws.jobs.create(new_job(JOB_ID))

    status, response = call_json(http_event(method, path, body=body, user=None))

    assert status == 401
    assert response["error"]["code"] == "UNAUTHENTICATED"
    assert "token" in response["error"]["message"]
    assert aws.job_count() == 1
    assert aws.jobs.get(JOB_ID).status is JobStatus.AWAITING_UPLOAD


@pytest.mark.parametrize("authorizer", [{}, {"lambda": None}, {"lambda": {}}, {"lambda": {"user": ""}}])
def test_GIVEN_an_authorizer_context_without_a_user_WHEN_posting_THEN_401_and_no_job(
    aws: Aws, authorizer: dict[str, Any]
) -> None:
    event = http_event("POST", "/uploads", body={"filename": "a.mp4", "content_type": "video/mp4", "size": 10})
    event["requestContext"]["authorizer"] = authorizer

    status, response = call_json(event)

    assert status == 401
    assert response["error"]["code"] == "UNAUTHENTICATED"
    assert aws.job_count() == 0


def multipart_upload() -> str:
    """Alice's job awaiting a multipart upload (3 parts of 8 MiB at most)."""
    status, created = post_upload(size=2 * MULTIPART_THRESHOLD)
    assert status == 201 and created["upload"]["method"] == "MULTIPART", created
    return str(created["job_id"])


def test_GIVEN_alices_job_WHEN_bob_reads_it_THEN_404_as_if_it_did_not_exist(aws: Aws) -> None:
    _, created = post_upload()

    bobs_status, bobs_view = call_json(http_event("GET", f"/jobs/{created['job_id']}", user="bob"))
    _, unknown = call_json(http_event("GET", "/jobs/unknown", user="bob"))
    alices_status, _ = call_json(http_event("GET", f"/jobs/{created['job_id']}"))

    assert bobs_status == 404
    assert bobs_view["error"]["code"] == "JOB_NOT_FOUND"
    # Nothing tells bob the job exists: the answer is the one for an unknown id.
    assert bobs_view["error"]["message"] == unknown["error"]["message"].replace("unknown", created["job_id"])
    assert alices_status == 200


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "/parts", {"part_numbers": [1, 2]}),
        ("GET", "/parts", None),
        ("POST", "/complete", {"parts": [{"part_number": n, "etag": "abc"} for n in (1, 2, 3)]}),
        ("DELETE", "", None),
    ],
    ids=["sign-parts", "list-parts", "complete", "cancel"],
)
def test_GIVEN_alices_multipart_upload_WHEN_bob_calls_its_routes_THEN_404_and_the_upload_is_untouched(
    aws: Aws, method: str, suffix: str, body: Any
) -> None:
    job_id = multipart_upload()

    status, response = call_json(http_event(method, f"/uploads/{job_id}{suffix}", body=body, user="bob"))

    assert status == 404
    assert response["error"]["code"] == "JOB_NOT_FOUND"
    assert "parts" not in response
    job = aws.jobs.get(job_id)
    assert job.status is JobStatus.AWAITING_UPLOAD
    assert job.version == 0
    # The multipart upload is still open: alice can go on with it.
    alices_status, parts = call_json(http_event("GET", f"/uploads/{job_id}/parts"))
    assert alices_status == 200
    assert parts["upload_id"] == job.upload["upload_id"]


def test_GIVEN_alices_multipart_upload_WHEN_alice_calls_its_routes_THEN_they_answer_her(aws: Aws) -> None:
    job_id = multipart_upload()

    signed_status, signed = call_json(http_event("POST", f"/uploads/{job_id}/parts", body={"part_numbers": [2]}))
    listed_status, listed = call_json(http_event("GET", f"/uploads/{job_id}/parts"))
    cancelled_status, cancelled = call_json(http_event("DELETE", f"/uploads/{job_id}"))

    assert signed_status == 200
    assert [part["part_number"] for part in signed["parts"]] == [2]
    assert listed_status == 200
    assert listed["parts"] == []
    assert cancelled_status == 200
    assert cancelled == {"job_id": job_id, "status": "FAILED"}


# ------------------------------------------------------------------ authorizer


def authorizer_event(headers: dict[str, str]) -> dict[str, Any]:
    """What API Gateway sends a REQUEST authorizer (payload 2.0) for the recorded request."""
    recorded: dict[str, Any] = json.loads((EVENTS / "http_api_post_uploads.json").read_text())
    recorded["requestContext"].pop("authorizer")
    authorization = headers.get("authorization")
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:eu-west-1:111122223333:k3x9q7wz2a/$default/POST/uploads",
        "identitySource": [authorization] if authorization else [],
        "routeKey": "$default",
        "rawPath": recorded["rawPath"],
        "rawQueryString": "",
        "headers": headers,
        "requestContext": recorded["requestContext"],
    }


def authorize(headers: dict[str, str]) -> dict[str, Any]:
    from upload_api.handlers.authorizer import lambda_handler

    answer: dict[str, Any] = lambda_handler(authorizer_event(headers), FakeLambdaContext())
    return answer


def test_GIVEN_a_requests_token_WHEN_authorized_THEN_alice_is_let_in_as_the_api_expects(aws: Aws) -> None:
    request = http_event("POST", "/uploads")

    answer = authorize(request["headers"])

    # The simple response: API Gateway hands its context to the API as
    # requestContext.authorizer.lambda, where the API reads the user.
    assert answer["isAuthorized"] is True
    assert answer["context"]["user"] == request["requestContext"]["authorizer"]["lambda"]["user"] == "alice"
    token = request["headers"]["authorization"].removeprefix("Bearer ")
    assert answer["context"]["token_id"] == access.unverified_claims(token).token_id


def test_GIVEN_a_request_let_in_by_the_oidc_jwt_authorizer_WHEN_it_creates_an_upload_THEN_the_subject_owns_the_job(
    aws: Aws,
) -> None:
    # With OidcIssuer set, API Gateway puts the JWT's claims where the Lambda authorizer's context was.
    event = http_event("POST", "/uploads", body={"filename": "a.mp4", "content_type": "video/mp4", "size": 1000})
    event["requestContext"]["authorizer"] = {
        "jwt": {"claims": {"sub": "0f3a9c2e-cognito-sub", "iss": "https://x"}, "scopes": None}
    }

    status, created = call_json(event)

    assert status == 201
    assert aws.jobs.get(created["job_id"]).owner == "0f3a9c2e-cognito-sub"


def _other_deployments_token() -> str:
    return mint_api_token(SigningKeys(API_TOKENS, "k1", {"k1": "another-deployments-key-0123456789ab"}), "alice").token


def _resigned_by(keys_of_purpose: SigningKeys) -> str:
    """alice's token MAC'd with another purpose's key bytes (as if one key served both)."""
    return mint_api_token(SigningKeys(API_TOKENS, "k1", keys_of_purpose.keys), "alice").token


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer vp2.k1.not.the-right-signature",
        "Basic YWxpY2U6cGFzc3dvcmQ=",
        f"Bearer {_other_deployments_token()}",
        f"Token {mint_api_token(API_KEYS, 'alice').token}",
        "Bearer " + mint_api_token(API_KEYS, "alice", ttl_s=60, now=time.time() - 61).token,
        f"Bearer {_resigned_by(GRANT_KEYS)}",
        f"Bearer {_resigned_by(WEBHOOK_KEYS)}",
        # The old format, of a deployment whose secret was this very api-tokens key: refused all the same.
        "Bearer vp1.alice.IeAohi6T3dYmyXjLnJIg1wssKV297lEsK41e45vLtSk",
        "Bearer vp2.k1.é",
    ],
    ids=[
        "empty",
        "no-token",
        "forged",
        "basic",
        "other-deployment",
        "other-scheme",
        "expired",
        "grant-key",
        "webhook-key",
        "old-format",
        "non-ascii",
    ],
)
def test_GIVEN_no_valid_token_WHEN_authorized_THEN_refused(aws: Aws, authorization: str) -> None:
    headers = {"content-type": "application/json"}
    if authorization:
        headers["authorization"] = authorization

    assert authorize(headers) == {"isAuthorized": False}


def test_GIVEN_a_users_token_WHEN_authorized_THEN_that_user_whatever_the_header_case(aws: Aws) -> None:
    issued = mint_api_token(API_KEYS, "bob")

    assert authorize({"Authorization": f"bearer {issued.token}"}) == {
        "isAuthorized": True,
        "context": {"user": "bob", "token_id": issued.claims.token_id},
    }


def test_GIVEN_a_token_revoked_by_id_WHEN_authorized_THEN_refused_and_the_users_other_token_still_works(
    aws: Aws,
) -> None:
    revoked, kept = mint_api_token(API_KEYS, "bob"), mint_api_token(API_KEYS, "bob")
    assert authorize({"authorization": f"Bearer {revoked.token}"})["isAuthorized"] is True

    revoke_token(aws.dynamodb, {"RevokedTokensTableName": REVOKED_TABLE}, revoked.claims.token_id)

    assert authorize({"authorization": f"Bearer {revoked.token}"}) == {"isAuthorized": False}
    assert authorize({"authorization": f"Bearer {kept.token}"})["isAuthorized"] is True


def test_GIVEN_a_rotated_api_key_WHEN_tokens_of_both_kids_are_authorized_THEN_both_in_until_the_old_kid_is_removed(
    aws: Aws,
) -> None:
    secrets = boto3.client("secretsmanager", region_name=REGION)
    old = mint_api_token(API_KEYS, "bob")
    second_key = "vidpipe-test-api-key-2-b7f5a0d2c8e6b4a196d0f2b8e4a1"
    rotated = SigningKeys(API_TOKENS, "k2", {**API_KEYS.keys, "k2": second_key})
    secrets.put_secret_value(
        SecretId=KEYS_PREFIX + API_TOKENS, SecretString=json.dumps({"current": "k2", **rotated.keys})
    )
    secrets_module.forget_signing_keys()  # what KEYS_CACHE_S seconds do in a running function
    new = mint_api_token(rotated, "bob")

    assert authorize({"authorization": f"Bearer {old.token}"})["isAuthorized"] is True
    assert authorize({"authorization": f"Bearer {new.token}"})["isAuthorized"] is True

    secrets.put_secret_value(
        SecretId=KEYS_PREFIX + API_TOKENS, SecretString=json.dumps({"current": "k2", "k2": rotated.keys["k2"]})
    )
    secrets_module.forget_signing_keys()

    assert authorize({"authorization": f"Bearer {old.token}"}) == {"isAuthorized": False}
    assert authorize({"authorization": f"Bearer {new.token}"})["isAuthorized"] is True
