"""Which class serves which step: the channel YAML names a provider per step, this builds it.

Each provider module exposes `create_<step>(settings, channel)`; modules are imported only when a
channel uses them, so a machine without (say) YouTube credentials never touches the YouTube code.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from vidgen.channels import Channel
from vidgen.providers.base import (
    ClipAnimator,
    ImageGenerator,
    Narrator,
    Publisher,
    ScriptWriter,
    SoundDesigner,
)
from vidgen.providers.settings import ProviderSettings

STEPS = ("script", "images", "clips", "narration", "sound", "publisher")

FACTORIES: dict[tuple[str, str], str] = {
    ("script", "local"): "vidgen.providers.local.script:create_script",
    ("images", "local"): "vidgen.providers.local.images:create_images",
    ("clips", "local"): "vidgen.providers.local.clips:create_clips",
    ("narration", "local"): "vidgen.providers.local.narration:create_narration",
    ("sound", "local"): "vidgen.providers.local.sound:create_sound",
    ("publisher", "local"): "vidgen.providers.local.publisher:create_publisher",
    ("script", "gemini"): "vidgen.providers.gemini:create_script",
    ("images", "gemini"): "vidgen.providers.gemini:create_images",
    ("images", "kie"): "vidgen.providers.kie_images:create_images",
    ("clips", "kling"): "vidgen.providers.kling:create_clips",
    ("narration", "elevenlabs"): "vidgen.providers.elevenlabs:create_narration",
    ("sound", "elevenlabs"): "vidgen.providers.elevenlabs:create_sound",
    ("sound", "kie"): "vidgen.providers.kie_sound:create_sound",
    ("publisher", "youtube"): "vidgen.providers.youtube:create_publisher",
}


def build(step: str, name: str, settings: ProviderSettings, channel: Channel) -> Any:
    try:
        target = FACTORIES[(step, name)]
    except KeyError:
        known = sorted(n for s, n in FACTORIES if s == step)
        raise ValueError(f"unknown {step} provider {name!r}; known: {', '.join(known)}") from None
    module_name, _, func = target.partition(":")
    return getattr(importlib.import_module(module_name), func)(settings, channel)


@dataclass(frozen=True)
class ProviderSet:
    script: ScriptWriter
    images: ImageGenerator
    clips: ClipAnimator
    narration: Narrator
    sound: SoundDesigner
    publisher: Publisher

    def close(self) -> None:
        """Close the providers that hold connections (HTTP clients); each is closed once."""
        seen: set[int] = set()
        for provider in (self.script, self.images, self.clips, self.narration, self.sound, self.publisher):
            close = getattr(provider, "close", None)
            if callable(close) and id(provider) not in seen:
                seen.add(id(provider))
                close()


def providers_for(channel: Channel, settings: ProviderSettings | None = None) -> ProviderSet:
    settings = settings or ProviderSettings.from_env()
    choice = channel.providers
    return ProviderSet(**{step: build(step, getattr(choice, step), settings, channel) for step in STEPS})
