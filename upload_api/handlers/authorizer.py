"""HTTP API Lambda authorizer: lets a request in when it carries a valid API
token, and tells the API function whose request it is. Wiring only; the token
rules are in vidpipe.access."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from vidpipe.access import bearer_token, deployment_secret, user_of_token
from vidpipe.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    user = user_of_token(deployment_secret(), bearer_token(event.get("headers")))
    if user is None:
        logger.info("request refused: no valid API token")
        return {"isAuthorized": False}
    return {"isAuthorized": True, "context": {"user": user}}
