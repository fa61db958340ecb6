"""A video through every review gate on a real Prefect server and a served deployment."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import flow_helpers as fh

pytestmark = pytest.mark.integration


@pytest.mark.timeout(1200)  # a few minutes on an idle machine; five suspends and resumes
def test_video_suspends_at_every_gate_and_resumes_from_notion_and_the_ui(stack):
    from prefect.flow_runs import resume_flow_run

    from flows.poll_notion import poll_notion
    from vidgen.media.ffmpeg import probe
    from vidgen.statuses import NotionStatus as S

    stack.start_worker()
    gateway = fh.gateway()
    entry = gateway.create_entry(
        title="Otters of the Kelp Forest", channel="Wild Frontiers", topic="Sea otters and the kelp they protect",
        story_direction="Calm, curious tone.", status=S.QUEUED,
    )
    summary = poll_notion()
    assert summary.started == [entry.title]
    run = fh.wait_paused_at(entry.page_id, S.ASSETS_READY, stack)
    assert run.name == "wild_frontiers: Otters of the Kelp Forest"  # findable in the UI by the card's title
    assert {"channel:wild_frontiers", f"page:{entry.page_id}"} <= set(run.tags)

    # never two runs for one page: while its run waits at the gate, put the card back in Queued
    # behind the pipeline's back and poll (a suspended run is a stable moment: no status write races)
    fh.force_status(entry.page_id, "Queued")
    assert poll_notion().skipped == [entry.title]
    fh.force_status(entry.page_id, S.ASSETS_READY.value)

    # gate 1 (assets): approved on the Notion page, as a reviewer does
    fh.approve_in_notion(entry.page_id)
    assert any("resumed" in line for line in poll_notion().resumed)

    # gate 2 (videos): a malformed decision is refused with the reason; the run stays suspended
    run = fh.wait_paused_at(entry.page_id, S.VIDEOS_READY, stack)
    with pytest.raises(RuntimeError, match="decision"):
        resume_flow_run(run.id, run_input={"decision": "maybe"})
    # reject with items, as the UI's resume form sends it: only scene 2's clip is made again
    resume_flow_run(run.id, run_input={"decision": "reject", "notes": "scene 2 is too dark", "redo": [2]})
    run = fh.wait_paused_at(entry.page_id, S.VIDEOS_READY, stack, round_key="videos-2")
    resume_flow_run(run.id, run_input={"decision": "approve", "notes": "better"})

    # gate 3 (audio): Notion again
    fh.wait_paused_at(entry.page_id, S.AUDIO_READY, stack)
    fh.approve_in_notion(entry.page_id)
    poll_notion()

    # gate 4 (final): the reviewer moves the card to Review Approved
    fh.wait_paused_at(entry.page_id, S.READY_FOR_REVIEW, stack)
    fh.force_status(entry.page_id, "Review Approved")
    poll_notion()

    done = fh.wait_status(entry.page_id, S.UPLOAD_COMPLETE, stack, timeout_s=240)
    assert done.video_url and done.video_url.startswith("file://")
    assert done.cost_usd == 0.0
    # the card's last write comes just before the run ends: on a loaded machine the state lags it
    final_state = fh.wait_run_state(entry.page_id, "COMPLETED", timeout_s=60).state
    assert final_state.is_completed(), final_state

    workspace = Path(done.workspace)
    calls = [json.loads(line) for line in (workspace / "calls.jsonl").read_text().splitlines()]
    per_key = Counter(c["key"] for c in calls)
    assert per_key.pop("clip/01") == 2  # the original and the one redo the reviewer asked for
    assert set(per_key.values()) == {1}, per_key  # everything else exactly once, across 5 resumes
    assert {k.split("/")[0] for k in per_key} == {"script", "image", "clip", "narration", "sound", "publish"}
    video = next((workspace / "final").glob("*.mp4"))
    info = probe(video)
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 1920, 1080)
    assert info.audio is not None and info.subtitles

    # five resumes re-executed the flow from the top: every card write ran once, the replays were cached
    card_writes = fh.task_runs(fh.run_for(entry.page_id).id, "card:")
    executed = Counter(t.name for t in card_writes if t.state.name == "Completed")
    assert executed and set(executed.values()) == {1}, executed
    assert any(t.state.name == "Cached" for t in card_writes)

    # the reviewer's previews, read back from the page through notion-client as any client would
    rounds = fh.preview_rounds(entry.page_id)
    assert list(rounds) == ["Images — round 1", "Clips — round 1", "Clips — round 2", "Narration — round 1", "Final video — round 1"]
    assert [scene for scene, _kind in rounds["Clips — round 1"]] == [1, 2, 3]
    assert rounds["Clips — round 2"] == [(2, "video")]  # a redo round shows just the scene made again
    assert {kind for _scene, kind in rounds["Final video — round 1"]} == {"video", "image"}


def test_a_decision_without_a_waiting_run_is_written_back(stack):
    from flows.poll_notion import poll_notion
    from vidgen.statuses import NotionStatus as S

    gateway = fh.gateway()
    entry = gateway.create_entry(title="Orphaned review", channel="Wild Frontiers", topic="Nothing waits for this")
    fh.force_status(entry.page_id, "Assets Ready")
    fh.approve_in_notion(entry.page_id)
    summary = poll_notion()
    assert summary.refused and "written back" in summary.refused[0]
    page = gateway.get_entry(entry.page_id)
    assert "No video run is waiting" in page.error
    assert page.review is None and page.notion_status is S.ASSETS_READY


def test_a_gate_that_times_out_ends_at_manual_review(stack, monkeypatch):
    import flows.poll_notion as poll_notion_module
    from flows.poll_notion import poll_notion
    from vidgen.statuses import NotionStatus as S

    fh.set_gate_timeout(Path(stack.env["VIDGEN_CHANNELS_DIR"]), "assets", hours=0.0004)  # ~1 second
    stack.start_worker()
    gateway = fh.gateway()
    entry = gateway.create_entry(title="Nobody reviews this", channel="Wild Frontiers", topic="Tides", status=S.QUEUED)
    poll_notion()
    fh.wait_paused_at(entry.page_id, S.ASSETS_READY, stack)
    fh.wait_run_state(entry.page_id, "FAILED", timeout_s=90)
    assert entry.title  # the run failed on the server's pause expiry; the next poll tells Notion
    monkeypatch.setattr(poll_notion_module, "SETTLE_S", 0)  # no run write can be in flight: it failed on the server
    poll_notion()
    page = gateway.get_entry(entry.page_id)
    assert page.notion_status is S.ERROR_MANUAL_REVIEW
    assert "Assets Ready" in page.error


def test_a_decision_waits_while_its_run_is_still_pausing(stack, monkeypatch):
    """Prefect marks a run Paused before it saves the review form's schema; a decision read from
    Notion in between must stay on the card for the next poll, not be refused and cleared."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.input.run_input import keyset_from_paused_state
    from prefect.states import Running, Suspended

    import flows.poll_notion as poll_notion_module
    from flows.poll_notion import apply_review, page_tag, ready_for_input
    from vidgen.models import ReviewAction, ReviewVerdict
    from vidgen.polling import ReviewRequest

    gateway = fh.gateway()
    entry = gateway.create_entry(title="Pausing right now", channel="Wild Frontiers", topic="Tide pools")
    fh.force_status(entry.page_id, "Assets Ready")
    entry = fh.approve_in_notion(entry.page_id)

    @flow(name="pausing-video")
    def pausing_video() -> None: ...

    suspended = Suspended(timeout_seconds=600, pause_key="assets-1")
    suspended.state_details.run_input_keyset = keyset = keyset_from_paused_state(suspended)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(pausing_video, tags=[page_tag(entry.page_id)])
        client.set_flow_run_state(run.id, Running(), force=True)
        client.set_flow_run_state(run.id, suspended, force=True)
        run = client.read_flow_run(run.id)
        assert run.state.is_paused() and not ready_for_input(run)

        request = ReviewRequest(entry=entry, verdict=ReviewVerdict(action=ReviewAction.APPROVE))
        assert "still pausing" in apply_review(request, "wild_frontiers")
        page = gateway.get_entry(entry.page_id)
        assert page.review == "Approve" and not page.error  # left for the next poll

    # Past the grace period the run's own save has given up (it retries for ~62 s): the poller
    # saves the same form for it and hands the decision over.
    monkeypatch.setattr(poll_notion_module, "PAUSING_GRACE_S", 0)
    outcome = apply_review(request, "wild_frontiers")
    with get_client(sync_client=True) as client:
        assert ready_for_input(client.read_flow_run(run.id)), outcome
    assert "still pausing" not in outcome
