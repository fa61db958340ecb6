"""The stand-ins answer like the services they replace: wrong credentials get each API's documented
auth error (which the real adapters classify as an API failure), and a YouTube upload in several
chunks goes through 308 Resume Incomplete answers to the video resource, also after the process
making it was killed mid-file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
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
from vidgen.providers.youtube import YouTubePublisher, quota_day


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


def kill_once(program: str, args: list[str], repo_root: Path, started: Callable[[], bool], what: str) -> None:
    """Runs `program` (python -c) with `args` and kill -9s it as soon as `started()` holds."""
    worker = subprocess.Popen([sys.executable, "-c", program, *args], cwd=repo_root)
    deadline = time.monotonic() + 60
    while not started():
        assert worker.poll() is None and time.monotonic() < deadline, f"{what} never got going"
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)


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
    names = [("script", "gemini"), ("images", "gemini"), ("clips", "kling"), ("narration", "elevenlabs"),
             ("sound", "elevenlabs"), ("sound", "kie")]
    before = len(standins.requests)
    for step, name in names:
        with pytest.raises(ApiFailureError, match="API key|unauthorized|invalid_api_key"):
            calls[step](registry.build(step, name, wrong, channel))
    refused = standins.requests[before:]
    assert [r.status for r in refused] == [400, 400, 401, 401, 401, 401]  # Gemini says 400 API_KEY_INVALID
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


KILLED_PUBLISH = """
import sys
from pathlib import Path
from google.oauth2.credentials import Credentials
from sqlalchemy import create_engine
from vidgen.channels import load_channel
from vidgen.ledger import QuotaLedger
from vidgen.providers.base import PublishRequest
from vidgen.providers.youtube import YouTubePublisher
channel_yaml, token, url, tmp = sys.argv[1:5]
tmp = Path(tmp)
channel = load_channel(Path(channel_yaml))
publisher = YouTubePublisher(channel, credentials=Credentials(token=token), api_endpoint=url,
                             quota=QuotaLedger(create_engine(f"sqlite:///{tmp / 'quota.sqlite'}")))
