"""The Notion status board: its 26 options and the legal moves between them.

The table is the one in `shared/seeds/story-2.3-notion-entries.md` (sections 1.2 and 6.4). Notion is
the user's control panel, so a status is a promise to a person: the transition table exists so that
no code path can show them a move that makes no sense (e.g. "Upload Complete" back to "Assets Ready").
"""

from __future__ import annotations

from enum import StrEnum


class NotionStatus(StrEnum):
    """The 26 options of the Notion `Status` select, in workflow (board column) order."""

    DRAFT = "Draft"
    READY_FOR_PLANNING = "Ready for Planning"
    QUEUED = "Queued"
    PROCESSING = "Processing"
    ASSETS_GENERATING = "Assets Generating"
    ASSETS_READY = "Assets Ready"
    COMPOSITES_CREATING = "Composites Creating"
    COMPOSITES_READY = "Composites Ready"
    VIDEOS_GENERATING = "Videos Generating"
    VIDEOS_READY = "Videos Ready"
    AUDIO_GENERATING = "Audio Generating"
    AUDIO_READY = "Audio Ready"
    SFX_GENERATING = "SFX Generating"
    SFX_READY = "SFX Ready"
    ASSEMBLING_VIDEO = "Assembling Video"
    READY_FOR_REVIEW = "Ready for Review"
    UNDER_REVIEW = "Under Review"
    REVIEW_APPROVED = "Review Approved"
    REVIEW_REJECTED = "Review Rejected"
    UPLOADING = "Uploading"
    UPLOAD_COMPLETE = "Upload Complete"
    ERROR_INVALID_INPUT = "Error: Invalid Input"
    ERROR_API_FAILURE = "Error: API Failure"
    ERROR_RETRIABLE = "Error: Retriable"
    ERROR_MANUAL_REVIEW = "Error: Manual Review"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, value: str | None) -> NotionStatus | None:
        """The status named `value`, or None when Notion holds something that is not one of the 26."""
        try:
            return cls(value) if value is not None else None
        except ValueError:
            return None


S = NotionStatus

ERROR_STATUSES: frozenset[NotionStatus] = frozenset(
    {S.ERROR_INVALID_INPUT, S.ERROR_API_FAILURE, S.ERROR_RETRIABLE, S.ERROR_MANUAL_REVIEW}
)

# The pipeline's forward path, from the moment a run takes an entry to the published video.
PIPELINE: tuple[NotionStatus, ...] = (
    S.PROCESSING,
    S.ASSETS_GENERATING,
    S.ASSETS_READY,
    S.COMPOSITES_CREATING,
    S.COMPOSITES_READY,
    S.VIDEOS_GENERATING,
    S.VIDEOS_READY,
    S.AUDIO_GENERATING,
    S.AUDIO_READY,
    S.SFX_GENERATING,
    S.SFX_READY,
    S.ASSEMBLING_VIDEO,
    S.READY_FOR_REVIEW,
    S.UNDER_REVIEW,
    S.REVIEW_APPROVED,
    S.UPLOADING,
    S.UPLOAD_COMPLETE,
)

# Review gates: the status a run waits in, and the status a redo of that gate's items returns to.
GATES: dict[str, NotionStatus] = {
    "assets": S.ASSETS_READY,
    "videos": S.VIDEOS_READY,
    "audio": S.AUDIO_READY,
    "final": S.READY_FOR_REVIEW,
}
GATE_REDO: dict[NotionStatus, NotionStatus] = {
    S.ASSETS_READY: S.ASSETS_GENERATING,
    S.VIDEOS_READY: S.VIDEOS_GENERATING,
    S.AUDIO_READY: S.AUDIO_GENERATING,
    S.READY_FOR_REVIEW: S.ASSEMBLING_VIDEO,
    S.UNDER_REVIEW: S.ASSEMBLING_VIDEO,
}
REVIEW_STATUSES: frozenset[NotionStatus] = frozenset({*GATES.values(), S.UNDER_REVIEW})


def _build_transitions() -> dict[NotionStatus, frozenset[NotionStatus]]:
    moves: dict[NotionStatus, set[NotionStatus]] = {s: set() for s in NotionStatus}
    # A person plans and queues; the poller sends invalid entries back to Draft.
    moves[S.DRAFT] |= {S.READY_FOR_PLANNING, S.QUEUED}
    moves[S.READY_FOR_PLANNING] |= {S.DRAFT, S.QUEUED}
    moves[S.QUEUED] |= {S.DRAFT, S.PROCESSING}
    # A card a person re-queued while its run is busy is put back at the status the run is at
    # (the poller's `return_to_run`): any step a live run can show, never Upload Complete.
    moves[S.QUEUED] |= set(PIPELINE[:-1])
    # Forward along the pipeline; a gate that a channel turns off is skipped, so any later step is legal.
    for i, status in enumerate(PIPELINE):
        moves[status] |= set(PIPELINE[i + 1 :])
        moves[status] |= ERROR_STATUSES
    # A gate can be rejected, or send its items back to be made again.
    for gate, redo in GATE_REDO.items():
        moves[gate] |= {S.REVIEW_REJECTED, redo}
    # Errors and rejections are re-queued by a person (or archived); a retriable error resumes the pipeline.
    for status in (*ERROR_STATUSES, S.REVIEW_REJECTED):
        moves[status] |= {S.QUEUED, S.DRAFT}
    moves[S.ERROR_RETRIABLE] |= set(PIPELINE)
    # Anything may be archived, and an archived entry may be brought back as a draft.
    for status in NotionStatus:
        if status is not S.ARCHIVED:
            moves[status].add(S.ARCHIVED)
    moves[S.ARCHIVED].add(S.DRAFT)
    for status in NotionStatus:
        moves[status].discard(status)
    return {s: frozenset(t) for s, t in moves.items()}


TRANSITIONS: dict[NotionStatus, frozenset[NotionStatus]] = _build_transitions()


class IllegalTransition(ValueError):
    """A status change the board does not allow."""

    def __init__(self, old: NotionStatus, new: NotionStatus):
        self.old, self.new = old, new
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "nothing"
        super().__init__(f"Cannot move an entry from {old.value!r} to {new.value!r}; from {old.value!r} it may go to: {allowed}")


def check_transition(old: NotionStatus, new: NotionStatus) -> None:
    """Raise IllegalTransition unless `old -> new` is a legal move (staying put is always legal)."""
    if old != new and new not in TRANSITIONS[old]:
        raise IllegalTransition(old, new)
