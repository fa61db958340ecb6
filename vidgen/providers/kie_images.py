"""Gemini 2.5 Flash Image ("Nano Banana") through KIE.ai's market: a picture paid for can be collected later.

Gemini's `generateContent` answers the picture in the response and keeps nothing, so a worker killed
while one is being made loses it and the next one pays again. KIE.ai serves the same model as a
market task (https://docs.kie.ai/market/google/nano-banana):

  POST /api/v1/jobs/createTask {"model": "google/nano-banana", "callBackUrl"?, "input":
       {"prompt" (at most 5,000 characters), "output_format": "png"|"jpeg", "image_size": "16:9"|...}}
       -> data.taskId

and keeps the task and its result (`vidgen.providers.kie`), so the task id, noted before waiting
(`KeptTask`), is all a new worker needs. Hence `images: kie` in a channel's YAML for pictures that
survive a kill; `images: gemini` talks to Google directly (safety reasons in Google's own words, a
seed) and pays again for a picture in flight at a kill. The prompt is the one the Gemini adapter
writes (`image_prompt`), so both give the channel the same look.
"""

from __future__ import annotations

from vidgen.channels import Channel
from vidgen.errors import ApiFailureError, InvalidInputError
from vidgen.files import atomic_write_bytes
from vidgen.providers.base import ImageRequest, ImageResult
from vidgen.providers.gemini import IMAGE_ASPECT_RATIO, GeminiPricing, image_prompt, png_bytes
from vidgen.providers.kie import KieMarketClient, market_client, run_kept_task
from vidgen.providers.settings import ProviderSettings
from vidgen.workspace import fingerprint

PROVIDER = "kie"
MODEL = "google/nano-banana"
MAX_PROMPT_CHARS = 5000  # documented limit of input.prompt
DEFAULT_TIMEOUT_S = 300.0


class KieImageGenerator:
    """ImageGenerator: one Nano Banana task per scene, waited on (or resumed), kept as PNG at 16:9."""

    name = PROVIDER

    def __init__(
        self,
        client: KieMarketClient,
        *,
        model: str = MODEL,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        pricing: GeminiPricing | None = None,  # Gemini's model; set KIE's credit price for an exact ledger
    ):
        self.client, self.model, self.timeout_s = client, model, timeout_s
        self.pricing = pricing or GeminiPricing()

    def generate(self, request: ImageRequest) -> ImageResult:
        prompt = image_prompt(request)
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidInputError(
                f"image prompt is {len(prompt)} characters; Nano Banana on KIE takes at most {MAX_PROMPT_CHARS}",
                provider=PROVIDER,
            )
        task_input: dict[str, object] = {"prompt": prompt, "output_format": "png", "image_size": IMAGE_ASPECT_RATIO}
        download = request.out_path.with_name(f".{request.out_path.name}.download")
        task, note = run_kept_task(
            self.client, request.out_path, fingerprint(self.model, task_input),
            lambda: self.client.start_task(self.model, task_input), timeout_s=self.timeout_s,
        )
        try:
            self.client.download(task.result_urls[0], download)
            try:
                data, width, height = png_bytes(download.read_bytes())
            except ApiFailureError as exc:
                note.unlink(missing_ok=True)  # a result that is no picture will not become one
                raise ApiFailureError(
                    f"unexpected response: task {task.task_id}'s result is not a readable image", provider=PROVIDER
                ) from exc
            atomic_write_bytes(request.out_path, data)
        finally:
            download.unlink(missing_ok=True)
        note.unlink(missing_ok=True)
        return ImageResult(path=request.out_path, width=width, height=height, cost=self.pricing.image_cost())

    def close(self) -> None:
        self.client.close()


def create_images(settings: ProviderSettings, channel: Channel) -> KieImageGenerator:
    """The registry's factory: needs KIE_API_KEY."""
    return KieImageGenerator(market_client(settings, channel, provider=PROVIDER, what="image"), model=settings.kie_image_model)


__all__ = ["KieImageGenerator", "create_images"]
