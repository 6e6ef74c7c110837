"""Jobs: the caller's jobs, newest first; one job with its output URLs; a job's timeline."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from upload_api.domain_logic.job_view import job_view
from upload_api.routes.caller import API_TOKEN, caller, owned_job
from upload_api.routes.stores import jobs_store, output_urls, timeline
from vidpipe.adapters.secrets import signing_keys
from vidpipe.domain.access import OUTPUT_GRANTS, output_grant
from vidpipe.domain.errors import ValidationFailed
from vidpipe.domain.jobs import Job
from vidpipe.runtime.settings import get_settings

router = APIGatewayHttpRouter()


@router.get("/jobs", security=API_TOKEN)
def list_jobs() -> dict[str, Any]:
    params = router.current_event.query_string_parameters or {}
    try:
        limit = min(100, max(1, int(params.get("limit", "20"))))
    except ValueError as exc:
        raise ValidationFailed("limit must be a whole number") from exc
    owner = caller(router.current_event)
    jobs, next_token = jobs_store().list_recent(owner, limit=limit, next_token=params.get("next_token"))
    return {"jobs": [_view(job) for job in jobs], "next_token": next_token}


@router.get("/jobs/<job_id>", security=API_TOKEN)
def get_job(job_id: str) -> dict[str, Any]:
    return _view(owned_job(router.current_event, job_id))


@router.get("/jobs/<job_id>/events", security=API_TOKEN)
def get_job_events(job_id: str) -> dict[str, Any]:
    job = owned_job(router.current_event, job_id)
    entries = timeline().entries(job.job_id)
    return {"job_id": job.job_id, "status": job.status.value, "events": [entry.to_dict() for entry in entries]}


def _view(job: Job) -> dict[str, Any]:
    ttl = get_settings().output_url_ttl_s
    grant = output_grant(signing_keys(OUTPUT_GRANTS), job.job_id, ttl_s=ttl)
    return job_view(job, api_url=_api_url(), signer=output_urls(), url_ttl_s=ttl, grant=grant)


def _api_url() -> str:
    """The clients' base URL of this API: the configured one (local stack), or
    the execute-api domain the request came in on (AWS)."""
    configured = get_settings().public_api_url
    if configured:
        return configured.rstrip("/")
    return f"https://{router.current_event.request_context.domain_name}"
