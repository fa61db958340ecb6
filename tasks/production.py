"""One task per production step, tagged with the service it calls (whatever provider serves it).

Tags carry the concurrency limits (`vidgen setup`): gemini for script and images, kling for clips,
elevenlabs for narration and sound, youtube for uploads. Paid steps retry per the seed's policy, and
only on retriable failures. Every task takes the run's `Production` (opened once per flow run, see
`open_production`), which is left out of the cache key: a step's key is its inputs (scene, files,
revision) and the flow run, so a reviewer's redo (a new revision) makes a new entry while a resumed
run is served everything else from its persisted results.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from prefect import task
from prefect.cache_policies import DEFAULT

from blocks.config import ledger_engine, provider_settings
from tasks.retry import paid_step_options
from vidgen.ledger import CostLedger
from vidgen.models import Scene, Script
from vidgen.pipeline import AssembledVideo, NarrationTrack, Production, VideoBrief
from vidgen.providers.base import PublishResult

STEP = {"persist_result": True, "cache_policy": DEFAULT - "production"}
PAID = {**paid_step_options(), **STEP}


@lru_cache(maxsize=1)
def _ledger() -> CostLedger:
    return CostLedger(ledger_engine())


def open_production(brief: VideoBrief) -> Production:
    """The video's context for this run: channel, workspace, providers (with their clients), ledger."""
    return Production.open(brief, settings=provider_settings(), ledger=_ledger())


@task(name="write-script", tags=["gemini"], **PAID)
def write_script(production: Production, revision: int = 0) -> Script:
    return production.write_script(revision)


@task(name="generate-image", task_run_name="image {scene.index}", tags=["gemini"], **PAID)
def generate_image(production: Production, scene: Scene, revision: int = 0) -> Path:
    return production.make_image(scene, revision)


@task(name="compose-frame", task_run_name="frame {scene.index}", **STEP)
def compose_frame(production: Production, scene: Scene, image: Path) -> Path:
    return production.make_composite(scene, image)


@task(name="animate-clip", task_run_name="clip {scene.index}", tags=["kling"], **PAID)
def animate_clip(production: Production, scene: Scene, frame: Path, revision: int = 0) -> Path:
    return production.make_clip(scene, frame, revision)


@task(name="narrate-scene", task_run_name="narration {scene.index}", tags=["elevenlabs"], **PAID)
def narrate_scene(production: Production, scene: Scene, revision: int = 0) -> NarrationTrack:
    return production.make_narration(scene, revision)


@task(name="design-sound", task_run_name="sound {scene.index}", tags=["elevenlabs"], **PAID)
def design_sound(production: Production, scene: Scene, duration_s: float) -> Path:
    return production.make_sound(scene, duration_s)


@task(name="assemble-video", **STEP)
def assemble_video(
    production: Production, script: Script, clips: list[Path], narrations: list[NarrationTrack], sounds: list[Path]
) -> AssembledVideo:
    return production.assemble(script, clips, narrations, sounds)


@task(name="publish-video", tags=["youtube"], **PAID)
def publish_video(production: Production, script: Script, video: AssembledVideo) -> PublishResult:
    return production.publish(script, video)


@task(name="report-cost", task_run_name="cost after {step}", **STEP)
def report_cost(production: Production, step: str) -> float:
    """The ledger's total for the video, published as a table artifact on the run after `step`."""
    from prefect.artifacts import create_table_artifact

    lines = production.ledger.lines_for(production.brief.page_id)
    total = production.total_cost()
    rows = [
        {"step": l.step, "item": l.item, "provider": l.provider, "units": l.units, "unit": l.unit, "usd": round(l.usd, 4)}
        for l in lines
    ]
    rows.append({"step": "total", "item": "", "provider": "", "units": "", "unit": "", "usd": total})
    create_table_artifact(
        table=rows,
        key=f"cost-{production.brief.page_id}".lower()[:100],
        description=f"Cost of '{production.brief.title}' after {step}: ${total:.2f}",
    )
    return total
