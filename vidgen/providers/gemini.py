"""Gemini as script writer (structured JSON output) and image generator (Gemini 2.5 Flash Image).

Both go through the official `google-genai` SDK. The script is written by an *interaction* run in
the background (https://ai.google.dev/gemini-api/docs/interactions: `POST /v1beta/interactions`
with `background: true, store: true`, then `GET /v1beta/interactions/{id}` until its `status` is
`completed`; the answer is the text content of the `model_output` step, the JSON schema goes in
`response_format`), because Google keeps a stored interaction: its id, noted in the video's
workspace before the wait (`KeptTask`), lets a new worker after a kill collect the script it paid
for instead of paying again. Images use `models.generateContent`, which keeps nothing (for pictures
that survive a kill, `images: kie` asks for the same model as a KIE.ai task). Documentation the
request and response handling follows:

- interactions (background, store, status, steps, usage; the May 2026 steps schema):
  https://ai.google.dev/gemini-api/docs/interactions; the request and answer shapes are the SDK's own
  types (`google.genai._gaos.types.interactions`). How a refused prompt reads in an interaction is
  not spelled out there: a `failed` one whose errors speak of safety goes to a person, any other
  `failed` one is an API failure, `incomplete` is a script cut off.
- structured output (a JSON schema, here in `response_format`): https://ai.google.dev/gemini-api/docs/structured-output
- generateContent request/response, FinishReason, BlockReason, usageMetadata (images):
  https://ai.google.dev/api/generate-content
- image generation (responseModalities IMAGE, imageConfig.aspectRatio, inlineData parts):
  https://ai.google.dev/gemini-api/docs/image-generation
- error codes: https://ai.google.dev/gemini-api/docs/troubleshooting
  (also https://ai.google.dev/gemini-api/docs/generate-content/api-errors)
- quotas ("Requests per day (RPD) quotas reset at midnight Pacific time"):
  https://ai.google.dev/gemini-api/docs/rate-limits
- prices: https://ai.google.dev/gemini-api/docs/pricing

Three SDK defaults are overridden on purpose:

- the HTTP backend: google-genai 3.x prefers `httpx2` when installed; we hand it an `httpx.Client`
  so every call goes through plain httpx (which is also what the HTTP-level test mocks intercept);
- retries: `HttpRetryOptions(attempts=1)` so the SDK never retries (the interactions client reads
  the same option) — retrying is the orchestrator's policy, decided from the error class alone (one
  retry policy, not two stacked ones); polling an interaction is waiting, not retrying;
- the timeout: the SDK sends no timeout unless told, so a hung socket would hang the worker.
"""

from __future__ import annotations

import io
import json
import logging
import time as clock_time
from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from google import genai
from google.genai import _interactions as interaction_errors  # the SDK's error hierarchy for interactions
from google.genai import errors as genai_errors
from google.genai import types
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field, ValidationError

from vidgen.channels import Channel
from vidgen.errors import (
    ApiFailureError,
    InvalidInputError,
    NeedsReviewError,
    ProviderError,
    RetriableError,
    classify_http,
    parse_retry_after,
)
from vidgen.files import atomic_write_bytes
from vidgen.models import Cost, Script
from vidgen.providers.base import ImageRequest, ImageResult, KeptTask, ScriptRequest, ScriptResult
from vidgen.providers.polling import poll_until
from vidgen.providers.settings import ProviderSettings
from vidgen.script_repair import UnusableScriptError
from vidgen.workspace import fingerprint

log = logging.getLogger(__name__)

PROVIDER = "gemini"
PENDING_INTERACTION = frozenset({"in_progress", "queued"})
SAFETY_MARKERS = ("safety", "blocked", "prohibited", "recitation", "harm")
API_VERSION = "v1beta"  # the version every REST example in the Gemini API docs uses
IMAGE_ASPECT_RATIO = "16:9"  # the film is 1920x1080; Gemini 2.5 Flash Image answers 1344x768
DEFAULT_TIMEOUT_S = 120.0  # the seed's per-call Gemini timeout

# Finish/block reasons that mean "a filter refused this content": a person must look at the prompt.
SAFETY_REASONS = frozenset(
    {
        "SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
        "JAILBREAK",
    }
)
_PACIFIC = ZoneInfo("America/Los_Angeles")


