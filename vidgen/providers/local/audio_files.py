"""Writing PCM for the local audio providers: WAV with the `wave` module, anything else via ffmpeg.

The step contracts allow WAV or MP3 at the requested path, so an `.mp3` path is honoured by encoding
rather than by writing WAV bytes under a misleading name.
"""

from __future__ import annotations

import wave
from pathlib import Path

from vidgen.files import atomic_path
from vidgen.media.ffmpeg import run_ffmpeg


def write_pcm(path: Path, pcm: bytes, *, sample_rate: int, channels: int) -> Path:
    """Write 16-bit little-endian interleaved PCM to `path` (WAV, or encoded by the suffix)."""
    path = Path(path)
    with atomic_path(path) as out:
        if path.suffix.lower() == ".wav":
            _write_wav(out, pcm, sample_rate=sample_rate, channels=channels)
        else:
            wav_path = out.with_name(out.name + ".wav")
            try:
                _write_wav(wav_path, pcm, sample_rate=sample_rate, channels=channels)
                run_ffmpeg(["-i", str(wav_path), "-q:a", "2", str(out)], what=f"encoding {path.name}")
            finally:
                wav_path.unlink(missing_ok=True)
    return path


def _write_wav(path: Path, pcm: bytes, *, sample_rate: int, channels: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
