"""Final assembly: scene clips, narration and ambience into one MP4 with captions and a thumbnail.

Everything streams through ffmpeg on files, so memory does not grow with the length of the video:

1. one small ffmpeg per scene (two at a time) turns its clip into exactly the scene's frames at the
   output size and encodes them as the *final* H.264, and in the same decode also writes the scene's
   narration piece, its ambience piece and a thumbnail candidate frame;
2. the concat demuxer joins the scene files (`-c copy`) and the audio pieces;
3. one measurement pass reads the mixed audio for loudness, and ONE final pass mixes narration over the
   ducked ambience, normalises loudness, encodes AAC and muxes the copied video with a soft subtitle
   track, `+faststart`.

The timeline is laid on the frame grid first (scene starts are whole frames and whole audio samples),
so picture, voice and captions cannot drift apart however many scenes there are.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, Field

from vidgen.errors import InvalidInputError
from vidgen.files import atomic_path
from vidgen.media.captions import build_chapters, build_cues, write_srt
from vidgen.media.ffmpeg import FFmpegError, StreamInfo, ffmpeg_exe, probe, run_ffmpeg
from vidgen.models import Chapter, WordTiming

log = logging.getLogger(__name__)

PROVIDER = "assembly"
SAMPLE_RATE = 48_000
THUMB_SIZE = (1280, 720)


class SceneMedia(BaseModel):
    index: int = Field(ge=0)
    clip: Path
    narration: Path
    narration_duration_s: float = Field(gt=0)
    words: list[WordTiming] = Field(default_factory=list)
    sound: Path | None = None
    title: str = ""


class AssemblyRequest(BaseModel):
    scenes: list[SceneMedia]
    out_dir: Path
    work_dir: Path
    basename: str = Field(default="video", min_length=1, max_length=120, pattern=r"^[^./\\\x00][^/\\\x00]*$")  # a file name
    width: int = Field(default=1920, ge=64, le=7680)
    height: int = Field(default=1080, ge=64, le=4320)
    fps: int = Field(default=30, ge=1, le=120)
    lead_in_s: float = Field(default=0.35, ge=0)
    tail_s: float = Field(default=0.6, ge=0)
    target_lufs: float = Field(default=-14.0, ge=-70, le=-5)
    ambience_db: float = -18.0  # gain on the sound bed before mixing; ducking comes on top while speaking
    duck: bool = True
    title: str
    crossfade_s: float = Field(default=0.5, ge=0)  # ambience overlap between neighbouring scenes
    max_slowdown: float = Field(default=1.25, ge=1.0)  # a short clip is slowed at most this much, then held
    x264_preset: str = "veryfast"
    crf: int = Field(default=20, ge=0, le=51)
    jobs: int = Field(default=0, ge=0)  # scenes rendered at once; 0 = min(2, CPUs)
    subtitle_language: str = "eng"  # ISO 639-2, as MP4 wants it
    subtitle_title: str = "English"
    keep_work: bool = False


class AssemblyResult(BaseModel):
    video: Path
    srt: Path
    thumbnail: Path
    duration_s: float
    chapters: list[Chapter]
    scene_starts: list[float]
    timings: dict[str, float] = Field(default_factory=dict)  # seconds per stage, for benchmarks


# --- the timeline -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slot:
    """Where one scene sits, in frames and in audio samples (both exact integers)."""

    start_frame: int
    frames: int
    start_sample: int
    samples: int

    @property
    def end_sample(self) -> int:
        return self.start_sample + self.samples


def plan_timeline(durations_s: Sequence[float], fps: int, sample_rate: int = SAMPLE_RATE) -> list[Slot]:
    """Scene slots on the frame grid; cumulative rounding keeps the total within half a frame."""
    slots: list[Slot] = []
    elapsed = 0.0
    start_frame = 0
    for duration in durations_s:
        elapsed += duration
        end_frame = max(start_frame + 1, round(elapsed * fps))
        start_sample = round(start_frame * sample_rate / fps)
        end_sample = round(end_frame * sample_rate / fps)
        slots.append(Slot(start_frame, end_frame - start_frame, start_sample, end_sample - start_sample))
        start_frame = end_frame
    return slots


@dataclass(frozen=True)
class AmbiencePiece:
    """One scene's stretch of its ambience track: `silence` samples, then `sound` samples of its sound.

    Scenes alternate between two tracks so a scene's sound can fade out while the next one fades in.
    """

    track: int
    silence: int  # samples of silence before the sound starts
    sound: int  # samples of (looped) sound, faded in and out over `fade`
    fade: int


def plan_ambience(slots: Sequence[Slot], crossfade_samples: int) -> list[AmbiencePiece]:
    total = slots[-1].end_sample
    # a piece is its slot plus half a fade at each inner edge; it must hold a whole fade in and out
    shortest = min(s.samples for s in slots)
    fade = max(0, min(crossfade_samples, 2 * shortest // 3) // 2 * 2)
    half = fade // 2
    track_end = [0, 0]
    pieces: list[AmbiencePiece] = []
    for i, slot in enumerate(slots):
        track = i % 2
        begin = max(0, slot.start_sample - half)
        end = min(total, slot.end_sample + half)
        pieces.append(AmbiencePiece(track, begin - track_end[track], end - begin, fade))
        track_end[track] = end
    return pieces


# --- helpers ------------------------------------------------------------------------------------
def _invalid(message: str) -> InvalidInputError:
    return InvalidInputError(message, provider=PROVIDER)


def _concat_line(path: Path) -> str:
    return "file '" + str(path.resolve()).replace("'", "'\\''") + "'\n"


def _write_concat_list(paths: Sequence[Path], list_path: Path) -> Path:
    list_path.write_text("".join(_concat_line(p) for p in paths), encoding="utf-8")
    return list_path


def _ffmpeg_info_log(args: list[str], *, what: str) -> str:
    """Run ffmpeg at log level info (where ebur128 prints its summary) and return its log."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "info", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise FFmpegError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stderr


