"""Authentication and ownership on the local stack: the HTTP API's authorizer
wants an API token that has neither expired nor been revoked, a caller sees
only their own jobs, and output URLs work only with their grant."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from vidpipe.domain.access import unverified_claims

pytestmark = pytest.mark.stack
# The local stack deploys AuthorizerCacheSeconds=5 (vidpipe_cli.local_stack):
# a revoked or expired token may get in for that long after the fact, no longer.
AUTHORIZER_CACHE_S = 5

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "tiny_160x90.mp4"


def as_user(local_stack, user: str, *extra: str) -> requests.Session:
    minted = local_stack.vidpipe("token", user, *extra, timeout=60)
    assert minted.returncode == 0, minted.stderr
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {minted.stdout.strip()}"
    return session


def token_id_of(session: requests.Session) -> str:
    return unverified_claims(session.headers["Authorization"].removeprefix("Bearer ")).token_id


def seconds_until_refused(session: requests.Session, url: str, limit_s: float) -> float:
    """How long after now the API starts refusing ``session`` (403), polling every half second."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        status = session.get(url, timeout=30).status_code
        if status == 403:
            return time.monotonic() - started
        assert status == 200, status
        time.sleep(0.5)
    pytest.fail(f"still let in {limit_s:.0f} s later")


def create_job(session: requests.Session, api_url: str) -> str:
    created = session.post(
        f"{api_url}/uploads", timeout=30, json={"filename": "a.mp4", "content_type": "video/mp4", "size": 1000}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["job_id"])


def test_the_api_refuses_calls_without_a_valid_token(local_stack) -> None:
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size": 1000}
    missing = requests.post(f"{local_stack.api_url}/uploads", json=body, timeout=30)
    forged = requests.post(
        f"{local_stack.api_url}/uploads",
        json=body,
        timeout=30,
        headers={"Authorization": "Bearer vp2.k1.eyJzdWIiOiJsb2NhbCJ9.not-the-right-signature"},
    )
    assert missing.status_code == 401
    assert forged.status_code == 403
    # the web page itself is public: it asks for the token
    assert requests.get(f"{local_stack.api_url}/", timeout=30).status_code == 200


def test_a_revoked_token_is_refused_within_the_authorizer_cache_time_and_no_other_token_is(local_stack) -> None:
    revoked, kept = as_user(local_stack, "carol"), as_user(local_stack, "carol")
    jobs_url = f"{local_stack.api_url}/jobs"
    # Both in, so the authorizer's answer for each is cached now.
    assert revoked.get(jobs_url, timeout=30).status_code == kept.get(jobs_url, timeout=30).status_code == 200

    revocation = local_stack.vidpipe("token", "--revoke", token_id_of(revoked), timeout=60)
    assert revocation.returncode == 0, revocation.stderr

    assert seconds_until_refused(revoked, jobs_url, limit_s=AUTHORIZER_CACHE_S + 10) <= AUTHORIZER_CACHE_S + 2
    assert kept.get(jobs_url, timeout=30).status_code == 200


def test_a_token_is_refused_once_it_expires(local_stack) -> None:
    short_lived = as_user(local_stack, "dave", "--ttl", "4s")
    jobs_url = f"{local_stack.api_url}/jobs"
    assert short_lived.get(jobs_url, timeout=30).status_code == 200

    refused_after = seconds_until_refused(short_lived, jobs_url, limit_s=4 + AUTHORIZER_CACHE_S + 10)

    assert refused_after <= 4 + AUTHORIZER_CACHE_S + 2


def test_a_caller_sees_only_their_own_jobs(local_stack) -> None:
    alice, bob = as_user(local_stack, "alice"), as_user(local_stack, "bob")
    alices_job = create_job(alice, local_stack.api_url)
    # Bob cannot read, list, sign parts for or cancel Alice's job: to him it does not exist
    assert bob.get(f"{local_stack.api_url}/jobs/{alices_job}", timeout=30).status_code == 404
    assert alices_job not in {j["job_id"] for j in bob.get(f"{local_stack.api_url}/jobs", timeout=30).json()["jobs"]}
    assert bob.delete(f"{local_stack.api_url}/uploads/{alices_job}", timeout=30).status_code == 404
    # while Alice can
    assert alice.get(f"{local_stack.api_url}/jobs/{alices_job}", timeout=30).status_code == 200
    assert alices_job in {j["job_id"] for j in alice.get(f"{local_stack.api_url}/jobs", timeout=30).json()["jobs"]}


def test_output_urls_work_with_their_grant_only(local_stack) -> None:
    result = local_stack.vidpipe("submit", str(SAMPLE), "--wait", "--json", timeout=600)
    [job] = json.loads(result.stdout)
    assert job["status"] == "READY", job
    hls_url = job["outputs"]["hls_url"]
    # a plain GET with the grant works
    assert requests.get(hls_url, timeout=30).status_code == 200
    bare = hls_url.split("?")[0]
    assert requests.get(bare, timeout=30).status_code == 401
    tampered = hls_url.replace("grant=", "grant=x")
    assert requests.get(tampered, timeout=30).status_code == 401
    # and the grant of one job opens no other job's outputs
    other = create_job(local_stack.http, local_stack.api_url)
    assert requests.get(hls_url.replace(job["job_id"], other), timeout=30).status_code == 401
