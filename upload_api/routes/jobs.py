"""Jobs: the caller's jobs, newest first; one job with its output URLs; a job's
timeline; renaming a job; deleting it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, StrictStr

from upload_api.domain_logic.job_details import renamed
from upload_api.domain_logic.job_view import job_view
from upload_api.routes.caller import API_TOKEN, caller, owned_job
from upload_api.routes.stores import (
    jobs_store,
    output_urls,
    outputs_store,
    timeline,
    uploads_store,
    usage_store,
)
from upload_api.routes.timeline_record import record_on_timeline
from vidpipe.adapters.secrets import signing_keys
from vidpipe.domain.access import OUTPUT_GRANTS, output_grant
from vidpipe.domain.errors import ConcurrentUpdate, ValidationFailed
from vidpipe.domain.events import utc_now
from vidpipe.domain.job_deletion import delete_job
from vidpipe.domain.jobs import Job
from vidpipe.runtime.observability import logger
from vidpipe.runtime.settings import get_settings

router = APIGatewayHttpRouter()
# A rename races only the status function's few writes per job.
RENAME_ATTEMPTS = 3


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


class RenameBody(BaseModel):
    # null takes the title away; upload_api.domain_logic.job_details checks the rest.
    title: StrictStr | None = Field(max_length=200)


@router.patch("/jobs/<job_id>", security=API_TOKEN)
def patch_job(job_id: str, body: RenameBody) -> dict[str, Any]:
    """Rename the job (its title); 200 with the job as GET /jobs/{id} shows it."""
    store = jobs_store()
    job = owned_job(router.current_event, job_id)
    for attempt in range(1, RENAME_ATTEMPTS + 1):
        changed = renamed(job, body.title, now=utc_now())
        if changed is None:
            break
        try:
            job = store.save(changed, expected_version=job.version)
            break
        except ConcurrentUpdate:
            # A stage event landed in between: rename the fresh job.
            if attempt == RENAME_ATTEMPTS:
                raise
            job = owned_job(router.current_event, job_id)
    logger.info("job renamed", extra={"job_id": job_id})
    return _view(job)


@router.delete("/jobs/<job_id>", security=API_TOKEN)
def delete_job_route(job_id: str) -> Response[str]:
    """Delete the job, its upload and its outputs: 204. A job that is not
    (or no longer) there is 404, so a second DELETE answers 404."""
    job = owned_job(router.current_event, job_id, even_if_deleting=True)
    deleted = delete_job(
        job, jobs=jobs_store(), uploads=uploads_store(), outputs=outputs_store(), usage=usage_store(), now=utc_now()
    )
    logger.info("job deleted", extra={"job_id": job_id, "objects_deleted": deleted.objects_deleted})
    # The tombstone: the timeline outlives the job (its entries expire on their own).
    record_on_timeline(
        router.lambda_context,
        job_id,
        "job.deleted",
        {"status_before": deleted.status_before, "objects_deleted": deleted.objects_deleted},
    )
    return Response(status_code=204, content_type="application/json", body="")
