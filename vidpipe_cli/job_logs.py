"""`vidpipe logs JOB_ID`: one job's log lines from every function, merged in time order.

Where the lines are: ministack (1.5.33) writes each Lambda invocation's output
to CloudWatch Logs as AWS does, in the group ``/aws/lambda/{function name}``,
one stream per invocation, and answers ``FilterLogEvents`` with a quoted-term
filter pattern. It stamps every line of an invocation with the time the
invocation ended, so we order by the time powertools writes inside each JSON
line (``timestamp``, milliseconds), and fall back to the CloudWatch time for
lines that are not ours (a crash's traceback, FFmpeg's stderr).

Every line of ours names the job (``job_id``/``correlation_id``, see
vidpipe.runtime.observability), so filtering on the job id finds them; so does any
other line that mentions it (a scratch folder, a key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# powertools' own keys, shown as columns or left out; anything else is shown as key=value.
_STANDARD_KEYS = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "job_id",
        "correlation_id",
        "sampling_rate",
    }
)


@dataclass(frozen=True)
class LogLine:
    at: datetime
    function: str
    level: str
    message: str
    request_id: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


def function_of_group(group: str) -> str:
    """``/aws/lambda/vidpipe-StatusFunction-50765B94BC1EA`` → ``StatusFunction``."""
    name = group.rsplit("/", 1)[-1]
    parts = name.split("-")
    return parts[1] if len(parts) >= 3 else name


def parse_powertools_time(stamp: str) -> datetime | None:
    """powertools writes ``2026-11-27 13:42:11,401+0000``."""
    for layout in ("%Y-%m-%d %H:%M:%S,%f%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(stamp, layout).astimezone(UTC)
        except ValueError:
            continue
    return None


def parse_log_event(group: str, event: dict[str, Any]) -> LogLine:
    """One CloudWatch Logs event of a function's group as a LogLine."""
    logged_at = datetime.fromtimestamp(int(event.get("timestamp", 0)) / 1000, UTC)
    message = str(event.get("message", "")).rstrip("\n")
    function = function_of_group(group)
    try:
        body = json.loads(message)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return LogLine(at=logged_at, function=function, level="", message=message)
    if "_aws" in body:  # an embedded-metric-format line: show the figures
        names = [m["Name"] for spec in body["_aws"].get("CloudWatchMetrics", []) for m in spec.get("Metrics", [])]
        at = datetime.fromtimestamp(int(body["_aws"].get("Timestamp", 0)) / 1000, UTC)
        figures = {name: body.get(name) for name in names}
        return LogLine(
            at=at, function=str(body.get("service") or function), level="METRIC", message="metrics", fields=figures
        )
    fields = {key: value for key, value in body.items() if key not in _STANDARD_KEYS}
    return LogLine(
        at=parse_powertools_time(str(body.get("timestamp", ""))) or logged_at,
        function=str(body.get("service") or function),
        level=str(body.get("level", "")),
        message=str(body.get("message", "")),
        request_id=str(body.get("function_request_id", "")),
        fields=fields,
    )


def merge(lines: list[LogLine]) -> list[LogLine]:
    """Every function's lines in one time order (stable: a function's own lines keep their order)."""
    return sorted(lines, key=lambda line: line.at)


def format_line(line: LogLine) -> str:
    extra = " ".join(f"{key}={_short(value)}" for key, value in line.fields.items())
    stamp = line.at.strftime("%H:%M:%S.%f")[:-3]
    return f"{stamp}  {line.function:<11} {line.level:<7} {line.message}  {extra}".rstrip()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    if "\n" in text:  # a traceback: its last line says what went wrong
        text = text.strip().splitlines()[-1]
    return text if len(text) <= 160 else text[:157] + "..."


def fetch_job_lines(logs: Any, job_id: str, group_prefix: str) -> list[LogLine]:
    """The job's lines from every log group under ``group_prefix`` (the stack's functions)."""
    groups: list[str] = []
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=group_prefix):
        groups += [group["logGroupName"] for group in page.get("logGroups", [])]
    lines: list[LogLine] = []
    for group in groups:
        request: dict[str, Any] = {"logGroupName": group, "filterPattern": f'"{job_id}"'}
        while True:
            answer = logs.filter_log_events(**request)
            lines += [parse_log_event(group, event) for event in answer.get("events", [])]
            if not answer.get("nextToken"):
                break
            request["nextToken"] = answer["nextToken"]
    return merge(lines)
