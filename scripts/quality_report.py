"""Quality per bit, measured: `make quality` runs it and writes docs/QUALITY.md.

Every clip of the generated corpus (scripts/quality_corpus.py) and every
sample goes through the real single-process transcode path
(:func:`transcode_to_hls`, as the transcode function calls it) three times,
once per rate control:

* ``per-title``: the default, capped CRF chosen per video by the title analysis;
* ``fixed``: the fixed ladder we had (each rung's average bitrate);
* ``capped-crf``: plain capped CRF 23, the simple alternative users would pick.

For every rung: VMAF (libvmaf, model vmaf_v0.6.1, the rendition scaled back to
the source's size with bicubic, as commonly done) and PSNR (Y) against the
source, video kbit/s (the video packets of its segments over its length) and,
per run, the encode's CPU seconds (FFmpeg's children, user + system), with the
analysis's share. Then totals, and the goals of issue 12 with their figures.

Asserts nothing. Options: ``--clips a,b`` (corpus names or sample file names),
``--subsample N`` (score every Nth frame; default 5: the pooled mean of a
few dozen frames per rung moves by tenths, and scoring every frame of five
1080p rungs would take longer than the encodes), ``--no-write``, and
``--modes per-title`` to run only some ladders and take the others' figures
from the last run (kept in build/quality/runs.json): handy while tuning, since
the fixed and capped-CRF ladders do not change.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from scripts.quality_corpus import CLIPS, ensure_corpus  # noqa: E402
from transcode.domain_logic.hls import MEDIA_PLAYLIST_NAME  # noqa: E402
from transcode.domain_logic.ladder import DEFAULT_LADDER, RateControl  # noqa: E402
from transcode.domain_logic.transcoding import transcode_to_hls  # noqa: E402
from vidpipe.adapters.ffmpeg.probe import probe_media  # noqa: E402
from vidpipe.adapters.ffmpeg.process import ffmpeg_environment, find_tool  # noqa: E402

REPORT = PROJECT_ROOT / "docs" / "QUALITY.md"
RUNS_FILE = PROJECT_ROOT / "build" / "quality" / "runs.json"
CORPUS_DIR = PROJECT_ROOT / "build" / "quality" / "corpus"
MODES = (RateControl.PER_TITLE, RateControl.FIXED, RateControl.CAPPED_CRF)
TIMEOUT_S = 3600.0


@dataclass
class RungResult:
    name: str
    width: int
    height: int
    kbps: float
    vmaf: float
    psnr: float


@dataclass
class RunResult:
    clip: str
    mode: RateControl
    cpu_s: float
    analysis_cpu_s: float
    crf: float | None
    rungs: list[RungResult] = field(default_factory=list)

    @property
    def total_kbps(self) -> float:
        return sum(rung.kbps for rung in self.rungs)


def load_runs() -> dict[tuple[str, str], RunResult]:
    """The runs kept by earlier invocations, by (clip, mode)."""
    if not RUNS_FILE.exists():
        return {}
    kept = {}
    for item in json.loads(RUNS_FILE.read_text()):
        run = RunResult(item["clip"], RateControl(item["mode"]), item["cpu_s"], item["analysis_cpu_s"], item["crf"],
                        [RungResult(**rung) for rung in item["rungs"]])  # fmt: skip
        kept[(run.clip, run.mode.value)] = run
    return kept


def save_runs(runs: dict[tuple[str, str], RunResult]) -> None:
    RUNS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RUNS_FILE.write_text(json.dumps([asdict(run) for run in runs.values()], indent=1))


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def video_kbps(playlist: Path, duration_s: float) -> float:
    """Video bit rate of a rendition: the sizes of its video packets, read by
    ffprobe from the media playlist, over its duration."""
    completed = subprocess.run(
        [find_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=size",
         "-of", "csv=p=0", str(playlist)],
        capture_output=True, text=True, check=True, env=ffmpeg_environment(),
    )  # fmt: skip
    # One "size," line per packet (the trailing comma is ffprobe's empty side-data column).
    sizes = (line.strip().rstrip(",") for line in completed.stdout.splitlines())
    total_bytes = sum(int(size) for size in sizes if size.isdigit())
    return total_bytes * 8 / duration_s / 1000


def score(
    rendition: Path, source: Path, width: int, height: int, frame_rate: str, subsample: int
) -> tuple[float, float]:
    """(VMAF, PSNR-Y) of the rendition against the source, at the source's size."""
    with tempfile.TemporaryDirectory(prefix="vidpipe-vmaf-") as scratch:
        log = Path(scratch) / "vmaf.json"
        graph = (
            f"[0:v]scale={width}:{height}:flags=bicubic,format=yuv420p,setpts=PTS-STARTPTS[distorted];"
            f"[1:v]fps=fps={frame_rate},format=yuv420p,setpts=PTS-STARTPTS[reference];"
            f"[distorted][reference]libvmaf=n_threads=2:n_subsample={subsample}:feature=name=psnr"
            f":log_fmt=json:log_path={log}"
        )
        subprocess.run(
            [find_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-i", str(rendition), "-i", str(source),
             "-lavfi", graph, "-f", "null", "-"],
            check=True, env=ffmpeg_environment(),
        )  # fmt: skip
        pooled = json.loads(log.read_text())["pooled_metrics"]
        return float(pooled["vmaf"]["mean"]), float(pooled["psnr_y"]["mean"])


