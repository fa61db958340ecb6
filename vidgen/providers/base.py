"""The provider interface: a request and a result model per step, and one protocol per step.

Every result says what it cost and where its file is. Providers write exactly the `out_path` they
are given (the workspace decides names), raise only `vidgen.errors.ProviderError` subclasses for
failures they understand, and never retry on their own: retries are the orchestrator's policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from vidgen.files import atomic_write_text
from vidgen.models import Chapter, Cost, Script, WordTiming


# --- script -------------------------------------------------------------------------------------
class ScriptRequest(BaseModel):
    title: str
    topic: str
    story_direction: str = ""
    channel_name: str
    style_preamble: str
    language: str = "en"
    scenes: int = Field(ge=1)
    words_per_scene: int = Field(ge=1)
    # What was wrong with the model's previous answer to this same request, when the pipeline asks
    # again (vidgen.script_repair). Excluded from dumps: a request's fingerprint (its cache key) and
    # the local writer's seed stay those of the brief, however the answer was reached.
    previous_problems: list[str] = Field(default_factory=list, exclude=True)
    # Where a writer whose provider keeps the job may note it while it runs (the video's workspace).
    note_dir: Path | None = Field(default=None, exclude=True)


class KeptTask(BaseModel):
    """A paid job a provider keeps for us (a KIE task, a Gemini interaction), noted beside what it will
    become before the wait starts, with the fingerprint of what was asked: a later process (a retry, a
    new worker after a kill) waits on the same job instead of paying for a second one."""

    task_id: str
    fingerprint: str

    @staticmethod
    def path_for(out_path: Path, provider: str) -> Path:
        return out_path.with_name(f".{out_path.name}.{provider}-task.json")

    @classmethod
    def load(cls, path: Path, fingerprint: str) -> str | None:
        """The noted job id, if the note is readable and was made for the same request."""
        try:
            kept = cls.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return kept.task_id if kept.fingerprint == fingerprint else None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, self.model_dump_json(), mode=0o600)  # a paid task's id: owner only


class ScriptResult(BaseModel):
    script: Script
    cost: Cost = Cost()


# --- images -------------------------------------------------------------------------------------
class ImageRequest(BaseModel):
    prompt: str  # the scene's image prompt; providers prepend `style_preamble`
    style_preamble: str = ""
    palette: list[str] = Field(default_factory=list)
    seed: int = 0
    out_path: Path  # PNG


class ImageResult(BaseModel):
    path: Path
    width: int
    height: int
    cost: Cost = Cost()


# --- clips --------------------------------------------------------------------------------------
class ClipRequest(BaseModel):
    image_path: Path  # the 1920x1080 composite
    motion_prompt: str
    duration_s: float = Field(ge=1, le=20)  # Kling offers 5 or 10
    seed: int = 0
    out_path: Path  # MP4, H.264, 1920x1080, no audio


class ClipResult(BaseModel):
    path: Path
    duration_s: float
    cost: Cost = Cost()


# --- narration ----------------------------------------------------------------------------------
class VoiceSpec(BaseModel):
    local_voice: str = "en-us"
    words_per_minute: int = 160
    elevenlabs_voice_id: str = ""
    elevenlabs_model: str = "eleven_multilingual_v2"
    language: str = "en"


class NarrationRequest(BaseModel):
    text: str = Field(min_length=1)
    voice: VoiceSpec
    out_path: Path  # WAV (PCM s16) or MP3; the result's path is authoritative


class NarrationResult(BaseModel):
    path: Path
    duration_s: float
    words: list[WordTiming]  # the narrator's own timings: captions come from these
    cost: Cost = Cost()


# --- sound effects ------------------------------------------------------------------------------
class SoundRequest(BaseModel):
    cue: str = Field(min_length=1)
    duration_s: float = Field(gt=0, le=30)
    seed: int = 0
    out_path: Path  # WAV or MP3; the result's path is authoritative


class SoundResult(BaseModel):
    path: Path
    duration_s: float
    cost: Cost = Cost()


# --- publishing ---------------------------------------------------------------------------------
class VideoMetadata(BaseModel):
    title: str = Field(max_length=100)
    description: str = Field(max_length=5000)
    tags: list[str] = Field(default_factory=list)
    chapters: list[Chapter] = Field(default_factory=list)
    category_id: str = "22"
    privacy: str = "private"
    made_for_kids: bool = False
    contains_synthetic_media: bool = True
    default_language: str = "en"
    duration_s: float | None = None  # the video's length: a last chapter shorter than 10 s is dropped


class PublishRequest(BaseModel):
    channel_id: str
    page_id: str
    video_path: Path
    thumbnail_path: Path
    captions_path: Path | None = None
    metadata: VideoMetadata
    output_dir: Path  # where a local publisher files things; remote publishers ignore it
    # Where a publisher keeps what it needs to carry on after its process died (an upload's session,
    # the quota it reserved); one file per video and metadata, in the video's workspace.
    resume_path: Path | None = None


class PublishResult(BaseModel):
    url: str
    video_id: str
    cost: Cost = Cost()
    warnings: list[str] = Field(default_factory=list)  # what did not stick (captions refused, ...): for the card


# --- the protocols ------------------------------------------------------------------------------
@runtime_checkable
class ScriptWriter(Protocol):
    name: str

    def write(self, request: ScriptRequest) -> ScriptResult: ...


@runtime_checkable
class ImageGenerator(Protocol):
    name: str

    def generate(self, request: ImageRequest) -> ImageResult: ...


@runtime_checkable
class ClipAnimator(Protocol):
    name: str

    def animate(self, request: ClipRequest) -> ClipResult: ...


@runtime_checkable
class Narrator(Protocol):
    name: str

    def narrate(self, request: NarrationRequest) -> NarrationResult: ...


@runtime_checkable
class SoundDesigner(Protocol):
    name: str

    def design(self, request: SoundRequest) -> SoundResult: ...


@runtime_checkable
class Publisher(Protocol):
    name: str

    def publish(self, request: PublishRequest) -> PublishResult: ...
