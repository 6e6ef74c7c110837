"""HTTP API Lambda: uploads, jobs, outputs, webhooks, the web page and the
OpenAPI document that describes them.

Wiring only: each resource's routes are a Router in upload_api.routes, and
errors become answers in upload_api.routes.errors."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.utilities.typing import LambdaContext

from upload_api.routes import captions, errors, images, jobs, outputs, uploads, web_page, webhooks
from vidpipe.runtime.observability import logger, tracer

OPENAPI_PATH = "/openapi.json"

# Validation: the routes' pydantic bodies are checked before a route runs (and
# describe the bodies in the OpenAPI document).
app = APIGatewayHttpResolver(enable_validation=True)
for resource in (uploads, jobs, webhooks, outputs, images, web_page, captions, errors):
    app.include_router(resource.router)


@cache
def openapi_document() -> str:
    """The API's OpenAPI 3.1 document, generated from the routes (once per container)."""
    return app.get_openapi_json_schema(
        title="vidpipe",
        version="1",
        description=(
            "Upload a video, follow its job, play its HLS outputs. Routes marked with api_token need "
            "`Authorization: Bearer <token>` (`vidpipe token`); a job's playlists and storyboard need "
            "the output grant its GET /jobs/{job_id} URLs carry instead."
        ),
        security_schemes={"api_token": HTTPBearer(description="a vidpipe API token, or the OIDC issuer's JWT")},
    )


# No token: the document describes the API and holds nothing of anyone's.
@app.get(OPENAPI_PATH, include_in_schema=False)
def get_openapi_document() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=openapi_document())


# clear_state: a job id put on the lines of one request must not stay for the next.
@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
