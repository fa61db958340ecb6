"""Pydantic models that cross boundaries: a Notion entry, a script, review decisions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from vidgen.statuses import NotionStatus


class Cost(BaseModel):
    """What one call cost. Local providers cost 0.00."""

    usd: float = 0.0
    units: float = 0.0
    unit: str = ""  # "image", "clip", "characters", "tokens", "upload"


class WordTiming(BaseModel):
    """When one narrated word is spoken, in seconds from the start of its audio (drives captions)."""

    word: str
    start_s: float
    end_s: float


class Priority(StrEnum):
    LOW = "Low"
    NORMAL = "Normal"
    HIGH = "High"

    @property
    def rank(self) -> int:
        """Sort key: High first."""
        return {"High": 0, "Normal": 1, "Low": 2}[self.value]


TITLE_MAX = 255  # the seed's limit, and what fits a YouTube title with room to spare
TOPIC_MAX = 1000
STORY_DIRECTION_MAX = 5000  # beyond this it is a script, not a direction; the writer's prompt has a budget
REVIEW_NOTES_MAX = 2000  # one Notion rich-text piece; a reviewer's "redo: …" is read from the first 2,000 characters
ERROR_MAX = 200_000  # Notion's own bound (100 pieces of 2,000): the pipeline writes up to it and compares what it reads back
NARRATION_MAX = 2000  # characters a scene's narration may have: ~300 words, far beyond any channel's words_per_scene
OVERLONG_READ_FACTOR = 4  # a too-long title, topic or direction is kept up to 4x its maximum: enough to say how much to cut
# What a page's free text is cut to when it is read, before anything parses it.
READ_LIMITS = {
    "title": TITLE_MAX * OVERLONG_READ_FACTOR,
    "topic": TOPIC_MAX * OVERLONG_READ_FACTOR,
    "story_direction": STORY_DIRECTION_MAX * OVERLONG_READ_FACTOR,
    "review_notes": REVIEW_NOTES_MAX,
}


def cut_text(text: str, limit: int) -> str:
    """`text` cut to `limit` characters: what a page holds is bounded before anything parses it."""
    return text if len(text) <= limit else text[:limit]


class VideoEntry(BaseModel):
    """One row of the "Video Pipeline" Notion database, as read (raw values, not yet validated).

    Fields keep what Notion holds, even when it is wrong (an unknown status, an empty topic), because
    validation must be able to say exactly what is wrong and write it back to the page. Free text is
    bounded, though, before anything reads it: a page may hold 200,000 characters in any text
    column, and one such page must not stall a poll over every channel. Review Notes and Error are
    cut to their maxima; title, topic and story direction to `OVERLONG_READ_FACTOR` times theirs,
    so validation can still say how much too long they are.
    """

    model_config = ConfigDict(frozen=True)

    page_id: str
    title: str = ""
    channel: str | None = None  # the Channel select's option name
    topic: str = ""
    story_direction: str = ""
    status: str = NotionStatus.DRAFT.value
    priority: str | None = None
    created_time: datetime | None = None
    last_edited_time: datetime | None = None
    error: str = ""
    cost_usd: float | None = None
    video_url: str | None = None
    workspace: str | None = None
    run_url: str | None = None
    review: str | None = None  # "Approve" / "Reject" chosen by a reviewer at a gate
    review_notes: str = ""
    url: str | None = None  # the page's own address
    archived: bool = False
    data_source_id: str | None = None  # the database table the page belongs to (None: not in one)

    @field_validator("title", "topic", "story_direction", "review_notes")
    @classmethod
    def _cut_free_text(cls, value: str, info: ValidationInfo) -> str:
        return cut_text(value, READ_LIMITS[info.field_name])

    @field_validator("error")
    @classmethod
    def _cut_error(cls, value: str) -> str:
        return cut_text(value, ERROR_MAX)

    @property
    def notion_status(self) -> NotionStatus | None:
        return NotionStatus.parse(self.status)

    @property
    def priority_value(self) -> Priority:
        try:
            return Priority(self.priority) if self.priority else Priority.NORMAL
        except ValueError:
            return Priority.NORMAL


class Scene(BaseModel):
    """One beat of the film: what is said, what is seen, how it moves, what it sounds like."""

    index: int = Field(ge=0)
    narration: str = Field(min_length=1)
    image_prompt: str = Field(min_length=1)
    motion_prompt: str = Field(min_length=1)
    sound_cue: str = Field(min_length=1)


class Chapter(BaseModel):
    start_s: float
    title: str


class Script(BaseModel):
    """A structured script; local and Gemini writers fill exactly this."""

    title: str
    description: str
    tags: list[str] = Field(default_factory=list)
    scenes: list[Scene]

    def problems(self, *, min_scenes: int, max_scenes: int) -> list[str]:
        """Why this script cannot be produced (empty list when it can)."""
        found: list[str] = []
        n = len(self.scenes)
        if n < min_scenes:
            found.append(f"script has {n} scene(s); at least {min_scenes} are needed")
        if n > max_scenes:
            found.append(f"script has {n} scenes; the channel allows at most {max_scenes}")
        if [s.index for s in self.scenes] != list(range(n)):
            found.append("scene indexes must run 0, 1, 2, ... in order")
        for s in self.scenes:
            if not s.narration.strip():
                found.append(f"scene {s.index} has no narration")
            elif len(s.narration) > NARRATION_MAX:
                # a runaway answer would become minutes of speech and captions for one image
                found.append(f"scene {s.index}'s narration is {len(s.narration)} characters; at most {NARRATION_MAX}")
        return found


class ReviewAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class ReviewVerdict(BaseModel):
    """A reviewer's decision at a gate, wherever it came from (Prefect form or Notion page).

    `redo` names scenes to make again by the number a person sees (1 = first scene); a rejection
    without items ends the video at Review Rejected.
    """

    action: ReviewAction
    notes: str = ""
    redo: list[int] = Field(default_factory=list)  # 1-based scene numbers
