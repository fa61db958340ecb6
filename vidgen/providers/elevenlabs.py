"""ElevenLabs as narrator (speech with character timestamps) and sound designer (text to SFX).

Both go through the official `elevenlabs` SDK. Documentation the handling follows:

- speech with timestamps, `POST /v1/text-to-speech/{voice_id}/with-timestamps` (JSON body `text`,
  `model_id`, `voice_settings`; query `output_format`; answer `audio_base64`, `alignment`,
  `normalized_alignment`): https://elevenlabs.io/docs/api-reference/text-to-speech-with-timestamps
- sound effects, `POST /v1/sound-generation` (`text`, `duration_seconds` 0.5-30, `prompt_influence`
  0-1; answer: audio bytes): https://elevenlabs.io/docs/api-reference/sound-generation
- errors (`{"detail": {"status"|"code": ..., "message": ...}}`, 429 for rate and concurrency
  limits): https://elevenlabs.io/docs/eleven-api/resources/errors and
  https://help.elevenlabs.io/hc/en-us/articles/19572237925521 (invalid_api_key / quota_exceeded are 401)

The SDK retries 408/409/429/5xx twice by default (`request_options["max_retries"]`, default 2);
every call here passes `max_retries=0` so retrying stays the orchestrator's policy.

A narration is paid for when ElevenLabs makes it, even if the process that asked dies before the
answer arrives (a killed worker). ElevenLabs keeps every speech it made in the account's history,
with its text, voice, model and character alignment (`GET /v1/history`, `GET
/v1/history/{id}/audio`: https://elevenlabs.io/docs/api-reference/history/list), so the narrator
notes each request beside its output before sending it (`SpeechAsked`), and a later narration of the
same text that finds such a note looks in the history first: one made since is fetched, not made
again. Sound effects are not in the history ("Music and SFX generations are not included"), so a
sound effect in flight at a kill is made again; `vidgen.providers.kie_sound` asks for the same model
as a KIE.ai task, which a new worker collects by its id.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from elevenlabs.client import ElevenLabs
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.parse_error import ParsingError
from elevenlabs.types import VoiceSettings
from pydantic import BaseModel, Field, ValidationError, model_validator

from vidgen.channels import Channel
from vidgen.errors import (
    ApiFailureError,
    InvalidInputError,
    ProviderError,
    RetriableError,
    classify_http,
    parse_retry_after,
)
from vidgen.files import atomic_write_bytes, atomic_write_text
from vidgen.models import Cost, WordTiming
from vidgen.providers.base import NarrationRequest, NarrationResult, SoundRequest, SoundResult
from vidgen.providers.settings import ProviderSettings
from vidgen.workspace import fingerprint

log = logging.getLogger(__name__)

PROVIDER = "elevenlabs"
OUTPUT_FORMAT = "mp3_44100_128"  # MP3 at 128 kbps is available on every plan (192 kbps needs Creator)
DEFAULT_TIMEOUT_S = 240.0  # the SDK's own default; long narrations take a while
SFX_MODEL = "eleven_text_to_sound_v2"
SFX_MIN_S, SFX_MAX_S = 0.5, 30.0  # bounds of duration_seconds in the current API definition (older docs: 22)
NO_RETRIES = {"max_retries": 0}
HISTORY_SLACK_S = 60  # how far before the note a history item may be dated (clocks differ)
HISTORY_PAGE = 100

# Codes of `detail.code` (or the legacy `detail.status`) whose class the HTTP status would get wrong.
QUOTA_CODES = frozenset({"quota_exceeded"})  # sent as 401: the account is out of credits, not mis-keyed
AUTH_CODES = frozenset({"invalid_api_key", "missing_permissions"})
# "Your prompt appears to have violated our Terms of Service" (detail.status bad_prompt, HTTP 400):
# a content-policy refusal of *our* text, which the error contract files under invalid input.
POLICY_CODES = frozenset({"bad_prompt"})
RETRIABLE_CODES = frozenset(
    {"too_many_concurrent_requests", "concurrent_limit_exceeded", "rate_limit_exceeded", "system_busy"}
)


class ElevenLabsPricing(BaseModel):
    """What ElevenLabs calls cost, in USD.

    The defaults reproduce the seed's budget of "$0.05 per video (narration + SFX)"
    (shared/seeds/architecture.md, "External Service Dependencies"): a ~1,000-word narration is
    ~6,000 characters, $0.036 at $0.006 per 1,000 characters, plus a handful of sound effects at
    $0.002 each. ElevenLabs' public API list prices are higher and plan-dependent
    (https://elevenlabs.io/pricing/api); set the real figures here for an accurate ledger.
    """

    usd_per_1k_characters: float = Field(default=0.006, ge=0)
    usd_per_sound_effect: float = Field(default=0.002, ge=0)

    def narration_cost(self, characters: int) -> Cost:
        return Cost(usd=round(characters / 1000 * self.usd_per_1k_characters, 8), units=characters, unit="characters")

    def sound_cost(self) -> Cost:
        return Cost(usd=self.usd_per_sound_effect, units=1, unit="generation")


class ElevenLabsVoiceSettings(BaseModel):
    """Voice settings sent with every request, so a voice edited in the ElevenLabs web app cannot
    silently change a channel's sound. Defaults are ElevenLabs' own defaults."""

    stability: float = Field(default=0.5, ge=0, le=1)
    similarity_boost: float = Field(default=0.75, ge=0, le=1)
    style: float = Field(default=0.0, ge=0, le=1)
    use_speaker_boost: bool = True
    speed: float = Field(default=1.0, ge=0.7, le=1.2)

    def to_sdk(self) -> VoiceSettings:
        return VoiceSettings(**self.model_dump())


# --- the with-timestamps answer, validated ----------------------------------------------------
class CharacterAlignment(BaseModel):
    characters: list[str]
    character_start_times_seconds: list[float]
    character_end_times_seconds: list[float]

    @model_validator(mode="after")
    def _same_lengths(self) -> CharacterAlignment:
        n = len(self.characters)
        if n == 0 or len(self.character_start_times_seconds) != n or len(self.character_end_times_seconds) != n:
            raise ValueError("characters and their start/end times must be non-empty lists of one length")
        return self


class TimestampedSpeech(BaseModel):
    audio_base64: str = Field(min_length=1)
    alignment: CharacterAlignment | None = None
    normalized_alignment: CharacterAlignment | None = None


def words_from_alignment(alignment: CharacterAlignment) -> list[WordTiming]:
    """Group the per-character timings into words, splitting on whitespace.

    A word starts when its first character starts and ends when its last one ends; punctuation
    stays attached to its word, as it is in the script, because captions show the words as written.
    """
    words: list[WordTiming] = []
    current: list[str] = []
    start = end = 0.0
    rows = zip(
        alignment.characters,
        alignment.character_start_times_seconds,
        alignment.character_end_times_seconds,
        strict=True,
    )
    for char, char_start, char_end in rows:
        if not char:
            continue
        if char.isspace():
            if current:
                words.append(WordTiming(word="".join(current), start_s=start, end_s=end))
                current = []
            continue
        if not current:
            start = char_start
        current.append(char)
        end = max(char_end, start)
    if current:
        words.append(WordTiming(word="".join(current), start_s=start, end_s=end))
    return words


# --- shared plumbing --------------------------------------------------------------------------
def make_client(api_key: str, *, base_url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> ElevenLabs:
    return ElevenLabs(api_key=api_key, base_url=base_url.rstrip("/"), timeout=timeout_s)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _detail(body: Any) -> tuple[str, str]:
    """(code, message) from an ElevenLabs error body, old (`status`) or new (`code`) style.

    422 bodies are FastAPI validation lists: `{"detail": [{"loc": [...], "msg": ...}]}`.
    """
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, dict):
        code = str(detail.get("code") or detail.get("status") or "")
        message = str(detail.get("message") or "") or str(detail)[:300]
        data = detail.get("data")
        if isinstance(data, dict) and data.get("prompt_suggestion"):
            message += f" (suggested prompt: {data['prompt_suggestion']})"
        return code, message
    if isinstance(detail, list) and detail:
        first = detail[0] if isinstance(detail[0], dict) else {"msg": str(detail[0])}
        where = ".".join(str(p) for p in first.get("loc", []))
        return "validation_error", f"{where}: {first.get('msg', '')}".strip(": ")
    return "", str(body)[:300]


def classify_api_error(exc: ApiError) -> ProviderError:
    """Map an SDK `ApiError` to the vidgen error classes (see the module docstring for sources)."""
    status = int(exc.status_code or 0)
    if 200 <= status < 300:  # the SDK raises ApiError when a 2xx body is not the JSON it expects
        return ApiFailureError(f"unexpected response: {str(exc.body)[:200]!r}", provider=PROVIDER, status_code=status)
    code, message = _detail(exc.body)
    retry_after = parse_retry_after(_header(exc.headers, "retry-after"))
    described = f"{code}: {message}" if code else message
    if code in QUOTA_CODES or code in AUTH_CODES:
        return ApiFailureError(f"HTTP {status}: {described}", provider=PROVIDER, status_code=status)
    if code in POLICY_CODES:
        return InvalidInputError(
            f"HTTP {status}: content policy refused the text ({described})", provider=PROVIDER, status_code=status
        )
    if code in RETRIABLE_CODES:
        return RetriableError(f"HTTP {status}: {described}", provider=PROVIDER, status_code=status, retry_after=retry_after)
    return classify_http(status, described, provider=PROVIDER, retry_after=retry_after)


def _call(action: Any) -> Any:
    """Run one SDK call; every failure leaves as a `ProviderError` subclass."""
    try:
        return action()
    except ApiError as exc:
        raise classify_api_error(exc) from exc
    except ParsingError as exc:
        raise ApiFailureError(f"unexpected response: {exc}", provider=PROVIDER) from exc
    except httpx.TimeoutException as exc:
        raise RetriableError(f"request timed out ({type(exc).__name__})", provider=PROVIDER) from exc
    except httpx.TransportError as exc:
        raise RetriableError(f"network error: {exc}", provider=PROVIDER) from exc


def looks_like_mp3(data: bytes) -> bool:
    """An ID3 tag or an MPEG audio frame sync (11 set bits) at the start."""
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def _checked_mp3(data: bytes) -> bytes:
    if not looks_like_mp3(data):
        raise ApiFailureError(
            f"unexpected response: the audio is not MP3 ({len(data)} bytes starting {data[:8]!r})", provider=PROVIDER
        )
    return data


# --- speech asked for, and found again in the history -----------------------------------------
class SpeechAsked(BaseModel):
    """A speech request sent and not yet answered, noted beside its output file."""

    at_unix: int
    request: str  # fingerprint of the voice, model and text asked for

    @staticmethod
    def path_for(out_path: Path) -> Path:
        return out_path.with_name(f".{out_path.stem}.speech-asked.json")

    @classmethod
    def load(cls, path: Path) -> SpeechAsked | None:
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


# --- the narrator -----------------------------------------------------------------------------
class ElevenLabsNarrator:
    """Speech plus character timings in one call; captions are built from ElevenLabs' own timings."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.elevenlabs.io",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        pricing: ElevenLabsPricing | None = None,
        voice_settings: ElevenLabsVoiceSettings | None = None,
    ):
        self.pricing = pricing or ElevenLabsPricing()
        self.voice_settings = voice_settings or ElevenLabsVoiceSettings()
        self._client = make_client(api_key, base_url=base_url, timeout_s=timeout_s)

    def narrate(self, request: NarrationRequest) -> NarrationResult:
        """Writes `out_path` with a `.mp3` suffix (the result's path is the one to use).

        No `language_code` is sent: Multilingual v2 does not support it and detects the language
        from the text itself.
        """
        voice_id = request.voice.elevenlabs_voice_id.strip()
        if not voice_id:
            raise InvalidInputError("no ElevenLabs voice id configured (voice.elevenlabs_voice_id)", provider=PROVIDER)
        model_id = request.voice.elevenlabs_model
        note = SpeechAsked.path_for(request.out_path)
        asked = SpeechAsked(at_unix=int(time.time()), request=fingerprint(voice_id, model_id, request.text))
        found = self._made_before(SpeechAsked.load(note), asked.request, voice_id, model_id, request.text)
        if found is not None:
            audio, alignment = found
        else:
            atomic_write_text(note, asked.model_dump_json())
            answer = _call(
                lambda: self._client.text_to_speech.convert_with_timestamps(
                    voice_id,
                    text=request.text,
                    model_id=model_id,
                    output_format=OUTPUT_FORMAT,
                    voice_settings=self.voice_settings.to_sdk(),
                    request_options=NO_RETRIES,
                )
            )
            speech = _timestamped_speech(answer)
            alignment = speech.alignment or speech.normalized_alignment
            if alignment is None:
                raise ApiFailureError("unexpected response: no character alignment", provider=PROVIDER)
            try:
                audio = base64.b64decode(speech.audio_base64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ApiFailureError(f"unexpected response: audio_base64 is not base64 ({exc})", provider=PROVIDER) from exc
        path = request.out_path.with_suffix(".mp3")
        atomic_write_bytes(path, _checked_mp3(audio))
        note.unlink(missing_ok=True)
        return NarrationResult(
            path=path,
            duration_s=max(alignment.character_end_times_seconds),
            words=words_from_alignment(alignment),
            cost=self.pricing.narration_cost(len(request.text)),  # paid once, by whichever process asked
        )

    def _made_before(self, asked: SpeechAsked | None, request: str, voice_id: str, model_id: str,
                     text: str) -> tuple[bytes, CharacterAlignment] | None:
        """The speech an earlier request for this text made, from the account's history, when that
        request (`asked`) was noted and never answered here; None when there is none (or the history
        cannot be read: a key without history access), and the speech is asked for again."""
        if asked is None or asked.request != request:
            return None
        try:
            page = _call(lambda: self._client.history.list(
                voice_id=voice_id, model_id=model_id, source="TTS", page_size=HISTORY_PAGE,
                date_after_unix=asked.at_unix - HISTORY_SLACK_S, request_options=NO_RETRIES,
            ))
            item = next((h for h in page.history if h.text == text and h.alignments is not None), None)
            if item is None:
                log.info("ElevenLabs' history has no speech for the narration asked at %s; asking again", asked.at_unix)
                return None
            audio = _call(lambda: b"".join(self._client.history.get_audio(item.history_item_id,
                                                                          request_options=NO_RETRIES)))
            alignment = CharacterAlignment.model_validate(item.alignments.alignment.model_dump())
        except (ProviderError, ValidationError) as exc:
            log.warning("could not read ElevenLabs' history for an unanswered narration (%s); asking again", exc)
            return None
        log.info("narration found in ElevenLabs' history (%s), made for an earlier request: not paid for again",
                 item.history_item_id)
        return audio, alignment


def _timestamped_speech(answer: Any) -> TimestampedSpeech:
    """Validate the SDK's (unchecked) response model into ours, so a malformed body fails loudly."""
    try:
        raw = answer.model_dump(by_alias=True) if hasattr(answer, "model_dump") else answer
        return TimestampedSpeech.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise ApiFailureError(f"unexpected response: {where}: {first['msg']}", provider=PROVIDER) from exc


# --- the sound designer -----------------------------------------------------------------------
class ElevenLabsSoundDesigner:
    """One sound effect per cue, at the requested length."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.elevenlabs.io",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        pricing: ElevenLabsPricing | None = None,
        prompt_influence: float = 0.3,  # the API's default: follow the cue, keep some variety
        model_id: str = SFX_MODEL,
    ):
        if not 0 <= prompt_influence <= 1:
            raise ValueError("prompt_influence must be between 0 and 1")
        self.pricing = pricing or ElevenLabsPricing()
        self.prompt_influence = prompt_influence
        self.model_id = model_id
        self._client = make_client(api_key, base_url=base_url, timeout_s=timeout_s)

    def design(self, request: SoundRequest) -> SoundResult:
        """Writes `out_path` with a `.mp3` suffix; the duration is the one asked for, which the API honours."""
        if not SFX_MIN_S <= request.duration_s <= SFX_MAX_S:
            raise InvalidInputError(
                f"sound effects last {SFX_MIN_S}-{SFX_MAX_S} s; {request.duration_s} s was asked for",
                provider=PROVIDER,
            )
        audio = _call(
            lambda: b"".join(
                self._client.text_to_sound_effects.convert(
                    text=request.cue,
                    duration_seconds=request.duration_s,
                    prompt_influence=self.prompt_influence,
                    model_id=self.model_id,
                    output_format=OUTPUT_FORMAT,
                    request_options=NO_RETRIES,
                )
            )
        )
        path = request.out_path.with_suffix(".mp3")
        atomic_write_bytes(path, _checked_mp3(audio))
        return SoundResult(path=path, duration_s=request.duration_s, cost=self.pricing.sound_cost())


# --- factories (see vidgen.providers.registry) ------------------------------------------------
def _api_key(settings: ProviderSettings) -> str:
    if settings.elevenlabs_api_key is None or not settings.elevenlabs_api_key.get_secret_value().strip():
        raise ApiFailureError(
            "ELEVENLABS_API_KEY is not set; create a key at https://elevenlabs.io/app/settings/api-keys"
            " and put it in the environment or the Prefect Secret block",
            provider=PROVIDER,
        )
    return settings.elevenlabs_api_key.get_secret_value().strip()


def create_narration(
    settings: ProviderSettings,
    channel: Channel,
    *,
    pricing: ElevenLabsPricing | None = None,
    voice_settings: ElevenLabsVoiceSettings | None = None,
) -> ElevenLabsNarrator:
    return ElevenLabsNarrator(
        _api_key(settings), base_url=settings.elevenlabs_base_url, pricing=pricing, voice_settings=voice_settings
    )


def create_sound(
    settings: ProviderSettings, channel: Channel, *, pricing: ElevenLabsPricing | None = None
) -> ElevenLabsSoundDesigner:
    return ElevenLabsSoundDesigner(_api_key(settings), base_url=settings.elevenlabs_base_url, pricing=pricing)


__all__ = [
    "CharacterAlignment",
    "ElevenLabsNarrator",
    "ElevenLabsPricing",
    "ElevenLabsSoundDesigner",
    "ElevenLabsVoiceSettings",
    "SpeechAsked",
    "classify_api_error",
    "create_narration",
    "create_sound",
    "looks_like_mp3",
    "words_from_alignment",
]
