"""The ffmpeg binary: running it with useful errors, and probing files without ffprobe.

imageio-ffmpeg ships ffmpeg but not ffprobe, so `probe` reads what `ffmpeg -i` prints about the
streams, and `decode_audio`/`count_frames` decode for real when a test must know the content.
"""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from vidgen.errors import VidgenError


class FFmpegError(VidgenError):
    """ffmpeg exited non-zero; the message carries the tail of its log."""


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], *, what: str = "ffmpeg", timeout: float | None = None) -> str:
    """Run ffmpeg (quiet, overwrite) and return its stderr log; raise FFmpegError on failure."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise FFmpegError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stderr


class StreamInfo(BaseModel):
    index: int
    kind: str  # video / audio / subtitle / data
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    pix_fmt: str | None = None
    sample_rate: int | None = None
    channels: str | None = None
    language: str | None = None


class MediaInfo(BaseModel):
    path: Path
    duration_s: float
    format: str
    streams: list[StreamInfo]

    def first(self, kind: str) -> StreamInfo | None:
        return next((s for s in self.streams if s.kind == kind), None)

    @property
    def video(self) -> StreamInfo | None:
        return self.first("video")

    @property
    def audio(self) -> StreamInfo | None:
        return self.first("audio")

    @property
    def subtitles(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.kind == "subtitle"]


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_INPUT = re.compile(r"Input #0, ([^,]+(?:,[^,]+)*?), from")
_STREAM = re.compile(r"Stream #0:(\d+)(?:\[[^\]]*\])?(?:\((\w+)\))?: (Video|Audio|Subtitle|Data): (\w+)(.*)")


def probe(path: Path) -> MediaInfo:
    """Container duration and streams of a media file, as ffmpeg reports them."""
    path = Path(path)
    if not path.is_file():
        raise FFmpegError(f"probe: {path} does not exist")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, text=True
    )
    log = proc.stderr
    m = _DURATION.search(log)
    if not m:
        raise FFmpegError(f"probe: {path} is not a readable media file:\n" + "\n".join(log.splitlines()[-5:]))
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    fm = _INPUT.search(log)
    streams: list[StreamInfo] = []
    for sm in _STREAM.finditer(log):
        idx, lang, kind, codec, rest = sm.groups()
        info = StreamInfo(index=int(idx), kind=kind.lower(), codec=codec, language=lang)
        if kind == "Video":
            if size := re.search(r", (\d{2,5})x(\d{2,5})", rest):
                info.width, info.height = int(size.group(1)), int(size.group(2))
            if fps := re.search(r", ([\d.]+) fps", rest):
                info.fps = float(fps.group(1))
            if pix := re.search(r"(?:\)|^)\s*,\s*(\w+)\s*(?:\(|,)", rest):
                info.pix_fmt = pix.group(1)
        elif kind == "Audio":
            if sr := re.search(r", (\d+) Hz", rest):
                info.sample_rate = int(sr.group(1))
            if ch := re.search(r"Hz, ([\w.() ]+?),", rest):
                info.channels = ch.group(1)
        streams.append(info)
    return MediaInfo(path=path, duration_s=duration, format=fm.group(1) if fm else "", streams=streams)


def decode_audio(path: Path, *, sample_rate: int = 16_000) -> np.ndarray:
    """The first audio stream as mono float32 samples in [-1, 1] (really decoded, for checks)."""
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
        "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "s16le", "-",
    ]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise FFmpegError(f"decode_audio({path}) failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return np.frombuffer(proc.stdout, dtype="<i2").astype(np.float32) / 32768.0


def count_frames(path: Path) -> int:
    """Decoded video frames (decodes the whole stream: use on short files)."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    frames = re.findall(r"frame=\s*(\d+)", proc.stderr)
    if proc.returncode != 0 or not frames:
        raise FFmpegError(f"count_frames({path}) failed: {proc.stderr[-500:]}")
    return int(frames[-1])


def extract_frame(path: Path, at_s: float, out_png: Path) -> Path:
    """One decoded frame as PNG (for thumbnails and visual checks)."""
    run_ffmpeg(["-ss", f"{at_s:.3f}", "-i", str(path), "-frames:v", "1", str(out_png)], what="extract_frame")
    return out_png


def rms_dbfs(samples: np.ndarray) -> float:
    """Loudness of samples in dBFS (-inf for digital silence)."""
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")
