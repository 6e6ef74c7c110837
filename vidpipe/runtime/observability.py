"""The one Logger and Metrics of every function (powertools).

Each handler appends ``job_id`` (and the same value as ``correlation_id``) to
the logger's keys as soon as it knows it, so the job id is the correlation id
of every log line: ``vidpipe logs JOB_ID`` and a CloudWatch Logs Insights query
on ``correlation_id`` find a job's lines in every function.

Metrics are CloudWatch embedded metric format (EMF): JSON log lines that
CloudWatch turns into metrics, in the ``vidpipe`` namespace with the function's
``service`` dimension. What we count: upload sizes, transcode seconds and the
realtime factor (seconds of video per second of work), and finished jobs, the
failed ones by error code."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

Handler = TypeVar("Handler", bound=Callable[..., Any])

logger = Logger()


class NoTracer:
    """Stands in for the powertools Tracer where nothing traces: the command
    line, the tests, the local stack (no X-Ray daemon; ``vidpipe up`` sets
    POWERTOOLS_TRACE_DISABLED). The Tracer imports the X-Ray SDK (and patches
    botocore) even when it is disabled: a third of the API function's cold start."""

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        return handler


def tracing_wanted() -> bool:
    """The Tracer's own rule: in Lambda (not under `sam local`), unless
    POWERTOOLS_TRACE_DISABLED says otherwise."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in {"1", "y", "yes", "t", "true", "on"}
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL")
    return in_lambda and not disabled


def make_tracer() -> Any:
    """X-Ray on AWS (Tracing: Active): each invocation and its boto3 calls.
    Anywhere else a stand-in, and the X-Ray SDK is never imported."""
    if not tracing_wanted():
        return NoTracer()
    from aws_lambda_powertools import Tracer

    return Tracer()


tracer = make_tracer()
# The template sets the namespace; the default keeps tests and tools from failing on a missing one.
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "vidpipe"
metrics = Metrics(namespace=METRICS_NAMESPACE)
# Most invocations (a progress update, a duplicate) have no figure to publish:
# that is normal here, not worth a warning in every cold start's log.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def correlate(job_id: str) -> None:
    """Every following log line of this invocation names the job."""
    logger.append_keys(job_id=job_id, correlation_id=job_id)


def record_upload_size(size_bytes: int) -> None:
    metrics.add_metric(name="UploadBytes", unit=MetricUnit.Bytes, value=size_bytes)


def record_transcode(seconds: float, media_duration_s: float | None) -> None:
    """How long the encode took, and how many seconds of video it made per second."""
    metrics.add_metric(name="TranscodeSeconds", unit=MetricUnit.Seconds, value=round(seconds, 3))
    if media_duration_s and seconds > 0:
        metrics.add_metric(
            name="TranscodeRealtimeFactor", unit=MetricUnit.Count, value=round(media_duration_s / seconds, 3)
        )


def record_job_finished(status: str, error_code: str | None) -> None:
    """One finished job; a failed one is also counted under its error code, in a
    metric of its own so the code dimension does not split the other metrics."""
    metrics.add_metric(name="JobsReady" if status == "READY" else "JobsFailed", unit=MetricUnit.Count, value=1)
    if status != "READY":
        with single_metric(
            name="JobFailuresByCode", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
        ) as failure:
            failure.add_dimension(name="ErrorCode", value=error_code or "UNKNOWN")
