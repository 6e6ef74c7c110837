"""Stages must not leave files behind for a job that was deleted while they worked.

DELETE /jobs/{id} first marks the job DELETING, then deletes its folders, then
its record (vidpipe.domain.job_deletion). A stage reads the job before
it starts, but it may still be writing when the delete comes. So every write a
stage makes goes through :class:`WritesForLiveJob`, which reads the job again
AFTER the write:

* the job is still there and not DELETING: the delete has not begun, and when
  it does it will find (and delete) what was just written, because it lists
  the folders only after marking the job;
* the job is DELETING or gone: the delete may already have listed the folder,
  so the stage deletes the folder itself and raises JobDeleted, and the stage
  drops its message.

Either way nothing stays. Costs one DynamoDB read per batch of writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from vidpipe.domain.errors import JobDeleted, JobNotFound
from vidpipe.domain.jobs import Job
from vidpipe.runtime.observability import logger


class JobReader(Protocol):
    def get(self, job_id: str) -> Job: ...


def job_is_gone(jobs: JobReader, job_id: str) -> bool:
    """The job was deleted, or its deletion has begun."""
    try:
        return jobs.get(job_id).is_deleting
    except JobNotFound:
        return True


class WritesForLiveJob:
    """``store`` for the writes of one job's stage, confined to ``folder``
    (``jobs/{job_id}/`` or ``chunks/{job_id}/``): after each write, if the job
    is being deleted or gone, the folder is deleted and JobDeleted raised.

    ``store`` is an S3ObjectStore (or a test's fake): it must have the write
    methods the stage calls and ``delete_prefix``."""

    def __init__(self, store: Any, *, jobs: JobReader, job_id: str, folder: str) -> None:
        self._store = store
        self._jobs = jobs
        self._job_id = job_id
        self._folder = folder

    def upload_tree(self, local_dir: Path, prefix: str) -> list[str]:
        keys = self._store.upload_tree(local_dir, prefix)
        self._drop_if_deleted()
        return keys

    def upload_file(self, path: Path, key: str, *, content_type: str | None = None) -> None:
        self._store.upload_file(path, key, content_type=content_type)
        self._drop_if_deleted()

    def read_text(self, key: str) -> str:
        return self._store.read_text(key)

    def download(self, key: str, path: Path) -> None:
        self._store.download(key, path)

    def delete_prefix(self, prefix: str) -> int:
        return int(self._store.delete_prefix(prefix))

    def _drop_if_deleted(self) -> None:
        if job_is_gone(self._jobs, self._job_id):
            removed = self._store.delete_prefix(self._folder)
            logger.info(
                "the job was deleted meanwhile: its folder is removed",
                extra={"folder": self._folder, "objects": removed},
            )
            raise JobDeleted(f"job {self._job_id} was deleted while a stage worked for it")
