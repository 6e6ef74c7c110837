"""On-demand images Lambda: one thumbnail or animated preview of a READY job,
made from a rendition's segments and cached in the outputs bucket.

Only the API function invokes it, synchronously, on a cache miss (GET
/jobs/{id}/thumbnail.{jpg,webp} and /animated.webp): the API checked the caller,
the job and the parameters already, and answers with a redirect to the cached
image. This function has FFmpeg; the API function does not (its cold start
stays small). Payload::

    {"job_id": ..., "key": "jobs/{id}/images/...", "hls_prefix": "jobs/{id}/hls/",
     "renditions": [{"name", "width", "height", "playlist"?}...], "request": {...}}

Answer: ``{"key": key}``, or ``{"error": {"code", "message", "http_status"}}``
for a refusal the caller should see (a broken segment is 422, never a retry
loop: the API calls once per request). Wiring only; the work is in
thumbnails.domain_logic.on_demand."""

from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from thumbnails.domain_logic.on_demand import choose_rendition, make_on_demand_image, parse_media_playlist
from vidpipe.adapters.aws_clients import s3_client
from vidpipe.adapters.s3 import S3ObjectStore
from vidpipe.domain.errors import VidpipeError
from vidpipe.domain.image_requests import AnimatedRequest, request_from_dict
from vidpipe.domain.storage_keys import is_job_output
from vidpipe.runtime.observability import correlate, logger, tracer
from vidpipe.runtime.settings import get_settings

RESERVED_TIME_S = 3  # kept back from the Lambda timeout to upload and answer
CONTENT_TYPES = {"jpg": "image/jpeg", "webp": "image/webp"}


def make_image(payload: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
    job_id, key, hls_prefix = str(payload["job_id"]), str(payload["key"]), str(payload["hls_prefix"])
    correlate(job_id)
    if not (is_job_output(key, job_id) and is_job_output(hls_prefix, job_id)):
        raise ValueError(f"keys outside job {job_id}: {key}, {hls_prefix}")  # the API's mistake, never a user's
    request = request_from_dict(payload["request"])
    if isinstance(request, AnimatedRequest):
        rendition = choose_rendition(payload["renditions"], request.width, None)
    else:
        rendition = choose_rendition(payload["renditions"], request.width, request.height)
    store = S3ObjectStore(s3_client(), get_settings().outputs_bucket)
    playlist_key = hls_prefix + str(rendition.get("playlist") or f"{rendition['name']}/index.m3u8")
    playlist = parse_media_playlist(store.read_text(playlist_key))
    folder = posixpath.dirname(playlist_key)

    def fetch(uri: str, path: Path) -> None:
        segment_key = posixpath.normpath(posixpath.join(folder, uri))
        if not is_job_output(segment_key, job_id):
            raise ValueError(f"the playlist {playlist_key} points outside its job: {uri}")
        store.download(segment_key, path)

    with tempfile.TemporaryDirectory(prefix="on-demand-") as work:
        image = make_on_demand_image(request, playlist, fetch, Path(work), timeout_s=timeout_s)
        output = Path(work) / "image"
        output.write_bytes(image)
        store.upload_file(output, key, content_type=CONTENT_TYPES[key.rpartition(".")[2]])
    logger.info("image made", extra={"key": key, "rendition": rendition.get("name"), "bytes": len(image)})
    return {"key": key}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    timeout_s = max(5.0, context.get_remaining_time_in_millis() / 1000 - RESERVED_TIME_S)
    try:
        return make_image(event, timeout_s=timeout_s)
    except VidpipeError as exc:
        # Answered, not raised: the API turns it into the caller's error answer.
        logger.warning("image not made", extra={"error_code": exc.code, "reason": exc.message})
        return {"error": {**exc.to_dict(), "http_status": exc.http_status}}
