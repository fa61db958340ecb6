"""Kling 2.5 Turbo (image to video) through KIE.ai's market API: upload, create, poll, download.

API (https://docs.kie.ai/market/kling/v2-5-turbo-image-to-video-pro and
https://docs.kie.ai/market/common/get-task-detail):
  POST /api/v1/jobs/createTask {"model", "callBackUrl"?, "input": {"prompt", "image_url",
       "duration": "5"|"10", "negative_prompt", "cfg_scale"}}         -> data.taskId
  GET  /api/v1/jobs/recordInfo?taskId=...  -> data.state waiting|queuing|generating|success|fail,
       data.resultJson (a JSON *string* with resultUrls), data.failCode / data.failMsg
Clips are the most expensive step (about 75% of a video's cost), so a task id is remembered next to
the clip until the task ends: a retry after a timeout waits on the same paid task instead of paying
for a second one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import httpx
from pydantic import BaseModel, Field
from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_result, wait_exponential

from vidgen.channels import Channel
from vidgen.errors import ApiFailureError, InvalidInputError, ProviderError, RetriableError, classify_http
from vidgen.files import atomic_path
from vidgen.models import Cost
from vidgen.providers.base import ClipRequest, ClipResult
from vidgen.providers.imagehost import ImageHost, create_image_host
from vidgen.providers.kie import looks_like_content_policy, read_envelope, send
from vidgen.providers.settings import ProviderSettings

log = logging.getLogger(__name__)

PROVIDER = "kling"
CREATE_TASK_PATH = "/api/v1/jobs/createTask"
RECORD_INFO_PATH = "/api/v1/jobs/recordInfo"
PENDING_STATES = frozenset({"waiting", "queuing", "generating"})
ALLOWED_DURATIONS = (5, 10)
MAX_PROMPT_CHARS = 2500  # documented limit of input.prompt
MAX_NEGATIVE_PROMPT_CHARS = 2496  # documented limit of input.negative_prompt
DEFAULT_NEGATIVE_PROMPT = "blur, distort, and low quality"
USD_PER_5S_CLIP = 0.13  # the seed: "18 clips @ ~$0.13 each"

Duration = Literal["5", "10"]


class KlingTask(BaseModel):
    """One recordInfo answer, with resultJson already parsed."""

    task_id: str
    state: str
    result_urls: list[str] = Field(default_factory=list)
    fail_code: str = ""
    fail_msg: str = ""


def nearest_duration(seconds: float) -> Duration:
    """Kling makes 5 s or 10 s clips; ties go to the cheaper one."""
    best = min(ALLOWED_DURATIONS, key=lambda d: (abs(d - seconds), d))
    return "5" if best == 5 else "10"


def _describe_timeout(timeout_s: float) -> str:
    if timeout_s >= 60 and timeout_s % 60 == 0:
        minutes = int(timeout_s // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{timeout_s:g} seconds"


def _log_transient_poll_error(task_id: str, state: RetryCallState) -> None:
    if state.outcome is not None and state.outcome.failed:
        log.warning("polling Kling task %s: %s (will poll again)", task_id, state.outcome.exception())


def fail_error(task: KlingTask) -> ProviderError:
    """A task that ended in `fail`: our input (content policy, validation) or KIE's side."""
    detail = f"task {task.task_id} failed"
    if task.fail_code:
        detail += f" (failCode {task.fail_code})"
    if task.fail_msg:
        detail += f": {task.fail_msg}"
    status = int(task.fail_code) if task.fail_code.isdigit() else None
    if looks_like_content_policy(task.fail_msg):
        return InvalidInputError(f"content policy: {detail}", provider=PROVIDER, status_code=status)
    if task.fail_code in ("400", "413", "415", "422", "451"):
        return InvalidInputError(detail, provider=PROVIDER, status_code=status)
    return ApiFailureError(detail, provider=PROVIDER, status_code=status)


