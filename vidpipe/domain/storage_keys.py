"""Every S3 key of the storage layout, in one place.

Uploads bucket::

    uploads/{job_id}/source          the user's file (its name lives in the job and in metadata, never in a key)
    chunks/{job_id}/...              work files of a chunked transcode (deleted by a lifecycle rule)

Outputs bucket::

    jobs/{job_id}/hls/master.m3u8, jobs/{job_id}/hls/{rendition}/...
    jobs/{job_id}/hls/download.mp4   the progressive MP4 download (the transcode stage writes it)
    jobs/{job_id}/thumbnails/{poster.jpg, sprite.jpg, storyboard.vtt, ...}

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
JOBS_PREFIX = "jobs/"
# The output folder of each stage under jobs/{job_id}/.
HLS_FOLDER = "hls"
THUMBNAILS_FOLDER = "thumbnails"
# The MP4 download, in the transcode stage's folder (it is made from a rung's segments).
MP4_DOWNLOAD_NAME = "download.mp4"


def upload_key(job_id: str) -> str:
    """``uploads/{job_id}/source``: where the browser uploads the job's file."""
    return f"{UPLOAD_KEY_PREFIX}{job_id}/{UPLOAD_OBJECT_NAME}"


def job_id_from_upload_key(key: str) -> str:
    """``uploads/{job_id}/source`` → job_id. Raises ValidationFailed otherwise."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != UPLOAD_KEY_PREFIX or parts[2] != UPLOAD_OBJECT_NAME or not parts[1]:
        raise ValidationFailed(f"not an upload key: {key!r}")
    return parts[1]


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
