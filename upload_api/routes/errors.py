"""Errors become answers here, for every route: ``{"error": {"code", "message"}}``
with the error's HTTP status, a 429 with Retry-After over a per-owner limit, and
a 5xx that names nothing of our insides."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from vidpipe.domain.errors import ConcurrentUpdate, QuotaExceeded, ValidationFailed, VidpipeError
from vidpipe.runtime.observability import logger

# A router without routes: include_router hands its exception handlers to the API.
router = APIGatewayHttpRouter()


@router.exception_handler(VidpipeError)
def handle_vidpipe_error(exc: VidpipeError) -> Response:
    if exc.http_status >= 500:
        logger.exception("request failed", extra={"error_code": exc.code})
        return _our_failure(exc.http_status, exc.code)
    return _error(exc.http_status, exc.code, exc.message)


@router.exception_handler(Exception)
def handle_unexpected_error(exc: Exception) -> Response:
    logger.exception("request failed with an unexpected error")
    return _our_failure(500, VidpipeError.code)


@router.exception_handler(QuotaExceeded)
def handle_quota_exceeded(exc: QuotaExceeded) -> Response:
    # Retry-After: when asking again can succeed (the day's rollover, or a short
    # wait for an active job to end); the body says which limit and why.
    logger.info("request over a per-owner limit", extra={"limit": exc.limit, "retry_after_s": exc.retry_after_s})
    return Response(
        status_code=429,
        content_type="application/json",
        headers={"Retry-After": str(exc.retry_after_s)},
        body={"error": {**exc.to_dict(), "limit": exc.limit, "retry_after_s": exc.retry_after_s}},
    )


@router.exception_handler(ConcurrentUpdate)
def handle_concurrent_update(exc: ConcurrentUpdate) -> Response:
    # Someone else changed the job between our read and our write (the upload
    # arrived while it was being cancelled): the caller should look again.
    return _error(409, exc.code, "the job changed meanwhile; read it again and retry if still needed")


@router.exception_handler(RequestValidationError)
def handle_invalid_request(exc: RequestValidationError) -> Response:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return _error(400, ValidationFailed.code, "; ".join(problems) or "invalid request")


@router.exception_handler(NotFoundError)
def handle_not_found(exc: NotFoundError) -> Response:
    return _error(404, "NOT_FOUND", "no such route or file")


def _error(status: int, code: str, message: str) -> Response:
    return Response(
        status_code=status, content_type="application/json", body={"error": {"code": code, "message": message}}
    )


def _our_failure(status: int, code: str) -> Response:
    """A 5xx that says nothing of our insides (bucket and table names, boto3's
    exception text): the details go to the log, under the request id the answer
    carries (the log lines' correlation_id), for whoever looks into it."""
    request_id = router.current_event.request_context.request_id
    return Response(
        status_code=status,
        content_type="application/json",
        body={
            "error": {
                "code": code,
                "request_id": request_id,
                "message": f"something went wrong on our side; try again later, or quote request id {request_id}",
            }
        },
    )
