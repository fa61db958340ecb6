"""Synthetic media with known content, for tests and benchmarks of the media layer.

Clips and ambience come from ffmpeg's lavfi sources; speech is synthesised here as voiced bursts
placed exactly at the word timings it returns, so a check can know when "someone is speaking".
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from vidgen.media.ffmpeg import run_ffmpeg
from vidgen.models import WordTiming


def make_clip(
    path: Path,
    *,
    duration_s: float,
    width: int = 1920,
    height: int = 1080,
    fps: int = 30,
    variant: int = 0,
    preset: str = "veryfast",
) -> Path:
    """An H.264 yuv420p MP4 without audio, like the clip providers deliver; `variant` changes the look."""
    source = f"testsrc2=size={width}x{height}:rate={fps}:duration={duration_s}"
    look = f"hue=h={(variant * 67) % 360}:s={1 + (variant % 3) * 0.3}"
    run_ffmpeg(
        ["-f", "lavfi", "-i", source, "-vf", f"{look},format=yuv420p", "-c:v", "libx264", "-preset", preset,
         "-crf", "23", "-an", str(path)],
        what="synthetic clip",
    )  # fmt: skip
    return path


def make_color_clip(path: Path, *, duration_s: float, width: int, height: int, fps: int = 30, color: str = "gray") -> Path:
    """A flat-colour clip: the least interesting picture there is (thumbnail choice checks)."""
    run_ffmpeg(
        ["-f", "lavfi", "-i", f"color=c={color}:size={width}x{height}:rate={fps}:duration={duration_s}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-an", str(path)],
        what="synthetic colour clip",
    )  # fmt: skip
    return path


def speech_timings(text: str, *, words_per_minute: float = 160, start_s: float = 0.05) -> list[WordTiming]:
    """Word timings a narrator might report: longer words last longer, short pauses between words."""
    words = text.split()
    seconds_per_word = 60.0 / words_per_minute
    mean_len = sum(len(w) for w in words) / max(1, len(words))
    timings: list[WordTiming] = []
    t = start_s
    for word in words:
        slot = seconds_per_word * (0.6 + 0.4 * len(word) / mean_len)
        spoken = slot * 0.82
        timings.append(WordTiming(word=word, start_s=round(t, 4), end_s=round(t + spoken, 4)))
        t += slot
        if word[-1] in ".!?":
            t += 0.25
        elif word[-1] in ",;:":
            t += 0.1
    return timings


def make_speech(
    path: Path,
    words: list[WordTiming],
    *,
    sample_rate: int = 22_050,
    tail_s: float = 0.1,
    level: float = 0.5,
) -> float:
    """A mono 16-bit WAV with a voiced burst (harmonics of ~140 Hz) during each word and silence between.

    Returns the file's duration in seconds.
    """
    duration = (words[-1].end_s if words else 0.0) + tail_s
    n = int(round(duration * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    signal = np.zeros(n, dtype=np.float64)
    for k, w in enumerate(words):
        a, b = int(w.start_s * sample_rate), min(n, int(w.end_s * sample_rate))
        if b <= a:
            continue
        seg_t = t[a:b]
        f0 = 120 + 40 * ((k * 7) % 5) / 4
        burst = sum(np.sin(2 * np.pi * f0 * h * seg_t) / h for h in (1, 2, 3, 4))
        envelope = np.sin(np.linspace(0, np.pi, b - a)) ** 0.5
        signal[a:b] = burst * envelope
    peak = np.abs(signal).max() or 1.0
    pcm = (signal / peak * level * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return n / sample_rate


def to_mp3(wav_path: Path, mp3_path: Path, *, sample_rate: int = 44_100) -> Path:
    """The same speech as the ElevenLabs adapter would hand it over: MP3, 44.1 kHz."""
    run_ffmpeg(["-i", str(wav_path), "-ar", str(sample_rate), "-c:a", "libmp3lame", "-b:a", "128k", str(mp3_path)], what="mp3")
    return mp3_path


def make_ambience(path: Path, *, duration_s: float, sample_rate: int = 44_100, color: str = "pink", amplitude: float = 0.3, seed: int = 1) -> Path:
    """A stereo 16-bit WAV of steady noise, like the local sound designer's beds."""
    run_ffmpeg(
        ["-f", "lavfi", "-i", f"anoisesrc=color={color}:sample_rate={sample_rate}:amplitude={amplitude}:seed={seed}:duration={duration_s}",
         "-ac", "2", "-c:a", "pcm_s16le", str(path)],
        what="synthetic ambience",
    )  # fmt: skip
    return path
