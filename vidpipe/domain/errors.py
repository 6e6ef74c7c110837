"""The one error tree of vidpipe.

Every error that can reach a user carries a stable ``code`` (part of the API
contract: clients and tests match on it) and a readable ``message``::

    VidpipeError                      code, message, http_status
    ├── RequestError                  the caller sent something we refuse (HTTP 4xx)
    │   ├── ValidationFailed          a field is missing or invalid (400)
    │   │   └── DestinationRefused    a URL we will not call: it reaches inside (vidpipe.adapters.outbound_guard)
    │   ├── UploadTooLarge            declared size above the limit (413)
    │   ├── UnsupportedMediaType      content type is not a video (415)
    │   ├── Unauthenticated           no valid API token or output grant (401)
    │   ├── JobNotFound               no job with that id, or not the caller's (404)
    │   ├── WebhookNotFound           no webhook with that id among the caller's (404)
    │   ├── UploadNotOpen             the job takes no more upload calls (409)
    │   ├── UploadIncomplete          completing with a part missing or changed (400)
    │   ├── JobNotReady               what was asked needs a READY job (409)
    │   ├── QuotaExceeded             the owner is over a per-owner limit (429 with Retry-After;
    │   │                             in a stage, final: the job FAILED with QUOTA_EXCEEDED)
    │   └── WebhookSignatureInvalid   a webhook delivery's signature is wrong or stale (401, receivers)
    ├── MediaError                    the uploaded file cannot become a video (job FAILED)
    │   ├── NotAVideo                 not media at all: text, a still image, unknown bytes
    │   │   └── NoVideoStream         media without a picture: audio only
    │   ├── CorruptMedia              the right kind of file, but ffprobe/ffmpeg cannot decode it
    │   │                             (truncated, damaged, or crashing the decoder)
    │   ├── MediaTooLong              duration above the configured limit (read from the header)
    │   ├── UnsupportedDimensions     picture size outside what we encode (2..8192 a side, 8K pixels)
    │   ├── UnsupportedFrameRate      frame rate missing, infinite (timestamps stand still) or absurd
    │   ├── UnsupportedCodec          a stream in a codec we do not decode (outside the allow-list)
    │   ├── ForbiddenReference        a playlist or script (HLS, concat, DASH, SDP...), or a file
    │   │                             embedding one, that would make FFmpeg open other files or URLs
    │   ├── MemoryLimitExceeded       FFmpeg needed more memory than it may use for this file
    │   ├── EncodeTooCostly           the encode (pixels x frames x rungs) cannot finish within
    │   │                             the stage's time limit, known from the probe before it starts
    │   ├── SourceTooLarge            the upload is more than a stage's scratch space can hold,
    │   │                             or a URL import is larger than the largest upload
    │   └── InvalidCaptions           a caption file (SubRip/WebVTT) that cannot be read: fails that
    │                                 caption (captions[i].status FAILED), never the job
    ├── SourceImportFailed            a source URL could not be imported (job FAILED)
    │   ├── SourceUnreachable         no usable answer: refused, timed out, an HTTP error,
    │   │                             too many redirects, too slow on the whole
    │   └── SourceNotVideo            the answer is a web page, text, an image or a playlist
    ├── JobDeleted                    the job was deleted while a stage worked for it: the stage
    │                                 drops its work (and what it wrote), nothing is retried
    └── InfrastructureError           our side failed; the message may be retried
        ├── StorageError              S3 call failed
        ├── JobStoreError             DynamoDB call failed
        │   └── ConcurrentUpdate      optimistic-lock conflict (retry the read-modify-write)
        ├── EventPublishError         EventBridge PutEvents failed
        ├── QueueError                SQS call failed
        ├── WebhookDeliveryFailed     a receiver did not answer 2xx (retried with backoff)
        ├── UploadNotAccepted         a stage got an upload its job has not accepted yet
        ├── FfmpegError               FFmpeg crashed, timed out or is missing
        └── MediaConvertError         MediaConvert refused a job, or the job ended in ERROR/CANCELED

``MediaError`` is final: retrying the same bytes gives the same answer, so a
stage that meets one publishes a Failed event instead of raising. An
``InfrastructureError`` is raised so that SQS redelivers the message.
"""

from __future__ import annotations


class VidpipeError(Exception):
    """Base of every vidpipe error. Subclasses fix ``code`` and ``http_status``."""

    code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class RequestError(VidpipeError):
    code = "BAD_REQUEST"
    http_status = 400


class ValidationFailed(RequestError):
    code = "VALIDATION_FAILED"
    http_status = 400


class DestinationRefused(ValidationFailed):
    """A user's URL names (or resolves to) a place a function must never reach:
    loopback, private networks, metadata services, the stack itself."""

    code = "DESTINATION_REFUSED"
    http_status = 400


class UploadTooLarge(RequestError):
    code = "UPLOAD_TOO_LARGE"
    http_status = 413