def run_clip(path: Path, name: str, mode: RateControl, subsample: int) -> RunResult:
    source = probe_media(path)
    config = replace(DEFAULT_LADDER, rate_control=mode)
    with tempfile.TemporaryDirectory(prefix="vidpipe-quality-") as scratch:
        output = Path(scratch) / "hls"
        before = _children_cpu_s()
        result = transcode_to_hls(path, output, timeout_s=TIMEOUT_S, ladder_config=config)
        cpu_s = _children_cpu_s() - before
        run = RunResult(
            clip=name, mode=mode, cpu_s=cpu_s,
            analysis_cpu_s=result.analysis.cpu_s if result.analysis else 0.0,
            crf=result.renditions[0].crf,
        )  # fmt: skip
        rate = f"{source.frame_rate.numerator}/{source.frame_rate.denominator}"
        for rendition in result.renditions:
            playlist = output / rendition.name / MEDIA_PLAYLIST_NAME
            measured = result.measured[rendition.name]
            vmaf, psnr = score(playlist, path, source.display_width, source.display_height, rate, subsample)
            run.rungs.append(RungResult(rendition.name, rendition.width, rendition.height,
                                        video_kbps(playlist, measured.duration_s), vmaf, psnr))  # fmt: skip
        return run


def clips_to_run(selected: set[str] | None) -> list[tuple[str, Path]]:
    corpus_names = {clip.name for clip in CLIPS}
    wanted_corpus = None if selected is None else selected & corpus_names
    clips = [(path.name.rsplit("-", 1)[0], path) for path in ensure_corpus(CORPUS_DIR, wanted_corpus)]
    for sample in sorted((PROJECT_ROOT / "sample_media").glob("*.mp4")):
        if selected is None or sample.name in selected or sample.stem in selected:
            clips.append((sample.stem, sample))
    return clips


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def render(runs: list[RunResult], subsample: int, seconds: float) -> str:
    by_clip: dict[str, dict[RateControl, RunResult]] = defaultdict(dict)
    for run in runs:
        by_clip[run.clip][run.mode] = run
    lines = [
        "# Quality per bit",
        "",
        f"Measured by `make quality` (scripts/quality_report.py) on {datetime.now(UTC):%Y-%m-%d}, "
        f"{len(by_clip)} clips, in {seconds / 60:.0f} min on this machine (runs kept from an earlier invocation with "
        "`--resume` or `--modes` not counted). Every clip goes through the real "
        "single-process transcode path (`transcode_to_hls`) with each rate control; every rung is scored with "
        f"VMAF (vmaf_v0.6.1, rendition scaled back to the source size with bicubic, every {subsample}. frame) and "
        "PSNR-Y against the source. kbit/s is video only. CPU is FFmpeg's (user + system) for the whole run, "
        "analysis included.",
        "",
        "* **per-title** (default): capped CRF chosen per video from two probe encodes of sampled scenes "
        "scored with VMAF (`transcode/domain_logic/title_analysis.py`), caps at the fixed ladder's average rates and "
        "never above the source's own rate; a title too short or small for the analysis to cost at most a tenth "
        "of its encode (`worth_analysing`) gets the default CRF 23 instead (analysis 0.0 below);",
        "* **fixed**: the fixed ladder (5000/2800/1400/800/400 kbit/s at 16:9), `LadderRateControl=fixed`;",
        "* **capped-crf**: plain capped CRF 23 with the same caps, `LadderRateControl=capped-crf`.",
        "",
        "## Per clip and rung",
        "",
        "| clip | rung | per-title kbit/s | VMAF | PSNR | fixed kbit/s | VMAF | PSNR "
        "| capped-crf kbit/s | VMAF | PSNR |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for clip, modes in by_clip.items():
        reference = modes[MODES[0]]
        for index, rung in enumerate(reference.rungs):
            cells = [clip, rung.name]
            for mode in MODES:
                other = modes[mode].rungs[index]
                cells += [f"{other.kbps:.0f}", f"{other.vmaf:.1f}", f"{other.psnr:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Per clip: bits, CPU and the per-title decision",
        "",
        "| clip | per-title CRF | per-title kbit/s (all rungs) | fixed | capped-crf | per-title / fixed | "
        "CPU s per-title (analysis) | fixed | capped-crf |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for clip, modes in by_clip.items():
        ours, fixed, crf = (modes[mode] for mode in MODES)
        lines.append(
            f"| {clip} | {ours.crf if ours.crf is not None else '-'} | {ours.total_kbps:.0f} | {fixed.total_kbps:.0f} "
            f"| {crf.total_kbps:.0f} | {ours.total_kbps / fixed.total_kbps:.2f} | {ours.cpu_s:.1f} "
            f"({ours.analysis_cpu_s:.1f}) | {fixed.cpu_s:.1f} | {crf.cpu_s:.1f} |"
        )
    totals = {mode: sum(by_clip[clip][mode].total_kbps for clip in by_clip) for mode in MODES}
    cpu = {mode: sum(by_clip[clip][mode].cpu_s for clip in by_clip) for mode in MODES}
    analysis_cpu = sum(by_clip[clip][MODES[0]].analysis_cpu_s for clip in by_clip)
    encode_cpu = cpu[MODES[0]] - analysis_cpu
    rung_names = sorted({rung.name for run in runs for rung in run.rungs}, key=lambda name: -int(name.rstrip("p")))
    lines += [
        "",
        "## Mean VMAF per rung over the corpus",
        "",
        "| rung | clips | per-title | fixed | capped-crf | per-title - fixed |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    worst_gap = float("inf")
    for name in rung_names:
        scores = {
            mode: [rung.vmaf for clip in by_clip for rung in by_clip[clip][mode].rungs if rung.name == name]
            for mode in MODES
        }
        gap = _mean(scores[MODES[0]]) - _mean(scores[RateControl.FIXED])
        worst_gap = min(worst_gap, gap)
        lines.append(
            f"| {name} | {len(scores[MODES[0]])} | {_mean(scores[MODES[0]]):.2f} | "
            f"{_mean(scores[RateControl.FIXED]):.2f} | {_mean(scores[RateControl.CAPPED_CRF]):.2f} | {gap:+.2f} |"
        )
    tops = [(clip, by_clip[clip][MODES[0]].rungs[0]) for clip in by_clip]
    below = [f"{clip} ({rung.vmaf:.1f})" for clip, rung in tops if rung.vmaf < 93]
    lines += [
        "",
        "## Totals and goals",
        "",
        f"* Total ladder bits, per-title / fixed: **{totals[MODES[0]] / totals[RateControl.FIXED]:.2f}** "
        f"(goal <= 0.70); capped-crf / fixed: {totals[RateControl.CAPPED_CRF] / totals[RateControl.FIXED]:.2f}; "
        f"per-title / capped-crf: {totals[MODES[0]] / totals[RateControl.CAPPED_CRF]:.2f}.",
        f"* Worst rung's mean VMAF, per-title - fixed: **{worst_gap:+.2f}** (goal >= -1).",
        f"* Top rung VMAF >= 93: {len(tops) - len(below)} of {len(tops)} clips"
        + (f"; below: {', '.join(below)}" if below else "")
        + ".",
        f"* Per-title analysis CPU / encode CPU: **{analysis_cpu / encode_cpu:.3f}** (goal <= 0.10); "
        f"total CPU per-title / fixed: {cpu[MODES[0]] / cpu[RateControl.FIXED]:.2f}, "
        f"capped-crf / fixed: {cpu[RateControl.CAPPED_CRF] / cpu[RateControl.FIXED]:.2f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", default="", help="comma-separated corpus names or sample names (default: all)")
    parser.add_argument("--subsample", type=int, default=5, help="score every Nth frame")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/QUALITY.md alone")
    parser.add_argument("--modes", default=",".join(MODES), help="ladders to run; others come from the last run")
    parser.add_argument("--resume", action="store_true", help="take every run the last invocation finished")
    arguments = parser.parse_args(argv)
    selected = {name.strip() for name in arguments.clips.split(",") if name.strip()} or None
    modes = [RateControl(mode.strip()) for mode in arguments.modes.split(",") if mode.strip()]
    started = time.monotonic()
    kept = load_runs()
    runs = []
    for name, path in clips_to_run(selected):
        for mode in MODES:
            if (mode not in modes or arguments.resume) and (name, mode.value) in kept:
                runs.append(kept[(name, mode.value)])
                continue
            run = run_clip(path, name, mode, arguments.subsample)
            runs.append(run)
            kept[(name, mode.value)] = run
            save_runs(kept)
            print(
                f"{name:28} {mode.value:10} crf={run.crf} cpu={run.cpu_s:6.1f}s analysis={run.analysis_cpu_s:4.1f}s "
                + " ".join(f"{r.name}:{r.kbps:.0f}k/{r.vmaf:.1f}" for r in run.rungs),
                flush=True,
            )
    report = render(runs, arguments.subsample, time.monotonic() - started)
    print(report)
    if not arguments.no_write:
        REPORT.write_text(report, encoding="utf-8")
        print(f"written to {REPORT.relative_to(PROJECT_ROOT)}")
    shutil.rmtree(PROJECT_ROOT / "build" / "quality" / "scratch", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
