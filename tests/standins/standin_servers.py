"""One loopback HTTP server standing in for every paid API the pipeline calls, recording each request.

It answers as the documented APIs do (the same shapes the adapter tests' fixtures cite) and with
real media, so the unmodified adapters — google-genai, httpx for KIE.ai, the elevenlabs SDK,
googleapiclient — run end to end when the base URLs point here:

- Gemini's script: `POST /v1beta/interactions` (background, stored, a JSON `response_format`) ->
  an interaction `in_progress`; `GET /v1beta/interactions/{id}` -> `completed` with a `model_output`
  step whose text is a `Script` JSON, and usage. https://ai.google.dev/gemini-api/docs/interactions
- Gemini's images: `POST /v1beta/models/{model}:generateContent` with responseModalities IMAGE -> a
  1344x768 PNG `inlineData` part; usageMetadata. https://ai.google.dev/api/generate-content,
  https://ai.google.dev/gemini-api/docs/image-generation
- KIE.ai file upload `POST /api/file-stream-upload` -> data.downloadUrl (served here);
  https://docs.kie.ai/file-upload-api/upload-file-stream
- Kling via KIE.ai `POST /api/v1/jobs/createTask` -> data.taskId; `GET /api/v1/jobs/recordInfo`
  -> `generating` on the first poll, then `success` with resultJson.resultUrls (a real H.264 MP4
  served here). https://docs.kie.ai/market/kling/v2-5-turbo-image-to-video-pro,
  https://docs.kie.ai/market/common/get-task-detail
- ElevenLabs' sound effects and Gemini 2.5 Flash Image via KIE.ai: the same createTask with model
  `elevenlabs/sound-effect-v2` (input {text, loop, duration_seconds, prompt_influence,
  output_format}) or `google/nano-banana` (input {prompt, output_format, image_size}) -> a task whose
  resultUrls name an MP3 of the requested length or a 1344x768 PNG.
  https://docs.kie.ai/market/elevenlabs/sound-effect-v2, https://docs.kie.ai/market/google/nano-banana
- ElevenLabs `POST /v1/text-to-speech/{voice_id}/with-timestamps` -> audio_base64 (real speech,
  MP3) + character alignment; `POST /v1/sound-generation` -> MP3 bytes of the requested length;
  `GET /v1/history` (each speech made, newest first, filtered by voice_id, model_id, source,
  date_after_unix) and `GET /v1/history/{id}/audio`.
  https://elevenlabs.io/docs/api-reference/text-to-speech-with-timestamps,
  https://elevenlabs.io/docs/api-reference/sound-generation,
  https://elevenlabs.io/docs/api-reference/history/list
- YouTube resumable upload `POST /upload/youtube/v3/videos?uploadType=resumable` -> 200 + Location;
  `PUT <Location>` with Content-Range -> 308 + Range until complete, then 200 + the video resource;
  `POST /upload/youtube/v3/thumbnails/set`; `POST /upload/youtube/v3/captions` (multipart: the
  snippet JSON, then the track) -> the caption resource.
  https://developers.google.com/youtube/v3/guides/using_resumable_upload_protocol,
  https://developers.google.com/youtube/v3/docs/captions/insert

Each service checks its credential the way the real one does and answers its documented auth
error otherwise, so a run that reaches the end also proves the right key went to the right host.

Fault switches on `StandinState` (off by default; scripts/chaos.py turns them on): a Kling task
stays `generating` for at least `kling_generating_s`; createTask answers each new start frame
with `kling_create_faults` (status, Retry-After) before it takes the task; `script_faults`
(video title -> one of `BAD_SCRIPTS`) spoils the first script Gemini writes for that title, a
model's mistake the product must repair or ask again for; `holds` (service -> seconds, or until
`release`) holds each answer of a paid service after its work is done and billed (a speech is in the
history by then; a KIE sound-effect or image task stays `generating`), so a kill lands while it is paid for
and unanswered, with `upload_keep_bytes`
keeping part of each held upload request, so a kill lands mid-file; and until `quota_spent_until`
videos.insert answers 403 quotaExceeded, a channel's spent day.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import email.parser
import email.policy
import itertools
import json
import mimetypes
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Body, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

import standin_media as media

from vidgen.loopback import LoopbackServer

STANDIN_VIDEO_ID = "standin123"
KLING_MODEL = "kling/v2-5-turbo-image-to-video-pro"
KIE_SOUND_MODEL = "elevenlabs/sound-effect-v2"
KIE_IMAGE_MODEL = "google/nano-banana"
# KIE market models other than Kling: the stand-in service each one's createTask is paid as (and held by).
KIE_MARKET_SERVICES = {KIE_SOUND_MODEL: "kie-sound", KIE_IMAGE_MODEL: "kie-image"}
HEADERS_OF_INTEREST = (
    "authorization",
    "x-goog-api-key",
    "xi-api-key",
    "content-type",
    "content-range",
    "x-upload-content-type",
    "x-upload-content-length",
)

# Which service a path belongs to, and whether calling it costs money or quota.
SERVICES: tuple[tuple[str, str, bool], ...] = (
    ("/v1beta/interactions/", "gemini-poll", False),
    ("/v1beta/interactions", "gemini", True),
    ("/v1beta/models/", "gemini", True),
    ("/api/file-stream-upload", "kie-upload", False),
    ("/api/v1/jobs/createTask", "kling-create", True),
    ("/api/v1/jobs/recordInfo", "kling-poll", False),
    ("/kling-results/", "kling-download", False),
    ("/kie-results/", "kie-result-download", False),
    ("/kie-files/", "kie-file", False),
    ("/v1/text-to-speech/", "elevenlabs-tts", True),
    ("/v1/sound-generation", "elevenlabs-sfx", True),
    ("/v1/history", "elevenlabs-history", False),
    ("/upload/youtube/v3/videos", "youtube-upload", True),
    ("/upload/youtube/v3/thumbnails/set", "youtube-thumbnail", True),
    ("/upload/youtube/v3/captions", "youtube-captions", True),
)


def service_of(path: str) -> tuple[str, bool]:
    for prefix, name, paid in SERVICES:
        if path.startswith(prefix):
            return name, paid
    return "unknown", False


@dataclass(frozen=True)
class StandinKeys:
    """The credentials the stand-in accepts (what the test puts in the environment)."""

    gemini: str = "standin-gemini-key"
    kie: str = "standin-kie-key"
    elevenlabs: str = "standin-elevenlabs-key"
    youtube_token: str = "standin-youtube-access-token"


@dataclass
class SeenRequest:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body_size: int
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    status: int = 0
    at: float = field(default_factory=time.time)  # when it was answered (epoch seconds)

    @property
    def service(self) -> str:
        name = service_of(self.path)[0]
        if name == "kling-create" and isinstance(self.json, dict):
            return KIE_MARKET_SERVICES.get(self.json.get("model"), name)  # the same createTask, another model
        return name

    @property
    def paid(self) -> bool:
        return service_of(self.path)[1]


def _multipart_fields(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, bytes) of a multipart/form-data body (no python-multipart here)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class RequestRecorder:
    """ASGI middleware: keeps method, path, query, headers of interest and the parsed body of every
    request (handlers read the whole body before they answer; one refused early may be kept without it)."""

    def __init__(self, app: Any, log: list[SeenRequest], lock: threading.Lock):
        self.app, self.log, self.lock = app, log, lock

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording_receive() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: dict) -> None:
            # Recorded before the answer leaves: once a client has its response, the log shows the request.
            if message["type"] == "http.response.start":
                self._record(scope, b"".join(chunks), message["status"])
            await send(message)

        await self.app(scope, recording_receive, recording_send)

    def _record(self, scope: dict, body: bytes, status: int) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type", "")
        seen = SeenRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            headers={k: headers[k] for k in HEADERS_OF_INTEREST if k in headers},
            body_size=len(body),
            status=status,
        )
        if content_type.startswith("application/json") and body:
            try:
                seen.json = json.loads(body)
            except ValueError:
                seen.json = None
        elif content_type.startswith("multipart/form-data") and body:
            seen.form = {
                name: value.decode("utf-8", "replace") if filename is None else f"<file {filename}, {len(value)} bytes>"
                for name, (filename, value) in _multipart_fields(content_type, body).items()
            }
        with self.lock:
            self.log.append(seen)


# --- answers --------------------------------------------------------------------------------------
def google_error(code: int, status: str, message: str, details: list[dict] | None = None) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=code)


def kie_error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": message, "data": None}, status_code=code)


def elevenlabs_error(code: int, status: str, message: str) -> JSONResponse:
    return JSONResponse({"detail": {"status": status, "message": message}}, status_code=code)


def youtube_error(code: int, reason: str, message: str) -> JSONResponse:
    errors = [{"domain": "youtube", "reason": reason, "message": message}]
    body = {"error": {"code": code, "message": message, "errors": errors}}
    return JSONResponse(body, status_code=code)


NARRATION_WORDS = (
    "At first light the valley stirs, and the river carries the cold of the mountains down "
    "through meadows where deer graze beside the water while hawks circle slowly overhead and "
    "the long shadows of the pines shorten as the sun climbs over the eastern ridge"
).split()


MOTIONS = ("slow push-in toward the river", "gentle pan across the meadow", "slow tilt up to the ridge")
SOUNDS = ("river flowing over stones", "soft wind in the pines", "birdsong at dawn")


def _prompt_text(payload: dict[str, Any]) -> str:
    return "\n".join(
        part.get("text", "") for content in payload.get("contents") or [] for part in content.get("parts") or []
    )


def _sentence(words: list[str]) -> str:
    text = " ".join(words).rstrip(",")
    return text[0].upper() + text[1:] + "."


def script_document(prompt: str) -> dict[str, Any]:
    """A `Script` as Gemini writes it for the prompt `vidgen.providers.gemini.script_prompt` builds."""
    scenes = int(m.group(1)) if (m := re.search(r"Write exactly (\d+) scenes", prompt)) else 3
    words = int(m.group(1)) if (m := re.search(r"about (\d+) words", prompt)) else 12
    title = "Untitled"
    if m := re.search(r"titled (.+)\.\n", prompt):
        try:
            title = str(ast.literal_eval(m.group(1)))
        except (ValueError, SyntaxError):
            title = m.group(1)
    pool = itertools.cycle(NARRATION_WORDS)
    return {
        "title": title,
        "description": f"{title}: a short film in {scenes} scenes.",
        "tags": ["nature", "documentary", "stand-in"],
        "scenes": [
            {
                "index": i,
                "narration": _sentence([next(pool) for _ in range(words)]),
                "image_prompt": f"a river valley at dawn with deer by the water, view {i + 1}",
                "motion_prompt": f"{MOTIONS[i % len(MOTIONS)]}, scene {i + 1}",
                "sound_cue": f"{SOUNDS[i % len(SOUNDS)]}, scene {i + 1}",
            }
            for i in range(scenes)
        ],
    }


def interaction_answer(interaction_id: str, model: str, status: str, prompt: str, text: str) -> dict[str, Any]:
    """An interaction as GET /v1beta/interactions/{id} returns it: the input echoed as the first step,
    the model's text as a `model_output` step once completed, and the usage."""
    inputs, outputs = max(1, len(prompt) // 4), max(1, len(text) // 4)
    answer: dict[str, Any] = {"id": interaction_id, "status": status, "model": model,
                              "created": "2026-12-01T00:00:00Z", "updated": "2026-12-01T00:00:00Z", "role": "model"}
    if status == "completed":
        answer["steps"] = [{"type": "user_input", "content": [{"type": "text", "text": prompt}]},
                           {"type": "model_output", "content": [{"type": "text", "text": text}]}]
        answer["usage"] = {"total_input_tokens": inputs, "total_output_tokens": outputs, "total_thought_tokens": 250,
                           "total_tokens": inputs + outputs + 250}
    return answer


def gemini_image_answer(png: bytes, prompt_tokens: int) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "parts": [{"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": 1290,
            "totalTokenCount": prompt_tokens + 1290,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
        },
        "modelVersion": "gemini-2.5-flash-image",
        "responseId": "standin-image",
    }


@dataclass
class _Task:
    task_id: str
    duration: float
    model: str = KLING_MODEL
    polls: int = 0
    created: float = field(default_factory=time.monotonic)
    done: bool = False


@dataclass
class _Interaction:
    interaction_id: str
    model: str
    prompt: str
    text: str
    created: float = field(default_factory=time.monotonic)
    done: bool = False


@dataclass
class _UploadSession:
    total: int
    resource: dict[str, Any]
    received: bytearray = field(default_factory=bytearray)


class StandinState:
    """What the stand-in remembers between requests (uploads, Kling tasks, YouTube sessions)."""

    def __init__(self, media_dir: Path, keys: StandinKeys):
        self.media_dir = Path(media_dir)
        self.keys = keys
        self.base_url = ""
        self.lock = threading.Lock()
        self.uploads: dict[str, Path] = {}  # downloadUrl -> stored file
        self.tasks: dict[str, _Task] = {}
        self.interactions: dict[str, _Interaction] = {}  # Gemini interactions, by id
        self.sessions: dict[str, _UploadSession] = {}
        self.videos: dict[str, bytes] = {}
        self.thumbnails: dict[str, bytes] = {}
        self.captions: dict[str, tuple[str, bytes]] = {}  # video id -> (language, the multipart body)
        self.clips: dict[int, Path] = {}
        # KIE market task id -> (its result file, media type), made (and billed) when the task is taken
        self.market_results: dict[str, tuple[bytes, str]] = {}
        self._clip_lock = threading.Lock()  # not `lock`: making a clip takes seconds
        self._ids = itertools.count(1)
        # Fault switches (scripts/chaos.py): how long a Kling task stays `generating` at least, and
        # what Kling's createTask answers the first tries for each start frame, (status, Retry-After s).
        self.kling_generating_s = 0.0
        self.kling_create_faults: list[tuple[int, float | None]] = []
        self.create_attempts: dict[str, int] = {}  # image_url -> createTask requests seen for it
        self.script_faults: dict[str, str] = {}  # video title -> BAD_SCRIPTS kind of its first script (then off)
        # Paid services whose answers are held after the work is done: service (as in SERVICES) -> seconds,
        # until `release`; `holding` counts the answers being held now.
        self.holds: dict[str, float] = {}
        self.holding: Counter[str] = Counter()
        # At most how many bytes of an upload request are kept (0: all). The protocol lets a server keep
        # part of a chunk (308 with a shorter Range), so a held upload can be caught mid-file.
        self.upload_keep_bytes = 0
        self.speech_history: list[dict[str, Any]] = []  # every speech made, oldest first, as GET /v1/history lists it
        self.speech_audio: dict[str, bytes] = {}  # history_item_id -> its MP3
        # Until this time (epoch s), videos.insert answers 403 quotaExceeded: the channel's day is spent.
        self.quota_spent_until = 0.0
        self.quota_refusals = 0

    def release(self, service: str | None = None) -> None:
        """Stop holding `service`'s answers (every service's when None), the held ones included."""
        with self.lock:
            for name in [service] if service else list(self.holds):
                self.holds.pop(name, None)

    def _held(self, service: str) -> Iterator[float]:
        """Yields a short pause while `service`'s answer is to be held."""
        until = time.monotonic() + self.holds.get(service, 0.0)
        if service not in self.holds:
            return
        with self.lock:
            self.holding[service] += 1
        try:
            while service in self.holds and time.monotonic() < until:
                yield 0.05
        finally:
            with self.lock:
                self.holding[service] -= 1

    def hold(self, service: str) -> None:
        for pause in self._held(service):
            time.sleep(pause)

    async def hold_async(self, service: str) -> None:
        for pause in self._held(service):
            await asyncio.sleep(pause)

    def next_id(self) -> int:
        with self.lock:
            return next(self._ids)

    def clip(self, seconds: int) -> Path:
        """The result file of a `seconds`-long Kling task, made once and shared by every task."""
        with self._clip_lock:
            if seconds not in self.clips:
                out = self.media_dir / "kling-results" / f"clip-{seconds}s.mp4"
                out.parent.mkdir(parents=True, exist_ok=True)
                self.clips[seconds] = media.kling_mp4(out, seconds)
            return self.clips[seconds]


BAD_SCRIPTS = ("numbered-from-1", "no-scenes", "too-many-scenes")


def spoiled_script(document: dict[str, Any], kind: str) -> dict[str, Any]:
    """`document` as a model gets it wrong: scenes numbered from 1, no scenes, or 100 scenes."""
    scenes = document["scenes"]
    if kind == "numbered-from-1":
        scenes = [{**scene, "index": scene["index"] + 1} for scene in scenes]
    elif kind == "no-scenes":
        scenes = []
    elif kind == "too-many-scenes":
        scenes = [{**scenes[i % len(scenes)], "index": i} for i in range(100)]
    else:
        raise ValueError(f"unknown bad script {kind!r}; one of {BAD_SCRIPTS}")
    return {**document, "scenes": scenes}


def create_app(state: StandinState) -> FastAPI:
    app = FastAPI(title="vidgen provider stand-ins", openapi_url=None, docs_url=None, redoc_url=None)
    keys = state.keys

    # --- Gemini ----------------------------------------------------------------------------------
    def google_invalid_key() -> JSONResponse:
        return google_error(
            400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
            [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}],
        )

    @app.post("/v1beta/models/{model}:generateContent")
    def generate_content(model: str, request: Request, payload: dict[str, Any] = Body(...)) -> Any:
        if request.headers.get("x-goog-api-key") != keys.gemini:
            return google_invalid_key()
        prompt = _prompt_text(payload)
        tokens = max(1, len(prompt) // 4)
        config = payload.get("generationConfig") or {}
        if "IMAGE" in (config.get("responseModalities") or []):
            image = media.gemini_png(int(config.get("seed") or 0))
            state.hold("gemini-image")  # made and billed; the answer waits
            return gemini_image_answer(image, tokens)
        return google_error(400, "INVALID_ARGUMENT", f"the stand-in draws images only here ({model}); scripts are interactions")

    @app.post("/v1beta/interactions")
    def create_interaction(request: Request, payload: dict[str, Any] = Body(...)) -> Any:
        if request.headers.get("x-goog-api-key") != keys.gemini:
            return google_invalid_key()
        response_format = payload.get("response_format") or {}
        if response_format.get("mime_type") != "application/json" or not payload.get("background"):
            return google_error(400, "INVALID_ARGUMENT", "the stand-in writes scripts as background interactions only")
        prompt = str(payload.get("input") or "")
        document = script_document(prompt)
        with state.lock:
            spoil = state.script_faults.pop(document["title"], None)
        if spoil is not None:
            document = spoiled_script(document, spoil)
        interaction = _Interaction(f"v1_standin_{state.next_id()}", str(payload.get("model")), prompt, json.dumps(document))
        with state.lock:
            state.interactions[interaction.interaction_id] = interaction
            if "gemini-script" in state.holds:
                state.holding["gemini-script"] += 1
        return interaction_answer(interaction.interaction_id, interaction.model, "in_progress", prompt, "")

    @app.get("/v1beta/interactions/{interaction_id}")
    def get_interaction(interaction_id: str, request: Request) -> Any:
        if request.headers.get("x-goog-api-key") != keys.gemini:
            return google_invalid_key()
        interaction = state.interactions.get(interaction_id)
        if interaction is None:
            return google_error(404, "NOT_FOUND", f"Interaction {interaction_id} not found.")
        with state.lock:  # made and billed at the create; while held, it is still "in_progress"
            held = time.monotonic() - interaction.created < state.holds.get("gemini-script", -1.0)
            if not interaction.done and not held:
                interaction.done = True
                state.holding["gemini-script"] = max(0, state.holding["gemini-script"] - 1)
        status = "completed" if interaction.done else "in_progress"
        return interaction_answer(interaction_id, interaction.model, status, interaction.prompt, interaction.text)

    # --- KIE.ai file upload + Kling --------------------------------------------------------------
    def kie_authorised(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {keys.kie}"

    @app.post("/api/file-stream-upload")
    async def file_stream_upload(request: Request) -> Any:
        if not kie_authorised(request):
            return kie_error(401, "You do not have access permissions")
        fields = _multipart_fields(request.headers.get("content-type", ""), await request.body())
        if "file" not in fields or not fields["file"][1]:
            return kie_error(400, "file is required")
        folder = fields.get("uploadPath", (None, b"uploads"))[1].decode().strip("/")
        name = fields.get("fileName", (None, b""))[1].decode() or fields["file"][0] or "upload.bin"
        stored = state.media_dir / "kie-files" / folder / name
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(fields["file"][1])
        url = f"{state.base_url}/kie-files/{folder}/{name}"
        with state.lock:
            state.uploads[url] = stored
        return {
            "success": True,
            "code": 200,
            "msg": "File uploaded successfully",
            "data": {
                "fileName": name,
                "filePath": f"{folder}/{name}",
                "downloadUrl": url,
                "fileSize": stored.stat().st_size,
                "mimeType": mimetypes.guess_type(name)[0] or "application/octet-stream",
                "uploadedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            },
        }

    @app.get("/kie-files/{path:path}")
    def kie_file(path: str) -> Any:
        stored = state.uploads.get(f"{state.base_url}/kie-files/{path}")
        return FileResponse(stored) if stored else kie_error(404, "file not found")

    @app.post("/api/v1/jobs/createTask")
    def create_task(request: Request, payload: dict[str, Any] = Body(...)) -> Any:
        if not kie_authorised(request):
            return kie_error(401, "You do not have access permissions")
        if payload.get("model") == KIE_SOUND_MODEL:
            return create_sound_task(payload.get("input") or {})
        if payload.get("model") == KIE_IMAGE_MODEL:
            return create_image_task(payload.get("input") or {})
        task_input = payload.get("input") or {}
        if payload.get("model") != KLING_MODEL:
            return kie_error(422, f"unknown model {payload.get('model')!r}")
        if not str(task_input.get("prompt", "")).strip():
            return kie_error(422, "input.prompt is required")
        if task_input.get("image_url") not in state.uploads:
            return kie_error(422, "input.image_url cannot be fetched")
        if task_input.get("duration") not in ("5", "10"):
            return kie_error(422, "input.duration must be 5 or 10")
        with state.lock:
            attempt = state.create_attempts.get(task_input["image_url"], 0)
            state.create_attempts[task_input["image_url"]] = attempt + 1
        if attempt < len(state.kling_create_faults):
            status, retry_after = state.kling_create_faults[attempt]
            refused = kie_error(status, "rate limited" if status == 429 else "service temporarily unavailable")
            if retry_after is not None:
                refused.headers["Retry-After"] = f"{retry_after:g}"
            return refused
        task = _Task(task_id=f"task_kling_standin_{state.next_id()}", duration=int(task_input["duration"]))
        with state.lock:
            state.tasks[task.task_id] = task
        return {"code": 200, "msg": "success", "data": {"taskId": task.task_id}}

    def create_sound_task(task_input: dict[str, Any]) -> Any:
        if not str(task_input.get("text", "")).strip():
            return kie_error(422, "input.text is required")
        seconds = float(task_input.get("duration_seconds") or 5.0)
        if not 0.5 <= seconds <= 22:
            return kie_error(422, "input.duration_seconds must be within 0.5-22")
        if task_input.get("output_format", "mp3_44100_128") != "mp3_44100_128":
            return kie_error(422, "the stand-in makes mp3_44100_128 only")
        return market_task(KIE_SOUND_MODEL, media.sound_effect_mp3(seconds, seed=state.next_id()), "audio/mpeg")

    def create_image_task(task_input: dict[str, Any]) -> Any:
        prompt = str(task_input.get("prompt", ""))
        if not prompt.strip() or len(prompt) > 5000:
            return kie_error(422, "input.prompt is required, at most 5000 characters")
        if task_input.get("image_size") != "16:9" or task_input.get("output_format") != "png":
            return kie_error(422, "the stand-in draws 16:9 PNGs only")
        return market_task(KIE_IMAGE_MODEL, media.gemini_png(state.next_id()), "image/png")

    def market_task(model: str, result: bytes, media_type: str) -> Any:
        """The result is made (and billed) now; the task says `generating` while its service is held."""
        task = _Task(task_id=f"task_{KIE_MARKET_SERVICES[model]}_standin_{state.next_id()}", duration=0, model=model)
        with state.lock:
            state.market_results[task.task_id] = (result, media_type)
            state.tasks[task.task_id] = task
            if KIE_MARKET_SERVICES[model] in state.holds:
                state.holding[KIE_MARKET_SERVICES[model]] += 1
        return {"code": 200, "msg": "success", "data": {"taskId": task.task_id}}

    @app.get("/api/v1/jobs/recordInfo")
    def record_info(request: Request, taskId: str = "") -> Any:  # noqa: N803 (KIE's parameter name)
        if not kie_authorised(request):
            return kie_error(401, "You do not have access permissions")
        with state.lock:
            task = state.tasks.get(taskId)
            if task is not None:
                task.polls += 1
        if task is None:
            return kie_error(404, f"task {taskId} not found")
        if task.model in KIE_MARKET_SERVICES:
            service = KIE_MARKET_SERVICES[task.model]
            with state.lock:
                held = time.monotonic() - task.created < state.holds.get(service, -1.0)
                if not task.done and not held:
                    task.done = True
                    state.holding[service] = max(0, state.holding[service] - 1)
            done = task.done
            result_url = f"{state.base_url}/kie-results/{task.task_id}"
        else:
            done = task.done = task.done or (
                task.polls > 1 and time.monotonic() - task.created >= state.kling_generating_s)
            if done:
                state.clip(int(task.duration))
            result_url = f"{state.base_url}/kling-results/{task.task_id}.mp4"
        results = json.dumps({"resultUrls": [result_url]}) if done else ""
        return {
            "code": 200,
            "message": "success",
            "data": {
                "taskId": task.task_id,
                "model": task.model,
                "state": "success" if done else "generating",
                "resultJson": results,
                "failCode": "",
                "failMsg": "",
                "createTime": 1698765400000,
                "completeTime": 1698765432000 if done else None,
            },
        }

    @app.get("/kling-results/{task_id}.mp4")
    def kling_result(task_id: str) -> Any:
        task = state.tasks.get(task_id)
        if task is None or not task.done:
            return Response(status_code=404)
        return FileResponse(state.clip(int(task.duration)), media_type="video/mp4")

    @app.get("/kie-results/{task_id}")
    def kie_market_result(task_id: str) -> Any:
        task = state.tasks.get(task_id)
        if task is None or not task.done:
            return Response(status_code=404)
        result, media_type = state.market_results[task_id]
        return Response(result, media_type=media_type)

    # --- ElevenLabs ------------------------------------------------------------------------------
    def xi_authorised(request: Request) -> bool:
        return request.headers.get("xi-api-key") == keys.elevenlabs

    @app.post("/v1/text-to-speech/{voice_id}/with-timestamps")
    def text_to_speech(voice_id: str, request: Request, payload: dict[str, Any] = Body(...)) -> Any:
        if not xi_authorised(request):
            return elevenlabs_error(401, "invalid_api_key", "Invalid API key")
        if request.query_params.get("output_format", "mp3_44100_128") != "mp3_44100_128":
            return elevenlabs_error(400, "invalid_output_format", "the stand-in speaks mp3_44100_128 only")
        text = str(payload.get("text") or "")
        if not text.strip():
            return elevenlabs_error(400, "empty_text", "text must not be empty")
        audio, alignment = media.speech_with_timestamps(text)
        item_id = f"standin-history-{state.next_id()}"
        with state.lock:
            state.speech_audio[item_id] = audio
            state.speech_history.append({
                "history_item_id": item_id, "request_id": f"standin-request-{item_id}", "voice_id": voice_id,
                "model_id": payload.get("model_id"), "voice_name": "Stand-in", "voice_category": "premade",
                "text": text, "date_unix": int(time.time()), "character_count_change_from": 0,
                "character_count_change_to": len(text), "content_type": "audio/mpeg", "state": "created",
                "settings": payload.get("voice_settings"), "feedback": None, "share_link_id": None, "source": "TTS",
                "alignments": {"alignment": alignment, "normalized_alignment": alignment},
                "output_format": "mp3_44100_128",
            })
        state.hold("elevenlabs-tts")  # made, billed and in the history; the answer waits
        return {"audio_base64": base64.b64encode(audio).decode(), "alignment": alignment, "normalized_alignment": alignment}

    @app.get("/v1/history")
    def speech_history(request: Request, voice_id: str = "", model_id: str = "", source: str = "",
                       date_after_unix: int = 0, page_size: int = 100) -> Any:
        if not xi_authorised(request):
            return elevenlabs_error(401, "invalid_api_key", "Invalid API key")
        with state.lock:
            items = [item for item in reversed(state.speech_history)
                     if (not voice_id or item["voice_id"] == voice_id) and (not model_id or item["model_id"] == model_id)
                     and (not source or item["source"] == source) and item["date_unix"] >= date_after_unix]
        page = items[:page_size]
        return {"history": page, "has_more": len(items) > page_size,
                "last_history_item_id": page[-1]["history_item_id"] if page else None}

    @app.get("/v1/history/{history_item_id}/audio")
    def speech_history_audio(history_item_id: str, request: Request) -> Any:
        if not xi_authorised(request):
            return elevenlabs_error(401, "invalid_api_key", "Invalid API key")
        audio = state.speech_audio.get(history_item_id)
        if audio is None:
            return elevenlabs_error(404, "history_item_not_found", f"history item {history_item_id} not found")
        return Response(audio, media_type="audio/mpeg")

    @app.post("/v1/sound-generation")
    def sound_generation(request: Request, payload: dict[str, Any] = Body(...)) -> Any:
        if not xi_authorised(request):
            return elevenlabs_error(401, "invalid_api_key", "Invalid API key")
        seconds = float(payload.get("duration_seconds") or 5.0)
        if not 0.5 <= seconds <= 30:
            return elevenlabs_error(422, "invalid_duration", "duration_seconds must be within 0.5-30")
        sound = media.sound_effect_mp3(seconds, seed=state.next_id())
        state.hold("elevenlabs-sfx")  # made and billed; the answer waits
        return Response(sound, media_type="audio/mpeg")

    # --- YouTube ---------------------------------------------------------------------------------
    def youtube_authorised(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {keys.youtube_token}"

    @app.post("/upload/youtube/v3/videos")
    async def start_upload(request: Request) -> Any:
        if not youtube_authorised(request):
            return youtube_error(401, "authError", "Invalid Credentials")
        if request.query_params.get("uploadType") != "resumable":
            return youtube_error(400, "invalidUploadType", "the stand-in takes resumable uploads only")
        if time.time() < state.quota_spent_until:
            with state.lock:
                state.quota_refusals += 1
            return youtube_error(403, "quotaExceeded", "The request cannot be completed because you have exceeded "
                                 "your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.")
        resource = json.loads(await request.body() or b"{}")
        total = int(request.headers.get("x-upload-content-length", "0"))
        session_id = f"standin-session-{state.next_id()}"
        with state.lock:
            state.sessions[session_id] = _UploadSession(total=total, resource=resource)
        location = f"{state.base_url}/upload/youtube/v3/videos?uploadType=resumable&upload_id={session_id}"
        return Response(status_code=200, headers={"Location": location, "X-GUploader-UploadID": session_id})

    @app.put("/upload/youtube/v3/videos")
    async def upload_chunk(request: Request, upload_id: str = "") -> Any:
        session = state.sessions.get(upload_id)
        if session is None:
            return youtube_error(404, "notFound", "upload session not found")
        data = await request.body()
        content_range = request.headers.get("content-range", "")
        if data:
            await state.hold_async("youtube-upload")
        if state.upload_keep_bytes:
            data = data[: state.upload_keep_bytes]
        if m := re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range):
            if int(m.group(1)) != len(session.received):
                return youtube_error(400, "badContentRange", f"expected offset {len(session.received)}")
            session.received.extend(data)
        elif not content_range.startswith("bytes */"):
            session.received.extend(data)
        if len(session.received) < session.total:
            headers = {"Range": f"bytes=0-{len(session.received) - 1}"} if session.received else {}
            return Response(status_code=308, headers=headers)
        with state.lock:
            state.videos[STANDIN_VIDEO_ID] = bytes(session.received)
        snippet = session.resource.get("snippet", {})
        return {
            "kind": "youtube#video",
            "etag": "standin-etag",
            "id": STANDIN_VIDEO_ID,
            "snippet": {**snippet, "channelId": "UCstandin", "publishedAt": "2026-01-01T00:00:00Z"},
            "status": {**session.resource.get("status", {}), "uploadStatus": "uploaded"},
        }

    @app.post("/upload/youtube/v3/thumbnails/set")
    async def set_thumbnail(request: Request, videoId: str = "") -> Any:  # noqa: N803 (YouTube's parameter name)
        if not youtube_authorised(request):
            return youtube_error(401, "authError", "Invalid Credentials")
        if videoId not in state.videos:
            return youtube_error(404, "videoNotFound", f"video {videoId} not found")
        with state.lock:
            state.thumbnails[videoId] = await request.body()
        url = f"https://i.ytimg.com/vi/{videoId}/default.jpg"
        items = [{"default": {"url": url, "width": 120, "height": 90}}]
        return {"kind": "youtube#thumbnailSetResponse", "etag": "standin-etag", "items": items}

    @app.post("/upload/youtube/v3/captions")
    async def insert_captions(request: Request, part: str = "") -> Any:
        if not youtube_authorised(request):
            return youtube_error(401, "authError", "Invalid Credentials")
        body = await request.body()
        snippet_json = re.search(rb'\{"snippet".*?\}\}', body)
        if part != "snippet" or snippet_json is None:
            return youtube_error(400, "invalidValue", "captions.insert needs part=snippet and a snippet")
        snippet = json.loads(snippet_json.group())["snippet"]
        if snippet.get("videoId") not in state.videos:
            return youtube_error(404, "videoNotFound", f"video {snippet.get('videoId')} not found")
        with state.lock:
            state.captions[snippet["videoId"]] = (snippet.get("language", ""), body)
        return {"kind": "youtube#caption", "etag": "standin-etag", "id": "standin-caption",
                "snippet": {**snippet, "trackKind": "standard", "status": "serving"}}

    return app


class StandinServer:
    """The stand-in app on a free loopback port, in a daemon thread (the LocalNotionServer pattern)."""

    def __init__(
        self,
        media_dir: Path,
        keys: StandinKeys | None = None,
        *,
        host: str = "127.0.0.1",
        warm_clips: tuple[int, ...] = (5,),
    ):
        """`warm_clips`: Kling result lengths (s) to make in the background from the start, because a
        1080p clip takes seconds to encode and a pipeline asks for it only after script and images."""
        self.host = host
        self.warm_clips = warm_clips
        self.port = 0
        self.keys = keys or StandinKeys()
        self.state = StandinState(media_dir, self.keys)
        self._log: list[SeenRequest] = []
        self._log_lock = threading.Lock()
        self._server: LoopbackServer | None = None
        self._warmup: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("StandinServer is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[SeenRequest]:
        with self._log_lock:
            return list(self._log)

    def seen(self, service: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.service == service]

    @property
    def uploaded_videos(self) -> dict[str, bytes]:
        return dict(self.state.videos)

    @property
    def thumbnails(self) -> dict[str, bytes]:
        return dict(self.state.thumbnails)

    @property
    def captions(self) -> dict[str, tuple[str, bytes]]:
        return dict(self.state.captions)

    @property
    def uploaded_files(self) -> dict[str, bytes]:
        """downloadUrl -> the bytes uploaded to the KIE file host."""
        return {url: path.read_bytes() for url, path in dict(self.state.uploads).items()}

    def start(self) -> StandinServer:
        if self._server is not None:
            return self
        app = RequestRecorder(create_app(self.state), self._log, self._log_lock)
        server = LoopbackServer(app, host=self.host, name="provider-standins", lifespan="off")
        self.port = server.bind()
        self.state.base_url = f"http://{self.host}:{self.port}"
        self.state.media_dir.mkdir(parents=True, exist_ok=True)
        self._warmup = threading.Thread(
            target=lambda: [self.state.clip(seconds) for seconds in self.warm_clips], name="standin-clips", daemon=True
        )
        self._warmup.start()
        self._server = server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._warmup is not None:
            self._warmup.join(timeout=60)
        self._server = self._warmup = None

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