def _check_inputs(request: AssemblyRequest) -> list[SceneMedia]:
    if not request.scenes:
        raise _invalid("assembly needs at least one scene; got none")
    scenes = sorted(request.scenes, key=lambda s: s.index)
    seen: set[int] = set()
    for scene in scenes:
        if scene.index in seen:
            raise _invalid(f"scene {scene.index} appears twice")
        seen.add(scene.index)
        named = [("clip", scene.clip), ("narration", scene.narration)]
        if scene.sound is not None:
            named.append(("sound", scene.sound))
        for what, path in named:
            if not path.is_file():
                raise _invalid(f"scene {scene.index}: {what} {path} does not exist")
            if path.stat().st_size == 0:
                raise _invalid(f"scene {scene.index}: {what} {path} is empty")
    return scenes


# --- per-scene rendering ------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneJob:
    scene: SceneMedia
    slot: Slot
    ambience: AmbiencePiece
    lead_in_samples: int
    video_out: Path
    narration_out: Path
    ambience_out: Path
    thumb_out: Path


def _probe_clip(scene: SceneMedia) -> tuple[StreamInfo, float]:
    """The clip's video stream and duration; refuses what cannot be a clip."""
    try:
        info = probe(scene.clip)
    except FFmpegError as e:
        raise _invalid(f"scene {scene.index}: clip {scene.clip} is not a readable video: {e}") from e
    video = info.video
    if video is None:
        raise _invalid(f"scene {scene.index}: clip {scene.clip} has no video stream")
    if info.duration_s <= 0:
        raise _invalid(f"scene {scene.index}: clip {scene.clip} has no duration")
    return video, info.duration_s


