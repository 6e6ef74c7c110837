"""Benchmark of the API and the web page as a person meets them: prints figures,
asserts nothing. `make bench` runs it (after the pipeline benchmarks); alone:

    .venv/bin/python scripts/api_bench.py [--calls 40] [--pages 5] [--load-jobs 30]

On a local stack of its own (free port, temporary data folder):

1. The API function's cold start: the CPU a fresh interpreter spends importing
   its handler (and the authorizer's), its own start taken off, with the
   modules' bytecode at hand and compiling them from source.
2. Idle and warm: p50/p99 of GET /jobs/{id} (a READY job), GET /jobs and
   POST /uploads, one call at a time.
3. Idle: the page's first load in Chromium (a fresh browser context each time,
   so nothing is cached): until the load event, and until the recent jobs list
   shows the API's first answer.
4. Under load: the same page loads and GET /jobs/{id} calls while N small jobs
   go through the pipeline (scripts/load_test.py's load), and that load's own
   API latency and jobs per minute.

Only loopback: the stack listens on 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from scripts.load_test import SAMPLE, percentile, run_load  # noqa: E402
from scripts.throwaway_stack import throwaway_stack  # noqa: E402
from vidpipe_cli.api_client import VidpipeClient  # noqa: E402

# Debian's Chromium, as the browser tests use it (tests/e2e/conftest.py).
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
PAGE_TIMEOUT_MS = 120_000
HANDLERS = ("upload_api.handlers.api", "upload_api.handlers.authorizer")


def import_cpu_ms(module: str, *, bytecode: bool, runs: int = 5) -> float:
    """Median CPU milliseconds (user + system) a fresh interpreter spends importing
    ``module``, less its own start: CPU, not wall time, so that other work on
    the machine does not count. ``bytecode=False`` is a cold start that must
    compile every module from source (no pyc shipped, none writable)."""
    environment = {**os.environ, "LAMBDA_TASK_ROOT": str(PROJECT_ROOT), "POWERTOOLS_TRACE_DISABLED": "true"}
    if not bytecode:
        with tempfile.TemporaryDirectory() as nowhere:
            environment |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": nowhere}
            return _median_import_cpu(module, environment, runs)
    return _median_import_cpu(module, environment, runs)


def _median_import_cpu(module: str, environment: dict[str, str], runs: int) -> float:
    def cpu(code: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=environment, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    bare = statistics.median(cpu("pass") for _ in range(runs))
    return (statistics.median(cpu(f"import {module}") for _ in range(runs)) - bare) * 1000


def timed(call: Callable[[], Any], times: int) -> list[float]:
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(seconds: list[float]) -> str:
    if not seconds:
        return "no calls"
    p50, p99 = statistics.median(seconds) * 1000, percentile(seconds, 0.99) * 1000
    return f"p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({len(seconds)} calls)"


def page_load(browser: Any, web_url: str) -> tuple[float, float]:
    """Seconds until the load event and until the recent jobs list is filled, nothing cached."""
    context = browser.new_context()
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(web_url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        loaded = time.perf_counter() - started
        page.wait_for_selector("#recent-jobs li", timeout=PAGE_TIMEOUT_MS)
        return loaded, time.perf_counter() - started
    finally:
        context.close()


def page_summary(loads: list[tuple[float, float]]) -> str:
    if not loads:
        return "no page loads"
    load_event = statistics.median(load for load, _ in loads)
    jobs_shown = statistics.median(shown for _, shown in loads)
    worst = max(shown for _, shown in loads)
    return f"load event p50 {load_event:5.2f} s   jobs list shown p50 {jobs_shown:5.2f} s   max {worst:5.2f} s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="calls per route, idle")
    parser.add_argument("--pages", type=int, default=5, help="page loads, idle")
    parser.add_argument("--load-jobs", type=int, default=30, help="jobs of the load (0: no load)")
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    for module in HANDLERS:
        shipped, compiled = import_cpu_ms(module, bytecode=True), import_cpu_ms(module, bytecode=False)
        print(f"cold start, import {module}: {shipped:5.0f} ms CPU with bytecode, {compiled:5.0f} ms compiling")
    # The load's jobs and the POST /uploads calls (left waiting for an upload) count as active jobs.
    active_jobs = args.load_jobs + args.calls + 100
    with throwaway_stack("vidpipe-api-bench-", parameters=f"MaxActiveJobsPerOwner={active_jobs}") as stack:
        api_url, token = stack.endpoints["api_url"], stack.endpoints["api_token"]
        web_url = stack.endpoints["web_url"]
        client = VidpipeClient(api_url, token=token, timeout_s=180)
        ready = client.wait(client.submit(SAMPLE), timeout_s=600, poll_s=0.5)
        job_id = ready["job_id"]
        print(f"job {job_id}: {ready['status']}")
        # Warm: each route once (and the authorizer) before measuring.
        for call in (lambda: client.get_job(job_id), lambda: client.list_jobs(), _new_upload(client)):
            call()
        print(f"idle GET /jobs/{{id}}:   {summary(timed(lambda: client.get_job(job_id), args.calls))}")
        print(f"idle GET /jobs:         {summary(timed(lambda: client.list_jobs(), args.calls))}")
        print(f"idle POST /uploads:     {summary(timed(_new_upload(client), args.calls))}")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
            page_load(browser, web_url)  # the first ever: cold workers for every file
            idle_pages = [page_load(browser, web_url) for _ in range(args.pages)]
            print(f"idle page first load:   {page_summary(idle_pages)}")
            if args.load_jobs:
                _under_load(browser, client, job_id, web_url, api_url, token, args)
            browser.close()


def _new_upload(client: VidpipeClient) -> Callable[[], Any]:
    return lambda: client.create_upload("bench.mp4", "video/mp4", 1024)


def _under_load(
    browser: Any, client: VidpipeClient, job_id: str, web_url: str, api_url: str, token: str, args: Any
) -> None:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result.update(run_load(api_url, token, args.load_jobs, args.concurrency))
        except Exception as exc:  # a figure to print, not a crash: the load's client gives up on an error
            result["error"] = f"{type(exc).__name__}: {exc}"

    load = threading.Thread(target=run, daemon=True)
    load.start()
    time.sleep(5)  # into the load: uploads going, the first encodes started
    pages: list[tuple[float, float]] = []
    calls: list[float] = []
    failures: list[str] = []
    while load.is_alive():
        try:
            pages.append(page_load(browser, web_url))
            calls += timed(lambda: client.get_job(job_id), 5)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    load.join()
    if "error" in result:
        print(f"under load: the load stopped: {result['error']}; beside it {len(failures)} failures {failures[:3]}")
        print(f"  GET /jobs/{{id}} beside it: {summary(calls)}")
        print(f"  page first load:          {page_summary(pages)}")
        return
    print(f"under load ({args.load_jobs} jobs, {args.concurrency} at a time):")
    print(f"  GET /jobs/{{id}} beside it: {summary(calls)}")
    print(f"  page first load:          {page_summary(pages)}   failures {len(failures)} {failures[:3]}")
    print(
        f"  the load's API calls:     p50 {result['api_p50_ms']:7.1f} ms   p99 {result['api_p99_ms']:7.1f} ms"
        f"   ({result['api_calls']} calls)"
    )
    print(f"  jobs per minute:          {result['jobs_per_minute']}   final states {result['statuses']}")


if __name__ == "__main__":
    main()
