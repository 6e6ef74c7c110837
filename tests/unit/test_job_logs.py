"""`vidpipe logs`: CloudWatch Logs events of several functions, parsed and
merged by the time written inside each line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from vidpipe_cli.job_logs import format_line, function_of_group, merge, parse_log_event

STATUS = "/aws/lambda/vidpipe-StatusFunction-50765B94BC1EA"
TRANSCODE = "/aws/lambda/vidpipe-TranscodeFunction-7C5DA51B831DE"
JOB_ID = "1f15bd12cc184e7ca5d45e8179bb42c8"


def powertools_line(stamp: str, service: str, message: str, **extra: object) -> str:
    return json.dumps(
        {
            "level": "INFO",
            "location": "handle_record:56",
            "message": message,
            "timestamp": stamp,
            "service": service,
            "cold_start": False,
            "function_request_id": "req-1",
            "job_id": JOB_ID,
            "correlation_id": JOB_ID,
            **extra,
        }
    )


def test_GIVEN_a_log_group_WHEN_named_THEN_the_function_s_logical_name() -> None:
    assert function_of_group(STATUS) == "StatusFunction"


def test_GIVEN_lines_stamped_at_the_end_of_their_invocation_WHEN_merged_THEN_ordered_by_their_own_time() -> None:
    # ministack stamps every line of an invocation with its end: the transcode's line
    # below is stamped later than the status line, though it was written first.
    events = [
        (
            STATUS,
            {
                "timestamp": 1_795_786_931_412,
                "message": powertools_line("2026-11-27 13:42:11,401+0000", "status", "job updated", status="READY"),
            },
        ),
        (
            TRANSCODE,
            {
                "timestamp": 1_795_786_932_000,
                "message": powertools_line("2026-11-27 13:42:10,100+0000", "transcode", "stage started"),
            },
        ),
    ]

    lines = merge([parse_log_event(group, event) for group, event in events])

    assert [line.message for line in lines] == ["stage started", "job updated"]
    assert lines[0].at == datetime(2026, 11, 27, 13, 42, 10, 100_000, tzinfo=UTC)
    assert format_line(lines[1]) == "13:42:11.401  status      INFO    job updated  status=READY"


def test_GIVEN_a_line_that_is_not_json_WHEN_parsed_THEN_kept_with_the_cloudwatch_time() -> None:
    line = parse_log_event(TRANSCODE, {"timestamp": 1_795_786_932_000, "message": f"Traceback for {JOB_ID}\n"})

    assert (line.function, line.level, line.message) == ("TranscodeFunction", "", f"Traceback for {JOB_ID}")
    assert line.at == datetime.fromtimestamp(1_795_786_932, UTC)


def test_GIVEN_a_metrics_line_WHEN_parsed_THEN_its_figures_are_shown() -> None:
    emf = {
        "_aws": {
            "Timestamp": 1_795_786_931_000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "vidpipe",
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": "TranscodeSeconds", "Unit": "Seconds"}],
                }
            ],
        },
        "service": "transcode",
        "TranscodeSeconds": [4.2],
    }

    line = parse_log_event(TRANSCODE, {"timestamp": 1, "message": json.dumps(emf)})

    assert (line.level, line.function, line.fields) == ("METRIC", "transcode", {"TranscodeSeconds": [4.2]})


def test_GIVEN_an_exception_WHEN_formatted_THEN_only_its_last_line_is_shown() -> None:
    message = powertools_line(
        "2026-11-27 13:42:11,401+0000",
        "transcode",
        "stage failed",
        exception="Traceback (most recent call last):\n  File x\nFfmpegError: killed",
    )

    shown = format_line(parse_log_event(TRANSCODE, {"timestamp": 1, "message": message}))

    assert shown.endswith("stage failed  exception=FfmpegError: killed")