def _check_sound(index: int, sound: Path) -> None:
    """A sound is looped (`-stream_loop -1`), and ffmpeg loops an input without samples forever."""
    try:
        info = probe(sound)
    except FFmpegError as e:
        raise _invalid(f"scene {index}: sound {sound} is not a readable audio file") from e
    if info.audio is None:
        raise _invalid(f"scene {index}: sound {sound} has no audio stream")
    if info.duration_s < 0.05:
        raise _invalid(f"scene {index}: sound {sound} holds no audio ({info.duration_s:.2f} s)")


def _video_chain(req: AssemblyRequest, job: SceneJob, clip: StreamInfo, clip_s: float) -> str:
    """Clip -> exactly `frames` frames at the output geometry: slowed a little and/or held if short."""
    scene_s = job.slot.frames / req.fps
    slow = min(req.max_slowdown, scene_s / clip_s) if clip_s < scene_s else 1.0
    w, h = req.width, req.height
    steps = ["setpts=PTS-STARTPTS"]
    if slow > 1.0001:
        steps.append(f"setpts={slow:.6f}*PTS")
    steps.append(f"fps={req.fps}")
    if (clip.width, clip.height) != (w, h):  # scale and pad copy every frame even at the same size
        steps += [
            f"scale={w}:{h}:force_original_aspect_ratio=decrease:flags=bicubic",
            f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black",
        ]
    steps += [
        "setsar=1",
        f"tpad=stop_mode=clone:stop_duration={scene_s + 1:.3f}",
        f"trim=end_frame={job.slot.frames}",
    ]
    # No watermark here: the channel's mark is drawn once, on the 16:9 composites the clips are made from.
    mid = job.slot.frames // 2
    return (
        f"[0:v:0]{','.join(steps)},split=2[vmain][vthumb];"
        f"[vthumb]select='eq(n\\,{mid})',scale={THUMB_SIZE[0]}:{THUMB_SIZE[1]}:flags=bicubic[thumb];"
        "[vmain]format=yuv420p[vout]"
    )


def _render_scene(req: AssemblyRequest, job: SceneJob) -> SceneJob:
    scene = job.scene
    clip_video, clip_s = _probe_clip(scene)
    if scene.sound is not None:
        _check_sound(scene.index, scene.sound)
    args: list[str] = ["-i", str(scene.clip), "-i", str(scene.narration)]
    narration_input = 1
    graph = [_video_chain(req, job, clip_video, clip_s)]

    samples = job.slot.samples
    graph.append(
        f"[{narration_input}:a:0]aresample={SAMPLE_RATE},aformat=sample_fmts=s16:channel_layouts=mono,"
        f"asetpts=N/SR/TB,adelay=delays={job.lead_in_samples}S:all=1,"
        f"apad=whole_len={samples},atrim=end_sample={samples}[nar]"
    )
    amb = job.ambience
    if scene.sound is not None:
        args += ["-stream_loop", "-1", "-i", str(scene.sound)]
        chain = (
            f"[{narration_input + 1}:a:0]aresample={SAMPLE_RATE},aformat=sample_fmts=s16:channel_layouts=stereo,"
            f"asetpts=N/SR/TB,atrim=end_sample={amb.sound}"
        )
        if amb.fade:
            # quarter-sine fades: the outgoing and incoming beds sum to constant power
            chain += (
                f",afade=t=in:ns={amb.fade}:curve=qsin"
                f",afade=t=out:start_sample={amb.sound - amb.fade}:ns={amb.fade}:curve=qsin"
            )
        if amb.silence:
            chain += f",adelay=delays={amb.silence}S:all=1"
        graph.append(chain + "[amb]")
    else:
        graph.append(
            f"anullsrc=r={SAMPLE_RATE}:cl=stereo,aformat=sample_fmts=s16,"
            f"atrim=end_sample={amb.silence + amb.sound}[amb]"
        )
    args += ["-filter_complex", ";".join(graph)]
    args += [
        "-map", "[vout]", "-frames:v", str(job.slot.frames), "-an",
        "-c:v", "libx264", "-preset", req.x264_preset, "-crf", str(req.crf),
        "-g", str(2 * req.fps), "-pix_fmt", "yuv420p", str(job.video_out),
        "-map", "[thumb]", "-frames:v", "1", "-update", "1", "-q:v", "2", str(job.thumb_out),
        "-map", "[nar]", "-c:a", "pcm_s16le", str(job.narration_out),
        "-map", "[amb]", "-c:a", "pcm_s16le", str(job.ambience_out),
    ]  # fmt: skip
    # generous: a 10 s scene takes seconds; only a hung ffmpeg gets anywhere near this
    timeout = 600 + 60 * job.slot.frames / req.fps
    try:
        run_ffmpeg(args, what=f"scene {scene.index}", timeout=timeout)
    except FFmpegError as e:
        raise _diagnose(scene, e) from e
    except subprocess.TimeoutExpired as e:
        raise FFmpegError(f"scene {scene.index}: ffmpeg did not finish within {timeout:.0f} s") from e
    return job


