"""The planner's probe over real HTTP from localhost, for scripts/transcode_bench.py."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidpipe.adapters.ffmpeg.probe import probe_media_url

Measure = Callable[[Callable[[], Any]], tuple[Any, Any]]


def measure_url_probe(source_path: Path, measure: Measure, timeout_s: float) -> Any:
    """The planner's probe as the transcode function runs it: ffprobe of the
    upload's URL, here served over real HTTP from localhost."""
    handler = functools.partial(QuietFileHandler, directory=str(source_path.parent))
    server = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{source_path.name}"
        measured, _ = measure(lambda: probe_media_url(url, timeout_s=timeout_s))
    finally:
        server.shutdown()
    return measured


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # ffprobe hangs up as soon as it has the index: not an error worth a traceback
