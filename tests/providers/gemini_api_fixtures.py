"""Gemini API wire fixtures: request shapes and the bodies the real service answers with.

Every fixture names the documentation page it follows in its `SOURCE`/comment. Bodies are built
by small functions so tests can vary one field (a finish reason, a quota id) without copying JSON.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

GOOGLE_HOST = "https://generativelanguage.googleapis.com"

# --- successful answers -----------------------------------------------------------------------
# GenerateContentResponse: candidates[].content.parts[], finishReason, usageMetadata, modelVersion.
SOURCE_GENERATE_CONTENT = "https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse"
# Structured output: with responseMimeType application/json the JSON document is the text of part 0.
SOURCE_STRUCTURED_OUTPUT = "https://ai.google.dev/gemini-api/docs/structured-output"
# Image generation: the picture comes back as parts[].inlineData {mimeType, data (base64)}.
SOURCE_IMAGE_GENERATION = "https://ai.google.dev/gemini-api/docs/image-generation"


def script_document(scenes: int = 3) -> dict[str, Any]:
    """A script as the model writes it under the `Script` response schema."""
    return {
        "title": "The Wolves of Yellowstone",
        "description": "How fourteen wolves changed the course of rivers.",
        "tags": ["wolves", "yellowstone", "trophic cascade"],
        "scenes": [
            {
                "index": i,
                "narration": f"Scene {i} narration: in the winter of 1995 the wolves came back to the valley.",
                "image_prompt": f"a grey wolf crossing a snowy river valley at dawn, shot {i}",
                "motion_prompt": "slow push-in as the wolf walks across the frame",
                "sound_cue": "wind over snow, distant howl",
            }
            for i in range(scenes)
        ],
    }


def text_response(
    text: str,
    *,
    finish_reason: str = "STOP",
    prompt_tokens: int = 412,
    candidate_tokens: int = 980,
    thought_tokens: int | None = 1200,
) -> dict[str, Any]:
    """SOURCE: SOURCE_GENERATE_CONTENT (text part) + SOURCE_STRUCTURED_OUTPUT (JSON as text)."""
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidate_tokens,
        "totalTokenCount": prompt_tokens + candidate_tokens + (thought_tokens or 0),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }
    if thought_tokens is not None:
        usage["thoughtsTokenCount"] = thought_tokens
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mock-response-1",
    }


def png_of(width: int, height: int, colour: tuple[int, int, int] = (40, 90, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def jpeg_of(width: int, height: int, colour: tuple[int, int, int] = (200, 150, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="JPEG", quality=80)
    return out.getvalue()


def image_response(data: bytes, mime_type: str = "image/png", *, with_text: str | None = None) -> dict[str, Any]:
    """SOURCE: SOURCE_IMAGE_GENERATION; a 1290-token image as usageMetadata reports it."""
    parts: list[dict[str, Any]] = []
    if with_text:
        parts.append({"text": with_text})
    parts.append({"inlineData": {"mimeType": mime_type, "data": base64.b64encode(data).decode()}})
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {
            "promptTokenCount": 48,
            "candidatesTokenCount": 1290,
            "totalTokenCount": 1338,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
        },
        "modelVersion": "gemini-2.5-flash-image",
        "responseId": "mock-image-1",
    }


# --- refusals ---------------------------------------------------------------------------------
# SOURCE: https://ai.google.dev/api/generate-content#PromptFeedback — a blocked prompt has
# promptFeedback.blockReason and no candidates (also
# https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/process-blocked-responses).
def prompt_blocked(block_reason: str = "PROHIBITED_CONTENT") -> dict[str, Any]:
    return {
        "promptFeedback": {"blockReason": block_reason},
        "usageMetadata": {"promptTokenCount": 37, "totalTokenCount": 37},
        "modelVersion": "gemini-2.5-flash-image",
    }


# SOURCE: https://ai.google.dev/api/generate-content#FinishReason — a blocked answer is a candidate
# with finishReason SAFETY / IMAGE_SAFETY / PROHIBITED_CONTENT / ... and no content.
def candidate_stopped(finish_reason: str) -> dict[str, Any]:
    return {
        "candidates": [{"finishReason": finish_reason, "index": 0}],
        "usageMetadata": {"promptTokenCount": 52, "totalTokenCount": 52},
        "modelVersion": "gemini-2.5-flash-image",
    }


# --- errors -----------------------------------------------------------------------------------
# Google API errors are google.rpc.Status bodies: {"error": {"code", "message", "status", "details"}}.
SOURCE_ERRORS = "https://ai.google.dev/gemini-api/docs/troubleshooting"
SOURCE_RATE_LIMITS = "https://ai.google.dev/gemini-api/docs/rate-limits"


def error_body(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


HELP_RATE_LIMITS = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [{"description": "Learn more about Gemini API quotas", "url": SOURCE_RATE_LIMITS}],
}


def quota_error(quota_id: str, metric: str, retry_delay: str | None) -> dict[str, Any]:
    """A 429 as the Gemini API sends it: QuotaFailure + Help + (for per-minute quotas) RetryInfo.

    SOURCE: SOURCE_RATE_LIMITS; body shape as returned by generativelanguage.googleapis.com.
    """
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": metric,
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                    "quotaValue": "250",
                }
            ],
        },
        HELP_RATE_LIMITS,
    ]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    return error_body(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more information"
        f" on this error, head to: {SOURCE_RATE_LIMITS}.",
        details,
    )


PER_MINUTE_QUOTA = quota_error(
    "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
    "generativelanguage.googleapis.com/generate_content_free_tier_requests",
    "26s",
)
PER_DAY_QUOTA = quota_error(
    "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
    "generativelanguage.googleapis.com/generate_content_free_tier_requests",
    None,
)
# SOURCE: SOURCE_ERRORS (400 INVALID_ARGUMENT: "The request body is malformed").
INVALID_ARGUMENT = error_body(
    400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"aspect\" at 'generation_config': Cannot find field."
)
# A bad key is reported as 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID.
API_KEY_INVALID = error_body(
    400,
    "INVALID_ARGUMENT",
    "API key not valid. Please pass a valid API key.",
    [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ],
)
# SOURCE: SOURCE_ERRORS (400 FAILED_PRECONDITION: free tier not available in your country).
FAILED_PRECONDITION = error_body(
    400,
    "FAILED_PRECONDITION",
    "User location is not supported for the API use without a billing account linked.",
)
UNAUTHENTICATED = error_body(
    401,
    "UNAUTHENTICATED",
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other"
    " valid authentication credential.",
)
# SOURCE: SOURCE_ERRORS (403 PERMISSION_DENIED: the key lacks the required permissions).
PERMISSION_DENIED = error_body(
    403,
    "PERMISSION_DENIED",
    "Generative Language API has not been used in project 000000000000 before or it is disabled.",
)
# SOURCE: SOURCE_ERRORS (404 NOT_FOUND: the requested resource wasn't found).
NOT_FOUND = error_body(
    404, "NOT_FOUND", "models/gemini-9-flash is not found for API version v1beta, or is not supported for generateContent."
)
# SOURCE: SOURCE_ERRORS (500 INTERNAL, 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED).
INTERNAL = error_body(
    500, "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
)
UNAVAILABLE = error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
DEADLINE_EXCEEDED = error_body(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")



# The script is an interaction run in the background (https://ai.google.dev/gemini-api/docs/interactions):
# POST /v1beta/interactions answers it `in_progress`; GET /v1beta/interactions/{id} answers it
# `completed` with the input echoed as the first step and the model's text in a `model_output` step
# (the steps schema of the May 2026 revision), and its usage; `failed` carries `errors`.
SOURCE_INTERACTIONS = "https://ai.google.dev/gemini-api/docs/interactions"
INTERACTION_ID = "v1_ChdTbG9wX0dhbGxlcnlfQmFja2dyb3VuZA"


def interaction(status: str = "completed", text: str | None = None, *, input_tokens: int = 412,
                output_tokens: int = 980, thought_tokens: int | None = 1200,
                errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """SOURCE: SOURCE_INTERACTIONS (Interaction resource)."""
    body: dict[str, Any] = {
        "id": INTERACTION_ID,
        "status": status,
        "model": "gemini-2.5-flash",
        "role": "model",
        "created": "2026-12-01T09:00:00Z",
        "updated": "2026-12-01T09:00:07Z",
    }
    if text is not None:
        body["steps"] = [
            {"type": "user_input", "content": [{"type": "text", "text": "Write the script of a narrated video"}]},
            {"type": "model_output", "content": [{"type": "text", "text": text}]},
        ]
    if status != "in_progress":
        body["usage"] = {
            "total_input_tokens": input_tokens,
            "total_output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens + (thought_tokens or 0),
        }
        if thought_tokens is not None:
            body["usage"]["total_thought_tokens"] = thought_tokens
    if errors:
        body["errors"] = errors
    return body