publisher.publish(PublishRequest.model_validate_json((tmp / "request.json").read_text()))
"""


def test_a_worker_killed_mid_upload_costs_no_second_upload(standins, channel, repo_root, tmp_path: Path):
    """kill -9 of a process in the middle of the file: the next publish of the same video carries on
    the same upload session from the bytes the server kept (one initiation, one quota reservation)."""

    from google.oauth2.credentials import Credentials

    video, thumb = tmp_path / "film.mp4", tmp_path / "thumb.jpg"
    video.write_bytes(bytes(range(256)) * 2500)  # 640,000 bytes, sent in one chunk; the stand-in keeps 100,000 of each
    thumb.write_bytes(b"\xff\xd8\xff" + bytes(100))
    request = PublishRequest(
        channel_id=channel.id, page_id="p2", video_path=video, thumbnail_path=thumb,
        metadata=VideoMetadata(title="A killed upload", description="d"), output_dir=tmp_path,
        resume_path=tmp_path / "workspace" / "publish.json",
    )
    (tmp_path / "request.json").write_text(request.model_dump_json())
    standins.state.holds["youtube-upload"], standins.state.upload_keep_bytes = 0.3, 100_000
    before = len(standins.requests)
    try:
        kill_once(KILLED_PUBLISH, [str(repo_root / "channels" / "wild_frontiers.yaml"), standins.keys.youtube_token,
                                   standins.base_url, str(tmp_path)], repo_root,
                  lambda: sum(r.method == "PUT" for r in standins.requests[before:] if r.service == "youtube-upload") >= 2,
                  "the upload")
        time.sleep(0.5)  # the request the kill cut short is still held by the stand-in
        killed_at = len(standins.requests)

        publisher = YouTubePublisher(channel, credentials=Credentials(token=standins.keys.youtube_token),
                                     api_endpoint=standins.base_url,
                                     quota=QuotaLedger(create_engine(f"sqlite:///{tmp_path / 'quota.sqlite'}")))
        result = publisher.publish(request)
    finally:
        standins.state.release("youtube-upload")
        standins.state.upload_keep_bytes = 0

    upload = [r for r in standins.requests[before:] if r.service == "youtube-upload"]
    assert [r.method for r in upload].count("POST") == 1
    # the carried-on upload starts with the protocol's status check (the killed request may log late)
    checks = [r for r in standins.requests[killed_at:]
              if r.service == "youtube-upload" and r.headers.get("content-range", "").startswith("bytes */")]
    assert checks and checks[0].headers["content-range"] == "bytes */640000" and checks[0].status == 308
    assert standins.uploaded_videos[result.video_id] == video.read_bytes()
    today = quota_day(datetime.now(timezone.utc))
    assert publisher.quota.used(channel.id, today) == result.cost.units == 1650  # upload + thumbnail, reserved once


KILLED_NARRATION = """
import sys
from pathlib import Path
from pydantic import SecretStr
from vidgen.channels import load_channel
from vidgen.providers import registry
from vidgen.providers.base import NarrationRequest
from vidgen.providers.settings import ProviderSettings
channel_yaml, key, url, request_json = sys.argv[1:5]
settings = ProviderSettings(elevenlabs_api_key=SecretStr(key), elevenlabs_base_url=url)
narrator = registry.build("narration", "elevenlabs", settings, load_channel(Path(channel_yaml)))
narrator.narrate(NarrationRequest.model_validate_json(Path(request_json).read_text()))
"""


def test_a_worker_killed_while_its_speech_is_made_gets_it_from_the_history(standins, channel, repo_root, tmp_path):
    """kill -9 after ElevenLabs made (and billed) the speech but before its answer arrived: the next
    narration of the same text fetches it from the account's history instead of paying again."""
    request = NarrationRequest(text="The river wakes before the birds do.",
                               voice=VoiceSpec(elevenlabs_voice_id="standin-voice"),
                               out_path=tmp_path / "audio" / "narration_00.wav")
    (tmp_path / "request.json").write_text(request.model_dump_json())
    standins.state.holds["elevenlabs-tts"] = 60.0
    before = len(standins.requests)
    try:
        kill_once(KILLED_NARRATION, [str(repo_root / "channels" / "wild_frontiers.yaml"), standins.keys.elevenlabs,
                                     standins.base_url, str(tmp_path / "request.json")], repo_root,
                  lambda: any(item["text"] == request.text for item in list(standins.state.speech_history)), "the speech")
    finally:
        standins.state.release("elevenlabs-tts")

    narrator = registry.build("narration", "elevenlabs", settings_for(standins, standins.keys), channel)
    result = narrator.narrate(request)

    # one speech made for the text, the killed request's (the stand-in counts generations when they are
    # made; its request log has a held request only once answered, which a dead client may never be)
    (made,) = [item for item in standins.state.speech_history if item["text"] == request.text]
    assert [r.path for r in standins.requests[before:] if r.service == "elevenlabs-history"][-1].endswith("/audio")
    assert result.path.read_bytes() == standins.state.speech_audio[made["history_item_id"]]
    assert " ".join(w.word for w in result.words) == request.text


KILLED_SOUND = """
import sys
from pathlib import Path
from pydantic import SecretStr
from vidgen.channels import load_channel
from vidgen.providers import registry
from vidgen.providers.base import SoundRequest
from vidgen.providers.settings import ProviderSettings
channel_yaml, key, url, request_json = sys.argv[1:5]
settings = ProviderSettings(kie_api_key=SecretStr(key), kie_base_url=url)
designer = registry.build("sound", "kie", settings, load_channel(Path(channel_yaml)))
designer.client.first_poll_s = designer.client.max_poll_s = 0.2
designer.design(SoundRequest.model_validate_json(Path(request_json).read_text()))
"""


