"""The produce-video flow's logic, in seconds and without a server: gates, redos, rejections.

The flow's stage functions run as written; what they call out to (the step tasks, the card writes,
the review gate) is replaced by recorders, so each test says what a reviewer's decision does to the
calls the run makes. The same functions run against real servers in test_review_gates.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

import flows.produce_video as pv
from flows.review import Revisions
from vidgen.models import Chapter, ReviewAction, ReviewVerdict, Scene, Script
from vidgen.pipeline import AssembledVideo, NarrationTrack
from vidgen.statuses import NotionStatus as S

SCENES = [
    Scene(index=i, narration=f"words {i}", image_prompt=f"picture {i}", motion_prompt="pan", sound_cue="wind")
    for i in range(3)
]
SCRIPT = Script(title="T", description="D", scenes=SCENES)


class Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class StepTask:
    """Stands in for a Prefect task: records (scene, revision) per call, returns a file named after them."""

    def __init__(self, name: str, calls: list):
        self.name, self.calls = name, calls

    def _one(self, scene: Scene, *rest):
        revision = rest[-1] if rest and isinstance(rest[-1], int) else 0
        self.calls.append((self.name, scene.index, revision))
        if self.name == "narrate-scene":
            return NarrationTrack(index=scene.index, path=Path(f"n{scene.index}_r{revision}.wav"), duration_s=2.0, words=[])
        return Path(f"{self.name}{scene.index}_r{revision}")

    def map(self, _production, scenes, *columns):
        return Done([self._one(scene, *(c[i] for c in columns)) for i, scene in enumerate(scenes)])


class Recorder:
    def __init__(self, monkeypatch, decisions: dict[str, list[ReviewVerdict]]):
        self.calls: list[tuple] = []
        self.cards: list[tuple] = []
        self.gates: list[tuple[str, int]] = []
        self.shown: list[tuple] = []
        self.decisions = decisions
        for name in ("generate_image", "compose_frame", "animate_clip", "narrate_scene", "design_sound"):
            monkeypatch.setattr(pv, name, StepTask(name.replace("_", "-"), self.calls))
        monkeypatch.setattr(pv, "update_card", self.update_card)
        monkeypatch.setattr(pv, "review_gate", self.review_gate)
        monkeypatch.setattr(pv, "get_run_logger", lambda: logging.getLogger("test"))
        monkeypatch.setattr(pv, "write_script", lambda production: SCRIPT)
        monkeypatch.setattr(pv, "assemble_video", self.assemble)
        monkeypatch.setattr(pv, "publish_video", lambda production, script, film: SimpleNamespace(url="file:///v.mp4", warnings=[]))
        monkeypatch.setattr(pv, "report_cost", lambda production, step: 0.0)
        monkeypatch.setattr(pv, "link_notion_page", lambda card: None)
        monkeypatch.setattr(pv, "flow_run_url", lambda: None)

    def update_card(self, card, status=None, round=1, **fields):
        self.cards.append((status, round, fields))
        return card

    def review_gate(self, production, card_url, gate, revisions, items):
        self.gates.append((gate, revisions.round))
        self.shown.append((gate, revisions.round, [i.scene_number for i in revisions.shown(items)]))
        pending = self.decisions.get(gate, [])
        return pending.pop(0) if pending else ReviewVerdict(action=ReviewAction.APPROVE)

    def assemble(self, production, script, clips, narration, sounds):
        self.calls.append(("assemble", tuple(str(c) for c in clips)))
        return AssembledVideo(video=Path("v.mp4"), captions=Path("v.srt"), thumbnail=Path("v.jpg"), duration_s=30,
                              chapters=[Chapter(start_s=0, title="one")])

    def made(self, step: str) -> list[tuple[int, int]]:
        return [(scene, revision) for name, *rest in self.calls if name == step for scene, revision in [rest]]


def video_run() -> pv.VideoRun:
    production = SimpleNamespace(
        workspace=SimpleNamespace(root=Path("/ws")), brief=SimpleNamespace(title="T", channel_id="c"),
        total_cost=lambda: 0.0, channel=SimpleNamespace(budget=SimpleNamespace(max_usd_per_video=5.0)),
    )
    card = SimpleNamespace(notion_status=S.PROCESSING, status="Processing", page_id="p", url="https://notion.so/p")
    return pv.VideoRun(card, production)


def redo(*scenes: int, notes: str = "again") -> ReviewVerdict:
    return ReviewVerdict(action=ReviewAction.REJECT, notes=notes, redo=list(scenes))


def test_approved_everywhere_makes_each_asset_once_and_walks_the_board_in_order(monkeypatch):
    rec = Recorder(monkeypatch, {})
    assert pv.make_video(video_run()) == "file:///v.mp4"
    for step in ("generate-image", "compose-frame", "narrate-scene", "design-sound"):
        assert rec.made(step) == [(0, 0), (1, 0), (2, 0)], step
    # the final gate asks animate-clip again with the approved revisions: the run's cache serves those
    assert rec.made("animate-clip") == [(0, 0), (1, 0), (2, 0)] * 2
    assert rec.gates == [("assets", 1), ("videos", 1), ("audio", 1), ("final", 1)]
    statuses = [status for status, _round, _fields in rec.cards if status is not None]
    assert statuses == [
        S.ASSETS_GENERATING, S.ASSETS_GENERATING, S.ASSETS_READY, S.COMPOSITES_CREATING, S.COMPOSITES_READY,
        S.VIDEOS_GENERATING, S.VIDEOS_READY, S.AUDIO_GENERATING, S.AUDIO_READY, S.SFX_GENERATING, S.SFX_READY,
        S.ASSEMBLING_VIDEO, S.READY_FOR_REVIEW, S.REVIEW_APPROVED, S.UPLOADING, S.UPLOAD_COMPLETE,
    ]


def test_a_redo_makes_just_the_named_scenes_again_and_returns_to_the_same_gate(monkeypatch):
    rec = Recorder(monkeypatch, {"assets": [redo(2)], "audio": [redo(1, 3), redo(3)]})
    pv.make_video(video_run())
    assert rec.made("generate-image") == [(0, 0), (1, 0), (2, 0), (0, 0), (1, 1), (2, 0)]
    assert rec.made("narrate-scene")[3:] == [(0, 1), (1, 0), (2, 1), (0, 1), (1, 0), (2, 2)]
    assert [g for g in rec.gates if g[0] in ("assets", "audio")] == [("assets", 1), ("assets", 2), ("audio", 1), ("audio", 2), ("audio", 3)]
    # each round writes its statuses under its own round, so a redo shows on the board again
    assert (S.ASSETS_GENERATING, 2, {}) in rec.cards and (S.ASSETS_READY, 2, {}) in rec.cards
    # a redo round shows the reviewer just the scenes made again
    assert [s for s in rec.shown if s[0] == "audio"] == [("audio", 1, [1, 2, 3]), ("audio", 2, [1, 3]), ("audio", 3, [3])]
    # composites are made from the approved images only
    assert [c for c in rec.calls if c[0] == "compose-frame"] == [("compose-frame", 0, 0), ("compose-frame", 1, 0), ("compose-frame", 2, 0)]


def test_a_redo_at_the_final_review_animates_the_scene_past_its_approved_revision(monkeypatch):
    rec = Recorder(monkeypatch, {"videos": [redo(2)], "final": [redo(2)]})
    pv.make_video(video_run())
    clips = rec.made("animate-clip")
    assert clips[:6] == [(0, 0), (1, 0), (2, 0), (0, 0), (1, 1), (2, 0)]  # videos gate: scene 2 once more
    assert clips[6:9] == [(0, 0), (1, 1), (2, 0)]  # final round 1: the approved clips
    assert clips[9:] == [(0, 0), (1, 2), (2, 0)]  # final round 2: scene 2 again, a revision never made before
    assemblies = [c[1] for c in rec.calls if c[0] == "assemble"]
    assert assemblies[-1] == ("animate-clip0_r0", "animate-clip1_r2", "animate-clip2_r0")


def test_a_rejection_without_scenes_ends_the_video(monkeypatch):
    rec = Recorder(monkeypatch, {"videos": [ReviewVerdict(action=ReviewAction.REJECT, notes="off topic")]})
    with pytest.raises(pv.ReviewRejected, match="Rejected at the videos review: off topic"):
        pv.make_video(video_run())
    assert ("audio", 1) not in rec.gates and not rec.made("narrate-scene")


def test_an_invalid_redo_is_written_on_the_card_and_the_gate_asks_again(monkeypatch):
    rec = Recorder(monkeypatch, {"assets": [redo(7)]})
    pv.make_video(video_run())
    errors = [fields["error"] for _s, _r, fields in rec.cards if fields.get("error")]
    assert errors == ["Review at assets: scene number(s) 7 do not exist; this video has scenes 1-3. Decide again."]
    assert rec.gates[:2] == [("assets", 1), ("assets", 2)]
    assert rec.made("generate-image") == [(0, 0), (1, 0), (2, 0)] * 2  # nothing redone; round 2 is served from cache


def test_revisions_count_rounds_and_scenes():
    revisions = Revisions(3)
    revisions.redo([1, 3])
    revisions.redo([3])
    assert (revisions.round, revisions.of_scenes()) == (3, [1, 0, 2])


def test_a_gate_the_channel_turns_off_is_not_held(monkeypatch):
    from flows import review

    published = []
    monkeypatch.setattr(review, "get_run_logger", lambda: logging.getLogger("test"))
    monkeypatch.setattr(review, "publish_review", lambda *a: published.append(a))
    monkeypatch.setattr(review, "suspend_flow_run", lambda **kw: pytest.fail("a gate that is off must not suspend"))
    channel = SimpleNamespace(id="c", review=SimpleNamespace(gate=lambda name: SimpleNamespace(enabled=False)))
    verdict = review.review_gate(SimpleNamespace(channel=channel), None, "assets", Revisions(1), [])
    assert verdict.action is ReviewAction.APPROVE and verdict.notes == "gate off" and not published


def test_the_budget_alert_is_raised_at_the_gate_whose_stage_crossed_80_percent(monkeypatch):
    import blocks.automations as automations

    emitted = []
    monkeypatch.setattr(automations, "emit_event", lambda name, **kw: emitted.append((name, kw["resource"]["vidgen.step"])))
    rec = Recorder(monkeypatch, {})
    video = video_run()
    spend = iter([1.0, 3.0, 4.5, 4.6])  # after images, clips, narration, the final cut; the budget is $5
    video.production.total_cost = lambda: next(spend)
    pv.make_video(video)
    assert emitted == [(automations.COST_THRESHOLD_EVENT, "Audio Ready")]
    assert rec.gates[-1] == ("final", 1)


def test_a_spent_quota_schedules_the_videos_next_run_for_the_reset_and_says_so_on_the_card(monkeypatch):
    from datetime import datetime, timezone

    import prefect.deployments

    from tasks.retry import deferral_of
    from vidgen.errors import RetriableError

    rec = Recorder(monkeypatch, {})
    scheduled = []
    monkeypatch.setattr(prefect.deployments, "run_deployment", lambda name, **kw: scheduled.append((name, kw)) or SimpleNamespace(name="later"))
    monkeypatch.setattr(pv, "emit_card_error", lambda **kw: None)
    reset = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    spent = RetriableError("quota", provider="gemini", retry_after=20 * 3600)
    spent.retry_at = reset
    deferral = deferral_of(spent, now=datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc))
    assert deferral is not None and deferral.until == reset
    video = video_run()
    video.production.brief = SimpleNamespace(title="T", channel_id="c", page_id="p")
    state = pv.defer(video, deferral)
    [(name, kw)] = scheduled
    assert name == "produce-video/produce-video" and kw["scheduled_time"] == reset and kw["timeout"] == 0
    assert "page:p" in kw["tags"] and kw["parameters"] == {"page_id": "p", "channel_id": "c"}
    status, _round, fields = rec.cards[-1]
    assert status is S.ERROR_RETRIABLE and "2026-12-02 08:00 UTC" in fields["error"] and "run later" in fields["error"]
    assert state.is_completed()


def test_a_process_that_lost_its_claim_stops_before_the_steps_card_write(monkeypatch):
    """Every step starts with its card write, which first confirms this process still holds the video."""
    from prefect.exceptions import Abort

    rec = Recorder(monkeypatch, {})

    class TakenOver:
        def confirm(self):
            raise Abort("Another process took this video over")

    video = video_run()
    video.claim = TakenOver()
    with pytest.raises(Abort):
        pv.make_video(video)
    assert rec.cards == [] and rec.calls == []
