"""A model's script that breaks our rules is renumbered or asked for once more, then an API failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidgen.channels import load_channels
from vidgen.config import Paths
from vidgen.errors import ErrorClass
from vidgen.ledger import CostLedger
from vidgen.models import Scene, Script
from vidgen.pipeline import Production, VideoBrief
from vidgen.providers.base import Cost, ScriptRequest, ScriptResult
from vidgen.providers.local.script import LocalScriptWriter
from vidgen.providers.registry import ProviderSet
from vidgen.script_repair import UnusableScriptError, renumbered, write_checked_script
from vidgen.statuses import NotionStatus
from vidgen.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
CALL = Cost(usd=0.01, units=100, unit="tokens")


def _script(indexes: list[int], *, narration: str = "The otters return to the kelp.") -> Script:
    scenes = [
        Scene(index=i, narration=narration, image_prompt=f"otter {i}", motion_prompt="pan", sound_cue="waves")
        for i in indexes
    ]
    return Script(title="Otters", description="d", scenes=scenes)


class ScriptedModel:
    """A script writer answering from a list, recording every request it was sent."""

    name = "model"

    def __init__(self, *answers: Script | UnusableScriptError):
        self.answers = list(answers)
        self.requests: list[ScriptRequest] = []

    def write(self, request: ScriptRequest) -> ScriptResult:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, UnusableScriptError):
            raise answer
        return ScriptResult(script=answer, cost=CALL)


def _request(scenes: int = 6) -> ScriptRequest:
    return ScriptRequest(title="Otters", topic="Sea otters", channel_name="Wild", style_preamble="film", scenes=scenes,
                         words_per_scene=20)


def _write(model: ScriptedModel, *, min_scenes: int = 3, max_scenes: int = 40) -> ScriptResult:
    return write_checked_script(model.write, _request(), provider=model.name, min_scenes=min_scenes, max_scenes=max_scenes)


# --- safe repairs -----------------------------------------------------------------------------
@pytest.mark.parametrize("indexes, order", [([1, 2, 3], [1, 2, 3]), ([0, 2, 5], [0, 2, 5]), ([3, 1, 2], [1, 2, 3])])
def test_numbering_is_renumbered_in_the_models_order(indexes, order):
    fixed = renumbered(_script(indexes))
    assert [s.index for s in fixed.scenes] == [0, 1, 2]
    assert [s.image_prompt for s in fixed.scenes] == [f"otter {i}" for i in order]


def test_a_script_numbered_from_1_is_used_after_one_call():
    model = ScriptedModel(_script([1, 2, 3, 4]))
    result = _write(model)
    assert [s.index for s in result.script.scenes] == [0, 1, 2, 3]
    assert len(model.requests) == 1 and result.cost == CALL


# --- one re-ask, with the problems stated -----------------------------------------------------
@pytest.mark.parametrize(
    "bad, problem",
    [
        (_script([]), "script has 0 scene(s); at least 3 are needed"),
        (_script(list(range(100))), "script has 100 scenes; the channel allows at most 40"),
        (_script([0, 1, 2], narration="   "), "scene 0 has no narration"),
    ],
)
def test_a_script_breaking_a_rule_is_asked_for_again_with_the_problem_stated(bad, problem):
    model = ScriptedModel(bad, _script([1, 2, 3]))
    result = _write(model)
    assert len(model.requests) == 2
    assert model.requests[0].previous_problems == []
    assert problem in model.requests[1].previous_problems
    assert [s.index for s in result.script.scenes] == [0, 1, 2]
    assert result.cost == Cost(usd=0.02, units=200, unit="tokens")  # both calls were paid


def test_an_answer_the_writer_refused_is_asked_for_again_with_its_problems():
    refused = UnusableScriptError("schema", provider="model", problems=["scenes.0.narration: too short"],
                                  answer='{"scenes": [{"narration": ""}]}', cost=CALL)
    model = ScriptedModel(refused, _script([0, 1, 2]))
    assert len(_write(model).script.scenes) == 3
    assert model.requests[1].previous_problems == ["scenes.0.narration: too short"]


def test_a_second_bad_answer_is_an_api_failure_with_the_answer_attached():
    model = ScriptedModel(_script(list(range(100))), _script(list(range(100))))
    with pytest.raises(UnusableScriptError) as caught:
        _write(model)
    error = caught.value
    assert error.kind is ErrorClass.API_FAILURE and error.notion_status is NotionStatus.ERROR_API_FAILURE
    assert error.problems == ["script has 100 scenes; the channel allows at most 40"]
    assert Script.model_validate_json(error.answer).scenes[99].image_prompt == "otter 99"
    assert "its answer: {" in str(error) and len(str(error)) < 1000
    assert error.cost == Cost(usd=0.02, units=200, unit="tokens")


def test_the_problems_are_not_part_of_the_requests_fingerprint():
    plain = _request()
    stated = plain.model_copy(update={"previous_problems": ["scene 0 has no narration"]})
    assert stated.model_dump() == plain.model_dump()
    assert stated.previous_problems == ["scene 0 has no narration"]


def test_the_local_writer_answers_a_stated_problem_with_a_rule_abiding_script():
    request = _request(scenes=4).model_copy(update={"previous_problems": ["script has 0 scene(s); at least 3 are needed"]})
    script = LocalScriptWriter().write(request).script
    assert script.problems(min_scenes=3, max_scenes=40) == []
    assert len(script.scenes) == 4


# --- the production step ----------------------------------------------------------------------
@pytest.fixture
def production(tmp_path):
    channels = load_channels(REPO / "channels")
    ledger = CostLedger.from_url(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    paths = Paths(home=tmp_path / "home", channels=REPO / "channels", workspaces=tmp_path / "ws")

    def make(model: ScriptedModel) -> Production:
        brief = VideoBrief(page_id="page-1", channel_id="wild_frontiers", title="Otters", topic="Sea otters")
        providers = ProviderSet(script=model, images=model, clips=model, narration=model, sound=model, publisher=model)
        ws = Workspace.for_entry(paths.workspaces, "wild_frontiers", "page-1").ensure()
        return Production(brief=brief, channel=channels["wild_frontiers"], workspace=ws, providers=providers,
                          ledger=ledger, paths=paths)

    return make


def test_write_script_repairs_numbering_and_records_both_calls_once(production):
    model = ScriptedModel(_script([]), _script([1, 2, 3]))
    prod = production(model)
    script = prod.write_script()
    assert [s.index for s in script.scenes] == [0, 1, 2]
    assert prod.ledger.total_for("page-1") == pytest.approx(0.02)
    assert prod.write_script() == script and len(model.requests) == 2  # cached: not asked a third time


def test_write_script_ends_as_an_api_failure_and_still_records_the_spend(production):
    model = ScriptedModel(_script([]), _script([]))
    prod = production(model)
    with pytest.raises(UnusableScriptError, match="broke the pipeline's rules twice"):
        prod.write_script()
    assert prod.ledger.total_for("page-1") == pytest.approx(0.02)
