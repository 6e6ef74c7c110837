"""Authentication and ownership on the local stack: the HTTP API's authorizer
wants an API token, a caller sees only their own jobs, and output URLs work
only with their grant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.stack

SAMPLE = Path(__file__).resolve().parents[2] / "sample_media" / "tiny_160x90.mp4"


def as_user(local_stack, user: str) -> requests.Session:
    minted = local_stack.vidpipe("token", user, timeout=60)
    assert minted.returncode == 0, minted.stderr
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {minted.stdout.strip()}"
    return session


def create_job(session: requests.Session, api_url: str) -> str:
    created = session.post(f"{api_url}/uploads", timeout=30,
                           json={"filename": "a.mp4", "content_type": "video/mp4", "size": 1000})
    assert created.status_code == 201, created.text
    return str(created.json()["job_id"])


def test_the_api_refuses_calls_without_a_valid_token(local_stack) -> None:
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size": 1000}
    missing = requests.post(f"{local_stack.api_url}/uploads", json=body, timeout=30)
    forged = requests.post(f"{local_stack.api_url}/uploads", json=body, timeout=30,
                           headers={"Authorization": "Bearer vp1.local.not-the-right-signature"})
    assert missing.status_code == 401
    assert forged.status_code == 403
    # the web page itself is public: it asks for the token
    assert requests.get(f"{local_stack.api_url}/", timeout=30).status_code == 200


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
