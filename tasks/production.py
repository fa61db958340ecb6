"""One task per production step, tagged with the service it calls (whatever provider serves it).

Tags carry the concurrency limits (`vidgen setup`): gemini for script and images, kling for clips,
elevenlabs for narration and sound, youtube for uploads. Paid steps retry per the seed's policy, and
only on retriable failures. `revision` is part of every task's inputs so a reviewer's redo makes a
new cache entry while everything else is served from the run's persisted results.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from prefect import task

from blocks.config import ledger_engine, provider_settings
from tasks.retry import paid_step_options
from vidgen.ledger import CostLedger
from vidgen.models import Scene, Script
from vidgen.pipeline import AssembledVideo, NarrationTrack, Production, VideoBrief
from vidgen.providers.base import PublishResult

PAID = paid_step_options()


@lru_cache(maxsize=1)
def _ledger() -> CostLedger:
    return CostLedger(ledger_engine())


def production(brief: VideoBrief) -> Production:
    return Production.open(brief, settings=provider_settings(), ledger=_ledger())


@task(name="write-script", tags=["gemini"], **PAID)
def write_script(brief: VideoBrief, revision: int = 0) -> Script:
    return production(brief).write_script(revision)


@task(name="generate-image", task_run_name="image {scene.index}", tags=["gemini"], **PAID)
def generate_image(brief: VideoBrief, scene: Scene, revision: int = 0) -> Path:
    return production(brief).make_image(scene, revision)


@task(name="compose-frame", task_run_name="frame {scene.index}", persist_result=True)
def compose_frame(brief: VideoBrief, scene: Scene, image: Path, revision: int = 0) -> Path:
    return production(brief).make_composite(scene, image, revision)


@task(name="animate-clip", task_run_name="clip {scene.index}", tags=["kling"], **PAID)
def animate_clip(brief: VideoBrief, scene: Scene, composite: Path, revision: int = 0) -> Path:
    return production(brief).make_clip(scene, composite, revision)


@task(name="narrate-scene", task_run_name="narration {scene.index}", tags=["elevenlabs"], **PAID)
def narrate_scene(brief: VideoBrief, scene: Scene, revision: int = 0) -> NarrationTrack:
    return production(brief).make_narration(scene, revision)


@task(name="design-sound", task_run_name="sound {scene.index}", tags=["elevenlabs"], **PAID)
def design_sound(brief: VideoBrief, scene: Scene, duration_s: float, revision: int = 0) -> Path:
    return production(brief).make_sound(scene, duration_s, revision)


@task(name="assemble-video", persist_result=True)
def assemble_video(
    brief: VideoBrief, script: Script, clips: list[Path], narrations: list[NarrationTrack], sounds: list[Path]
) -> AssembledVideo:
    return production(brief).assemble(script, clips, narrations, sounds)


@task(name="publish-video", tags=["youtube"], **PAID)
def publish_video(brief: VideoBrief, script: Script, video: AssembledVideo) -> PublishResult:
    return production(brief).publish(script, video)


@task(name="total-cost", persist_result=True)
def total_cost(brief: VideoBrief, after: str) -> float:
    """The ledger's total for the video, also shown as a table artifact; `after` names the stage."""
    from prefect.artifacts import create_table_artifact

    prod = production(brief)
    lines = prod.ledger.lines_for(brief.page_id)
    rows = [
        {"step": l.step, "item": l.item, "provider": l.provider, "units": l.units, "unit": l.unit, "usd": round(l.usd, 4)}
        for l in lines
    ]
    total = prod.total_cost()
    rows.append({"step": "total", "item": "", "provider": "", "units": "", "unit": "", "usd": total})
    create_table_artifact(
        table=rows,
        key=f"cost-{brief.page_id}".lower()[:100],
        description=f"Cost of '{brief.title}' ({after}): ${total:.2f}",
    )
    return total
