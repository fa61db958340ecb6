"""Review gates: write the gate status, publish what to review, suspend until a person decides.

The run is suspended (not paused), so no worker is held while a reviewer takes days. A decision
comes from the Prefect UI's resume form (`ReviewDecision` renders as a form) or from the Notion page
(the poller reads it and calls `resume_flow_run`). A resumed run re-executes the flow from the top;
each gate's suspend `key` (gate + round) makes Prefect hand back the decision already given.
"""

from __future__ import annotations

from typing import Literal

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import DEFAULT
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from pydantic import Field, field_validator, model_validator

from vidgen.models import ReviewAction, ReviewVerdict
from vidgen.pipeline import Production, content_fingerprint, record_approval, recorded_approval
from vidgen.previews import PreviewItem, PreviewReport, label_of, publish_gate_previews
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
        self.redone: list[int] = []  # scene numbers (1 = first) made again for this round

    def of_scenes(self) -> list[int]:
        return list(self.counts)

    def redo(self, scene_numbers: list[int]) -> None:
        for number in scene_numbers:
            self.counts[number - 1] += 1
        self.redone = list(scene_numbers)
        self.round += 1

    def shown(self, items: list[PreviewItem]) -> list[PreviewItem]:
        """What this round shows the reviewer: everything first, then just the scenes made again."""
        if self.round == 1 or not self.redone:
            return items
        return [item for item in items if item.scene_number in self.redone]


@task(name="publish-previews", task_run_name="previews {gate} #{round}", tags=["notion"], persist_result=True,
      cache_policy=DEFAULT - "production")
def publish_previews(production: Production, gate: str, round: int, items: list[PreviewItem]) -> PreviewReport:
    """The gate's previews on the Notion page (never fails the gate: problems become a note on the page)."""
    from tasks.notion import notion_gateway

    report = publish_gate_previews(
        notion_gateway(), production.brief.page_id, gate, round, items,
        preview_dir=production.workspace.dir("previews"),
    )
    for problem in report.problems:
        get_run_logger().warning("Preview %s not shown on the Notion page: %s", problem.label, problem.reason)
    return report


@task(name="publish-review", task_run_name="review {gate} #{round}", persist_result=True)
def publish_review(page_id: str, card_url: str | None, gate: str, round: int, items: list[PreviewItem],
                   previews: PreviewReport) -> str:
    """What to review, on the run: a table of the scenes (with whether Notion shows their preview)
    and a link to the card, where the previews are."""
    missing = {p.label for p in previews.problems}
    rows = [
        {
            "scene": str(item.scene_number or ""),
            "what": item.caption[:300],
            "preview on the Notion page": "missing" if label_of(item) in missing else "yes",
            "file": str(item.path),
        }
        for item in items
    ]
    key = f"review-{gate}-{page_id}".lower().replace("_", "-")[:100]
    create_table_artifact(table=rows, key=key, description=f"Review: {gate} gate, round {round}: {previews.heading}")
    if card_url:
        create_link_artifact(link=card_url, link_text=f"Review on the Notion page ({previews.heading})")
    return key


def review_gate(production: Production, card_url: str | None, gate: str, revisions: Revisions,
                items: list[PreviewItem]) -> ReviewVerdict:
    """Wait for a reviewer at `gate` (the caller has written the gate status); skip if the channel turns it off."""
    logger = get_run_logger()
    cfg = production.channel.review.gate(gate)
    if not cfg.enabled:
        logger.info("Review gate %r is off for channel %s: continuing without a reviewer", gate, production.channel.id)
        return ReviewVerdict(action=ReviewAction.APPROVE, notes="gate off")
    content = content_fingerprint([item.path for item in items])
    if (earlier := recorded_approval(production.workspace, gate, content)) is not None:
        logger.info("Gate %r: this exact content was approved at %s; not asking again", gate, earlier.at)
        return ReviewVerdict(action=ReviewAction.APPROVE, notes=earlier.notes)
    shown = revisions.shown(items)
    previews = publish_previews(production, gate, revisions.round, shown)
    publish_review(production.brief.page_id, card_url, gate, revisions.round, shown, previews)
    logger.info(
        "Waiting for review at %r (Notion status %r); approve in Notion or with the Prefect resume form",
        gate,
        GATES[gate].value,
    )
    decision = suspend_flow_run(
        wait_for_input=ReviewDecision, key=f"{gate}-{revisions.round}", timeout=int(cfg.timeout_hours * 3600)
    )
    verdict = decision.verdict()
    logger.info("Reviewer decided at %r: %s %s", gate, verdict.action.value, verdict.notes)
    if verdict.action is ReviewAction.APPROVE:
        record_approval(production.workspace, gate, content, verdict.notes)
    return verdict
