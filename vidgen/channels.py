"""Channels: one YAML file per YouTube channel in `channels/`, validated into `Channel` models.

Adding a channel is adding a file; no code changes. A broken file is reported with its path, the
field, and what was expected, because the person editing YAML is not reading a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vidgen.errors import VidgenError

ScriptProvider = Literal["local", "gemini"]
ImageProvider = Literal["local", "gemini", "kie"]
ClipProvider = Literal["local", "kling"]
NarrationProvider = Literal["local", "elevenlabs"]
SoundProvider = Literal["local", "elevenlabs", "kie"]
PublisherProvider = Literal["local", "youtube"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VoiceConfig(_Strict):
    local_voice: str = "en-us"  # espeak-ng voice name
    words_per_minute: int = Field(default=160, ge=80, le=400)
    elevenlabs_voice_id: str = "JBFqnCBsd6RMkjVDRZzb"
    elevenlabs_model: str = "eleven_multilingual_v2"


class StyleConfig(_Strict):
    preamble: str = Field(min_length=1, description="prepended to every image prompt")
    palette: list[str] = Field(default_factory=lambda: ["#1d3b2a", "#c8a24a", "#6b8f71", "#e9dcc0"], min_length=2)
    watermark: str = ""

    @field_validator("palette")
    @classmethod
    def _hex_colours(cls, v: list[str]) -> list[str]:
        for c in v:
            if not (len(c) == 7 and c.startswith("#") and all(ch in "0123456789abcdefABCDEF" for ch in c[1:])):
                raise ValueError(f"{c!r} is not a #RRGGBB colour")
        return v


class ScriptConfig(_Strict):
    scenes: int = Field(default=6, ge=1, le=60, description="scenes the writer aims for")
    min_scenes: int = Field(default=1, ge=1)
    max_scenes: int = Field(default=40, ge=1, le=200)
    words_per_scene: int = Field(default=22, ge=5, le=200)


class GateConfig(_Strict):
    enabled: bool = True
    timeout_hours: float = Field(default=72.0, gt=0, description="how long a run waits for a reviewer")


class ReviewConfig(_Strict):
    assets: GateConfig = GateConfig()
    videos: GateConfig = GateConfig()
    audio: GateConfig = GateConfig()
    final: GateConfig = GateConfig()

    def gate(self, name: str) -> GateConfig:
        return getattr(self, name)


class ProviderChoice(_Strict):
    script: ScriptProvider = "local"
    images: ImageProvider = "local"
    clips: ClipProvider = "local"
    narration: NarrationProvider = "local"
    sound: SoundProvider = "local"
    publisher: PublisherProvider = "local"


class YouTubeConfig(_Strict):
    category_id: str = "22"
    privacy: Literal["private", "unlisted", "public"] = "private"
    tags: list[str] = Field(default_factory=list)
    made_for_kids: bool = False
    contains_synthetic_media: bool = True
    default_language: str = "en"
    daily_quota_units: int = Field(default=10_000, ge=1600)
    captions: bool = True  # upload the narration's .srt as the captions track (captions.insert, 400 units)
    chapters: bool = True  # write the scene titles as chapters in the description


class BudgetConfig(_Strict):
    max_usd_per_video: float = Field(default=6.0, gt=0)


class Channel(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")
    name: str = Field(min_length=1, description="display name")
    notion_value: str = Field(min_length=1, description="the option of Notion's Channel select")
    active: bool = True
    language: str = "en"
    voice: VoiceConfig = VoiceConfig()
    style: StyleConfig
    script: ScriptConfig = ScriptConfig()
    review: ReviewConfig = ReviewConfig()
    providers: ProviderChoice = ProviderChoice()
    youtube: YouTubeConfig = YouTubeConfig()
    budget: BudgetConfig = BudgetConfig()
    output_dir: str | None = None  # where the local publisher files finished videos


class ChannelConfigError(VidgenError):
    """A channel file that cannot be used; the message names the file, field and expectation."""


def _describe(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid channel configuration"]
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(file)"
        got = e.get("input")
        got_s = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {field}: {e['msg']}{got_s}")
    return "\n".join(lines)


def load_channel(path: Path) -> Channel:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ChannelConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ChannelConfigError(f"{path}: expected a mapping of channel fields, got {type(raw).__name__}")
    try:
        return Channel.model_validate(raw)
    except ValidationError as e:
        raise ChannelConfigError(_describe(path, e)) from e


def load_channels(directory: Path) -> dict[str, Channel]:
    """Every `*.yaml`/`*.yml` in `directory`, keyed by channel id; ids and Notion values must be unique."""
    if not directory.is_dir():
        raise ChannelConfigError(f"{directory}: channel directory not found (set VIDGEN_CHANNELS_DIR)")
    channels: dict[str, Channel] = {}
    by_value: dict[str, Path] = {}
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        ch = load_channel(path)
        if ch.id in channels:
            raise ChannelConfigError(f"{path}: id: channel id {ch.id!r} is already used by another file")
        if ch.notion_value in by_value:
            raise ChannelConfigError(
                f"{path}: notion_value: {ch.notion_value!r} is already used by {by_value[ch.notion_value]}"
            )
        channels[ch.id] = ch
        by_value[ch.notion_value] = path
    if not channels:
        raise ChannelConfigError(f"{directory}: no channel files (*.yaml) found")
    return channels


def channel_for_notion_value(channels: dict[str, Channel], value: str | None) -> Channel | None:
    for ch in channels.values():
        if value is not None and (ch.notion_value == value or ch.id == value):
            return ch
    return None
