"""The registry builds every local provider from a channel, each satisfying its step's protocol."""

from __future__ import annotations

import pytest

from vidgen.channels import load_channels
from vidgen.providers import base
from vidgen.providers.registry import build
from vidgen.providers.settings import ProviderSettings

PROTOCOLS = {
    "script": base.ScriptWriter,
    "images": base.ImageGenerator,
    "clips": base.ClipAnimator,
    "narration": base.Narrator,
    "sound": base.SoundDesigner,
}


@pytest.mark.parametrize("step", sorted(PROTOCOLS))
def test_registry_builds_the_local_provider(step: str, repo_root) -> None:
    channel = load_channels(repo_root / "channels")["wild_frontiers"]
    provider = build(step, "local", ProviderSettings(), channel)
    assert isinstance(provider, PROTOCOLS[step])
    assert provider.name == "local"
