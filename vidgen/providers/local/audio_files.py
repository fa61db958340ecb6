"""Writing PCM for the local audio providers: WAV with the `wave` module, anything else via ffmpeg.

The step contracts allow WAV or MP3 at the requested path, so an `.mp3` path is honoured by encoding
rather than by writing WAV bytes under a misleading name.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

from vidgen.media.ffmpeg import run_ffmpeg


def write_pcm(path: Path, pcm: bytes, *, sample_rate: int, channels: int) -> Path:
    """Write 16-bit little-endian interleaved PCM to `path` (WAV, or encoded by the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav_path = path if path.suffix.lower() == ".wav" else path.with_name(path.name + ".tmp.wav")
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    if wav_path != path:
        try:
            partial = path.with_name(path.stem + ".partial" + path.suffix)
            run_ffmpeg(["-i", str(wav_path), "-q:a", "2", str(partial)], what=f"encoding {path.name}")
            os.replace(partial, path)
        finally:
            wav_path.unlink(missing_ok=True)
    return path