def _diagnose(scene: SceneMedia, error: FFmpegError) -> InvalidInputError:
    """Name the input of a scene that ffmpeg could not use, when probing can tell which one."""
    inputs = [("clip", scene.clip, "video"), ("narration", scene.narration, "audio")]
    if scene.sound is not None:
        inputs.append(("sound", scene.sound, "audio"))
    for what, path, kind in inputs:
        try:
            info = probe(path)
        except FFmpegError:
            return _invalid(f"scene {scene.index}: {what} {path} is not a readable media file")
        if info.first(kind) is None:
            return _invalid(f"scene {scene.index}: {what} {path} has no {kind} stream")
    return _invalid(f"scene {scene.index}: its media could not be decoded: {error}")


# --- the final pass -----------------------------------------------------------------------------
def _audio_graph(req: AssemblyRequest, narration_input: int, ambience_inputs: Sequence[int], total_samples: int) -> str:
    """Narration over the (ducked) ambience bed, ending at `[mix]`; both tracks exactly the video's length."""
    stereo = f"aformat=sample_fmts=fltp:sample_rates={SAMPLE_RATE}:channel_layouts=stereo"
    fit = f"apad=whole_len={total_samples},atrim=end_sample={total_samples}"
    if not ambience_inputs:
        return f"[{narration_input}:a]{stereo},{fit}[mix]"
    parts: list[str] = []
    if len(ambience_inputs) == 2:
        a, b = ambience_inputs
        parts.append(f"[{a}:a][{b}:a]amix=inputs=2:normalize=0:duration=longest,{stereo},volume={req.ambience_db}dB,{fit}[bed]")
    else:
        parts.append(f"[{ambience_inputs[0]}:a]{stereo},volume={req.ambience_db}dB,{fit}[bed]")
    if req.duck:
        parts.append(f"[{narration_input}:a]{stereo},{fit},asplit=2[voice][key]")
        parts.append(
            "[bed][key]sidechaincompress=threshold=0.02:ratio=4:attack=20:release=400:knee=2:detection=rms[ducked]"
        )
        parts.append("[voice][ducked]amix=inputs=2:normalize=0:duration=first[mix]")
    else:
        parts.append(f"[{narration_input}:a]{stereo},{fit}[voice]")
        parts.append("[voice][bed]amix=inputs=2:normalize=0:duration=first[mix]")
    return ";".join(parts)


class Loudness(BaseModel):
    integrated_lufs: float
    sample_peak_dbfs: float


_INTEGRATED = re.compile(r"Integrated loudness:\s*\n\s*I:\s*(-?[\d.]+|-inf) LUFS")
_PEAK = re.compile(r"Sample peak:\s*\n\s*Peak:\s*(-?[\d.]+|-inf) dBFS")
PEAK_CEILING_DB = -1.5


