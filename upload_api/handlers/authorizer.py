"""HTTP API Lambda authorizer: lets a request in when it carries a valid,
unexpired, unrevoked API token, and tells the API function whose request it
is. Wiring only; the token rules are in vidpipe.domain.access.

API Gateway caches the answer per Authorization header for the authorizer's
result TTL (template parameter AuthorizerCacheSeconds): that is how long a
revoked or just-expired token can still get in."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from vidpipe.adapters.aws_clients import dynamodb_client
from vidpipe.adapters.secrets import signing_keys
from vidpipe.adapters.token_revocations import DynamoTokenRevocations
from vidpipe.domain.access import API_TOKENS, TokenRefused, admit, bearer_token
from vidpipe.runtime.observability import logger, tracer
from vidpipe.runtime.settings import get_settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    revocations = DynamoTokenRevocations(dynamodb_client(), get_settings().revoked_tokens_table)
    try:
        claims = admit(signing_keys(API_TOKENS), bearer_token(event.get("headers")), revocations=revocations)
    except TokenRefused as exc:
        # HTTP APIs answer a refusal with a bare 403: the reason is only here.
        logger.info("request refused", extra={"reason": exc.message})
        return {"isAuthorized": False}
    return {"isAuthorized": True, "context": {"user": claims.user, "token_id": claims.token_id}}
