"""Local narrator: real offline speech from espeak-ng, with word timings taken from the voice itself.

espeak-ng reports, for every word it speaks, the word's character position in the text and its
sample offset in the audio (see `espeak_engine`). Those become the `WordTiming`s the captions are
built from, so captions follow the voice exactly, as ElevenLabs' character alignment does on the
paid path.

By default each narration is synthesised in a fresh worker process, because espeak-ng carries
synthesis state from one call to the next and the same text would otherwise come out a few samples
different every time; a fresh process makes narration deterministic at a cost of a few tenths of a
second per scene. `LocalNarrator(isolate=False)` speaks in-process instead (under the engine lock).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from vidgen.channels import Channel
from vidgen.errors import ApiFailureError, InvalidInputError
from vidgen.models import Cost, WordTiming
from vidgen.providers.base import NarrationRequest, NarrationResult
from vidgen.providers.local.audio_files import write_pcm
from vidgen.providers.local.espeak_engine import (
    SAMPLE_RATE,
    Synthesis,
    UnknownVoiceError,
    WordEvent,
    synthesize_in_process,
)
from vidgen.providers.settings import ProviderSettings

WORKER_TIMEOUT_S = 120.0
_WORD = re.compile(r"\S+")
_SPEAKABLE = re.compile(r"\w", re.UNICODE)


def text_words(text: str) -> list[tuple[str, int, int]]:
    """The caption words of a text with their character spans. Tokens with nothing to say (a lone
    dash or ellipsis) join the word before them, so every caption word is one the voice speaks."""
    words: list[tuple[str, int, int]] = []
    pending = ""
    for m in _WORD.finditer(text):
        token, start, end = m.group(), m.start(), m.end()
        if not _SPEAKABLE.search(token):
            if words:
                w, s, _ = words[-1]
                words[-1] = (f"{w} {token}", s, end)
            else:
                pending = f"{pending} {token}".strip()
            continue
        if pending:
            token, pending = f"{pending} {token}", ""
        words.append((token, start, end))
    return words


def align_words(words: list[tuple[str, int, int]], events: list[WordEvent], total_samples: int,
                sample_rate: int = SAMPLE_RATE) -> list[WordTiming]:
    """Each text word starts at the first espeak word event inside its span (espeak splits "1,200"
    and merges "well-known"); words without an event are spread evenly between their neighbours;
    each word ends where the next begins, the last at the end of the audio."""
    starts: list[float | None] = []
    for _, s, e in words:
        hits = [ev.sample for ev in events if s <= ev.text_position < e]
        starts.append(min(hits) / sample_rate if hits else None)
    total = total_samples / sample_rate
    n = len(starts)
    i = 0
    while i < n:
        if starts[i] is not None:
            i += 1
            continue
        j = i
        while j < n and starts[j] is None:
            j += 1
        lo = starts[i - 1] if i > 0 else 0.0
        hi = starts[j] if j < n else total
        for k in range(i, j):
            starts[k] = lo + (hi - lo) * (k - i + 1) / (j - i + 1)  # type: ignore[operator]
        i = j
    resolved = [float(s) for s in starts]  # type: ignore[arg-type]
    for k in range(1, n):  # never step backwards, whatever espeak reports
        resolved[k] = max(resolved[k], resolved[k - 1])
    resolved = [round(t, 3) for t in resolved]
    end_total = round(total, 3)
    return [
        WordTiming(word=word, start_s=resolved[k], end_s=max(resolved[k + 1] if k + 1 < n else end_total, resolved[k]))
        for k, (word, _, _) in enumerate(words)
    ]


def synthesize_isolated(text: str, voice: str, words_per_minute: int) -> Synthesis:
    """Run one synthesis in a fresh `espeak_engine` worker process (deterministic output)."""
    request = json.dumps({"text": text, "voice": voice, "words_per_minute": words_per_minute}).encode()
    proc = subprocess.run(
        [sys.executable, "-m", "vidgen.providers.local.espeak_engine"],
        input=request, capture_output=True, timeout=WORKER_TIMEOUT_S,
    )
    header_line, _, pcm = proc.stdout.partition(b"\n")
    if proc.returncode != 0 or not header_line:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise ApiFailureError(f"espeak-ng worker failed (exit {proc.returncode}): {' | '.join(detail)}", provider="local")
    header = json.loads(header_line)
    if not header["ok"]:
        raise UnknownVoiceError(header["message"])
    if len(pcm) != header["bytes"]:
        raise ApiFailureError(f"espeak-ng worker sent {len(pcm)} of {header['bytes']} audio bytes", provider="local")
    return Synthesis(pcm=pcm, words=[WordEvent(*w) for w in header["words"]])


class LocalNarrator:
    """Narrator that speaks with espeak-ng; free, offline and (isolated) deterministic."""

    name = "local"

    def __init__(self, isolate: bool = True):
        self.isolate = isolate

    def narrate(self, request: NarrationRequest) -> NarrationResult:
        text = " ".join(request.text.split())
        words = text_words(text)
        if not words:
            raise InvalidInputError("narration text has no words to speak", provider=self.name)
        speak = synthesize_isolated if self.isolate else synthesize_in_process
        try:
            result = speak(text, request.voice.local_voice, request.voice.words_per_minute)
        except UnknownVoiceError as e:
            raise InvalidInputError(str(e), provider=self.name) from e
        if not result.pcm:
            raise InvalidInputError(f"espeak-ng produced no audio for {text[:60]!r}", provider=self.name)
        total_samples = len(result.pcm) // 2
        out = write_pcm(Path(request.out_path), result.pcm, sample_rate=SAMPLE_RATE, channels=1)
        return NarrationResult(
            path=out,
            duration_s=total_samples / SAMPLE_RATE,
            words=align_words(words, result.words, total_samples),
            cost=Cost(usd=0.0, units=1, unit="narration"),
        )


def create_narration(settings: ProviderSettings, channel: Channel) -> LocalNarrator:
    return LocalNarrator()