def _measure_loudness(req: AssemblyRequest, audio_inputs: list[str], ambience_count: int, total: int) -> Loudness | None:
    """Integrated loudness and peak of the mix (the first of two passes); None for silence.

    The EBU R128 meter (`ebur128`) measures what loudnorm's own first pass would, at a tenth of the
    cost (loudnorm analyses at 192 kHz: ~30 s of CPU per 10 minutes of audio against ~2 s).
    """
    graph = _audio_graph(req, 0, [1 + k for k in range(ambience_count)], total) + ";[mix]ebur128=peak=sample:framelog=quiet[out]"
    log_text = _ffmpeg_info_log([*audio_inputs, "-filter_complex", graph, "-map", "[out]", "-f", "null", "-"], what="loudness measurement")
    integrated, peak = _INTEGRATED.search(log_text), _PEAK.search(log_text)
    if not integrated or not peak or integrated.group(1) == "-inf" or float(integrated.group(1)) < -70:
        return None
    return Loudness(integrated_lufs=float(integrated.group(1)), sample_peak_dbfs=float(peak.group(1)))


def _normalise(req: AssemblyRequest, loudness: Loudness | None) -> str:
    """The second pass: one static gain to the target (what loudnorm's linear mode applies) and a
    look-ahead limiter for the peaks that gain would push past the ceiling.

    loudnorm in linear mode falls back to its dynamic mode whenever peaks would exceed its ceiling,
    which speech at -14 LUFS nearly always does; the dynamic mode pumps the ambience and costs 7x the
    CPU, so the peaks are limited instead.
    """
    if loudness is None:
        return "anull"
    gain = req.target_lufs - loudness.integrated_lufs
    chain = f"volume={gain:.2f}dB"
    if loudness.sample_peak_dbfs + gain > PEAK_CEILING_DB:
        ceiling = 10 ** (PEAK_CEILING_DB / 20)
        chain += f",alimiter=limit={ceiling:.4f}:attack=5:release=50:level=false:latency=true"
    return chain


# --- thumbnail ----------------------------------------------------------------------------------
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/Library/Fonts/Arial Bold.ttf",
    "C:/Windows/Fonts/arialbd.ttf",
)


def load_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A bold TrueType font if the system has one, else Pillow's built-in scalable font."""
    for candidate in _FONT_CANDIDATES:
        if os.path.isfile(candidate):
            try:
                return ImageFont.truetype(candidate, size)
            except OSError:
                continue
    return ImageFont.load_default(size=size)


