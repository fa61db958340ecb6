"""ElevenLabs API wire fixtures: the bodies the real service answers with, each with its source."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import imageio_ffmpeg

ELEVENLABS_HOST = "https://api.elevenlabs.io"

# POST /v1/text-to-speech/{voice_id}/with-timestamps answers JSON with base64 audio and
# per-character timings for the original and the normalised text.
SOURCE_WITH_TIMESTAMPS = "https://elevenlabs.io/docs/api-reference/text-to-speech-with-timestamps"
# POST /v1/sound-generation answers the audio bytes themselves (audio/mpeg for mp3_* formats).
SOURCE_SOUND_GENERATION = "https://elevenlabs.io/docs/api-reference/sound-generation"
# Errors: {"detail": {...}} with `status` (legacy) / `code`, `message`; 429 for rate/concurrency.
SOURCE_ERRORS = "https://elevenlabs.io/docs/eleven-api/resources/errors"
# invalid_api_key and quota_exceeded are 401s; max_character_limit_exceeded / voice_not_found are 400s.
SOURCE_ERRORS_400_401 = "https://help.elevenlabs.io/hc/en-us/articles/19572237925521-API-Error-Code-400-or-401"


def encode_mp3(path: Path, seconds: float = 0.5) -> bytes:
    """A real MP3 (sine tone) made with the bundled ffmpeg, so the bytes are what the API sends."""
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-ac",
            "1",
            "-ar",
            "22050",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "32k",
            "-f",
            "mp3",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


def character_alignment(text: str, seconds_per_char: float = 0.06, lead_in: float = 0.05) -> dict[str, Any]:
    """Timings as ElevenLabs reports them: one entry per character, spaces included."""
    starts = [round(lead_in + i * seconds_per_char, 3) for i in range(len(text))]
    ends = [round(s + seconds_per_char, 3) for s in starts]
    return {
        "characters": list(text),
        "character_start_times_seconds": starts,
        "character_end_times_seconds": ends,
    }


def with_timestamps_response(mp3: bytes, text: str, *, normalized_text: str | None = None) -> dict[str, Any]:
    """SOURCE: SOURCE_WITH_TIMESTAMPS."""
    return {
        "audio_base64": base64.b64encode(mp3).decode(),
        "alignment": character_alignment(text),
        "normalized_alignment": character_alignment(normalized_text if normalized_text is not None else text),
    }


def error_detail(status: str, message: str, **extra: Any) -> dict[str, Any]:
    """SOURCE: SOURCE_ERRORS / SOURCE_ERRORS_400_401 (the `detail` object)."""
    return {"detail": {"status": status, "message": message, **extra}}


INVALID_API_KEY = error_detail("invalid_api_key", "Invalid API key")
QUOTA_EXCEEDED = error_detail(
    "quota_exceeded",
    "This request exceeds your quota of 10000. You have 212 credits remaining, while 1043 credits are required"
    " for this request.",
)
MAX_CHARACTERS = error_detail(
    "max_character_limit_exceeded",
    "This request's text has 10627 characters and exceeds the character limit of 10000 characters.",
)
VOICE_NOT_FOUND = error_detail("voice_not_found", "A voice with the voice_id onwK4e9ZLuTAKqWW03F9 was not found.")
# A scoped API key without the endpoint's permission (SOURCE: SOURCE_ERRORS, authorization errors).
MISSING_PERMISSIONS = error_detail(
    "missing_permissions", "The API key you used is missing the permission text_to_speech to execute this operation."
)
# New-style body, from SOURCE_ERRORS' own example (type/code/message/request_id/param).
INVALID_PARAMETERS = {
    "detail": {
        "type": "validation_error",
        "code": "invalid_parameters",
        "message": "The model 'eleven_nonexistent' does not exist.",
        "status": "invalid_parameters",
        "request_id": "3c807fc4c3a1705f9638ecc764a91c01",
        "param": "model_id",
    }
}
MODEL_NOT_FOUND = error_detail("model_not_found", "A model with model ID eleven_nonexistent was not found.")
# 422: FastAPI request validation, as the API's OpenAPI schema declares (HTTPValidationError).
VALIDATION_ERROR_422 = {
    "detail": [
        {"loc": ["body", "duration_seconds"], "msg": "ensure this value is less than or equal to 30", "type": "value_error"}
    ]
}
# 429 variants (SOURCE: SOURCE_ERRORS, "Rate limiting and concurrency").
TOO_MANY_CONCURRENT = error_detail(
    "too_many_concurrent_requests",
    "Too many concurrent requests. Your current subscription is associated with a maximum of 5 concurrent requests.",
)
CONCURRENT_LIMIT = {
    "detail": {
        "type": "rate_limit_error",
        "code": "concurrent_limit_exceeded",
        "message": "You have exceeded the concurrency limit of your plan.",
        "request_id": "9d2c0c2b7e3f4a51",
    }
}
SYSTEM_BUSY = error_detail("system_busy", "We are experiencing high traffic. Please try again later.")
# A content-policy refusal of the prompt (seen on sound/music generation; 400 with a suggestion).
BAD_PROMPT = error_detail(
    "bad_prompt",
    "Your prompt appears to have violated our Terms of Service. Please try again with a different prompt.",
    data={"prompt_suggestion": "A cinematic orchestral swell with distant thunder."},
)
INTERNAL = error_detail("internal_error", "An internal server error occurred.")


# GET /v1/history lists the account's generated speech, newest first, with each item's text, voice,
# model, date and character alignments (query: voice_id, model_id, source, date_after_unix,
# page_size); GET /v1/history/{history_item_id}/audio answers the item's audio.
SOURCE_HISTORY = "https://elevenlabs.io/docs/api-reference/history/list"
SOURCE_HISTORY_AUDIO = "https://elevenlabs.io/docs/api-reference/history/get-audio"


def history_item(text: str, *, voice_id: str, model_id: str, date_unix: int,
                 history_item_id: str = "VW7YKqPnjY4h39yTbx2L") -> dict[str, Any]:
    """SOURCE: SOURCE_HISTORY (one element of `history`)."""
    return {
        "history_item_id": history_item_id,
        "request_id": "BF0BZg4IwLGBlaVjv9Im",
        "voice_id": voice_id,
        "model_id": model_id,
        "voice_name": "George",
        "voice_category": "premade",
        "text": text,
        "date_unix": date_unix,
        "character_count_change_from": 17189,
        "character_count_change_to": 17189 + len(text),
        "content_type": "audio/mpeg",
        "state": "created",
        "settings": {"similarity_boost": 0.75, "stability": 0.5, "style": 0, "use_speaker_boost": True},
        "feedback": None,
        "share_link_id": None,
        "source": "TTS",
        "alignments": {"alignment": character_alignment(text), "normalized_alignment": character_alignment(text)},
        "output_format": "mp3_44100_128",
    }


def history_response(*items: dict[str, Any]) -> dict[str, Any]:
    """SOURCE: SOURCE_HISTORY."""
    return {"history": list(items), "has_more": False,
            "last_history_item_id": items[-1]["history_item_id"] if items else None}
