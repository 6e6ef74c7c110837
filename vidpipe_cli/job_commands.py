"""`vidpipe list`, `vidpipe delete`, `vidpipe cancel`: the caller's jobs through the HTTP API.

Each takes the API client main.py builds (the local stack's, or --api-url's)
and prints lines for a person, or with ``as_json`` one JSON document."""

from __future__ import annotations

import json
from typing import Any

from vidpipe_cli.api_client import ApiError, VidpipeClient

# GET /jobs answers at most this many jobs a page.
PAGE_SIZE = 100


def list_jobs(client: VidpipeClient, *, limit: int, as_json: bool) -> int:
    """The newest ``limit`` jobs, following the API's pages."""
    jobs: list[dict[str, Any]] = []
    next_token: str | None = None
    while len(jobs) < limit:
        page = client.list_jobs(limit=min(PAGE_SIZE, limit - len(jobs)), next_token=next_token)
        jobs += page["jobs"]
        next_token = page.get("next_token")
        if not next_token:
            break
    if as_json:
        print(json.dumps({"jobs": jobs}, indent=2))
        return 0
    if not jobs:
        print("no jobs yet")
    for job in jobs:
        print(job_line(job))
    return 0


def job_line(job: dict[str, Any]) -> str:
    """One job on one line: id, status, when, duration and size, title or file name."""
    source = job.get("source") or {}
    duration = f"{source['duration_s']:.1f} s" if source.get("duration_s") else "-"
    picture = f"{source['width']}x{source['height']}" if source.get("width") else "-"
    name = job.get("title") or source.get("filename", "")
    return f"{job['job_id']}  {job['status']:<15} {job['created_at']}  {duration:>9}  {picture:>9}  {name}"


def delete_jobs(client: VidpipeClient, job_ids: list[str], *, as_json: bool) -> int:
    """Delete each job; a job that is not there (already deleted, or never
    was) is reported and makes the exit status 1, the others still go."""
    results: list[dict[str, Any]] = []
    for job_id in job_ids:
        try:
            client.delete_job(job_id)
            results.append({"job_id": job_id, "deleted": True})
        except ApiError as exc:
            if exc.status != 404:
                raise
            results.append({"job_id": job_id, "deleted": False, "error": {"code": exc.code, "message": exc.message}})
    if as_json:
        print(json.dumps({"results": results}, indent=2))
    else:
        for result in results:
            verdict = "deleted" if result["deleted"] else f"not deleted: {result['error']['message']}"
            print(f"{result['job_id']}: {verdict}")
    return 0 if all(result["deleted"] for result in results) else 1


def cancel_upload(client: VidpipeClient, job_id: str, *, as_json: bool) -> int:
    """Cancel a job whose upload has not arrived (DELETE /uploads/{id}): it ends FAILED UPLOAD_CANCELLED.
    A job already under way cannot be cancelled (409): delete it instead."""
    answer = client.cancel_upload(job_id)
    print(json.dumps(answer, indent=2) if as_json else f"{answer['job_id']}: {answer['status']} (upload cancelled)")
    return 0
