"""The on-demand images function, invoked synchronously by the API on a cache
miss (thumbnails/handlers/on_demand.py says what it takes and answers).

What can go wrong: a refusal the function answered becomes the error it named
(RequestError or MediaError with its code and message, e.g. 422 CORRUPT_MEDIA);
ImageInProgress (503, retry after a few seconds) when the function has not
answered within our wait (a cold start): it goes on and stores the image, so
the next request finds it; ImageNotMade (502) when the invoke fails or the
function crashed or timed out.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from vidpipe.domain.errors import InfrastructureError, MediaError, RequestError, VidpipeError


class ImageNotMade(InfrastructureError):
    code = "IMAGE_NOT_MADE"
    http_status = 502


class ImageInProgress(InfrastructureError):
    code = "IMAGE_IN_PROGRESS"
    http_status = 503
    retry_after_s = 5


class LambdaImageMaker:
    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self.function_name = function_name

    def make(self, payload: dict[str, Any]) -> None:
        """Have the function make and store the image ``payload`` describes."""
        try:
            response = self._client.invoke(
                FunctionName=self.function_name, InvocationType="RequestResponse", Payload=json.dumps(payload)
            )
            answer = json.loads(response["Payload"].read() or b"null")
        except ReadTimeoutError as exc:
            # The invocation carries on without us (a synchronous invoke is not
            # cancelled by its caller leaving) and caches the image.
            raise ImageInProgress("the image is being made; ask again in a few seconds") from exc
        except (BotoCoreError, ClientError, ValueError) as exc:
            raise ImageNotMade(f"cannot invoke {self.function_name}: {exc}") from exc
        if response.get("FunctionError") or not isinstance(answer, dict):
            raise ImageNotMade(f"{self.function_name} failed: {str(answer)[:500]}")
        if "error" in answer:
            raise refusal(answer["error"])


def refusal(error: dict[str, Any]) -> VidpipeError:
    """The error the function answered, with its code and message, as the caller should see it."""
    status, code, message = int(error.get("http_status", 500)), str(error.get("code")), str(error.get("message"))
    if 400 <= status < 500:
        refused = RequestError(message, code=code)
        refused.http_status = status
        return refused
    if status == MediaError.http_status:
        return MediaError(message, code=code)
    return ImageNotMade(f"{code}: {message}")
