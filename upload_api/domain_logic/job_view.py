"""The job as the API shows it: the stored record plus URLs a plain GET fetches.

Outputs are private and every URL to them expires. Images are given as
presigned S3 URLs or CloudFront signed URLs (whichever ``signer`` the handler
wires); playlists and the storyboard are served through the API behind an
output grant (see :mod:`upload_api.domain_logic.playlists`) because the files
they reference need signed URLs of their own."""

from __future__ import annotations

from typing import Any, Protocol

from vidpipe.domain.events import Stage
from vidpipe.domain.jobs import Job, StageStatus


class UrlSigner(Protocol):
    def presigned_get(self, key: str, *, expires_s: int) -> str: ...


def job_view(job: Job, *, api_url: str, signer: UrlSigner, url_ttl_s: int, grant: str = "") -> dict[str, Any]:
    """JSON-ready job for ``GET /jobs/{id}`` (the contract in ARCHITECTURE.md).

    ``grant`` is the query string that lets a plain GET fetch the job's
    playlists and storyboard through the API (see vidpipe.domain.access)."""
    record = job.to_dict()
    stages: dict[str, dict[str, Any]] = {
        stage.value: {"status": state.status.value, "progress": round(state.progress, 3)}
        for stage, state in job.stages.items()
    }
    for stage, state in job.stages.items():
        if state.chunks:  # a chunked transcode: how many of its chunks are encoded
            stages[stage.value]["chunks"] = {"total": state.chunks["total"], "done": state.chunks["done"]}
    return {
        "job_id": job.job_id,
        "status": record["status"],
        "title": job.title,
        "passthrough": job.passthrough,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "source": job.source,
        "stages": stages,
        "outputs": _outputs(job, api_url=api_url.rstrip("/"), signer=signer, url_ttl_s=url_ttl_s, grant=grant),
        "error": job.error,
        "playable_at": job.playable_at,
        "captions": [
            _caption(caption, f"{api_url.rstrip('/')}/jobs/{job.job_id}", f"?{grant}" if grant else "")
            for caption in job.captions
        ],
    }


def _outputs(job: Job, *, api_url: str, signer: UrlSigner, url_ttl_s: int, grant: str) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    job_url = f"{api_url}/jobs/{job.job_id}"
    query = f"?{grant}" if grant else ""
    transcode = job.stages[Stage.TRANSCODE]
    # Completed, or playable early (the lowest rung, before the rest of the ladder).
    if transcode.status is StageStatus.COMPLETED or (
        transcode.status is StageStatus.RUNNING and transcode.outputs.get("playable")
    ):
        outputs["hls_url"] = f"{job_url}/hls/master.m3u8{query}"
        outputs["renditions"] = [
            {**_public(rendition), "url": f"{job_url}/hls/{_media_playlist(rendition)}{query}"}
            for rendition in transcode.outputs.get("renditions", [])
        ]
        outputs["subtitles"] = [
            {**subtitle, "url": f"{job_url}/hls/{subtitle['name']}/index.m3u8{query}"}
            for subtitle in transcode.outputs.get("subtitles", [])
        ]
        if transcode.outputs.get("subtitles_skipped"):
            outputs["subtitles_skipped"] = transcode.outputs["subtitles_skipped"]
    # The MP4 download: a plain file, signed like the images (it is saved as an
    # attachment: the object carries Content-Disposition). Only once every rung is in.
    if transcode.status is StageStatus.COMPLETED and transcode.outputs.get("mp4"):
        mp4_key = str(transcode.outputs.get("prefix", "")) + str(transcode.outputs["mp4"])
        outputs["mp4_url"] = signer.presigned_get(mp4_key, expires_s=url_ttl_s)
    thumbnails = job.stages[Stage.THUMBNAILS]
    if thumbnails.status is StageStatus.COMPLETED:
        prefix = thumbnails.outputs.get("prefix", "")

        def signed(name: str) -> str:
            return signer.presigned_get(prefix + name, expires_s=url_ttl_s)

        outputs["poster_url"] = signed(thumbnails.outputs["poster"])
        outputs["sprite_url"] = signed(thumbnails.outputs["sprite"])
        outputs["storyboard_vtt_url"] = f"{job_url}/thumbnails/storyboard.vtt{query}"
        outputs["thumbnail_urls"] = [signed(name) for name in thumbnails.outputs.get("thumbnails", [])]
    return outputs


def _media_playlist(rendition: dict[str, Any]) -> str:
    """The rendition's media playlist under ``hls/``: ``{name}/index.m3u8`` from
    FFmpeg; MediaConvert records where it wrote it (``master_720p.m3u8``)."""
    return str(rendition.get("playlist") or f"{rendition['name']}/index.m3u8")


def _public(rendition: dict[str, Any]) -> dict[str, Any]:
    # Where the playlist lives is ours to know; the contract gives its URL.
    return {key: value for key, value in rendition.items() if key != "playlist"}


def _caption(caption: dict[str, Any], job_url: str, query: str) -> dict[str, Any]:
    """An added caption as clients see it; a READY one with its playlist's URL."""
    shown = {key: caption.get(key) for key in ("caption_id", "language", "label", "filename", "status", "error")}
    if caption.get("status") == "READY":
        shown["url"] = f"{job_url}/hls/captions-{caption['caption_id']}/index.m3u8{query}"
    return shown
