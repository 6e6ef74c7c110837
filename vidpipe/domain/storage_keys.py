"""Every S3 key of the storage layout, in one place.

Uploads bucket::

    uploads/{job_id}/source          the user's file (its name lives in the job and in metadata, never in a key)
    chunks/{job_id}/...              work files of a chunked transcode (deleted by a lifecycle rule)
    captions/{job_id}/{caption_id}   a caption file added to a READY job (SubRip or WebVTT)

Outputs bucket::

    jobs/{job_id}/hls/master.m3u8, jobs/{job_id}/hls/{rendition}/...
    jobs/{job_id}/hls/download.mp4   the progressive MP4 download (the transcode stage writes it)
    jobs/{job_id}/thumbnails/{poster.jpg, sprite.jpg, storyboard.vtt, ...}
    jobs/{job_id}/images/{name}      images made on demand, named by their parameters (vidpipe.domain.image_requests)

The template's lifecycle rules name the same prefixes (infra/template.yaml);
change both together.

What can go wrong: :func:`job_id_from_upload_key` and :func:`job_of_output_key`
raise ValidationFailed for a key outside the layout.
"""

from __future__ import annotations

from vidpipe.domain.errors import ValidationFailed

UPLOAD_KEY_PREFIX = "uploads/"
UPLOAD_OBJECT_NAME = "source"
WORK_PREFIX = "chunks/"
CAPTIONS_PREFIX = "captions/"
JOBS_PREFIX = "jobs/"
# The output folder of each stage under jobs/{job_id}/.
HLS_FOLDER = "hls"
THUMBNAILS_FOLDER = "thumbnails"
IMAGES_FOLDER = "images"

# The MP4 download, in the transcode stage's folder (it is made from a rung's segments).
MP4_DOWNLOAD_NAME = "download.mp4"


def upload_key(job_id: str) -> str:
    """``uploads/{job_id}/source``: where the browser uploads the job's file."""
    return f"{UPLOAD_KEY_PREFIX}{job_id}/{UPLOAD_OBJECT_NAME}"


def upload_prefix(job_id: str) -> str:
    """``uploads/{job_id}/``: the folder of the job's upload (every version of it)."""
    return f"{UPLOAD_KEY_PREFIX}{job_id}/"


def job_id_from_upload_key(key: str) -> str:
    """``uploads/{job_id}/source`` → job_id. Raises ValidationFailed otherwise."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != UPLOAD_KEY_PREFIX or parts[2] != UPLOAD_OBJECT_NAME or not parts[1]:
        raise ValidationFailed(f"not an upload key: {key!r}")
    return parts[1]


def caption_upload_key(job_id: str, caption_id: str) -> str:
    """``captions/{job_id}/{caption_id}``: where the client uploads a caption file."""
    return f"{CAPTIONS_PREFIX}{job_id}/{caption_id}"


def caption_of_upload_key(key: str) -> tuple[str, str]:
    """``captions/{job_id}/{caption_id}`` → (job_id, caption_id). Raises ValidationFailed otherwise."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != CAPTIONS_PREFIX or not parts[1] or not parts[2]:
        raise ValidationFailed(f"not a caption upload key: {key!r}")
    return parts[1], parts[2]


def caption_folder(caption_id: str) -> str:
    """The caption's rendition folder under the job's ``hls/``: ``captions-{caption_id}``."""
    return f"captions-{caption_id}"


def work_prefix(job_id: str) -> str:
    """``chunks/{job_id}/``: the chunked transcode's work files, in the uploads bucket."""
    return f"{WORK_PREFIX}{job_id}/"


def work_key(job_id: str, name: str) -> str:
    return f"{work_prefix(job_id)}{name}"


def job_outputs_prefix(job_id: str) -> str:
    """``jobs/{job_id}/``: everything the job's stages wrote, in the outputs bucket."""
    return f"{JOBS_PREFIX}{job_id}/"


def stage_outputs_prefix(job_id: str, folder: str) -> str:
    """``jobs/{job_id}/{folder}/``: one stage's outputs (:data:`HLS_FOLDER`, :data:`THUMBNAILS_FOLDER`)."""
    return f"{job_outputs_prefix(job_id)}{folder}/"


def hls_prefix(job_id: str) -> str:
    return stage_outputs_prefix(job_id, HLS_FOLDER)


def uploads_bucket_folders(job_id: str) -> tuple[str, ...]:
    """Every folder of the job in the uploads bucket: its upload, its work files
    and the caption files added to it."""
    return (upload_prefix(job_id), work_prefix(job_id), f"{CAPTIONS_PREFIX}{job_id}/")


def outputs_bucket_folders(job_id: str) -> tuple[str, ...]:
    """Every folder of the job in the outputs bucket."""
    return (job_outputs_prefix(job_id),)


def mp4_download_key(job_id: str) -> str:
    """``jobs/{job_id}/hls/download.mp4``: the job's progressive MP4."""
    return f"{hls_prefix(job_id)}{MP4_DOWNLOAD_NAME}"


def is_job_output(key: str, job_id: str) -> bool:
    """True for a key under the job's own output folder (and not another job's)."""
    return key.startswith(job_outputs_prefix(job_id))


def job_of_output_key(key: str) -> str:
    """The job id of an output key (``jobs/{job_id}/...``). Refuses keys whose job
    part is empty or holds a wildcard character, which would widen a signed
    policy's resource beyond one job: ValidationFailed."""
    top, job_id, rest = (key.split("/", 2) + ["", ""])[:3]
    if top + "/" != JOBS_PREFIX or not job_id or not rest or set(job_id) & set("*?"):
        raise ValidationFailed(f"not an output of a job: {key!r}")
    return job_id


def on_demand_image_key(job_id: str, name: str) -> str:
    """``jobs/{job_id}/images/{name}``: a thumbnail or animated preview made on demand
    (``name`` from :meth:`~vidpipe.domain.image_requests.ThumbnailRequest.cache_name`)."""
    return f"{stage_outputs_prefix(job_id, IMAGES_FOLDER)}{name}"