class UnsupportedMediaType(RequestError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class Unauthenticated(RequestError):
    code = "UNAUTHENTICATED"
    http_status = 401


class JobNotFound(RequestError):
    code = "JOB_NOT_FOUND"
    http_status = 404


class WebhookNotFound(RequestError):
    code = "WEBHOOK_NOT_FOUND"
    http_status = 404


class UploadNotOpen(RequestError):
    code = "UPLOAD_NOT_OPEN"
    http_status = 409


class UploadIncomplete(RequestError):
    code = "UPLOAD_INCOMPLETE"
    http_status = 400


class JobNotReady(RequestError):
    """What was asked needs a READY job (an image made on demand): the message says its status."""

    code = "JOB_NOT_READY"
    http_status = 409


class QuotaExceeded(RequestError):
    """The owner reached one of their limits (vidpipe.domain.quotas): too many jobs
    in progress, or the day's bytes or minutes of video used up.

    ``retry_after_s`` is when asking again can succeed: the seconds left until
    the day's window rolls over for a daily limit, a short wait for the active
    jobs limit (one of them may end any moment). The API sends it as the
    ``Retry-After`` header. A stage that meets it (the minutes, known only
    once the transcode stage has probed the upload) fails the job: retrying
    the message would meet the same limit until the window rolls over."""

    code = "QUOTA_EXCEEDED"
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int, limit: str) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, int(retry_after_s))
        # Which limit: "active_jobs", "upload_bytes_per_day" or "video_minutes_per_day".
        self.limit = limit


class WebhookSignatureInvalid(RequestError):
    """Raised by vidpipe.domain.webhooks.verify_signature, on the receiver's side."""

    code = "WEBHOOK_SIGNATURE_INVALID"
    http_status = 401


class MediaError(VidpipeError):
    code = "MEDIA_ERROR"
    http_status = 422


class NotAVideo(MediaError):
    code = "NOT_A_VIDEO"


class CorruptMedia(MediaError):
    code = "CORRUPT_MEDIA"


class NoVideoStream(NotAVideo):
    code = "NO_VIDEO_STREAM"


class MediaTooLong(MediaError):
    code = "MEDIA_TOO_LONG"


class UnsupportedDimensions(MediaError):
    code = "UNSUPPORTED_DIMENSIONS"


class UnsupportedFrameRate(MediaError):
    code = "UNSUPPORTED_FRAME_RATE"


class UnsupportedCodec(MediaError):
    """A video or audio stream in a codec outside vidpipe.adapters.ffmpeg.process's allow-list: FFmpeg
    may open only the decoders of the formats we accept (less decoder code that
    hostile bytes can reach)."""

    code = "UNSUPPORTED_CODEC"


class ForbiddenReference(MediaError):
    code = "FORBIDDEN_REFERENCE"


class MemoryLimitExceeded(MediaError):
    """Final, like every MediaError: the same bytes under the same limit fail the
    same way. The limit is sized so that a valid video within our size limits
    never reaches it, so reaching it is the input's doing (a decoder led astray
    by hostile headers); the message names the setting for an operator who
    set it too low."""

    code = "MEMORY_LIMIT_EXCEEDED"


class EncodeTooCostly(MediaError):
    """Final, like every MediaError: the same file under the same time limit
    would time out on every attempt. Raised before FFmpeg starts, from the
    probe's size, rate and duration (transcode.domain_logic.encode_cost); the
    message says what the encode would cost and what the stage can do, for an
    operator who wants to raise the limit (memory, timeout, shorter chunks)."""

    code = "ENCODE_TOO_COSTLY"


class JobDeleted(VidpipeError):
    """Raised inside a stage when its job turns out deleted (DELETE /jobs/{id}):
    the stage has removed what it wrote and drops the message."""

    code = "JOB_DELETED"
    http_status = 404


class SourceImportFailed(VidpipeError):
    """The import function could not fetch a job's ``source_url``
    (source_import.domain_logic.importing). ``retryable`` says whether the same
    request may work later (a 503, a reset connection): the import is then tried
    again, up to the queue's attempts, before the job fails with this code."""

    code = "SOURCE_IMPORT_FAILED"
    http_status = 422

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable


class SourceUnreachable(SourceImportFailed):
    code = "SOURCE_UNREACHABLE"


class SourceNotVideo(SourceImportFailed):
    code = "SOURCE_NOT_VIDEO"


class InvalidCaptions(MediaError):
    """A caption file added to a job is not valid SubRip or WebVTT (or not
    UTF-8, or too big). Final for that caption only: the job stays READY."""

    code = "INVALID_CAPTIONS"


class InfrastructureError(VidpipeError):
    code = "INFRASTRUCTURE_ERROR"
    http_status = 503


class StorageError(InfrastructureError):
    code = "STORAGE_ERROR"


class JobStoreError(InfrastructureError):
    code = "JOB_STORE_ERROR"


class ConcurrentUpdate(JobStoreError):
    code = "CONCURRENT_UPDATE"


class EventPublishError(InfrastructureError):
    code = "EVENT_PUBLISH_ERROR"


class WebhookDeliveryFailed(InfrastructureError):
    code = "WEBHOOK_DELIVERY_FAILED"


class QueueError(InfrastructureError):
    code = "QUEUE_ERROR"


class UploadNotAccepted(InfrastructureError):
    """A stage got an upload before the status function recorded it on the job
    (they read the same event at the same moment): delivered again later."""

    code = "UPLOAD_NOT_ACCEPTED"


class FfmpegError(InfrastructureError):
    code = "FFMPEG_ERROR"


class MediaConvertError(InfrastructureError):
    """MediaConvert refused a job, or a job it ran ended in ERROR or CANCELED."""

    code = "MEDIACONVERT_ERROR"


class SourceTooLarge(MediaError):
    """The upload (or its remux) needs more scratch space than the stage has;
    POST /uploads refuses what no stage could hold, so this means the limits
    were configured apart (or a remux doubled the need)."""

    code = "SOURCE_TOO_LARGE"
