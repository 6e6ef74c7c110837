"""Who is calling, and the caller's jobs.

Every route but the web page, the OpenAPI document and the outputs sits behind
the HTTP API's authorizer (infra/template.yaml): it names the caller, a vidpipe
token's user (Lambda authorizer) or the subject of an OIDC issuer's JWT (the
OidcIssuer parameter)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from upload_api.routes.stores import jobs_store
from vidpipe.domain.errors import JobNotFound, Unauthenticated
from vidpipe.domain.jobs import Job
from vidpipe.runtime.observability import correlate

# The OpenAPI security of the routes behind the authorizer (the API handler
# declares the scheme); the document shows which routes need a token.
API_TOKEN: list[dict[str, list[str]]] = [{"api_token": []}]


def caller(event: APIGatewayProxyEventV2) -> str:
    """The user the authorizer let in. Raises Unauthenticated without one."""
    authorizer = event.request_context.authorizer
    user = (authorizer.get_lambda or {}).get("user") or authorizer.jwt_claim.get("sub")
    if not user:
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return str(user)


def owned_job(event: APIGatewayProxyEventV2, job_id: str, *, even_if_deleting: bool = False) -> Job:
    """The caller's job; someone else's is as unknown as a missing one (JobNotFound),
    and so is one being deleted (except to DELETE /jobs/{id}, which finishes it)."""
    job = jobs_store().get(job_id)
    if job.owner != caller(event) or (job.is_deleting and not even_if_deleting):
        raise JobNotFound(f"no job {job_id}")
    correlate(job.job_id)
    return job
