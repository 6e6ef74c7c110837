"""Logs and metrics: the job id is the correlation id of every line, and the
metrics come out as CloudWatch embedded metric format."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_stage_runner import JOB_ID, Fakes, hls_work, run
from vidpipe.domain.timeline import Invocation
from vidpipe.runtime.observability import (
    NoTracer,
    correlate,
    logger,
    make_tracer,
    metrics,
    record_job_finished,
    record_transcode,
    record_upload_size,
    tracing_wanted,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_earlier_figures() -> None:
    """Other tests (the transcode function run in-process) leave figures in the shared Metrics."""
    metrics.clear_metrics()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the logger writes (its handler keeps the stdout of import time, out of pytest's reach)."""
    handler = logger.registered_handler
    written = io.StringIO()
    previous = handler.setStream(written)  # type: ignore[attr-defined]
    yield written
    handler.setStream(previous)  # type: ignore[attr-defined]


def parsed(written: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in written.getvalue().splitlines() if line.startswith("{")]


def emitted(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    metrics.flush_metrics()
    return [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def test_GIVEN_a_transcode_WHEN_recorded_THEN_seconds_and_realtime_factor_in_emf(
    capfd: pytest.CaptureFixture[str],
) -> None:
    record_transcode(4.0, 60.0)
    record_upload_size(7_340_032)

    [line] = emitted(capfd)

    names = {m["Name"]: m["Unit"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"TranscodeSeconds": "Seconds", "TranscodeRealtimeFactor": "Count", "UploadBytes": "Bytes"}
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "vidpipe"
    assert (line["TranscodeSeconds"], line["TranscodeRealtimeFactor"], line["UploadBytes"]) == (
        [4.0],
        [15.0],
        [7340032.0],
    )


def test_GIVEN_an_unknown_duration_WHEN_a_transcode_is_recorded_THEN_no_realtime_factor(
    capfd: pytest.CaptureFixture[str],
) -> None:
    record_transcode(4.0, None)

    [line] = emitted(capfd)

    assert "TranscodeRealtimeFactor" not in line and line["TranscodeSeconds"] == [4.0]


def test_GIVEN_a_failed_job_WHEN_recorded_THEN_counted_under_its_error_code_in_a_metric_of_its_own(
    capfd: pytest.CaptureFixture[str],
) -> None:
    record_job_finished("FAILED", "NOT_A_VIDEO")

    lines = emitted(capfd)

    by_code = next(line for line in lines if "JobFailuresByCode" in line)
    assert by_code["ErrorCode"] == "NOT_A_VIDEO"
    assert by_code["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][-1] == "ErrorCode"
    assert any(line.get("JobsFailed") == [1.0] for line in lines)


def test_GIVEN_a_stage_run_WHEN_it_logs_THEN_every_line_carries_the_job_id_as_correlation_id(
    tmp_path: Path, log_lines: io.StringIO
) -> None:
    run(Fakes(), hls_work, tmp_path)

    logged = parsed(log_lines)
    assert logged, "the stage logged nothing"
    assert all(line["correlation_id"] == JOB_ID and line["job_id"] == JOB_ID for line in logged)
    assert "correlation_id" not in logger.get_current_keys()  # and it does not stay for the next record


def test_GIVEN_a_job_id_WHEN_correlated_THEN_the_next_line_names_it(log_lines: io.StringIO) -> None:
    correlate("job-7")
    try:
        logger.info("hello")
    finally:
        logger.remove_keys(["job_id", "correlation_id"])

    line = parsed(log_lines)[-1]
    assert (line["job_id"], line["correlation_id"]) == ("job-7", "job-7")


def test_GIVEN_a_lambda_context_WHEN_read_THEN_the_service_name_and_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    class Context:
        function_name = "vidpipe-StatusFunction-ABC"
        aws_request_id = "req-1"

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "status")
    assert Invocation.of(Context()) == Invocation("status", "req-1")
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME")
    assert Invocation.of(Context()) == Invocation("vidpipe-StatusFunction-ABC", "req-1")


@pytest.mark.parametrize(
    ("environment", "traced"),
    [
        ({}, False),  # the command line, the tests
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),  # a function on AWS
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),  # the local stack
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "0"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_GIVEN_where_a_function_runs_WHEN_tracing_decided_THEN_only_a_lambda_with_tracing_on_traces(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], traced: bool
) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert tracing_wanted() is traced


def test_GIVEN_no_tracing_WHEN_the_api_handler_is_imported_THEN_the_xray_sdk_is_not() -> None:
    # A fresh interpreter: this one may have imported the SDK for another test.
    code = "import sys, upload_api.handlers.api; print('aws_xray_sdk.core' in sys.modules)"
    environment = {name: value for name, value in os.environ.items() if name != "LAMBDA_TASK_ROOT"}

    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, check=True
    )

    assert shown.stdout.strip() == "False"
    assert isinstance(make_tracer(), NoTracer)