def test_a_worker_killed_while_its_sound_effect_is_made_collects_the_same_task(standins, channel, repo_root, tmp_path):
    """kill -9 while KIE makes (and bills) the sound effect: the next design of the same cue waits on
    the task the killed process started, noted beside the output, and starts no second one."""
    request = SoundRequest(cue="wind through a canyon", duration_s=3.0, out_path=tmp_path / "sfx" / "sfx_00.wav")
    (tmp_path / "request.json").write_text(request.model_dump_json())
    standins.state.holds["kie-sound"] = 60.0
    before = len(standins.requests)
    try:
        kill_once(KILLED_SOUND, [str(repo_root / "channels" / "wild_frontiers.yaml"), standins.keys.kie,
                                 standins.base_url, str(tmp_path / "request.json")], repo_root,
                  lambda: any(r.path.endswith("/recordInfo") for r in standins.requests[before:]),  # being waited on
                  "the sound effect")
    finally:
        standins.state.release("kie-sound")
    (started,) = [r.json["input"]["text"] for r in standins.requests[before:] if r.service == "kie-sound"]
    assert started == request.cue

    designer = registry.build("sound", "kie", settings_for(standins, standins.keys), channel)
    designer.client.first_poll_s = 0.05
    result = designer.design(request)

    (task_id,) = [t for t, (made, _) in standins.state.market_results.items() if made == result.path.read_bytes()]
    assert len([r for r in standins.requests[before:] if r.service == "kie-sound"]) == 1, "no second sound paid for"
    assert result.path.suffix == ".mp3" and not list(result.path.parent.glob(".*task.json"))
    assert task_id.startswith("task_kie-sound_standin_")


KILLED_SCRIPT = """
import sys
from pathlib import Path
from pydantic import SecretStr
from vidgen.channels import load_channel
from vidgen.providers import registry
from vidgen.providers.base import ScriptRequest
from vidgen.providers.settings import ProviderSettings
channel_yaml, key, url, request_json, note_dir = sys.argv[1:6]
settings = ProviderSettings(gemini_api_key=SecretStr(key), gemini_base_url=url)
writer = registry.build("script", "gemini", settings, load_channel(Path(channel_yaml)))
writer.first_poll_s = writer.max_poll_s = 0.2
request = ScriptRequest.model_validate_json(Path(request_json).read_text()).model_copy(update={"note_dir": Path(note_dir)})
writer.write(request)
"""


def test_a_worker_killed_while_its_script_is_written_collects_the_same_interaction(standins, channel, repo_root,
                                                                                   tmp_path):
    """kill -9 while Gemini writes (and bills) the script: the next writer of the same request finds the
    interaction noted in the workspace and waits on it; Google is asked once."""
    request = ScriptRequest(title="A killed script", topic="rivers", channel_name="c", style_preamble="s", scenes=3,
                            words_per_scene=10)
    (tmp_path / "request.json").write_text(request.model_dump_json())
    standins.state.holds["gemini-script"] = 60.0
    before = len(standins.requests)
    try:
        kill_once(KILLED_SCRIPT, [str(repo_root / "channels" / "wild_frontiers.yaml"), standins.keys.gemini,
                                  standins.base_url, str(tmp_path / "request.json"), str(tmp_path)], repo_root,
                  lambda: any(r.service == "gemini-poll" for r in standins.requests[before:]),  # being waited on
                  "the script")
    finally:
        standins.state.release("gemini-script")
    assert len(list(tmp_path.glob(".script-*.gemini-task.json"))) == 1

    writer = registry.build("script", "gemini", settings_for(standins, standins.keys), channel)
    writer.first_poll_s = 0.05
    result = writer.write(request.model_copy(update={"note_dir": tmp_path}))

    assert result.script.title == "A killed script" and len(result.script.scenes) == 3
    asked = [r for r in standins.requests[before:] if r.service == "gemini"]
    assert len(asked) == 1, "no second script paid for"
    assert not list(tmp_path.glob(".script-*"))


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