class GeminiPricing(BaseModel):
    """What Gemini calls cost, in USD; override when Google's price list changes.

    Defaults: gemini-2.5-flash paid tier ($0.30 per 1M input tokens, $2.50 per 1M output tokens,
    thinking tokens billed as output) and the seed's $0.039 per Gemini 2.5 Flash Image picture
    (1290 output tokens at $30 per 1M), see https://ai.google.dev/gemini-api/docs/pricing.
    """

    input_usd_per_million_tokens: float = Field(default=0.30, ge=0)
    output_usd_per_million_tokens: float = Field(default=2.50, ge=0)
    image_usd: float = Field(default=0.039, ge=0)

    def script_cost(self, usage: Any) -> Cost:
        """Tokens as Google bills them: input at the input price, answer + thoughts at the output price
        (`usage` is an interaction's: total_input_tokens, total_output_tokens, total_thought_tokens)."""
        if usage is None:
            return Cost(usd=0.0, units=0, unit="tokens")
        prompt = usage.total_input_tokens or 0
        output = (usage.total_output_tokens or 0) + (usage.total_thought_tokens or 0)
        usd = (prompt * self.input_usd_per_million_tokens + output * self.output_usd_per_million_tokens) / 1e6
        return Cost(usd=round(usd, 8), units=usage.total_tokens or prompt + output, unit="tokens")

    def image_cost(self) -> Cost:
        return Cost(usd=self.image_usd, units=1, unit="image")


