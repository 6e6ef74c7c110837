"""What the object store answers about objects and multipart uploads, as
plain data the domain can take without the S3 adapter
(:mod:`vidpipe.adapters.s3` fills them in)."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict


class ObjectInfo(TypedDict):
    """What :meth:`S3ObjectStore.head` tells about an object."""

    size: int
    content_type: str
    etag: str
    last_modified: datetime | None
    metadata: dict[str, str]


class UploadedPart(TypedDict):
    """One part S3 already holds of a multipart upload."""

    part_number: int
    etag: str
    size: int