def interest_score(image: Image.Image) -> float:
    """How much there is to look at: tonal variety, edge density and colour of a small copy.

    Histogram entropy and edges carry most of the weight because a flat or letterboxed frame can
    have high contrast and strong colour yet nothing in it.
    """
    small = np.asarray(image.convert("RGB").resize((160, 90)), dtype=np.float32)
    r, g, b = small[..., 0], small[..., 1], small[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    hist = np.histogram(luma, bins=32, range=(0, 256))[0].astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    entropy = float(-(p * np.log2(p)).sum())
    edges = float(np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean())
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    return 20.0 * entropy + 5.0 * edges + 0.1 * colourfulness


def _wrap_title(draw: ImageDraw.ImageDraw, title: str, font, max_width: int) -> list[str]:
    lines: list[str] = []
    for word in title.split():
        trial = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(trial, font=font) <= max_width:
            lines[-1] = trial
        else:
            lines.append(word)
    return lines


def render_thumbnail(frame: Path | Image.Image, title: str, out_path: Path) -> Path:
    """A 1280x720 JPEG: the frame, darkened towards the bottom, with the title large and outlined."""
    if isinstance(frame, Image.Image):
        canvas = frame.convert("RGB").resize(THUMB_SIZE, Image.Resampling.LANCZOS)
    else:
        with Image.open(frame) as opened:
            canvas = opened.convert("RGB").resize(THUMB_SIZE, Image.Resampling.LANCZOS)
    width, height = THUMB_SIZE
    shade = np.clip((np.arange(height) - height * 0.35) / (height * 0.65), 0, 1) * 170
    alpha = Image.fromarray(np.repeat(shade[:, None], width, axis=1).astype(np.uint8), mode="L")
    canvas = Image.composite(Image.new("RGB", THUMB_SIZE, (0, 0, 0)), canvas, alpha)
    draw = ImageDraw.Draw(canvas)
    title = " ".join(title.split()) or " "
    margin = 56
    for size in range(120, 35, -6):
        font = load_font(size)
        lines = _wrap_title(draw, title, font, width - 2 * margin)
        line_h = size * 1.12
        widest = max(draw.textlength(line, font=font) for line in lines)
        if len(lines) <= 3 and widest <= width - 2 * margin and line_h * len(lines) <= height * 0.5:
            break
    stroke = max(3, size // 14)
    y = height - margin - line_h * len(lines)
    for line in lines:
        x = (width - draw.textlength(line, font=font)) / 2
        draw.text((x, y), line, font=font, fill=(255, 255, 255), stroke_width=stroke, stroke_fill=(0, 0, 0))
        y += line_h
    out_path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_path, "JPEG", quality=90, optimize=True)
    return out_path


# --- the whole assembly -------------------------------------------------------------------------
def _atomic_move(src: Path, dst: Path) -> None:
    """Move a finished file from the work folder into place (copying when it is another filesystem)."""
    with atomic_path(dst) as tmp:
        if src.stat().st_dev == dst.parent.stat().st_dev:
            os.replace(src, tmp)
        else:
            shutil.copyfile(src, tmp)


def assemble(request: AssemblyRequest, *, progress: Callable[[int, int], None] | None = None) -> AssemblyResult:
    """Render the finished video, its .srt and thumbnail into `out_dir`; see the module docstring.

    `progress(done, total)` is called as scenes finish (the final pass counts as the last step).
    Raises InvalidInputError naming the scene for inputs that cannot be used.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    req = request
    scenes = _check_inputs(req)
    work = req.work_dir / f"assembly-{req.basename}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    req.out_dir.mkdir(parents=True, exist_ok=True)

    durations = [req.lead_in_s + s.narration_duration_s + req.tail_s for s in scenes]
    slots = plan_timeline(durations, req.fps)
    total_samples = slots[-1].end_sample
    total_frames = slots[-1].start_frame + slots[-1].frames
    crossfade = round(req.crossfade_s * SAMPLE_RATE)
    pieces = plan_ambience(slots, crossfade)
    lead_in = round(req.lead_in_s * SAMPLE_RATE)
    jobs = [
        SceneJob(
            scene=scene, slot=slot, ambience=piece, lead_in_samples=lead_in,
            video_out=work / f"scene-{n:04d}.mp4", narration_out=work / f"narration-{n:04d}.wav",
            ambience_out=work / f"ambience-{n:04d}.wav", thumb_out=work / f"thumb-{n:04d}.jpg",
        )
        for n, (scene, slot, piece) in enumerate(zip(scenes, slots, pieces))
    ]  # fmt: skip

    workers = req.jobs or max(1, min(2, os.cpu_count() or 1))
    steps = len(jobs) + 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scene") as pool:
        futures = [pool.submit(_render_scene, req, job) for job in jobs]
        done_count = 0
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in finished:
                if f.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise f.exception()  # type: ignore[misc]
                done_count += 1
            if progress:
                progress(done_count, steps)
    timings["scenes"] = time.perf_counter() - t0

    # captions, chapters
    t1 = time.perf_counter()
    scene_starts = [slot.start_sample / SAMPLE_RATE for slot in slots]
    cues = build_cues([s.words for s in scenes], [(slot.start_sample + lead_in) / SAMPLE_RATE for slot in slots])
    srt_work = write_srt(cues, work / "captions.srt")
    duration_s = total_frames / req.fps
    chapters = build_chapters([s.title for s in scenes], scene_starts, total_s=duration_s)

    # audio + mux
    video_list = _write_concat_list([j.video_out for j in jobs], work / "video.txt")
    narration_list = _write_concat_list([j.narration_out for j in jobs], work / "narration.txt")
    audio_inputs = ["-f", "concat", "-safe", "0", "-i", str(narration_list)]
    ambience_inputs: list[int] = []
    if any(s.sound is not None for s in scenes):
        for track in (0, 1):
            files = [j.ambience_out for j in jobs if j.ambience.track == track]
            if files:
                listed = _write_concat_list(files, work / f"ambience-{track}.txt")
                audio_inputs += ["-f", "concat", "-safe", "0", "-i", str(listed)]
                ambience_inputs.append(2 + len(ambience_inputs))  # 0: video, 1: narration in the final pass
    loudness = _measure_loudness(req, audio_inputs, len(ambience_inputs), total_samples)
    timings["loudness_measure"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    final_tmp = work / "final.mp4"
    graph = _audio_graph(req, 1, ambience_inputs, total_samples) + (
        f";[mix]{_normalise(req, loudness)},"
        f"aformat=sample_fmts=fltp:channel_layouts=stereo,atrim=end_sample={total_samples}[aout]"
    )
    args = ["-f", "concat", "-safe", "0", "-i", str(video_list), *audio_inputs]
    subtitle_input = None
    if cues:
        subtitle_input = 2 + len(ambience_inputs)
        args += ["-i", str(srt_work)]
    args += ["-filter_complex", graph, "-map", "0:v:0", "-map", "[aout]"]
    if subtitle_input is not None:
        args += ["-map", f"{subtitle_input}:s:0", "-c:s", "mov_text",
                 "-metadata:s:s:0", f"language={req.subtitle_language}",
                 "-metadata:s:s:0", f"title={req.subtitle_title}",
                 "-metadata:s:s:0", f"handler_name={req.subtitle_title}"]  # fmt: skip
    args += [
        "-c:v", "copy", "-c:a", "aac", "-b:a", "192k", "-ar", str(SAMPLE_RATE), "-ac", "2",
        "-metadata", f"title={req.title}", "-metadata:s:a:0", f"language={req.subtitle_language}",
        "-movflags", "+faststart", "-f", "mp4", str(final_tmp),
    ]  # fmt: skip
    run_ffmpeg(args, what="final mix and mux")
    timings["final_pass"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    thumb_work = _best_thumbnail(jobs, req.title, work / "thumbnail.jpg")
    timings["thumbnail"] = time.perf_counter() - t3

    video = req.out_dir / f"{req.basename}.mp4"
    srt = req.out_dir / f"{req.basename}.srt"
    thumbnail = req.out_dir / f"{req.basename}.jpg"
    _atomic_move(final_tmp, video)
    _atomic_move(srt_work, srt)
    _atomic_move(thumb_work, thumbnail)
    if not req.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    if progress:
        progress(steps, steps)
    timings["total"] = time.perf_counter() - t0
    log.info("assembled %s (%.1f s, %d scenes) in %.1f s: %s", video, duration_s, len(scenes), timings["total"], timings)
    return AssemblyResult(
        video=video, srt=srt, thumbnail=thumbnail, duration_s=duration_s,
        chapters=chapters, scene_starts=scene_starts, timings=timings,
    )  # fmt: skip


def _best_thumbnail(jobs: Sequence[SceneJob], title: str, out_path: Path) -> Path:
    best: tuple[float, Path] | None = None
    for job in jobs:
        if not job.thumb_out.is_file():
            continue
        with Image.open(job.thumb_out) as im:
            im.draft("RGB", (320, 180))  # JPEG decodes at reduced size: scoring 80 candidates stays cheap
            score = interest_score(im)
        if best is None or score > best[0]:
            best = (score, job.thumb_out)
    if best is None:
        return render_thumbnail(Image.new("RGB", THUMB_SIZE, (20, 20, 20)), title, out_path)
    return render_thumbnail(best[1], title, out_path)