# --- the client -------------------------------------------------------------------------------
def make_client(api_key: str, *, base_url: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> genai.Client:
    """A google-genai client on plain httpx, with the SDK's own retries off and a real timeout."""
    options = types.HttpOptions(
        base_url=base_url,
        api_version=API_VERSION,
        timeout=int(timeout_s * 1000),  # HttpOptions.timeout is in milliseconds
        retry_options=types.HttpRetryOptions(attempts=1),
        httpx_client=httpx.Client(timeout=timeout_s),
    )
    return genai.Client(api_key=api_key, vertexai=False, http_options=options)


def _generate(
    client: genai.Client, model: str, contents: str, config: types.GenerateContentConfig
) -> types.GenerateContentResponse:
    """One generateContent call; every failure leaves as a `ProviderError` subclass."""
    try:
        return client.models.generate_content(model=model, contents=contents, config=config)
    except genai_errors.APIError as exc:
        raise classify_api_error(exc) from exc
    except httpx.TimeoutException as exc:
        raise RetriableError(f"request timed out ({type(exc).__name__})", provider=PROVIDER) from exc
    except httpx.TransportError as exc:
        raise RetriableError(f"network error: {exc}", provider=PROVIDER) from exc
    except json.JSONDecodeError as exc:
        raise ApiFailureError(f"unexpected response: the body is not JSON ({exc})", provider=PROVIDER) from exc


# --- error classification ---------------------------------------------------------------------
def _error_details(body: Any) -> list[dict[str, Any]]:
    """The `error.details` list of a Google API error body (google.rpc.Status), if any."""
    body = body if isinstance(body, dict) else {}
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _detail_of_type(details: list[dict[str, Any]], type_suffix: str) -> list[dict[str, Any]]:
    return [d for d in details if str(d.get("@type", "")).endswith(type_suffix)]


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """google.rpc.RetryInfo.retryDelay is a protobuf Duration in JSON form, e.g. "26s" or "0.5s"."""
    for info in _detail_of_type(details, "google.rpc.RetryInfo"):
        delay = str(info.get("retryDelay", "")).strip()
        if delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                continue
    return None


def _is_daily_quota(details: list[dict[str, Any]]) -> bool:
    """Whether a 429 names a per-day quota (quotaId like "GenerateRequestsPerDayPerProjectPerModel")."""
    for failure in _detail_of_type(details, "google.rpc.QuotaFailure"):
        for violation in failure.get("violations") or []:
            quota = f"{violation.get('quotaId', '')} {violation.get('quotaMetric', '')}".lower()
            if "perday" in quota or "per_day" in quota:
                return True
    return False


def seconds_until_quota_reset(now: datetime | None = None) -> float:
    """Seconds until the next midnight Pacific time, when Gemini's per-day quotas reset."""
    now_pacific = (now or datetime.now(_PACIFIC)).astimezone(_PACIFIC)
    midnight = datetime.combine(now_pacific.date() + timedelta(days=1), time(0), tzinfo=_PACIFIC)
    # aware datetimes sharing a tzinfo subtract as wall-clock times; compare instants in UTC instead
    return max(0.0, (midnight.astimezone(timezone.utc) - now_pacific.astimezone(timezone.utc)).total_seconds())


def classify_api_error(exc: genai_errors.APIError) -> ProviderError:
    """A generateContent error, classified by `classify_google_error`."""
    headers = getattr(exc.response, "headers", None)
    return classify_google_error(int(exc.code or 0), exc.details, headers, status=str(exc.status or ""),
                                 message=str(exc.message or exc.details or ""))


def classify_interaction_error(exc: interaction_errors.APIStatusError) -> ProviderError:
    """An Interactions API error (the same google.rpc.Status body), classified by `classify_google_error`."""
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    message = str(error.get("message") or exc.message or "")
    return classify_google_error(int(exc.status_code), body, exc.response.headers, status=str(error.get("status") or ""),
                                 message=message)


def classify_google_error(
    code: int, body: Any, headers: Any, *, status: str, message: str
) -> ProviderError:
    """Map a Google API error (HTTP code + google.rpc status + details) to the vidgen error classes.

    The HTTP code decides by default (`classify_http`), with three documented exceptions:
    - 429 RESOURCE_EXHAUSTED on a *per-day* quota is an API failure, not a retriable error: per-day
      quotas reset only at midnight Pacific, so retrying minutes later just burns attempts. It
      carries `retry_after` = seconds to that reset so a scheduler can re-queue the video then.
      Per-minute quotas (RPM/TPM/IPM) stay retriable, with Google's RetryInfo delay.
    - 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID is an auth failure, not bad input.
    - 400 FAILED_PRECONDITION (billing not enabled / free tier unavailable in the region) needs a
      person to fix the account, so it is an API failure.
    """
    message = message[:500]
    details = _error_details(body)
    header_delay = parse_retry_after(headers.get("retry-after")) if headers is not None else None
    retry_after = header_delay if header_delay is not None else _retry_delay(details)
    described = f"{status} {message}".strip()

    if code == 429 and _is_daily_quota(details):
        reset_in = seconds_until_quota_reset()
        return ApiFailureError(
            f"HTTP 429: daily quota exhausted ({described}); it resets at midnight Pacific time,"
            f" in {reset_in / 3600:.1f} h",
            provider=PROVIDER,
            status_code=code,
            retry_after=reset_in,
        )
    reasons = {str(d.get("reason", "")) for d in _detail_of_type(details, "google.rpc.ErrorInfo")}
    if code == 400 and "API_KEY_INVALID" in reasons:
        return ApiFailureError(f"HTTP 400: API key rejected ({described})", provider=PROVIDER, status_code=code)
    if code == 400 and status == "FAILED_PRECONDITION":
        return ApiFailureError(f"HTTP 400: {described}", provider=PROVIDER, status_code=code)
    return classify_http(code, described, provider=PROVIDER, retry_after=retry_after)


# --- response reading -------------------------------------------------------------------------
def _reason_name(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def _first_candidate(response: types.GenerateContentResponse) -> types.Candidate:
    """The answer, or the documented reason there is none (a blocked prompt)."""
    feedback = response.prompt_feedback
    reason = _reason_name(feedback.block_reason) if feedback is not None else ""
    if reason and reason != "BLOCKED_REASON_UNSPECIFIED":
        extra = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
        raise NeedsReviewError(f"prompt blocked by Gemini (blockReason {reason}{extra})", provider=PROVIDER)
    if not response.candidates:
        raise ApiFailureError("unexpected response: no candidates and no block reason", provider=PROVIDER)
    return response.candidates[0]


def _answer_parts(candidate: types.Candidate) -> list[types.Part]:
    """The candidate's parts, minus "thought" parts (the model's reasoning, not its answer)."""
    content = candidate.content
    return [p for p in (content.parts or []) if not p.thought] if content is not None else []


def _answer_text(candidate: types.Candidate) -> str:
    return "".join(p.text for p in _answer_parts(candidate) if p.text)


def _raise_if_safety_stop(candidate: types.Candidate, what: str) -> None:
    reason = _reason_name(candidate.finish_reason)
    if reason in SAFETY_REASONS:
        raise NeedsReviewError(f"{what} stopped by Gemini's safety filters (finishReason {reason})", provider=PROVIDER)


# --- the script writer ------------------------------------------------------------------------
def script_instructions(request: ScriptRequest) -> str:
    """The system instruction: who writes, for which channel, in which look and language."""
    return (
        f'You are the scriptwriter of the YouTube channel "{request.channel_name}". '
        f"Every scene is illustrated in this visual style: {request.style_preamble}. "
        f"Write the narration in the language with code {request.language!r}. "
        "Answer only with JSON that follows the response schema."
    )


def script_prompt(request: ScriptRequest) -> str:
    """The user turn: the brief for this one video, with the sizes the pipeline needs."""
    lines = [
        f"Write the script of a narrated video titled {request.title!r}.",
        f"Topic: {request.topic}",
    ]
    if request.story_direction.strip():
        lines.append(f"Story direction: {request.story_direction.strip()}")
    lines += [
        f"Write exactly {request.scenes} scenes, with index running 0 to {request.scenes - 1} in order.",
        f"Each scene's narration is about {request.words_per_scene} words of spoken text, with no stage directions.",
        "image_prompt: one still picture of the scene, concrete and visual, without style words"
        " (the channel style is added later) and without any text in the image.",
        "motion_prompt: the camera and subject movement for a 5-10 second animated clip of that picture.",
        "sound_cue: a short sound-effect description for the scene (no music, no speech).",
        "title: a YouTube title of at most 100 characters; description: a YouTube description;"
        " tags: up to 15 short search tags.",
    ]
    if request.previous_problems:
        lines.append("Your previous answer to this request could not be used:")
        lines += [f"- {problem}" for problem in request.previous_problems]
        lines.append("Write the whole script again, keeping every rule above.")
    return "\n".join(lines)


def _interaction_call(action: Callable[[], Any]) -> Any:
    """One Interactions API call; every failure leaves as a `ProviderError` subclass."""
    try:
        return action()
    except interaction_errors.APIStatusError as exc:
        raise classify_interaction_error(exc) from exc
    except interaction_errors.APITimeoutError as exc:
        raise RetriableError(f"request timed out ({type(exc).__name__})", provider=PROVIDER) from exc
    except interaction_errors.APIConnectionError as exc:
        raise RetriableError(f"network error: {exc}", provider=PROVIDER) from exc
    except interaction_errors.APIError as exc:  # an answer that is not the documented JSON
        raise ApiFailureError(f"unexpected response: {str(exc)[:200]}", provider=PROVIDER) from exc


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON schema with its `$ref`s written out: the subset of JSON Schema Gemini enforces."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        return [inline(item) for item in node] if isinstance(node, list) else node

    return inline(schema)


def _interaction_text(interaction: Any) -> str:
    """The text the model answered: the text content of the interaction's `model_output` steps."""
    return "".join(
        str(getattr(content, "text", "") or "")
        for step in interaction.steps or []
        if getattr(step, "type", "") == "model_output"
        for content in getattr(step, "content", None) or []
        if getattr(content, "type", "") == "text"
    )


def _interaction_problem(interaction: Any) -> str:
    """What an interaction that did not complete says about why (its errors, its steps' errors)."""
    said = [f"{e.code or ''} {e.message or ''}".strip() for e in interaction.errors or []]
    said += [f"{step.error.code or ''} {step.error.message or ''}".strip()
             for step in interaction.steps or [] if getattr(step, "error", None) is not None]
    return "; ".join(text for text in said if text) or "no reason given"


class GeminiScriptWriter:
    """Writes a `Script` with Gemini's structured output, validated against the same pydantic model.

    The interaction runs in Google's background and is stored; its id is noted in `note_dir` (the
    video's workspace) before the wait, so a retry or a new worker waits on the same paid answer. The
    note goes once the answer is read; a re-ask (previous problems stated) is another request, noted
    apart. Time is `clock`/`sleep`, so tests never really wait.
    """

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "gemini-2.5-flash",
        base_url: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        pricing: GeminiPricing | None = None,
        first_poll_s: float = 1.0,
        max_poll_s: float = 10.0,
        sleep: Callable[[float], None] = clock_time.sleep,
        clock: Callable[[], float] = clock_time.monotonic,
    ):
        self.model = model
        self.pricing = pricing or GeminiPricing()
        self.timeout_s, self.first_poll_s, self.max_poll_s = timeout_s, first_poll_s, max_poll_s
        self._sleep, self._clock = sleep, clock
        self._client = make_client(api_key, base_url=base_url, timeout_s=timeout_s)

    def write(self, request: ScriptRequest) -> ScriptResult:
        """One request; the scene count is returned as written (bounds are the caller's rule)."""
        instructions, prompt = script_instructions(request), script_prompt(request)
        asked = fingerprint(self.model, instructions, prompt)
        note = KeptTask.path_for(request.note_dir / f"script-{asked[:16]}", PROVIDER) if request.note_dir else None
        interaction = self._resumed(note, asked) if note else None
        if interaction is None:
            interaction = _interaction_call(lambda: self._client.interactions.create(
                model=self.model,
                input=prompt,
                system_instruction=instructions,
                response_format={"type": "text", "mime_type": "application/json", "schema": json_schema(Script)},
                background=True,
                store=True,
            ))
            if note:
                KeptTask(task_id=interaction.id, fingerprint=asked).save(note)
            if interaction.status in PENDING_INTERACTION:
                interaction = self._wait(interaction.id)
        try:
            return self._script_of(interaction)
        finally:
            if note:
                note.unlink(missing_ok=True)

    def _resumed(self, note: Path, asked: str) -> Any | None:
        """The noted interaction, finished, if Google still has it."""
        interaction_id = KeptTask.load(note, asked)
        if interaction_id is None:
            return None
        log.info("resuming Gemini interaction %s for the script", interaction_id)
        try:
            return self._wait(interaction_id)
        except InvalidInputError as exc:
            if exc.status_code != 404:
                raise
            return None  # Google no longer keeps it: ask again

    def _wait(self, interaction_id: str) -> Any:
        """Poll until the interaction leaves `in_progress`; a transient error while polling is logged,
        not the interaction failing; past `timeout_s` a RetriableError (the note stays for the retry)."""
        return poll_until(
            lambda: _interaction_call(lambda: self._client.interactions.get(interaction_id)),
            lambda interaction: interaction.status not in PENDING_INTERACTION, timeout_s=self.timeout_s,
            timed_out=lambda: RetriableError(
                f"the script did not finish within {self.timeout_s:g} s (interaction {interaction_id})", provider=PROVIDER
            ),
            what=f"Gemini interaction {interaction_id}", first_poll_s=self.first_poll_s, max_poll_s=self.max_poll_s,
            sleep=self._sleep, clock=self._clock,
        )

    def _script_of(self, interaction: Any) -> ScriptResult:
        status = str(interaction.status)
        cost = self.pricing.script_cost(interaction.usage)
        if status == "failed":
            problem = _interaction_problem(interaction)
            if any(marker in problem.lower() for marker in SAFETY_MARKERS):
                raise NeedsReviewError(f"the script was refused by Gemini ({problem})", provider=PROVIDER)
            raise ApiFailureError(f"the script interaction {interaction.id} failed: {problem}", provider=PROVIDER)
        if status == "incomplete":
            raise ApiFailureError(
                "unexpected response: the script was cut off (interaction status incomplete: "
                f"{_interaction_problem(interaction)})", provider=PROVIDER,
            )
        if status != "completed":
            raise ApiFailureError(f"unexpected response: interaction {interaction.id} ended {status}", provider=PROVIDER)
        text = _interaction_text(interaction).strip()
        if not text:
            raise ApiFailureError("unexpected response: no script text in the completed interaction", provider=PROVIDER)
        try:
            script = Script.model_validate_json(text)
        except ValidationError as exc:
            # The answer parsed as JSON text but not as a Script: the model's mistake, which the
            # pipeline states back to it once (vidgen.script_repair) before giving up.
            problems = [
                f"{'.'.join(str(p) for p in error['loc']) or '(document)'}: {error['msg']}" for error in exc.errors()[:10]
            ]
            raise UnusableScriptError(
                f"unexpected response: the script JSON does not fit the schema ({problems[0]})",
                provider=PROVIDER,
                problems=problems,
                answer=text,
                cost=cost,
            ) from exc
        return ScriptResult(script=script, cost=cost)


# --- the image generator ----------------------------------------------------------------------
def image_prompt(request: ImageRequest) -> str:
    """The channel style first (the seed's consistent look), then the scene, then the palette."""
    lines = []
    if request.style_preamble.strip():
        lines.append(f"Style: {request.style_preamble.strip()}")
    lines.append(f"Scene: {request.prompt.strip()}")
    if request.palette:
        lines.append(f"Colour palette: {', '.join(request.palette)}")
    lines.append("Wide 16:9 composition. No text, letters, captions, logos or watermarks in the image.")
    return "\n".join(lines)


def png_bytes(data: bytes) -> tuple[bytes, int, int]:
    """PNG bytes and size from what Gemini returned; PNG passes through untouched, JPEG is converted."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            width, height = img.size
            if img.format == "PNG":
                return data, width, height
            converted = img.convert("RGBA" if "A" in img.getbands() else "RGB")
            out = io.BytesIO()
            converted.save(out, format="PNG")
            return out.getvalue(), width, height
    except (UnidentifiedImageError, OSError) as exc:
        raise ApiFailureError(f"unexpected response: the image data is not a readable image ({exc})", provider=PROVIDER) from exc


class GeminiImageGenerator:
    """Gemini 2.5 Flash Image at 16:9; safety refusals go to a person, never silently retried."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        model: str = "gemini-2.5-flash-image",
        base_url: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        pricing: GeminiPricing | None = None,
    ):
        self.model = model
        self.pricing = pricing or GeminiPricing()
        self._client = make_client(api_key, base_url=base_url, timeout_s=timeout_s)

    def generate(self, request: ImageRequest) -> ImageResult:
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=IMAGE_ASPECT_RATIO),
            seed=request.seed,
        )
        response = _generate(self._client, self.model, image_prompt(request), config)
        candidate = _first_candidate(response)
        _raise_if_safety_stop(candidate, "the image")
        images = [p.inline_data for p in _answer_parts(candidate) if p.inline_data is not None and p.inline_data.data]
        if not images:
            reason = _reason_name(candidate.finish_reason) or "none"
            said = _answer_text(candidate).strip()
            note = f"; the model said: {said[:300]!r}" if said else ""
            raise NeedsReviewError(f"Gemini returned no image (finishReason {reason}){note}", provider=PROVIDER)
        data, width, height = png_bytes(images[0].data)
        atomic_write_bytes(request.out_path, data)
        return ImageResult(path=request.out_path, width=width, height=height, cost=self.pricing.image_cost())


