"""What `vidpipe up` starts before it returns, so that the first page load and
the first batch of uploads do not wait for cold Lambda workers.

On a 2-core machine a cold worker costs about 1 s of CPU (a process, the
handler's imports). Started while a batch uploads, the workers of the API and
of the stages take the cores the API needs to answer: the 100-job load's first
POST /uploads waited up to 1.3 s, against 0.33 s for the same load on a stack
whose workers ran already (docs/PERFORMANCE.md, issue 18). Nothing is wrong if
a warm-up fails: the first real call starts its worker instead."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from vidpipe_cli.local_stack_settings import Endpoints, LocalStackSettings

# The functions every upload runs (logical ids of infra/template.yaml), their
# workers started by the launcher without an invocation (vidpipe_cli/ministack_prewarm.py).
EVERY_UPLOAD_RUNS = ("TranscodeFunction", "ThumbnailsFunction", "StatusFunction")


def warm_up(settings: LocalStackSettings, endpoints: Endpoints, *, log: Callable[[str], None]) -> None:
    # As many as there are cores: the local stack holds each SQS mapping to
    # that many at once, and lets API calls wait for that many warm workers
    # (vidpipe_cli/ministack_worker_reuse.py).
    cores = os.cpu_count() or 1
    warm_the_api(endpoints, workers=cores, log=log)
    prewarm_stages(settings, workers=cores, log=log)


def warm_the_api(endpoints: Endpoints, *, workers: int, log: Callable[[str], None]) -> None:
    """Call the API ``workers`` times at once, so that many of its workers and
    the authorizer's run (and the dependencies layer is unzipped)."""

    def first_call(_: int) -> None:
        requests.get(
            f"{endpoints.api_url}/jobs",
            params={"limit": "1"},
            headers={"Authorization": f"Bearer {endpoints.api_token}"},
            timeout=120,
        ).raise_for_status()

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(first_call, range(workers)))
    except requests.RequestException as exc:
        log(f"warning: the API did not answer its first calls ({exc}); it starts on the next one")


def prewarm_stages(settings: LocalStackSettings, *, workers: int, log: Callable[[str], None]) -> None:
    """Have the launcher start ``workers`` workers of each function every upload runs."""
    try:
        requests.post(
            f"{settings.endpoint_url}/_vidpipe/prewarm",
            json={"functions": list(EVERY_UPLOAD_RUNS), "workers": workers},
            timeout=120,
        ).raise_for_status()
    except requests.RequestException as exc:
        log(f"warning: the stages' workers did not start ahead ({exc}); the first upload starts them")
