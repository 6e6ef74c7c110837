"""A job's playlists and storyboard, with the files they reference replaced by
URLs that expire. Players fetch them with plain GETs: no API token, the output
grant of GET /jobs/{id} in their query instead (checked here)."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from upload_api.domain_logic.playlists import sign_master_playlist, sign_media_playlist, sign_storyboard
from upload_api.routes.stores import jobs_store, output_urls, outputs_store
from vidpipe.adapters.secrets import signing_keys
from vidpipe.domain.access import OUTPUT_GRANTS, grant_is_valid
from vidpipe.domain.errors import JobNotFound, Unauthenticated
from vidpipe.domain.events import Stage
from vidpipe.domain.jobs import StageStatus
from vidpipe.runtime.settings import get_settings

RENDITION_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
PLAYLIST = "application/vnd.apple.mpegurl"

router = APIGatewayHttpRouter()


@router.get("/jobs/<job_id>/hls/master.m3u8")
def get_master_playlist(job_id: str) -> Response[str]:
    prefix, grant = _granted_outputs(job_id, Stage.TRANSCODE)
    master = outputs_store().read_text(prefix + "master.m3u8")
    urls, ttl = output_urls(), get_settings().output_url_ttl_s
    signed = sign_master_playlist(
        master, query=grant, key_prefix=prefix, sign=lambda key: urls.presigned_get(key, expires_s=ttl)
    )
    return _text(signed, PLAYLIST)


@router.get("/jobs/<job_id>/hls/<rendition>/index.m3u8")
def get_media_playlist(job_id: str, rendition: str) -> Response[str]:
    if not set(rendition) <= RENDITION_NAME_CHARS:
        raise JobNotFound(f"no rendition {rendition!r}")
    prefix = _granted_outputs(job_id, Stage.TRANSCODE)[0] + f"{rendition}/"
    return _text(_signed_text(prefix, "index.m3u8", sign_media_playlist), PLAYLIST)


# The MediaConvert backend writes every media playlist next to the master
# (hls/master_720p.m3u8): one folder per HLS group is all it can do. Declared
# after master.m3u8, which it would match too: the first route that matches wins.
@router.get("/jobs/<job_id>/hls/<playlist>")
def get_flat_media_playlist(job_id: str, playlist: str) -> Response[str]:
    name = playlist.removesuffix(".m3u8")
    if not playlist.endswith(".m3u8") or not name or not set(name) <= RENDITION_NAME_CHARS:
        raise JobNotFound(f"no playlist {playlist!r}")
    prefix = _granted_outputs(job_id, Stage.TRANSCODE)[0]
    return _text(_signed_text(prefix, playlist, sign_media_playlist), PLAYLIST)


@router.get("/jobs/<job_id>/thumbnails/storyboard.vtt")
def get_storyboard(job_id: str) -> Response[str]:
    prefix = _granted_outputs(job_id, Stage.THUMBNAILS)[0]
    return _text(_signed_text(prefix, "storyboard.vtt", sign_storyboard), "text/vtt")


def _signed_text(prefix: str, name: str, rewrite: Callable[..., str]) -> str:
    """The output file's text with the files it references replaced by presigned URLs."""
    urls, ttl = output_urls(), get_settings().output_url_ttl_s
    return rewrite(
        outputs_store().read_text(prefix + name),
        key_prefix=prefix,
        sign=lambda key: urls.presigned_get(key, expires_s=ttl),
    )


def _granted_outputs(job_id: str, stage: Stage) -> tuple[str, str]:
    """Where the stage wrote the job's outputs, and the request's output grant
    (as a query string). Unauthenticated unless the grant is valid for the job;
    JobNotFound until the stage has completed."""
    query = router.current_event.query_string_parameters or {}
    if not grant_is_valid(signing_keys(OUTPUT_GRANTS), job_id, query):
        raise Unauthenticated("this output URL is not valid (or has expired): get a fresh one from GET /jobs/{id}")
    job = jobs_store().get(job_id)
    if job.is_deleting:  # a grant outlives its job: the job decides
        raise JobNotFound(f"no job {job_id}")
    state = job.stages[stage]
    playable_early = state.status is StageStatus.RUNNING and state.outputs.get("playable")
    if state.status is not StageStatus.COMPLETED and not playable_early:
        raise JobNotFound(f"job {job_id} has no {stage.value} outputs yet")
    return str(state.outputs["prefix"]), f"expires={query['expires']}&kid={query['kid']}&grant={query['grant']}"


def _text(body: str, content_type: str) -> Response[str]:
    # Playlists carry presigned URLs that expire: never cache them for long.
    return Response(
        status_code=200, content_type=content_type, body=body, headers={"Cache-Control": "private, max-age=60"}
    )
