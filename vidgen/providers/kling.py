"""Kling 2.5 Turbo (image to video) through KIE.ai's market API: upload, create, poll, download.

API (https://docs.kie.ai/market/kling/v2-5-turbo-image-to-video-pro; the task endpoints every KIE
market model shares are in `vidgen.providers.kie`):
  POST /api/v1/jobs/createTask {"model", "callBackUrl"?, "input": {"prompt", "image_url",
       "duration": "5"|"10", "negative_prompt", "cfg_scale"}}         -> data.taskId
Clips are the most expensive step (about 75% of a video's cost), so a task id is kept next to the
clip until the clip is on disk (`KeptTask`): a retry after a timeout, or a new worker after a kill,
waits on the same paid task instead of paying for a second one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from vidgen.channels import Channel
from vidgen.errors import ApiFailureError, InvalidInputError
from vidgen.files import atomic_path
from vidgen.models import Cost
from vidgen.providers.base import ClipRequest, ClipResult
from vidgen.providers.imagehost import ImageHost, create_image_host
from vidgen.providers.kie import KieMarketClient, run_kept_task
from vidgen.providers.settings import ProviderSettings

PROVIDER = "kling"
ALLOWED_DURATIONS = (5, 10)
MAX_PROMPT_CHARS = 2500  # documented limit of input.prompt
MAX_NEGATIVE_PROMPT_CHARS = 2496  # documented limit of input.negative_prompt
DEFAULT_NEGATIVE_PROMPT = "blur, distort, and low quality"
USD_PER_5S_CLIP = 0.13  # the seed: "18 clips @ ~$0.13 each"

Duration = Literal["5", "10"]


def nearest_duration(seconds: float) -> Duration:
    """Kling makes 5 s or 10 s clips; ties go to the cheaper one."""
    best = min(ALLOWED_DURATIONS, key=lambda d: (abs(d - seconds), d))
    return "5" if best == 5 else "10"


class KlingClient(KieMarketClient):
    """KIE.ai's market, speaking Kling: `create_task` checks Kling's documented input limits first."""

    def __init__(self, api_key: str, base_url: str = "https://api.kie.ai", *,
                 model: str = "kling/v2-5-turbo-image-to-video-pro", **options: Any):
        super().__init__(api_key, base_url, provider=PROVIDER, what="clip", **options)
        self.model = model

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
        return self.start_task(self.model, task_input, callback_url=callback_url)


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

    def _fingerprint(self, request: ClipRequest, duration: Duration) -> str:
        h = hashlib.sha256()
        h.update(request.image_path.read_bytes())
        for part in (request.motion_prompt, duration, self.client.model, self.negative_prompt, self.cfg_scale):
            h.update(b"\x1f" + str(part).encode())
        return h.hexdigest()[:32]

    def animate(self, request: ClipRequest) -> ClipResult:
        if not request.image_path.is_file():
            raise InvalidInputError(f"composite not found: {request.image_path}", provider=PROVIDER)
        duration = nearest_duration(request.duration_s)
        fingerprint = self._fingerprint(request, duration)

        def start() -> str:
            image_url = self.image_host.upload(request.image_path)
            return self.client.create_task(
                prompt=request.motion_prompt,
                image_url=image_url,
                duration=duration,
                negative_prompt=self.negative_prompt,
                cfg_scale=self.cfg_scale,
                callback_url=self.callback_url,
            )

        task, note = run_kept_task(self.client, request.out_path, fingerprint, start, timeout_s=self.timeout_s)
        self.client.download(task.result_urls[0], request.out_path)
        duration_s = normalise_clip(request.out_path, self.width, self.height)
        note.unlink(missing_ok=True)
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
