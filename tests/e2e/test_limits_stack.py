"""Per-owner limits on the local stack, over real HTTP through the HTTP API:
an owner over their active jobs, or over the day's bytes, gets 429 with a
Retry-After header and a JSON reason; a cancelled upload frees its slot.

The session's stack is shared, so each test uses an owner of its own and the
session's limits (30 active jobs, see tests/conftest.py; the template's 100 GiB
a day): no stack of its own with other parameters is needed."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

pytestmark = pytest.mark.stack

GiB = 1024**3
SESSION_ACTIVE_JOBS = 30  # MaxActiveJobsPerOwner in tests/conftest.py


def fresh_owner(local_stack) -> requests.Session:
    minted = local_stack.vidpipe("token", f"limits-{uuid.uuid4().hex[:8]}", timeout=60)
    assert minted.returncode == 0, minted.stderr
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {minted.stdout.strip()}"
    return session


def post_upload(session: requests.Session, api_url: str, size: int = 1000) -> requests.Response:
    return session.post(
        f"{api_url}/uploads", timeout=60, json={"filename": "a.mp4", "content_type": "video/mp4", "size": size}
    )


def test_an_owner_over_their_active_jobs_gets_429_with_retry_after_until_one_ends(local_stack) -> None:
    owner = fresh_owner(local_stack)
    job_ids = []
    for _ in range(SESSION_ACTIVE_JOBS):
        created = post_upload(owner, local_stack.api_url)
        assert created.status_code == 201, created.text
        job_ids.append(created.json()["job_id"])

    refused = post_upload(owner, local_stack.api_url)

    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == "30"
    error = refused.json()["error"]
    assert (error["code"], error["limit"]) == ("QUOTA_EXCEEDED", "active_jobs")
    assert f"{SESSION_ACTIVE_JOBS} jobs in progress" in error["message"]
    # Another owner is not held back.
    assert post_upload(fresh_owner(local_stack), local_stack.api_url).status_code == 201
    # Cancelling one upload frees its slot.
    assert owner.delete(f"{local_stack.api_url}/uploads/{job_ids[0]}", timeout=60).status_code == 200
    assert post_upload(owner, local_stack.api_url).status_code == 201


def test_an_owner_over_the_days_bytes_gets_429_with_retry_after_until_midnight_utc(local_stack) -> None:
    owner = fresh_owner(local_stack)
    # Declared sizes are charged at once: twelve 8 GiB uploads (the largest one
    # upload may be) and one of 4 GiB fill the day's 100 GiB.
    for size in [8 * GiB] * 12 + [4 * GiB]:
        created = post_upload(owner, local_stack.api_url, size=size)
        assert created.status_code == 201, created.text

    asked_at = time.time()
    refused = post_upload(owner, local_stack.api_url, size=1000)

    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["limit"]) == ("QUOTA_EXCEEDED", "upload_bytes_per_day")
    seconds_to_midnight = 86400 - int(asked_at) % 86400
    assert abs(int(refused.headers["Retry-After"]) - seconds_to_midnight) <= 60
