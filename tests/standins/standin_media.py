"""Real media for the provider stand-ins: what Gemini, Kling and ElevenLabs send back, made locally.

Every file is a genuine PNG / H.264 MP4 / MP3 that the pipeline decodes, so a run against the
stand-ins exercises the same media handling as a run against the paid services.
"""

from __future__ import annotations

import io
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vidgen.files import atomic_path
from vidgen.media.ffmpeg import run_ffmpeg
from vidgen.models import WordTiming
from vidgen.providers.base import NarrationRequest, VoiceSpec
from vidgen.providers.local.narration import LocalNarrator

GEMINI_IMAGE_SIZE = (1344, 768)  # what Gemini 2.5 Flash Image answers for aspectRatio 16:9
KLING_SIZE = (1920, 1080)


def gemini_png(seed: int, size: tuple[int, int] = GEMINI_IMAGE_SIZE) -> bytes:
    """A landscape-like PNG (sky gradient, hills, a sun placed by the seed), different per seed."""
    width, height = size
    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(40, 200, 3), rng.integers(20, 120, 3)
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = (top * (1 - t) + bottom * t).astype(np.uint8)
    img = Image.fromarray(np.broadcast_to(sky, (height, width, 3)).copy(), "RGB")
    draw = ImageDraw.Draw(img)
    sun_x = int(rng.integers(width // 8, width * 7 // 8))
    draw.ellipse((sun_x - 60, 120, sun_x + 60, 240), fill=(250, 220, 150))
    xs = np.arange(0, width + 16, 16)
    ridge = height * 0.62 + 40 * np.sin(xs / 97.0 + seed) + 25 * np.sin(xs / 41.0 + 2 * seed)
    hills = [(0, height), *zip(xs.tolist(), ridge.tolist()), (width, height)]
    draw.polygon(hills, fill=tuple(int(c) for c in bottom // 2))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def kling_mp4(out: Path, seconds: int, size: tuple[int, int] = KLING_SIZE) -> Path:
    """A real H.264 clip as Kling delivers it: 1920x1080, 24 fps, no audio (testsrc2, low bitrate)."""
    width, height = size
    with atomic_path(out) as tmp:
        run_ffmpeg(
            ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=24:duration={seconds}",
             "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "400k", "-pix_fmt", "yuv420p",
             "-movflags", "+faststart", str(tmp)],
            what="making the stand-in Kling clip",
        )
    return out


def wav_to_mp3(wav: Path) -> bytes:
    """MP3 as ElevenLabs' mp3_44100_128 output format: 44.1 kHz, 128 kbps."""
    mp3 = wav.with_suffix(".mp3")
    run_ffmpeg(["-i", str(wav), "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "128k", str(mp3)], what="encoding MP3")
    return mp3.read_bytes()


def sound_effect_mp3(seconds: float, seed: int = 0) -> bytes:
    """An ambience of the requested length (filtered brown noise), as /v1/sound-generation returns."""
    with tempfile.TemporaryDirectory() as tmp:
        mp3 = Path(tmp) / "sfx.mp3"
        run_ffmpeg(
            ["-f", "lavfi", "-i", f"anoisesrc=color=brown:amplitude=0.25:seed={seed}:duration={seconds:.3f}",
             "-af", "lowpass=f=900", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "128k", str(mp3)],
            what="making the stand-in sound effect",
        )
        return mp3.read_bytes()


def character_alignment(text: str, words: list[WordTiming], spans: list[tuple[int, int]]) -> dict[str, list]:
    """ElevenLabs' per-character alignment from word timings: a word's characters share its time
    evenly; the characters between words (spaces) sit in the gap between them."""
    starts = [0.0] * len(text)
    ends = [0.0] * len(text)
    previous_end = 0.0
    cursor = 0
    for word, (lo, hi) in zip(words, spans, strict=True):
        for i in range(cursor, lo):  # the gap before this word
            starts[i], ends[i] = previous_end, max(previous_end, word.start_s)
        step = (word.end_s - word.start_s) / max(1, hi - lo)
        for k, i in enumerate(range(lo, hi)):
            starts[i] = round(word.start_s + k * step, 4)
            ends[i] = round(word.start_s + (k + 1) * step, 4)
        previous_end, cursor = word.end_s, hi
    for i in range(cursor, len(text)):
        starts[i] = ends[i] = previous_end
    return {
        "characters": list(text),
        "character_start_times_seconds": starts,
        "character_end_times_seconds": ends,
    }


_narrator_lock = threading.Lock()


def speech_with_timestamps(text: str, voice: str = "en-us", words_per_minute: int = 155) -> tuple[bytes, dict[str, list]]:
    """Real speech (espeak-ng via the local narrator) as MP3, with alignment consistent with it."""
    from vidgen.providers.local.narration import text_words

    spoken = " ".join(text.split())
    with tempfile.TemporaryDirectory() as tmp:
        request = NarrationRequest(
            text=spoken,
            voice=VoiceSpec(local_voice=voice, words_per_minute=words_per_minute),
            out_path=Path(tmp) / "speech.wav",
        )
        with _narrator_lock:  # one espeak worker at a time keeps a 2-core machine responsive
            result = LocalNarrator().narrate(request)
        mp3 = wav_to_mp3(result.path)
    spans = [(start, end) for _, start, end in text_words(spoken)]
    return mp3, character_alignment(spoken, result.words, spans)
