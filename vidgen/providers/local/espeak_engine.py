"""espeak-ng through ctypes: speech samples plus word events, and a one-shot worker process.

The library is the one shipped by `espeakng-loader` (1.52). It is used in synchronous mode: the
callback receives 22,050 Hz mono samples and, with them, word events that carry each word's
character position in the text and its sample offset in the audio.

espeak-ng keeps process-global state: one voice, one callback, and synthesis state that is never
reset (the pitch "flutter" phase and the noise generator advance with every call, so the same text
spoken twice in one process differs by a few samples). Hence two rules here: every call goes through
a module-level lock and the library is initialised once per process; and callers that need the same
audio for the same text (the narrator does) run each synthesis in a fresh worker process
(`python -m vidgen.providers.local.espeak_engine`), where the first synthesis is always identical.
This module imports nothing heavy so that worker starts in a fraction of a second.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 22_050  # espeak-ng's native rate; confirmed by espeak_Initialize's return value

# speak_lib.h (espeak-ng 1.52, API revision 12)
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
POS_CHARACTER = 1
ESPEAK_RATE = 1
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
EE_OK = 0
RATE_MIN, RATE_MAX = 80, 450


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class EspeakEvent(ctypes.Structure):
    """`espeak_EVENT` as declared in speak_lib.h: 40 bytes on 64-bit platforms."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based, in characters of the text
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples since the start of this synthesis
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class EspeakVoice(ctypes.Structure):
    """`espeak_VOICE` from speak_lib.h; `languages` is a list of (priority byte, name, NUL) items."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(EspeakEvent))


class UnknownVoiceError(ValueError):
    """The voice name matches no espeak-ng voice (message lists the English ones)."""


@dataclass
class WordEvent:
    text_position: int  # 0-based character index into the text
    length: int
    sample: int  # sample offset of the word's start in the audio


@dataclass
class Synthesis:
    pcm: bytes  # s16le mono at SAMPLE_RATE
    words: list[WordEvent]


_LOCK = threading.Lock()


class EspeakEngine:
    """The process-wide espeak-ng library: loaded and initialised on first use, then shared."""

    _instance: EspeakEngine | None = None
    _pid: int | None = None

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(EspeakVoice))
        # `path` is the directory that *contains* espeak-ng-data (speak_lib.h), i.e. the data's parent.
        data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, 0)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"espeak-ng failed to initialise (returned {rate}); data under {data_parent!r}")
        self.lib = lib
        self._capture: tuple[bytearray, list[WordEvent]] | None = None
        self._callback = SYNTH_CALLBACK(self._on_synth)  # kept referenced: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.voices = self._list_voices()

    @classmethod
    def shared(cls) -> EspeakEngine:
        """The instance for this process (a forked child initialises its own). Call under `_LOCK`."""
        if cls._instance is None or cls._pid != os.getpid():
            cls._instance = cls()
            cls._pid = os.getpid()
        return cls._instance

    def _list_voices(self) -> dict[str, str]:
        """Every name a voice answers to (language codes, identifier, display name) -> identifier.
        espeak_SetVoiceByName knows only file names, so "en-gb" (file gmw/en) must be mapped."""
        table: dict[str, str] = {}
        voices = self.lib.espeak_ListVoices(None)
        i = 0
        while voices[i]:
            v = voices[i].contents
            ident = v.identifier.decode()
            names = {ident, ident.rsplit("/", 1)[-1], v.name.decode()}
            raw = v.languages or b""
            pos = 0
            while pos < len(raw) and raw[pos] != 0:  # priority byte, name, NUL, ...
                end = raw.find(b"\0", pos + 1)
                end = len(raw) if end < 0 else end
                names.add(raw[pos + 1 : end].decode(errors="replace"))
                pos = end + 1
            for n in names:
                table.setdefault(n.lower(), ident)
            i += 1
        return table

    def _on_synth(self, wav, numsamples, events) -> int:  # type: ignore[no-untyped-def]
        capture = self._capture
        if capture is None:
            return 0
        pcm, words = capture
        if wav and numsamples > 0:
            pcm.extend(ctypes.string_at(wav, numsamples * 2))
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == EVENT_WORD:
                words.append(WordEvent(ev.text_position - 1, ev.length, ev.sample))
            i += 1
        return 0

    def resolve_voice(self, voice: str) -> str:
        ident = self.voices.get(voice.strip().lower())
        if ident is None:
            english = sorted(k for k in self.voices if re.fullmatch(r"en(-[a-z0-9]+)*", k))
            raise UnknownVoiceError(f"unknown espeak-ng voice {voice!r}; English voices include: {', '.join(english)}")
        return ident

    def synthesize(self, text: str, voice: str, words_per_minute: int) -> Synthesis:
        """Speak `text` (UTF-8) with `voice` at `words_per_minute`. Call under `_LOCK`."""
        ident = self.resolve_voice(voice)
        if self.lib.espeak_SetVoiceByName(ident.encode()) != EE_OK:
            raise UnknownVoiceError(f"espeak-ng could not load voice {voice!r} ({ident})")
        self.lib.espeak_SetParameter(ESPEAK_RATE, min(RATE_MAX, max(RATE_MIN, words_per_minute)), 0)
        data = text.encode("utf-8")
        pcm, words = bytearray(), []
        self._capture = (pcm, words)
        try:
            code = self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
        finally:
            self._capture = None
        if code != EE_OK:
            raise RuntimeError(f"espeak_Synth failed with code {code}")
        return Synthesis(pcm=bytes(pcm), words=words)


def synthesize_in_process(text: str, voice: str, words_per_minute: int) -> Synthesis:
    """Speak in this process (fast; not bit-identical across calls, see the module docstring)."""
    with _LOCK:
        return EspeakEngine.shared().synthesize(text, voice, words_per_minute)


# --- the worker: one request on stdin, one header line + PCM on stdout ------------------------------
def main() -> int:
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    out = sys.stdout.buffer
    try:
        result = synthesize_in_process(request["text"], request["voice"], int(request["words_per_minute"]))
    except UnknownVoiceError as e:
        out.write(json.dumps({"ok": False, "error": "unknown_voice", "message": str(e)}).encode() + b"\n")
        return 0
    header = {
        "ok": True,
        "sample_rate": SAMPLE_RATE,
        "bytes": len(result.pcm),
        "words": [[w.text_position, w.length, w.sample] for w in result.words],
    }
    out.write(json.dumps(header).encode() + b"\n")
    out.write(result.pcm)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
