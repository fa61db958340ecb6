"""Review gates: write the gate status, publish what to review, suspend until a person decides.

The run is suspended (not paused), so no worker is held while a reviewer takes days. A decision
comes from the Prefect UI's resume form (`ReviewDecision` renders as a form) or from the Notion page
(the poller reads it and calls `resume_flow_run`). A resumed run re-executes the flow from the top;
each gate's suspend `key` (gate + round) makes Prefect hand back the decision already given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from pydantic import Field, field_validator, model_validator

from vidgen.models import ReviewAction, ReviewVerdict
from vidgen.pipeline import Production, content_fingerprint, record_approval, recorded_approval
from vidgen.statuses import GATES


class ReviewDecision(RunInput):
    """A reviewer's decision at a gate (the Prefect UI shows this as the resume form)."""

    decision: Literal["approve", "reject"] = Field(
        default="approve", description="approve to continue; reject to redo scenes or stop the video"
    )
    notes: str = Field(default="", description="what you saw; written to the Notion page")
    redo: list[int] = Field(
        default_factory=list, description="reject only: scene numbers to make again (1 = first scene)"
    )

    @field_validator("redo")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(n < 1 for n in v):
            raise ValueError("scene numbers start at 1")
        return sorted(set(v))

    @model_validator(mode="after")
    def _consistent(self) -> ReviewDecision:
        if self.decision == "approve" and self.redo:
            raise ValueError("an approval cannot also ask for scenes to be redone; choose reject")
        return self

    def verdict(self) -> ReviewVerdict:
        return ReviewVerdict(action=ReviewAction(self.decision), notes=self.notes, redo=self.redo)

    @classmethod
    def from_verdict(cls, verdict: ReviewVerdict) -> ReviewDecision:
        return cls(decision=verdict.action.value, notes=verdict.notes, redo=verdict.redo)


def check_redo(verdict: ReviewVerdict, scene_count: int) -> str | None:
    """Why a decision cannot be applied to a video of `scene_count` scenes (None when it can)."""
    bad = [n for n in verdict.redo if not 1 <= n <= scene_count]
    if bad:
        return f"scene number(s) {', '.join(map(str, bad))} do not exist; this video has scenes 1-{scene_count}"
    return None


class Revisions:
    """Where a gate stands: its review round, and how often a reviewer had each scene made again.

    A scene's revision is part of its step's inputs, so a redo makes a new file (and a new cache
    entry) for just the scenes named, while the others are served as they were."""

    def __init__(self, scene_count: int):
        self.round = 1
        self.counts = [0] * scene_count

    def of_scenes(self) -> list[int]:
        return list(self.counts)

    def redo(self, scene_numbers: list[int]) -> None:
        for number in scene_numbers:
            self.counts[number - 1] += 1
        self.round += 1


@task(name="publish-review", task_run_name="review {gate} #{round}", persist_result=True)
def publish_review(page_id: str, gate: str, round: int, rows: list[dict[str, str]]) -> str:
    """What to review at this gate, as a table artifact on the run (one key per page and gate)."""
    key = f"review-{gate}-{page_id}".lower().replace("_", "-")[:100]
    create_table_artifact(table=rows, key=key, description=f"Review: {gate} gate, round {round}")
    return key


def review_gate(production: Production, gate: str, round: int, files: list[Path], rows: list[dict[str, str]]) -> ReviewVerdict:
    """Wait for a reviewer at `gate` (the caller has written the gate status); skip if the channel turns it off."""
    logger = get_run_logger()
    cfg = production.channel.review.gate(gate)
    if not cfg.enabled:
        logger.info("Review gate %r is off for channel %s: continuing without a reviewer", gate, production.channel.id)
        return ReviewVerdict(action=ReviewAction.APPROVE, notes="gate off")
    content = content_fingerprint(files)
    if (earlier := recorded_approval(production.workspace, gate, content)) is not None:
        logger.info("Gate %r: this exact content was approved at %s; not asking again", gate, earlier.at)
        return ReviewVerdict(action=ReviewAction.APPROVE, notes=earlier.notes)
    publish_review(production.brief.page_id, gate, round, rows)
    logger.info(
        "Waiting for review at %r (Notion status %r); approve in Notion or with the Prefect resume form",
        gate,
        GATES[gate].value,
    )
    decision = suspend_flow_run(
        wait_for_input=ReviewDecision, key=f"{gate}-{round}", timeout=int(cfg.timeout_hours * 3600)
    )
    verdict = decision.verdict()
    logger.info("Reviewer decided at %r: %s %s", gate, verdict.action.value, verdict.notes)
    if verdict.action is ReviewAction.APPROVE:
        record_approval(production.workspace, gate, content, verdict.notes)
    return verdict
