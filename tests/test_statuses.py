"""The 26 board statuses and which moves between them are legal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vidgen.statuses import TRANSITIONS, IllegalTransition, NotionStatus, check_transition

SEED = Path(__file__).resolve().parents[1].parent / "shared" / "seeds" / "story-2.3-notion-entries.md"

# A literal copy of the statuses in the seed's section 6.4 table, so the contract is checked even without the seed.
EXPECTED_STATUSES: list[str] = [
    "Draft",
    "Ready for Planning",
    "Queued",
    "Processing",
    "Assets Generating",
    "Assets Ready",
    "Composites Creating",
    "Composites Ready",
    "Videos Generating",
    "Videos Ready",
    "Audio Generating",
    "Audio Ready",
    "SFX Generating",
    "SFX Ready",
    "Assembling Video",
    "Ready for Review",
    "Under Review",
    "Review Approved",
    "Review Rejected",
    "Uploading",
    "Upload Complete",
    "Error: Invalid Input",
    "Error: API Failure",
    "Error: Retriable",
    "Error: Manual Review",
    "Archived",
]


def _seed_section_64_statuses(text: str) -> list[str]:
    section = text.split("### 6.4", 1)[1].split("\n### ", 1)[0]
    table = section.split("NOTION_TO_INTERNAL_STATUS = {", 1)[1].split("}", 1)[0]
    return re.findall(r'"([^"]+)":\s*"[^"]+"', table)


def test_enum_has_the_26_options_in_workflow_order() -> None:
    assert [s.value for s in NotionStatus] == EXPECTED_STATUSES
    assert len(NotionStatus) == 26


def test_options_match_the_seed_document_row_by_row() -> None:
    if not SEED.is_file():
        pytest.skip(f"seed document not present at {SEED} (only the literal copy is checked)")
    assert _seed_section_64_statuses(SEED.read_text(encoding="utf-8")) == EXPECTED_STATUSES


def test_parse_unknown_or_missing_status_is_none() -> None:
    assert NotionStatus.parse("Queued") is NotionStatus.QUEUED
    assert NotionStatus.parse("queued") is None
    assert NotionStatus.parse("Rendering") is None
    assert NotionStatus.parse(None) is None


S = NotionStatus

LEGAL = [
    (S.DRAFT, S.QUEUED),
    (S.DRAFT, S.READY_FOR_PLANNING),
    (S.READY_FOR_PLANNING, S.QUEUED),
    (S.QUEUED, S.DRAFT),  # the poller refuses an invalid entry
    (S.QUEUED, S.PROCESSING),
    (S.PROCESSING, S.ASSETS_GENERATING),
    (S.ASSETS_GENERATING, S.ASSETS_READY),
    (S.ASSETS_READY, S.ASSETS_GENERATING),  # redo at the assets gate
    (S.ASSETS_READY, S.REVIEW_REJECTED),
    (S.ASSETS_GENERATING, S.VIDEOS_GENERATING),  # a gate turned off is skipped
    (S.READY_FOR_REVIEW, S.ASSEMBLING_VIDEO),  # redo at the final gate
    (S.UNDER_REVIEW, S.REVIEW_APPROVED),
    (S.REVIEW_APPROVED, S.UPLOADING),
    (S.UPLOADING, S.UPLOAD_COMPLETE),
    (S.VIDEOS_GENERATING, S.ERROR_RETRIABLE),
    (S.ERROR_RETRIABLE, S.VIDEOS_GENERATING),  # a retriable error resumes
    (S.ERROR_API_FAILURE, S.QUEUED),  # a person re-queues
    (S.REVIEW_REJECTED, S.QUEUED),
    (S.UPLOAD_COMPLETE, S.ARCHIVED),
    (S.ARCHIVED, S.DRAFT),
]

ILLEGAL = [
    (S.UPLOAD_COMPLETE, S.ASSETS_READY),
    (S.DRAFT, S.PROCESSING),  # a draft must be queued first
    (S.DRAFT, S.UPLOAD_COMPLETE),
    (S.QUEUED, S.UPLOAD_COMPLETE),
    (S.UPLOADING, S.ASSETS_GENERATING),
    (S.ASSEMBLING_VIDEO, S.PROCESSING),  # the pipeline never goes backwards on its own
    (S.ERROR_INVALID_INPUT, S.PROCESSING),  # only a retriable error resumes by itself
    (S.ARCHIVED, S.QUEUED),
    (S.UPLOAD_COMPLETE, S.QUEUED),
]


@pytest.mark.parametrize(("old", "new"), LEGAL)
def test_legal_moves(old: NotionStatus, new: NotionStatus) -> None:
    check_transition(old, new)
    assert new in TRANSITIONS[old]


@pytest.mark.parametrize(("old", "new"), ILLEGAL)
def test_illegal_moves_raise(old: NotionStatus, new: NotionStatus) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(old, new)
    assert info.value.old is old and info.value.new is new


def test_illegal_move_message_names_both_ends_and_the_allowed_moves() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(S.UPLOAD_COMPLETE, S.ASSETS_READY)
    message = str(info.value)
    assert message.startswith("Cannot move an entry from 'Upload Complete' to 'Assets Ready'")
    assert "it may go to: Archived" in message


def test_staying_put_is_always_legal() -> None:
    for status in NotionStatus:
        check_transition(status, status)
        assert status not in TRANSITIONS[status]


def test_every_status_can_be_archived_and_nothing_is_a_dead_end() -> None:
    for status in NotionStatus:
        assert TRANSITIONS[status], f"{status} has no way out"
        if status is not S.ARCHIVED:
            assert S.ARCHIVED in TRANSITIONS[status]
