#!/usr/bin/env python
"""Benchmark the local providers: seconds per step for one demo-sized video of each sample channel.

For every sample channel it writes the script, then per scene paints the picture, composites it to
1920x1080, animates a clip of the duration the pipeline would choose (5 or 10 s), narrates the
scene and designs its ambience, timing each step. It prints per-step totals and means, the seconds
per 10 s clip, and the CPU load while it ran (other work on the machine slows every figure).

Budget it reports against: `vidgen demo` makes two ~45-60 s videos in well under 10 minutes on two
cores including assembly, so the local providers should stay under ~3 minutes for both videos.

    uv run python scripts/bench_local_providers.py [--scenes 6] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vidgen.channels import load_channels  # noqa: E402
from vidgen.media.composite import compose  # noqa: E402
from vidgen.providers.base import (  # noqa: E402
    ClipRequest,
    ImageRequest,
    NarrationRequest,
    ScriptRequest,
    SoundRequest,
    VoiceSpec,
)
from vidgen.providers.local.clips import LocalClipAnimator  # noqa: E402
from vidgen.providers.local.images import LocalImageGenerator  # noqa: E402
from vidgen.providers.local.narration import LocalNarrator  # noqa: E402
from vidgen.providers.local.script import LocalScriptWriter  # noqa: E402
from vidgen.providers.local.sound import LocalSoundDesigner  # noqa: E402

TOPICS = {
    "wild_frontiers": ("Ghosts of the High Himalaya", "Snow leopards of the Himalaya",
                       "Follow a mother and her two cubs through their first winter; end on hope for conservation."),
    "chronicle_vault": ("The Last Night of Byzantium", "The fall of Constantinople",
                        "Tell it from the walls; the cannon, the chain across the Golden Horn, then the last night."),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=None, help="scenes per video (default: the channel's)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the media in this folder")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-local-"))
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, list[float]] = defaultdict(list)
    clip_rates: list[float] = []
    load_before = os.getloadavg()[0]
    started = time.perf_counter()

    def timed(step: str, fn):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        value = fn()
        timings[step].append(time.perf_counter() - t0)
        return value

    writer, painter, animator = LocalScriptWriter(), LocalImageGenerator(), LocalClipAnimator()
    narrator, designer = LocalNarrator(), LocalSoundDesigner()
    channels = load_channels(REPO / "channels")
    for channel_id, channel in channels.items():
        title, topic, direction = TOPICS.get(channel_id, ("Demo", "Wolves of Yellowstone", ""))
        out = work / channel_id
        request = ScriptRequest(
            title=title, topic=topic, story_direction=direction, channel_name=channel.name,
            style_preamble=channel.style.preamble, scenes=args.scenes or channel.script.scenes,
            words_per_scene=channel.script.words_per_scene,
        )
        script = timed("script", lambda: writer.write(request)).script
        for scene in script.scenes:
            n = scene.index
            image = timed("image", lambda: painter.generate(ImageRequest(
                prompt=scene.image_prompt, style_preamble=channel.style.preamble, palette=channel.style.palette,
                seed=n, out_path=out / f"scene_{n:02d}.png"))).path
            frame = timed("composite", lambda: compose(image, out / f"frame_{n:02d}.png",
                                                        watermark=channel.style.watermark))
            words = len(scene.narration.split())
            duration = 5.0 if words / channel.voice.words_per_minute * 60 + 1.0 <= 5 else 10.0
            t0 = time.perf_counter()
            timed("clip", lambda: animator.animate(ClipRequest(
                image_path=frame, motion_prompt=scene.motion_prompt, duration_s=duration, seed=n,
                out_path=out / f"clip_{n:02d}.mp4")))
            clip_rates.append((time.perf_counter() - t0) / duration * 10)
            voice = VoiceSpec(local_voice=channel.voice.local_voice, words_per_minute=channel.voice.words_per_minute)
            narration = timed("narration", lambda: narrator.narrate(NarrationRequest(
                text=scene.narration, voice=voice, out_path=out / f"narration_{n:02d}.wav")))
            timed("sound", lambda: designer.design(SoundRequest(
                cue=scene.sound_cue, duration_s=min(30.0, narration.duration_s + 1.0), seed=n,
                out_path=out / f"sfx_{n:02d}.wav")))

    total = time.perf_counter() - started
    print(f"{'step':<10} {'calls':>5} {'total s':>8} {'mean s':>7} {'max s':>7}")
    for step in ("script", "image", "composite", "clip", "narration", "sound"):
        values = timings[step]
        print(f"{step:<10} {len(values):>5} {sum(values):>8.2f} {sum(values) / len(values):>7.3f} {max(values):>7.3f}")
    print(f"{'all':<10} {'':>5} {total:>8.2f}")
    print(f"seconds per 10 s 1080p clip: mean {sum(clip_rates) / len(clip_rates):.2f}, max {max(clip_rates):.2f}")
    print(f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"media in {work}" if args.keep else "")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
