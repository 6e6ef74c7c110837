"""Load run: N small jobs submitted concurrently through the HTTP API, on a
local stack of its own. Prints what happened (and returns it as JSON for
scripts/reliability_report.py); asserts nothing.

    .venv/bin/python scripts/load_test.py [--jobs 100] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from scripts.throwaway_stack import throwaway_stack  # noqa: E402
from vidpipe_cli.api_client import VidpipeClient  # noqa: E402
from vidpipe_cli.local_stack_settings import aws_client  # noqa: E402
from vidpipe_cli.redrive import dead_letter_counts  # noqa: E402

SAMPLE = PROJECT_ROOT / "sample_media" / "tiny_160x90.mp4"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def route_of(method: str, path: str) -> str:
    """The API route a call went to, its ids replaced (``GET /jobs/{id}``)."""
    parts = [part if index != 1 else "{id}" for index, part in enumerate(path.split("?")[0].strip("/").split("/"))]
    return f"{method.upper()} /{'/'.join(parts)}"


def latency_figures(latencies: list[float]) -> dict[str, Any]:
    return {
        "calls": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def run_load(api_url: str, api_token: str, jobs: int, concurrency: int) -> dict[str, Any]:
    # A generous timeout: on a 2-core machine the first burst makes ministack
    # start a Lambda worker per concurrent call, each importing its packages.
    client = VidpipeClient(api_url, token=api_token, timeout_s=180)
    # (route, seconds since the load began, latency in seconds) of every API call:
    # the slowest calls, with when they happened, say where a p99 comes from.
    calls: list[tuple[str, float, float]] = []
    original_call = client._call

    def timed_call(method: str, path: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        called = time.perf_counter()
        try:
            return original_call(method, path, *args, **kwargs)
        finally:
            calls.append((route_of(method, path), called - started, time.perf_counter() - called))

    client._call = timed_call  # type: ignore[method-assign]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        job_ids = list(pool.map(lambda _: client.submit(SAMPLE), range(jobs)))
    submitted_s = time.perf_counter() - started
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        finals = list(pool.map(lambda job_id: client.wait(job_id, timeout_s=1800, poll_s=2.0), job_ids))
    total_s = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for job in finals:
        statuses[job["status"]] = statuses.get(job["status"], 0) + 1
    api_latencies = [latency for _, _, latency in calls]
    by_route: dict[str, list[float]] = {}
    for route, _, latency in calls:
        by_route.setdefault(route, []).append(latency)
    slowest = sorted(calls, key=lambda call: call[2], reverse=True)[:10]
    return {
        "jobs": jobs,
        "concurrency": concurrency,
        "statuses": statuses,
        "submitted_in_s": round(submitted_s, 1),
        "all_final_in_s": round(total_s, 1),
        "jobs_per_minute": round(jobs / (total_s / 60), 1),
        "api_calls": len(api_latencies),
        "api_p50_ms": round(statistics.median(api_latencies) * 1000, 1),
        "api_p99_ms": round(percentile(api_latencies, 0.99) * 1000, 1),
        "api_by_route": {route: latency_figures(values) for route, values in sorted(by_route.items())},
        "api_slowest": [
            {"route": route, "at_s": round(at_s, 1), "ms": round(latency * 1000, 1)} for route, at_s, latency in slowest
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    # One user submits every job at once: lift that user's active-job limit
    # (10 by default), or the run would measure the quota, not the pipeline.
    with throwaway_stack("vidpipe-load-", parameters=f"MaxActiveJobsPerOwner={max(10, args.jobs)}") as stack:
        result = run_load(stack.endpoints["api_url"], stack.endpoints["api_token"], args.jobs, args.concurrency)
        sqs = aws_client("sqs", stack.endpoints["aws_endpoint_url"])
        result["dead_letter_messages"] = dead_letter_counts(sqs, stack.outputs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
