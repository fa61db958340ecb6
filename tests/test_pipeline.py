"""The production steps' promises: nothing paid for is made twice, a broken file is never used."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from vidgen.channels import load_channels
from vidgen.config import Paths
from vidgen.errors import ApiFailureError
from vidgen.ledger import CostLedger
from vidgen.models import Cost, Scene, Script, WordTiming
from vidgen.pipeline import Production, VideoBrief, content_fingerprint, record_approval, recorded_approval
from vidgen.providers.base import ClipResult, ImageResult, NarrationResult, ScriptResult, SoundResult
from vidgen.providers.registry import ProviderSet
from vidgen.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent


class Counting:
    """Fake paid providers: each call is counted and costs money, so double spending shows."""

    name = "fake"

    def __init__(self, scenes: int = 3):
        self.calls: Counter[str] = Counter()
        self.scenes = scenes

    def write(self, request):
        self.calls["script"] += 1
        scenes = [
            Scene(index=i, narration=f"Scene {i} words here.", image_prompt=f"prompt {i}", motion_prompt="pan left", sound_cue="wind")
            for i in range(self.scenes)
        ]
        return ScriptResult(script=Script(title=request.title, description="d", scenes=scenes), cost=Cost(usd=0.01, units=100, unit="tokens"))

    def generate(self, request):
        self.calls[f"image:{request.prompt}"] += 1
        request.out_path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 36), (request.seed % 255, 80, 120)).save(request.out_path)
        return ImageResult(path=request.out_path, width=64, height=36, cost=Cost(usd=0.039, units=1, unit="image"))

    def animate(self, request):
        self.calls[f"clip:{request.image_path.name}"] += 1
        request.out_path.write_bytes(b"clip-" + request.image_path.name.encode())
        return ClipResult(path=request.out_path, duration_s=request.duration_s, cost=Cost(usd=0.13, units=1, unit="clip"))

    def narrate(self, request):
        self.calls[f"narration:{request.text}"] += 1
        request.out_path.write_bytes(b"RIFF-fake-" + request.text.encode())
        words = [WordTiming(word=w, start_s=i * 0.3, end_s=i * 0.3 + 0.25) for i, w in enumerate(request.text.split())]
        return NarrationResult(path=request.out_path, duration_s=1.2, words=words, cost=Cost(usd=0.002, units=len(request.text), unit="characters"))

    def design(self, request):
        self.calls[f"sound:{request.cue}:{request.seed}"] += 1
        request.out_path.write_bytes(b"sfx")
        return SoundResult(path=request.out_path, duration_s=request.duration_s, cost=Cost(usd=0.002, units=1, unit="generation"))


@pytest.fixture
def make_production(tmp_path):
    channels = load_channels(REPO / "channels")
    ledger = CostLedger.from_url(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    paths = Paths(home=tmp_path / "home", channels=REPO / "channels", workspaces=tmp_path / "ws")

    def make(fake: Counting, page_id: str = "page-1") -> Production:
        brief = VideoBrief(page_id=page_id, channel_id="wild_frontiers", title="Otters", topic="Sea otters")
        providers = ProviderSet(script=fake, images=fake, clips=fake, narration=fake, sound=fake, publisher=fake)
        ws = Workspace.for_entry(paths.workspaces, "wild_frontiers", page_id).ensure()
        return Production(brief=brief, channel=channels["wild_frontiers"], workspace=ws, providers=providers, ledger=ledger, paths=paths)

    return make


def _run_all(prod: Production):
    script = prod.write_script()
    images = [prod.make_image(s) for s in script.scenes]
    frames = [prod.make_composite(s, i) for s, i in zip(script.scenes, images)]
    clips = [prod.make_clip(s, f) for s, f in zip(script.scenes, frames)]
    voice = [prod.make_narration(s) for s in script.scenes]
    sounds = [prod.make_sound(s, v.duration_s + 1) for s, v in zip(script.scenes, voice)]
    return script, images, frames, clips, voice, sounds


def test_a_second_run_makes_nothing_and_pays_nothing(make_production):
    fake = Counting()
    first = _run_all(make_production(fake))
    assert sum(fake.calls.values()) == 1 + 3 * 4
    paid_once = make_production(fake).total_cost()

    again = Counting()
    second = _run_all(make_production(again))
    assert again.calls == Counter(), "a re-run must be served from the workspace manifest"
    assert [str(p) for p in second[3]] == [str(p) for p in first[3]]
    assert second[4][0].words == first[4][0].words  # narrator timings come back from the manifest
    assert make_production(again).total_cost() == paid_once == pytest.approx(0.01 + 3 * (0.039 + 0.13 + 0.002 + 0.002))


def test_every_call_is_in_the_audit_trail_once(make_production):
    prod = make_production(Counting())
    _run_all(prod)
    _run_all(prod)
    keys = Counter(c["key"] for c in prod.calls())
    assert set(keys.values()) == {1}
    assert {k.split("/")[0] for k in keys} == {"script", "image", "clip", "narration", "sound"}


def test_a_corrupt_or_missing_file_is_made_again_never_used(make_production):
    fake = Counting()
    prod = make_production(fake)
    _, images, _, clips, _, _ = _run_all(prod)
    clips[1].write_bytes(b"truncated")  # corrupt
    images[2].unlink()  # missing
    fake.calls.clear()
    _run_all(prod)
    # the remade image is byte-identical, so its frame and clip (keyed by content) stay valid
    assert fake.calls == Counter({"clip:frame_01.png": 1, "image:prompt 2": 1})


def test_a_redo_revision_makes_only_that_asset(make_production):
    fake = Counting()
    prod = make_production(fake)
    script = _run_all(prod)[0]
    fake.calls.clear()
    redone = prod.make_image(script.scenes[1], revision=1)
    assert redone.name == "scene_01_r1.png"
    assert fake.calls == Counter({"image:prompt 1": 1})


@pytest.mark.parametrize("scenes, reason", [(0, "at least 3"), (500, "at most 40")])
def test_an_empty_or_absurd_script_is_refused(make_production, scenes, reason):
    fake = Counting(scenes=scenes)
    prod = make_production(fake)
    with pytest.raises(ApiFailureError, match=reason):  # the model's fault, after asking it once more
        prod.write_script()
    assert fake.calls["script"] == 2


def test_approvals_are_remembered_only_for_the_same_content(make_production, tmp_path):
    prod = make_production(Counting())
    images = _run_all(prod)[1]
    content = content_fingerprint(images)
    record_approval(prod.workspace, "assets", content, "fine")
    assert recorded_approval(prod.workspace, "assets", content).notes == "fine"
    images[0].write_bytes(images[1].read_bytes())
    assert recorded_approval(prod.workspace, "assets", content_fingerprint(images)) is None


def test_a_video_stops_at_its_channel_budget(make_production):
    from vidgen.errors import NeedsReviewError

    fake = Counting()
    prod = make_production(fake)
    prod.channel = prod.channel.model_copy(update={"budget": prod.channel.budget.model_copy(update={"max_usd_per_video": 0.045})})
    script = prod.write_script()
    prod.make_image(script.scenes[0])  # $0.01 spent before it: allowed; $0.049 after
    with pytest.raises(NeedsReviewError, match="budget of \\$0.04"):
        prod.make_image(script.scenes[1])  # the budget is reached: no new paid call
    assert fake.calls["image:prompt 1"] == 0