class KlingClient:
    """The KIE.ai market endpoints Kling needs. Every failure leaves as a typed ProviderError."""

    def __init__(
        self,
        api_key: str,
        base_url: str = "https://api.kie.ai",
        *,
        model: str = "kling/v2-5-turbo-image-to-video-pro",
        transport: httpx.BaseTransport | None = None,
        request_timeout_s: float = 60.0,
        first_poll_s: float = 5.0,
        max_poll_s: float = 30.0,
        poll_growth: float = 1.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.model = model
        self.first_poll_s, self.max_poll_s, self.poll_growth = first_poll_s, max_poll_s, poll_growth
        self._sleep, self._clock = sleep, clock
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._base_url = base_url.rstrip("/")
        # No default auth header: result files live on other hosts, which must never see the key.
        self._client = httpx.Client(transport=transport, timeout=request_timeout_s, follow_redirects=True)

    def create_task(
        self,
        *,
        prompt: str,
        image_url: str,
        duration: Duration = "5",
        negative_prompt: str | None = DEFAULT_NEGATIVE_PROMPT,
        cfg_scale: float | None = 0.5,
        callback_url: str | None = None,
    ) -> str:
        """Start one clip; returns KIE's taskId. Checked locally first so a bad request costs nothing."""
        if not prompt.strip():
            raise InvalidInputError("motion prompt is empty", provider=PROVIDER)
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidInputError(
                f"motion prompt is {len(prompt)} characters; Kling accepts at most {MAX_PROMPT_CHARS}", provider=PROVIDER
            )
        if duration not in ("5", "10"):
            raise InvalidInputError(f"duration must be '5' or '10', got {duration!r}", provider=PROVIDER)
        if cfg_scale is not None and not 0.0 <= cfg_scale <= 1.0:
            raise InvalidInputError(f"cfg_scale must be within 0..1, got {cfg_scale}", provider=PROVIDER)
        task_input: dict[str, object] = {"prompt": prompt, "image_url": image_url, "duration": duration}
        if negative_prompt:
            task_input["negative_prompt"] = negative_prompt[:MAX_NEGATIVE_PROMPT_CHARS]
        if cfg_scale is not None:
            task_input["cfg_scale"] = cfg_scale
        body: dict[str, object] = {"model": self.model, "input": task_input}
        if callback_url:
            body["callBackUrl"] = callback_url
        request = self._client.build_request("POST", self._base_url + CREATE_TASK_PATH, json=body, headers=self._auth)
        data = read_envelope(send(self._client, request, provider=PROVIDER), provider=PROVIDER)
        task_id = data.get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise ApiFailureError(f"createTask answered without a taskId: {data!r}", provider=PROVIDER)
        return task_id

    def get_task(self, task_id: str) -> KlingTask:
        request = self._client.build_request(
            "GET", self._base_url + RECORD_INFO_PATH, params={"taskId": task_id}, headers=self._auth
        )
        data = read_envelope(send(self._client, request, provider=PROVIDER), provider=PROVIDER)
        state = data.get("state")
        if not isinstance(state, str):
            raise ApiFailureError(f"recordInfo for {task_id} has no state: {data!r}", provider=PROVIDER)
        urls: list[str] = []
        if state == "success":
            raw = data.get("resultJson") or ""
            try:
                parsed = json.loads(raw) if isinstance(raw, str) else raw
                urls = [u for u in parsed["resultUrls"] if isinstance(u, str) and u]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ApiFailureError(
                    f"task {task_id} succeeded but resultJson is unreadable: {raw!r}", provider=PROVIDER
                ) from e
            if not urls:
                raise ApiFailureError(f"task {task_id} succeeded without resultUrls", provider=PROVIDER)
        return KlingTask(
            task_id=str(data.get("taskId") or task_id),
            state=state,
            result_urls=urls,
            fail_code=str(data.get("failCode") or ""),
            fail_msg=str(data.get("failMsg") or ""),
        )

    def wait(self, task_id: str, timeout_s: float = 600.0) -> KlingTask:
        """Poll until success (returned), fail (raised) or `timeout_s` (RetriableError).

        Polls start at `first_poll_s` and grow by `poll_growth` to `max_poll_s`, as KIE recommends; the
        last pause is cut short so the final poll falls on the deadline. A transient error while polling
        is not the task failing: it is logged and polling goes on. Time is `clock`/`sleep`, so tests
        never really wait.
        """
        deadline = self._clock() + timeout_s
        backoff = wait_exponential(multiplier=self.first_poll_s, exp_base=self.poll_growth, max=self.max_poll_s)

        def timed_out(state: RetryCallState) -> KlingTask:
            raise RetriableError(
                f"Kling did not finish within {_describe_timeout(timeout_s)} (task {task_id})", provider=PROVIDER
            )

        polling = Retrying(
            retry=retry_if_exception_type(RetriableError) | retry_if_result(lambda task: task.state != "success"),
            stop=lambda state: self._clock() >= deadline,
            wait=lambda state: min(backoff(state), deadline - self._clock()),
            sleep=self._sleep,
            before_sleep=lambda state: _log_transient_poll_error(task_id, state),
            retry_error_callback=timed_out,
        )
        return polling(self._poll_once, task_id)

    def _poll_once(self, task_id: str) -> KlingTask:
        """One look at the task: returned while pending or done, raised when it failed."""
        task = self.get_task(task_id)
        if task.state == "fail":
            raise fail_error(task)
        if task.state != "success" and task.state not in PENDING_STATES:
            log.warning("Kling task %s is in an undocumented state %r; still waiting", task_id, task.state)
        return task

    def download(self, url: str, out_path: Path) -> Path:
        """Stream a result file to `out_path` (atomically: a broken transfer leaves nothing behind)."""
        with atomic_path(out_path) as tmp, tmp.open("wb") as f:
            request = self._client.build_request("GET", url)
            response = send(self._client, request, provider=PROVIDER, stream=True)
            try:
                if response.status_code >= 400:
                    response.read()
                    raise classify_http(
                        response.status_code, f"downloading {url}: {response.text[:200]}", provider=PROVIDER
                    )
                for chunk in response.iter_bytes(1 << 20):
                    f.write(chunk)
            except httpx.TransportError as e:
                raise RetriableError(f"download of {url} broke off: {e}", provider=PROVIDER) from e
            finally:
                response.close()
            f.flush()
            if f.tell() == 0:
                raise ApiFailureError(f"downloaded clip from {url} is empty", provider=PROVIDER)
        return out_path

    def close(self) -> None:
        self._client.close()


class _PendingTask(BaseModel):
    task_id: str
    fingerprint: str


class KlingClipAnimator:
    """ClipAnimator: composite -> public URL -> Kling task -> MP4 at `out_path`, normalised to the contract."""

    name = "kling"

    def __init__(
        self,
        client: KlingClient,
        image_host: ImageHost,
        *,
        timeout_s: float = 600.0,
        usd_per_5s_clip: float = USD_PER_5S_CLIP,
        negative_prompt: str | None = DEFAULT_NEGATIVE_PROMPT,
        cfg_scale: float | None = 0.5,
        callback_url: str | None = None,
        width: int = 1920,
        height: int = 1080,
    ):
        self.client, self.image_host = client, image_host
        self.timeout_s = timeout_s
        self.usd_per_5s_clip = usd_per_5s_clip
        self.negative_prompt, self.cfg_scale, self.callback_url = negative_prompt, cfg_scale, callback_url
        self.width, self.height = width, height

    def cost_of(self, duration: Duration) -> Cost:
        return Cost(usd=round(self.usd_per_5s_clip * int(duration) / 5, 6), units=1, unit="clip")

    @staticmethod
    def _pending_path(out_path: Path) -> Path:
        return out_path.with_name(f".{out_path.name}.kling-task.json")

    def _fingerprint(self, request: ClipRequest, duration: Duration) -> str:
        h = hashlib.sha256()
        h.update(request.image_path.read_bytes())
        for part in (request.motion_prompt, duration, self.client.model, self.negative_prompt, self.cfg_scale):
            h.update(b"\x1f" + str(part).encode())
        return h.hexdigest()[:32]

    def _resumable_task(self, pending_path: Path, fingerprint: str) -> str | None:
        try:
            pending = _PendingTask.model_validate_json(pending_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return pending.task_id if pending.fingerprint == fingerprint else None

    def animate(self, request: ClipRequest) -> ClipResult:
        if not request.image_path.is_file():
            raise InvalidInputError(f"composite not found: {request.image_path}", provider=PROVIDER)
        duration = nearest_duration(request.duration_s)
        fingerprint = self._fingerprint(request, duration)
        pending_path = self._pending_path(request.out_path)
        task_id = self._resumable_task(pending_path, fingerprint)
        task: KlingTask | None = None
        if task_id is not None:
            log.info("resuming Kling task %s for %s", task_id, request.out_path.name)
            try:
                task = self.client.wait(task_id, self.timeout_s)
            except InvalidInputError as e:
                if e.status_code != 404:
                    pending_path.unlink(missing_ok=True)
                    raise
                task = None  # KIE no longer knows the task: start a new one
            except ApiFailureError:
                pending_path.unlink(missing_ok=True)
                raise
        if task is None:
            image_url = self.image_host.upload(request.image_path)
            task_id = self.client.create_task(
                prompt=request.motion_prompt,
                image_url=image_url,
                duration=duration,
                negative_prompt=self.negative_prompt,
                cfg_scale=self.cfg_scale,
                callback_url=self.callback_url,
            )
            pending_path.parent.mkdir(parents=True, exist_ok=True)
            pending_path.write_text(
                _PendingTask(task_id=task_id, fingerprint=fingerprint).model_dump_json(), encoding="utf-8"
            )
            try:
                task = self.client.wait(task_id, self.timeout_s)
            except (InvalidInputError, ApiFailureError):
                pending_path.unlink(missing_ok=True)
                raise
        self.client.download(task.result_urls[0], request.out_path)
        duration_s = normalise_clip(request.out_path, self.width, self.height)
        pending_path.unlink(missing_ok=True)
        return ClipResult(path=request.out_path, duration_s=duration_s, cost=self.cost_of(duration))


def normalise_clip(path: Path, width: int, height: int) -> float:
    """Make the file what ClipRequest promises (H.264, `width`x`height`, no audio); return its duration.

    Kling's output usually already is; when it is not (another size, an audio track), it is
    re-encoded in place, letterboxed rather than stretched.
    """
    from vidgen.media.ffmpeg import FFmpegError, probe, run_ffmpeg

    try:
        info = probe(path)
    except FFmpegError as e:
        raise ApiFailureError(f"Kling's clip {path.name} is not a readable video: {e}", provider=PROVIDER) from e
    video = info.video
    if video is None:
        raise ApiFailureError(f"Kling's clip {path.name} has no video stream", provider=PROVIDER)
    if video.codec == "h264" and (video.width, video.height) == (width, height) and info.audio is None:
        return info.duration_s
    vf = (
        f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1"
    )
    try:
        with atomic_path(path) as tmp:
            run_ffmpeg(
                ["-i", str(path), "-an", "-vf", vf, "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                 "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(tmp)],
                what=f"normalising {path.name}",
            )
    except FFmpegError as e:
        raise ApiFailureError(f"could not normalise Kling's clip {path.name}: {e}", provider=PROVIDER) from e
    return probe(path).duration_s


def create_clips(settings: ProviderSettings, channel: Channel) -> KlingClipAnimator:
    """The registry's factory: needs KIE_API_KEY (and the image host's own setting)."""
    if settings.kie_api_key is None:
        raise ApiFailureError(
            f"KIE_API_KEY is not set; channel {channel.id!r} uses Kling for clips", provider=PROVIDER
        )
    client = KlingClient(settings.kie_api_key.get_secret_value(), settings.kie_base_url, model=settings.kling_model)
    return KlingClipAnimator(client, create_image_host(settings), timeout_s=settings.kling_timeout_s)
