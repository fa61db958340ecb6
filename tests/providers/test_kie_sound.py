"""ElevenLabs' sound-effect model through KIE.ai, against HTTP-level mocks of the documented API.

Fixtures follow:
- createTask: https://docs.kie.ai/market/elevenlabs/sound-effect-v2 (POST
  https://api.kie.ai/api/v1/jobs/createTask, Bearer auth, {"model": "elevenlabs/sound-effect-v2",
  "callBackUrl"?, "input": {"text", "loop", "duration_seconds", "prompt_influence", "output_format"}};
  200 example {"code": 200, "msg": "success", "data": {"taskId": ...}})
- recordInfo: https://docs.kie.ai/market/common/get-task-detail (data.state, data.resultJson as a JSON
  string with resultUrls, failCode/failMsg on fail)
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx
from kie_api_fixtures import CREATE, RECORD, created, market_client
from kie_api_fixtures import record as kie_record
from pydantic import SecretStr

from vidgen.channels import load_channel
from vidgen.errors import ApiFailureError, InvalidInputError, RetriableError
from vidgen.media.ffmpeg import run_ffmpeg
from vidgen.providers import registry
from vidgen.providers.base import SoundDesigner, SoundRequest
from vidgen.providers.kie_sound import KieSoundDesigner
from vidgen.providers.settings import ProviderSettings

RESULT_URL = "https://tempfile.aiquickdraw.com/s/sfx-1.mp3"
TASK = "281e5b0f39b9a6c2d4e8f1a3b5c7d9e0"
DOC_CREATE_OK = created(TASK)


def record(state: str, **fields) -> dict:
    return kie_record(TASK, "elevenlabs/sound-effect-v2", state, **fields)


@pytest.fixture(scope="session")
def mp3(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("sfx") / "sfx.mp3"
    run_ffmpeg(["-f", "lavfi", "-i", "anoisesrc=color=brown:duration=1", "-c:a", "libmp3lame", str(path)])
    return path.read_bytes()


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_mocked=True)


@pytest.fixture
def designer(router) -> KieSoundDesigner:
    return KieSoundDesigner(market_client(router, "sound effect"), timeout_s=60)


def test_it_is_a_sound_designer_named_after_the_channel_yaml_value(designer):
    assert isinstance(designer, SoundDesigner) and designer.name == "kie"


def test_a_sound_is_one_documented_task_waited_on_and_downloaded_as_mp3(router, designer, mp3, tmp_path):
    create = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    router.get(RECORD).mock(side_effect=[httpx.Response(200, json=record("generating")),
                                         httpx.Response(200, json=record("success", urls=[RESULT_URL]))])
    download = router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=mp3))

    result = designer.design(SoundRequest(cue="  wind through a canyon ", duration_s=6.25,
                                          out_path=tmp_path / "sfx" / "sfx_00.wav"))

    sent = json.loads(create.calls.last.request.content)
    assert create.calls.last.request.headers["authorization"] == "Bearer kie-test-key"
    assert sent == {"model": "elevenlabs/sound-effect-v2", "input": {
        "text": "wind through a canyon", "loop": False, "duration_seconds": 6.25, "prompt_influence": 0.3,
        "output_format": "mp3_44100_128"}}
    assert "authorization" not in download.calls.last.request.headers  # the result host never sees the key
    assert result.path == tmp_path / "sfx" / "sfx_00.mp3" and result.path.read_bytes() == mp3
    assert result.duration_s == 6.25 and result.cost.usd == pytest.approx(0.002)
    assert not list(result.path.parent.glob(".*task.json")), "the note goes once the sound is on disk"


def test_a_scene_longer_than_the_model_makes_gets_a_looping_sound(router, designer, mp3, tmp_path):
    create = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    router.get(RECORD).mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=mp3))

    designer.design(SoundRequest(cue="rain", duration_s=28, out_path=tmp_path / "s.wav"))

    sent = json.loads(create.calls.last.request.content)["input"]
    assert (sent["duration_seconds"], sent["loop"]) == (22.0, True)


def test_a_retry_after_a_timeout_waits_on_the_task_already_paid_for(router, designer, mp3, tmp_path):
    create = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    poll = router.get(RECORD).mock(return_value=httpx.Response(200, json=record("generating")))
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=mp3))
    request = SoundRequest(cue="rain", duration_s=4, out_path=tmp_path / "s.wav")

    with pytest.raises(RetriableError, match="did not finish within 1 minute"):
        designer.design(request)
    assert (tmp_path / ".s.mp3.kie-task.json").is_file()

    poll.mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    assert designer.design(request).path.read_bytes() == mp3
    assert create.call_count == 1


def test_a_changed_cue_starts_its_own_task(router, designer, mp3, tmp_path):
    (tmp_path / ".s.mp3.kie-task.json").write_text(json.dumps({"task_id": "task_old", "fingerprint": "another cue"}))
    create = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    poll = router.get(RECORD).mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=mp3))

    designer.design(SoundRequest(cue="thunder", duration_s=4, out_path=tmp_path / "s.wav"))

    assert create.call_count == 1 and poll.calls.last.request.url.params["taskId"] == TASK


def test_a_refused_cue_is_invalid_input_and_forgotten(router, designer, tmp_path):
    router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    router.get(RECORD).mock(return_value=httpx.Response(200, json=record("fail", fail_code="400",
                                                                          fail_msg="prompt violates content policy")))
    with pytest.raises(InvalidInputError, match="content policy"):
        designer.design(SoundRequest(cue="x", duration_s=2, out_path=tmp_path / "s.wav"))
    assert not list(tmp_path.glob(".*task.json"))


def test_a_result_that_is_not_mp3_is_an_api_failure_and_leaves_nothing(router, designer, tmp_path):
    router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    router.get(RECORD).mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=b"<html>expired</html>"))
    with pytest.raises(ApiFailureError, match="not MP3"):
        designer.design(SoundRequest(cue="x", duration_s=2, out_path=tmp_path / "s.wav"))
    assert list(tmp_path.iterdir()) == []


def test_insufficient_credits_is_an_api_failure_said_in_kies_words(router, designer, tmp_path):
    router.post(CREATE).mock(return_value=httpx.Response(200, json={"code": 402, "msg": "Credits insufficient"}))
    with pytest.raises(ApiFailureError, match="insufficient credits"):
        designer.design(SoundRequest(cue="x", duration_s=2, out_path=tmp_path / "s.wav"))


def test_the_registry_builds_it_from_the_channel_yaml_and_needs_the_kie_key(repo_root: Path):
    channel = load_channel(repo_root / "channels" / "wild_frontiers.yaml")
    built = registry.build("sound", "kie", ProviderSettings(kie_api_key=SecretStr("k")), channel)
    assert isinstance(built, KieSoundDesigner) and built.model == "elevenlabs/sound-effect-v2"
    with pytest.raises(ApiFailureError, match="KIE_API_KEY is not set"):
        registry.build("sound", "kie", ProviderSettings(), channel)
