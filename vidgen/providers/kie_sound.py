"""ElevenLabs' sound-effect model through KIE.ai's market: a sound paid for can be collected later.

ElevenLabs' own `POST /v1/sound-generation` answers the audio in the response and keeps nothing
(sound effects are not in the account's history), so a worker killed while one is being made loses
it and the next one pays again. KIE.ai serves the same model as a market task
(https://docs.kie.ai/market/elevenlabs/sound-effect-v2):

  POST /api/v1/jobs/createTask {"model": "elevenlabs/sound-effect-v2", "callBackUrl"?, "input":
       {"text", "loop", "duration_seconds", "prompt_influence", "output_format"}}  -> data.taskId

and keeps the task and its result (`vidgen.providers.kie`: recordInfo, resultJson.resultUrls), so the
task id, noted before waiting (`KeptTask`), is all a new worker needs. Hence `sound: kie` in a
channel's YAML for sound effects that survive a kill; `sound: elevenlabs` talks to ElevenLabs
directly (one fewer hop, one fewer account) and pays again for a sound in flight at a kill.
"""

from __future__ import annotations

from vidgen.channels import Channel
from vidgen.errors import ApiFailureError, InvalidInputError
from vidgen.providers.base import SoundRequest, SoundResult
from vidgen.providers.elevenlabs import ElevenLabsPricing, looks_like_mp3
from vidgen.providers.kie import KieMarketClient, market_client, run_kept_task
from vidgen.providers.settings import ProviderSettings
from vidgen.workspace import fingerprint

PROVIDER = "kie"
MODEL = "elevenlabs/sound-effect-v2"
OUTPUT_FORMAT = "mp3_44100_128"
MIN_S = 0.5  # the documented minimum of input.duration_seconds
MAX_S = 22.0  # sound-effect-v2's longest sound as its hosts list it; a longer scene loops the sound
DEFAULT_TIMEOUT_S = 300.0
MAX_CUE_CHARS = 5000


class KieSoundDesigner:
    """SoundDesigner: one sound-effect task per cue, waited on (or resumed) and downloaded as MP3."""

    name = PROVIDER

    def __init__(
        self,
        client: KieMarketClient,
        *,
        model: str = MODEL,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        prompt_influence: float = 0.3,  # ElevenLabs' default: follow the cue, keep some variety
        pricing: ElevenLabsPricing | None = None,  # ElevenLabs' model; set KIE's credit price for an exact ledger
    ):
        if not 0 <= prompt_influence <= 1:
            raise ValueError("prompt_influence must be between 0 and 1")
        self.client, self.model, self.timeout_s = client, model, timeout_s
        self.prompt_influence = prompt_influence
        self.pricing = pricing or ElevenLabsPricing()

    def design(self, request: SoundRequest) -> SoundResult:
        """Writes `out_path` with a `.mp3` suffix; a scene longer than the model makes gets a looping sound."""
        cue = request.cue.strip()
        if len(cue) > MAX_CUE_CHARS:
            raise InvalidInputError(f"sound cue is {len(cue)} characters; at most {MAX_CUE_CHARS}", provider=PROVIDER)
        if request.duration_s < MIN_S:
            raise InvalidInputError(
                f"sound effects last at least {MIN_S} s; {request.duration_s} s was asked for", provider=PROVIDER
            )
        seconds = min(request.duration_s, MAX_S)
        task_input: dict[str, object] = {
            "text": cue,
            "loop": request.duration_s > MAX_S,
            "duration_seconds": seconds,
            "prompt_influence": self.prompt_influence,
            "output_format": OUTPUT_FORMAT,
        }
        out = request.out_path.with_suffix(".mp3")
        asked = fingerprint(self.model, task_input)
        task, note = run_kept_task(
            self.client, out, asked, lambda: self.client.start_task(self.model, task_input), timeout_s=self.timeout_s
        )
        self.client.download(task.result_urls[0], out)
        with out.open("rb") as f:
            head = f.read(4)
        if not looks_like_mp3(head):
            out.unlink(missing_ok=True)
            note.unlink(missing_ok=True)
            raise ApiFailureError(f"unexpected response: task {task.task_id}'s result is not MP3 ({head!r})",
                                  provider=PROVIDER)
        note.unlink(missing_ok=True)
        return SoundResult(path=out, duration_s=seconds, cost=self.pricing.sound_cost())

    def close(self) -> None:
        self.client.close()


def create_sound(settings: ProviderSettings, channel: Channel) -> KieSoundDesigner:
    """The registry's factory: needs KIE_API_KEY."""
    return KieSoundDesigner(market_client(settings, channel, provider=PROVIDER, what="sound effect"), model=settings.kie_sound_model)


__all__ = ["KieSoundDesigner", "create_sound"]
