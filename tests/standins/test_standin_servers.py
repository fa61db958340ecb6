"""The stand-ins answer like the services they replace: wrong credentials get each API's documented
auth error (which the real adapters classify as an API failure), and a YouTube upload in several
chunks goes through 308 Resume Incomplete answers to the video resource."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine

from standin_servers import STANDIN_VIDEO_ID, StandinKeys, StandinServer
from vidgen.channels import load_channel
from vidgen.errors import ApiFailureError
from vidgen.ledger import QuotaLedger
from vidgen.providers import registry
from vidgen.providers.base import (
    ClipRequest,
    ImageRequest,
    NarrationRequest,
    PublishRequest,
    ScriptRequest,
    SoundRequest,
    VideoMetadata,
    VoiceSpec,
)
from vidgen.providers.settings import ProviderSettings
from vidgen.providers.youtube import YouTubePublisher


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    with StandinServer(tmp_path_factory.mktemp("standins"), warm_clips=()) as server:
        yield server


@pytest.fixture
def channel(repo_root):
    return load_channel(repo_root / "channels" / "wild_frontiers.yaml")


def settings_for(standins: StandinServer, keys: StandinKeys) -> ProviderSettings:
    url = standins.base_url
    return ProviderSettings(
        gemini_api_key=SecretStr(keys.gemini), gemini_base_url=url,
        kie_api_key=SecretStr(keys.kie), kie_base_url=url, kie_upload_base_url=url,
        elevenlabs_api_key=SecretStr(keys.elevenlabs), elevenlabs_base_url=url,
    )


def test_wrong_keys_get_each_services_auth_error(standins, channel, tmp_path: Path):
    wrong = settings_for(standins, StandinKeys(gemini="nope", kie="nope", elevenlabs="nope"))
    frame = tmp_path / "frame.png"
    frame.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    calls = {
        "script": lambda p: p.write(ScriptRequest(title="t", topic="t", channel_name="c", style_preamble="s",
                                                  scenes=3, words_per_scene=10)),
        "images": lambda p: p.generate(ImageRequest(prompt="p", out_path=tmp_path / "i.png")),
        "clips": lambda p: p.animate(ClipRequest(image_path=frame, motion_prompt="m", duration_s=5,
                                                 out_path=tmp_path / "c.mp4")),
        "narration": lambda p: p.narrate(NarrationRequest(text="hello there", voice=VoiceSpec(elevenlabs_voice_id="v"),
                                                          out_path=tmp_path / "n.wav")),
        "sound": lambda p: p.design(SoundRequest(cue="wind", duration_s=2, out_path=tmp_path / "s.wav")),
    }
    names = {"script": "gemini", "images": "gemini", "clips": "kling", "narration": "elevenlabs", "sound": "elevenlabs"}
    before = len(standins.requests)
    for step, call in calls.items():
        with pytest.raises(ApiFailureError, match="API key|unauthorized|invalid_api_key"):
            call(registry.build(step, names[step], wrong, channel))
    refused = standins.requests[before:]
    assert [r.status for r in refused] == [400, 400, 401, 401, 401]  # Gemini says 400 API_KEY_INVALID
    assert not list(tmp_path.glob("[icns].*")), "nothing is written for a refused call"


def test_a_chunked_youtube_upload_resumes_through_308_answers(standins, channel, tmp_path: Path):
    video, thumb = tmp_path / "film.mp4", tmp_path / "thumb.jpg"
    video.write_bytes(bytes(range(256)) * 2500)  # 640,000 bytes: three 256 KiB chunks
    thumb.write_bytes(b"\xff\xd8\xff" + bytes(100))
    from google.oauth2.credentials import Credentials

    publisher = YouTubePublisher(
        channel,
        credentials=Credentials(token=standins.keys.youtube_token),
        api_endpoint=standins.base_url,
        quota=QuotaLedger(create_engine(f"sqlite:///{tmp_path / 'quota.sqlite'}")),
        chunksize=256 * 1024,
    )
    before = len(standins.requests)
    result = publisher.publish(PublishRequest(
        channel_id=channel.id, page_id="p1", video_path=video, thumbnail_path=thumb,
        metadata=VideoMetadata(title="A film", description="d"), output_dir=tmp_path,
    ))

    assert result.video_id == STANDIN_VIDEO_ID
    upload = [r for r in standins.requests[before:] if r.service == "youtube-upload"]
    assert [(r.method, r.status) for r in upload] == [("POST", 200), ("PUT", 308), ("PUT", 308), ("PUT", 200)]
    assert [r.headers["content-range"] for r in upload[1:]] == [
        "bytes 0-262143/640000", "bytes 262144-524287/640000", "bytes 524288-639999/640000"]
    assert standins.uploaded_videos[STANDIN_VIDEO_ID] == video.read_bytes()
    assert standins.thumbnails[STANDIN_VIDEO_ID] == thumb.read_bytes()


def test_kling_fault_switches_refuse_each_start_frame_in_turn_and_hold_the_task(standins, tmp_path: Path):
    """What scripts/chaos.py switches on: createTask answers 429 (Retry-After) then 503 for each new
    start frame before it takes the task, and a task stays `generating` for the hold."""
    from vidgen.errors import RetriableError
    from vidgen.providers.kling import KlingClient

    state = standins.state
    state.kling_create_faults = [(429, 7.0), (503, None)]
    state.kling_generating_s = 0.5
    client = KlingClient(standins.keys.kie, standins.base_url, sleep=lambda _s: None)
    frame = tmp_path / "frame.png"
    frame.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    try:
        url = f"{standins.base_url}/kie-files/fault-test/frame.png"
        state.uploads[url] = frame
        with pytest.raises(RetriableError) as limited:
            client.create_task(prompt="p", image_url=url)
        assert (limited.value.status_code, limited.value.retry_after) == (429, 7.0)
        with pytest.raises(RetriableError) as unavailable:
            client.create_task(prompt="p", image_url=url)
        assert (unavailable.value.status_code, unavailable.value.retry_after) == (503, None)
        task_id = client.create_task(prompt="p", image_url=url)
        assert [client.get_task(task_id).state for _ in range(3)] == ["generating"] * 3  # held past the second poll
        import time

        time.sleep(0.5)
        assert client.get_task(task_id).state == "success"
    finally:
        state.kling_create_faults, state.kling_generating_s = [], 0.0
        client.close()


@pytest.mark.parametrize("kind", ["numbered-from-1", "no-scenes", "too-many-scenes"])
def test_a_spoiled_first_script_is_repaired_or_asked_for_again_through_the_real_adapter(standins, channel, kind):
    """What scripts/chaos.py's bad-script fault switches on: the first script Gemini writes for a title
    is spoiled, the next one is not; the product's repair (`write_checked_script`) gets a usable script
    over HTTP, renumbering without a second request or asking once more."""
    from vidgen.script_repair import write_checked_script

    writer = registry.build("script", "gemini", settings_for(standins, standins.keys), channel)
    title = f"Spoiled {kind}"
    standins.state.script_faults[title] = kind
    before = len(standins.seen("gemini"))
    request = ScriptRequest(title=title, topic="rivers", channel_name="c", style_preamble="s", scenes=3,
                            words_per_scene=10)
    result = write_checked_script(writer.write, request, provider="gemini", min_scenes=3, max_scenes=6)
    assert [scene.index for scene in result.script.scenes] == [0, 1, 2]
    assert len(standins.seen("gemini")) - before == (1 if kind == "numbered-from-1" else 2)
    assert title not in standins.state.script_faults
