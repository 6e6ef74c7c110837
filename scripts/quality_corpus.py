"""The quality corpus: clips of the kinds of content a video platform meets,
generated with FFmpeg's own test sources so nothing large is committed.

Each clip is a high-rate H.264 "upload" (CRF 16, a keyframe every 2 s as
phones and cameras write them, AAC stereo), ``CLIP_S`` seconds long:

========================  =====================================================
slides_1080p              a slide deck / screen recording: a detailed still
                          picture that changes every 2 s
animation_1080p           flat-colour animation, shapes and gradients moving
grain_1080p               camera footage with grain: a detailed picture,
                          slowly panned, with fresh film grain on every frame
motion_1080p              high motion: a detailed picture panned fast
dark_1080p                a dark scene: the detailed picture in deep shadow,
                          slowly panned, with a little grain (where banding
                          and crushed detail show)
zoom_720p                 continuous zoom into fine detail (every pixel moves)
========================  =====================================================

:func:`ensure_corpus` makes what is missing under a folder and returns the
paths; a clip is remade when its recipe changes (the recipe's hash is in its name).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool  # noqa: E402

CLIP_S = 8
FRAME_RATE = 30
# A detailed, colourful still: the Mandelbrot set's edge at a deep zoom.
STILL = "mandelbrot=s={size}:start_scale=0.02:start_x=-0.743643887037151:start_y=0.131825904205330:maxiter=512"


@dataclass(frozen=True)
class Clip:
    name: str
    # A lavfi graph making the picture, or None for a pan over the still.
    graph: str | None = None
    # With graph None: filters applied to the looped still.
    still_filters: str = ""
    size: str = "1920x1080"


CLIPS: tuple[Clip, ...] = (
    Clip("slides_1080p", graph=f"testsrc=s=1920x1080:r=1/2,fps={FRAME_RATE}"),
    Clip("animation_1080p", graph=f"testsrc2=s=1920x1080:r={FRAME_RATE}"),
    Clip("grain_1080p", still_filters="scroll=h=0.0015,noise=alls=5:allf=t"),
    Clip("motion_1080p", still_filters="scroll=h=0.012:v=0.003"),
    # The detailed still, darkened to shadows (mean luma about 30 of 255), slowly
    # panned, with a little sensor grain: where banding and crushed detail show.
    Clip("dark_1080p", still_filters="eq=brightness=-0.28:gamma=0.6,scroll=h=0.001,noise=alls=3:allf=t"),
    Clip(
        "zoom_720p",
        graph=(
            f"mandelbrot=s=1280x720:r={FRAME_RATE}:start_scale=0.3:end_scale=0.001:end_pts=400"
            ":start_x=-0.743643887037151:start_y=0.131825904205330"
        ),
        size="1280x720",
    ),
)


def _recipe(clip: Clip) -> str:
    return repr((clip, CLIP_S, FRAME_RATE, STILL))


def clip_path(folder: Path, clip: Clip) -> Path:
    digest = hashlib.sha256(_recipe(clip).encode()).hexdigest()[:8]
    return folder / f"{clip.name}-{digest}.mp4"


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True, env=ffmpeg_environment(),
    )  # fmt: skip


def make_clip(clip: Clip, destination: Path) -> None:
    """Write ``clip`` to ``destination`` (via a temporary name, so an interrupted
    run never leaves a half clip that looks finished)."""
    temporary = destination.with_suffix(".partial.mp4")
    if clip.graph is not None:
        picture = ["-f", "lavfi", "-i", clip.graph]
    else:
        still = destination.with_suffix(".still.png")
        _ffmpeg("-f", "lavfi", "-i", STILL.format(size=clip.size), "-frames:v", "1", str(still))
        picture = ["-loop", "1", "-framerate", str(FRAME_RATE), "-i", str(still)]
    filters = ",".join(part for part in (clip.still_filters, "format=yuv420p") if part)
    _ffmpeg(
        *picture,
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(CLIP_S), "-vf", filters, "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-g", str(2 * FRAME_RATE),
        "-c:a", "aac", "-ac", "2", "-b:a", "160k", "-movflags", "+faststart",
        str(temporary),
    )  # fmt: skip
    temporary.replace(destination)
    if clip.graph is None:
        destination.with_suffix(".still.png").unlink(missing_ok=True)


def ensure_corpus(folder: Path, names: set[str] | None = None) -> list[Path]:
    """The corpus clips under ``folder`` (made when missing), in CLIPS order;
    only ``names`` when given."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for clip in CLIPS:
        if names is not None and clip.name not in names:
            continue
        path = clip_path(folder, clip)
        if not path.exists():
            print(f"generating {path.name} ...", file=sys.stderr)
            make_clip(clip, path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else PROJECT_ROOT / "build" / "quality" / "corpus"
    for made in ensure_corpus(target):
        print(made)
