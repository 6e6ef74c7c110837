"""The two stage variations the MediaConvert backend needs: a stage whose work
is finished by another service (the transcode function submitting a job), and
a stage that reads MediaConvert's frame captures instead of the upload (the
thumbnails function on COMPLETE)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image

from tests.unit.test_stage_runner import Fakes, FakeSourceStore
from thumbnails.handlers.thumbnails import captures_input, thumbnails_of_captures
from vidpipe.domain.events import Stage, StageEventKind
from vidpipe.runtime.stage_inputs import StageContext
from vidpipe.runtime.stage_runner import run_stage

EVENTS = Path(__file__).resolve().parents[1] / "events"
JOB_ID = "0b9f5a4c2d8e4f1a9c3b7d6e5f4a3b2c"


def complete_event() -> dict[str, Any]:
    return json.loads((EVENTS / "mediaconvert_complete.json").read_text())


def test_GIVEN_work_that_hands_the_job_over_WHEN_the_stage_runs_THEN_nothing_is_uploaded_and_no_Completed(
    tmp_path: Path,
) -> None:
    fakes, seen = Fakes(), []

    def submit(context: StageContext) -> None:
        seen.append(context.source_path.read_bytes())
        context.report_source({"duration_s": 6.0})

    run_stage(
        stage=Stage.TRANSCODE,
        eventbridge_event=json.loads((EVENTS / "s3_object_created.json").read_text()),
        receive_count=1,
        max_receive_count=3,
        output_folder="hls",
        source_store=fakes.source,
        output_store=fakes.output,
        publisher=fakes.publisher,
        work=submit,
        scratch_root=tmp_path,
    )

    assert len(seen) == 1  # the source was downloaded for probing
    assert fakes.output.calls == []
    assert fakes.publisher.kinds == [StageEventKind.STARTED, StageEventKind.PROGRESS]
    assert fakes.publisher.events[1].source == {"duration_s": 6.0}
    assert list(tmp_path.iterdir()) == []  # scratch cleaned up


class CaptureStore(FakeSourceStore):
    """Serves a distinct JPEG for each capture key (capture i is i x 40 grey)."""

    def download(self, key: str, path: Path, *, version_id: str | None = None, etag: str | None = None) -> None:
        self.downloads.append((key, path))
        index = int(key.rsplit(".", 2)[1])
        picture = Image.new("RGB", (1280, 720), (index * 40, index * 40, index * 40))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG")
        path.write_bytes(buffer.getvalue())


def test_GIVEN_a_MediaConvert_COMPLETE_WHEN_the_thumbnails_stage_runs_THEN_it_reads_the_captures_and_completes(
    tmp_path: Path,
) -> None:
    fakes = Fakes(source=CaptureStore())
    event = complete_event()

    run_stage(
        stage=Stage.THUMBNAILS,
        eventbridge_event=event,
        receive_count=1,
        max_receive_count=3,
        output_folder="thumbnails",
        source_store=fakes.source,
        output_store=fakes.output,
        publisher=fakes.publisher,
        work=lambda context: thumbnails_of_captures(context, event),
        scratch_root=tmp_path,
        read_input=captures_input,
    )

    assert [key for key, _ in fakes.source.downloads] == [f"jobs/{JOB_ID}/captures/frame.{i:07d}.jpg" for i in range(6)]
    assert fakes.publisher.kinds == [StageEventKind.STARTED, StageEventKind.COMPLETED]
    completed = fakes.publisher.events[-1]
    assert completed.job_id == JOB_ID and completed.stage is Stage.THUMBNAILS
    assert completed.outputs is not None and completed.outputs["prefix"] == f"jobs/{JOB_ID}/thumbnails/"
    assert completed.outputs["tile_count"] == 6 and completed.outputs["interval_s"] == 1.0
    [(_, prefix)] = fakes.output.calls
    uploaded = fakes.output.files_at_upload[0]
    assert {"poster.jpg", "sprite.jpg", "storyboard.vtt"} <= uploaded.keys()
    # The sprite holds the six captures in time order: tile k is capture k's grey.
    sprite = Image.open(io.BytesIO(uploaded["sprite.jpg"]))
    width, height = completed.outputs["tile_width"], completed.outputs["tile_height"]
    greys = [sprite.getpixel((k * width + width // 2, height // 2))[0] for k in range(6)]
    assert all(abs(grey - 40 * k) <= 3 for k, grey in enumerate(greys)), greys
    # The poster is the capture with the most detail among the candidates; all
    # are flat here, so the earliest one, at poster size.
    assert Image.open(io.BytesIO(uploaded["poster.jpg"])).size == (1280, 720)


def test_GIVEN_a_COMPLETE_of_another_kind_WHEN_the_thumbnails_stage_runs_THEN_it_is_dropped_without_retry(
    tmp_path: Path,
) -> None:
    fakes = Fakes(source=CaptureStore())
    event = complete_event()
    event["detail"]["outputGroupDetails"].pop(1)  # no frame captures

    run_stage(
        stage=Stage.THUMBNAILS,
        eventbridge_event=event,
        receive_count=1,
        max_receive_count=3,
        output_folder="thumbnails",
        source_store=fakes.source,
        output_store=fakes.output,
        publisher=fakes.publisher,
        work=lambda context: thumbnails_of_captures(context, event),
        scratch_root=tmp_path,
        read_input=captures_input,
    )

    assert fakes.publisher.events == [] and fakes.source.downloads == []