# --- factories (see vidgen.providers.registry) ------------------------------------------------
def _api_key(settings: ProviderSettings) -> str:
    if settings.gemini_api_key is None or not settings.gemini_api_key.get_secret_value().strip():
        raise ApiFailureError(
            "GEMINI_API_KEY is not set (nor GOOGLE_API_KEY); create a key at https://aistudio.google.com/apikey"
            " and put it in the environment or the Prefect Secret block",
            provider=PROVIDER,
        )
    return settings.gemini_api_key.get_secret_value().strip()


def create_script(
    settings: ProviderSettings, channel: Channel, *, pricing: GeminiPricing | None = None
) -> GeminiScriptWriter:
    return GeminiScriptWriter(
        _api_key(settings), model=settings.gemini_script_model, base_url=settings.gemini_base_url, pricing=pricing
    )


def create_images(
    settings: ProviderSettings, channel: Channel, *, pricing: GeminiPricing | None = None
) -> GeminiImageGenerator:
    return GeminiImageGenerator(
        _api_key(settings), model=settings.gemini_image_model, base_url=settings.gemini_base_url, pricing=pricing
    )


__all__ = [
    "GeminiImageGenerator",
    "GeminiPricing",
    "GeminiScriptWriter",
    "classify_api_error",
    "classify_google_error",
    "json_schema",
    "create_images",
    "create_script",
    "image_prompt",
    "make_client",
    "png_bytes",
    "script_prompt",
    "seconds_until_quota_reset",
]
