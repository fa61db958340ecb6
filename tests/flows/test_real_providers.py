"""A channel switched to the real providers makes and publishes a video against stand-in servers.

Every paid adapter (Gemini, Kling via KIE.ai, ElevenLabs, YouTube) runs unmodified, configured only
through the environment (keys, base URLs, the encrypted token store), inside `produce_video` on a
real Prefect server and the local Notion server. The stand-in records what each API was sent, so
the test checks every step's documented request, not just that a file came out at the end.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from PIL import Image

import flow_helpers as fh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "standins"))
from standin_servers import STANDIN_VIDEO_ID, StandinServer  # noqa: E402

pytestmark = pytest.mark.integration

REAL_PROVIDERS = {
    "script": "gemini",
    "images": "gemini",
    "clips": "kling",
    "narration": "elevenlabs",
    "sound": "kie",
    "publisher": "youtube",
}
SCENES = 2
TOKEN_KEY = base64.urlsafe_b64encode(b"vidgen-real-providers-test-key!!").decode()  # a valid Fernet key


@pytest.fixture
def standins(tmp_path: Path):
    with StandinServer(tmp_path / "standins") as server:
        yield server


@pytest.fixture
def real_channel(stack, standins: StandinServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The sample nature channel, switched to the paid providers, with the stand-ins as their hosts."""
    from google.oauth2.credentials import Credentials

    from blocks.config import provider_settings
    from vidgen.pipeline import configured_channels
    from vidgen.providers.youtube_auth import SCOPES, TokenStore

    channels_dir = Path(stack.env["VIDGEN_CHANNELS_DIR"])
    data = yaml.safe_load((channels_dir / "wild_frontiers.yaml").read_text())
    data.update(id="wild_frontiers_real", name="Wild Frontiers Real", notion_value="Wild Frontiers Real")
    data["providers"] = dict(REAL_PROVIDERS)
    data["script"].update(scenes=SCENES, min_scenes=1, words_per_scene=10)
    for gate in data["review"].values():
        gate["enabled"] = False  # an in-process flow call cannot suspend at a gate
    (channels_dir / "wild_frontiers_real.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    keys = standins.keys
    token_dir = tmp_path / "youtube-tokens"
    env = {
        "GEMINI_API_KEY": keys.gemini,
        "GEMINI_BASE_URL": standins.base_url,
        "KIE_API_KEY": keys.kie,
        "KIE_BASE_URL": standins.base_url,
        "KIE_UPLOAD_BASE_URL": standins.base_url,
        "VIDGEN_IMAGE_HOST": "kie",
        "ELEVENLABS_API_KEY": keys.elevenlabs,
        "ELEVENLABS_BASE_URL": standins.base_url,
        "YOUTUBE_BASE_URL": standins.base_url,
        "VIDGEN_TOKEN_KEY": TOKEN_KEY,
        "VIDGEN_TOKEN_DIR": str(token_dir),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    provider_settings.cache_clear()

    # What `vidgen channels auth` leaves behind; the token is far from expiry, so no refresh is tried
    # (and one would go to the stand-in, where the request log would show it).
    TokenStore(token_dir, TOKEN_KEY).save(
        "wild_frontiers_real",
        Credentials(
            token=keys.youtube_token,
            refresh_token="1//standin-refresh-token",
            token_uri=f"{standins.base_url}/token",
            client_id="standin.apps.googleusercontent.com",
            client_secret="standin-client-secret",
            scopes=list(SCOPES),
            expiry=datetime(2099, 1, 1),
        ),
    )
    channels = configured_channels(channels_dir)
    fh.gateway().sync_channel_options(channels)
    yield channels["wild_frontiers_real"]
    provider_settings.cache_clear()
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)  # send the runs' logs while the session's Prefect server is up


def _workspace_calls(workspace: Path) -> list[dict]:
    return [json.loads(line) for line in (workspace / "calls.jsonl").read_text().splitlines() if line.strip()]


def test_a_channel_on_the_real_providers_runs_every_step_against_the_standins(stack, standins, real_channel):
    from flows.produce_video import produce_video
    from tasks.production import _ledger
    from vidgen.media.ffmpeg import probe
    from vidgen.models import Script
    from vidgen.statuses import NotionStatus as S

    gateway = fh.gateway()
    entry = gateway.create_entry(
        title="Dawn in the River Valley", channel=real_channel.notion_value,
        topic="A river valley waking up at dawn", story_direction="Quiet, observant.", status=S.QUEUED,
    )
    gateway.update_entry(entry, status=S.PROCESSING)  # what the poller does before it starts the run

    url = produce_video(entry.page_id)

    video_url = f"https://www.youtube.com/watch?v={STANDIN_VIDEO_ID}"
    assert url == video_url
    done = gateway.get_entry(entry.page_id)
    assert (done.notion_status, done.video_url, done.error) == (S.UPLOAD_COMPLETE, video_url, "")
    workspace = Path(done.workspace)
    script = Script.model_validate_json((workspace / "script.json").read_text())
    scenes = script.scenes
    assert len(scenes) == SCENES
    seen = standins.requests
    assert not [r for r in seen if r.status >= 400 or r.service == "unknown"], "refused or unexpected requests"

    # script: one structured-output interaction with the script model, in the background, polled with the Gemini key
    (script_call,) = [r for r in standins.seen("gemini") if r.path == "/v1beta/interactions"]
    assert script_call.headers["x-goog-api-key"] == standins.keys.gemini
    assert (script_call.json["model"], script_call.json["background"], script_call.json["store"]) == (
        "gemini-2.5-flash", True, True)
    assert script_call.json["response_format"]["mime_type"] == "application/json"
    prompt = script_call.json["input"]
    assert "'Dawn in the River Valley'" in prompt and f"Write exactly {SCENES} scenes" in prompt
    assert "Wild Frontiers Real" in script_call.json["system_instruction"]
    script_polls = standins.seen("gemini-poll")
    assert script_polls and {r.headers["x-goog-api-key"] for r in script_polls} == {standins.keys.gemini}
    assert not list(workspace.glob(".script-*")), "the interaction's note goes once the script is read"

    # images: one Gemini 2.5 Flash Image call per scene, 16:9, the scene's prompt after the channel style
    images = [r for r in standins.seen("gemini") if r.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"]
    assert len(images) == SCENES
    assert {r.headers["x-goog-api-key"] for r in images} == {standins.keys.gemini}
    assert all(r.json["generationConfig"]["responseModalities"] == ["IMAGE"] for r in images)
    assert all(r.json["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"} for r in images)
    image_prompts = sorted(r.json["contents"][0]["parts"][0]["text"] for r in images)
    assert all(p.startswith(f"Style: {real_channel.style.preamble}") for p in image_prompts)
    assert sorted(s.image_prompt for s in scenes) == sorted(p.split("Scene: ")[1].split("\n")[0] for p in image_prompts)
    pictures = sorted((workspace / "assets").glob("scene_*.png"))
    assert len(pictures) == SCENES
    for picture in pictures:  # Gemini's own 16:9 size, kept as delivered
        with Image.open(picture) as img:
            assert (img.format, img.size) == ("PNG", (1344, 768))

    # clips: per scene, the composite uploaded to KIE, a Kling task on its URL, polled to success, downloaded
    kie_auth = f"Bearer {standins.keys.kie}"
    uploads, creates = standins.seen("kie-upload"), standins.seen("kling-create")
    polls, downloads = standins.seen("kling-poll"), standins.seen("kling-download")
    assert len(uploads) == len(creates) == len(downloads) == SCENES
    assert {r.headers["authorization"] for r in uploads + creates + polls} == {kie_auth}
    assert {r.form["uploadPath"] for r in uploads} == {"vidgen/composites"}
    assert all(r.form["file"].startswith(f"<file {r.form['fileName']}") for r in uploads)
    assert {r.json["model"] for r in creates} == {"kling/v2-5-turbo-image-to-video-pro"}
    assert sorted(r.json["input"]["prompt"] for r in creates) == sorted(s.motion_prompt for s in scenes)
    assert {r.json["input"]["image_url"].rsplit("/", 1)[1] for r in creates} == {r.form["fileName"] for r in uploads}
    composites = sorted(p.read_bytes() for p in (workspace / "composites").glob("frame_*.png"))
    assert sorted(standins.uploaded_files.values()) == composites and len(composites) == SCENES
    assert {r.json["input"]["duration"] for r in creates} == {"5"}
    tasks = {r.path.rsplit("/", 1)[1].removesuffix(".mp4") for r in downloads}
    assert len(tasks) == SCENES
    clip_polls = Counter(r.query["taskId"] for r in polls if r.query["taskId"] in tasks)  # (sound tasks: below)
    assert clip_polls == Counter(dict.fromkeys(tasks, 2))  # generating, then success
    assert not [r for r in downloads if "authorization" in r.headers], "the KIE key must not go to result hosts"

    # narration: one with-timestamps call per scene, the scene's text, the channel's voice and model
    speech = standins.seen("elevenlabs-tts")
    assert len(speech) == SCENES
    assert {r.headers["xi-api-key"] for r in speech} == {standins.keys.elevenlabs}
    assert {r.path for r in speech} == {f"/v1/text-to-speech/{real_channel.voice.elevenlabs_voice_id}/with-timestamps"}
    assert {r.query["output_format"] for r in speech} == {"mp3_44100_128"}
    assert {r.json["model_id"] for r in speech} == {real_channel.voice.elevenlabs_model}
    assert sorted(r.json["text"] for r in speech) == sorted(s.narration for s in scenes)

    # sound: one effect per scene, for the scene's cue, as long as its narration plus padding
    from vidgen.pipeline import SCENE_PADDING_S
    from vidgen.workspace import Workspace

    sounds = standins.seen("kie-sound")  # ElevenLabs' sound-effect model as KIE market tasks
    assert len(sounds) == SCENES
    assert {r.headers["authorization"] for r in sounds} == {f"Bearer {standins.keys.kie}"}
    assert sorted(r.json["input"]["text"] for r in sounds) == sorted(s.sound_cue for s in scenes)
    narrations = [e for e in Workspace(workspace).entries() if e.key.startswith("narration/")]
    narration_lengths = sorted(round(e.extra["duration_s"] + SCENE_PADDING_S, 2) for e in narrations)
    assert len(narrations) == SCENES
    assert sorted(r.json["input"]["duration_seconds"] for r in sounds) == narration_lengths
    sound_tasks = {r.query["taskId"] for r in polls if r.query["taskId"].startswith("task_kie-sound")}
    made = sorted(standins.state.market_results[t][0] for t in sound_tasks)
    assert len(made) == SCENES and sorted(p.read_bytes() for p in (workspace / "sfx").glob("*.mp3")) == made
    assert not [r for r in standins.seen("kie-result-download") if "authorization" in r.headers]

    # publish: a resumable upload of the final film with the channel's token, then the thumbnail
    (film,) = [e for e in Workspace(workspace).entries() if e.key == "final"]
    final, thumbnail_file = Path(film.extra["result"]["video"]), Path(film.extra["result"]["thumbnail"])
    youtube_auth = f"Bearer {standins.keys.youtube_token}"
    start, *chunks = standins.seen("youtube-upload")
    assert (start.method, start.query["uploadType"], start.query["part"]) == ("POST", "resumable", "snippet,status")
    assert start.headers["authorization"] == youtube_auth
    assert start.headers["x-upload-content-type"] == "video/mp4"
    assert int(start.headers["x-upload-content-length"]) == final.stat().st_size
    assert start.json["snippet"]["title"] == "Dawn in the River Valley"
    assert start.json["snippet"]["categoryId"] == real_channel.youtube.category_id
    assert start.json["status"] == {
        "privacyStatus": "private", "selfDeclaredMadeForKids": False, "containsSyntheticMedia": True,
    }
    assert chunks and {r.method for r in chunks} == {"PUT"} and chunks[-1].status == 200
    assert standins.uploaded_videos[STANDIN_VIDEO_ID] == final.read_bytes()
    (thumbnail,) = standins.seen("youtube-thumbnail")
    assert thumbnail.query["videoId"] == STANDIN_VIDEO_ID and thumbnail.headers["authorization"] == youtube_auth
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert standins.thumbnails[STANDIN_VIDEO_ID] == thumbnail_file.read_bytes()
    (captions,) = standins.seen("youtube-captions")  # captions.insert, after the upload
    assert captions.headers["authorization"] == youtube_auth
    language, body = standins.captions[STANDIN_VIDEO_ID]
    assert language == real_channel.language and next(workspace.glob("final/*.srt")).read_bytes() in body
    assert not [r for r in seen if r.path == "/token"], "the stored token was fresh; nothing should refresh it"

    # the film: H.264 1920x1080 with AAC sound and captions
    info = probe(final)
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 1920, 1080)
    assert info.audio is not None and info.audio.codec == "aac" and info.subtitles

    # money: the page shows the ledger's total, made of the documented prices
    ledger = _ledger()
    lines = ledger.lines_for(entry.page_id)
    by_step = Counter(line.step for line in lines)
    assert by_step == Counter(
        {"script": 1, "images": SCENES, "clips": SCENES, "narration": SCENES, "sound": SCENES, "publish": 1}
    )
    assert {line.usd for line in lines if line.step == "images"} == {0.039}
    assert {line.usd for line in lines if line.step == "clips"} == {0.13}
    assert {line.usd for line in lines if line.step == "sound"} == {0.002}
    characters = sum(len(s.narration) for s in scenes)
    assert sum(line.usd for line in lines if line.step == "narration") == pytest.approx(characters * 0.006 / 1000)
    assert [line.units for line in lines if line.step == "publish"] == [2050]  # upload 1,600 + thumbnail 50 + captions 400
    assert done.cost_usd == ledger.total_for(entry.page_id) > 0
    assert done.cost_usd == pytest.approx(sum(line.usd for line in lines), abs=1e-4)

    # the audit trail: every asset paid for once
    calls = Counter(c["key"] for c in _workspace_calls(workspace))
    per_scene = ("image", "clip", "narration", "sound")
    expected = {"script", "publish", *(f"{kind}/{i:02d}" for kind in per_scene for i in range(SCENES))}
    assert calls == Counter(dict.fromkeys(expected, 1))

    # a second run for the same page (re-queued by hand) pays for nothing: the stand-ins hear nothing
    fh.force_status(entry.page_id, "Queued")
    assert produce_video(entry.page_id) == video_url
    again = gateway.get_entry(entry.page_id)
    assert (again.notion_status, again.video_url, again.cost_usd) == (S.UPLOAD_COMPLETE, video_url, done.cost_usd)
    new_requests = standins.requests[len(seen):]
    assert not new_requests, [f"{r.method} {r.path}" for r in new_requests]
    assert Counter(c["key"] for c in _workspace_calls(workspace)) == calls
    assert ledger.lines_for(entry.page_id) == lines


@pytest.mark.timeout(600)
def test_an_upload_over_a_spent_quota_is_deferred_to_the_reset_and_published_then(stack, standins, real_channel,
                                                                                 monkeypatch):
    """The channel's day of YouTube quota is spent (videos.insert answers 403 quotaExceeded): the run
    ends with the card at Error: Retriable saying until when, holding no worker, and the run Prefect
    starts at the reset publishes the video, paying for nothing else again. The reset is moved to
    seconds away (VIDGEN_YOUTUBE_QUOTA_RESET, on the Pacific clock) in this process and the worker's
    alike, and the stand-in's refusals end then."""
    import threading
    import time

    from flows.produce_video import produce_video
    from vidgen.providers.youtube import PACIFIC, QUOTA_RESET_ENV
    from vidgen.statuses import PIPELINE, NotionStatus as S

    gateway = fh.gateway()
    entry = gateway.create_entry(title="Quota Day", channel=real_channel.notion_value,
                                 topic="A river valley waking up at dawn", status=S.QUEUED)
    gateway.update_entry(entry, status=S.PROCESSING)
    stack.start_worker()  # serves produce-video, so the deferral can schedule a run of it
    standins.state.quota_spent_until = float("inf")
    reset_at: list[float] = []

    def turn_the_day_soon() -> None:  # once the film is being put together, the day turns 30 s later
        watcher = fh.gateway()
        while not reset_at:
            status = watcher.get_entry(entry.page_id).notion_status
            if status in PIPELINE and PIPELINE.index(status) >= PIPELINE.index(S.ASSEMBLING_VIDEO):
                at = float(int(time.time()) + 30)
                monkeypatch.setenv(QUOTA_RESET_ENV, datetime.fromtimestamp(at, PACIFIC).strftime("%H:%M:%S"))
                standins.state.quota_spent_until = at
                reset_at.append(at)
            time.sleep(0.1)

    watcher = threading.Thread(target=turn_the_day_soon, daemon=True)
    watcher.start()
    produce_video(entry.page_id)
    watcher.join(5)
    assert reset_at, "the card never reached Assembling Video"
    (refused,) = standins.seen("youtube-upload")
    assert (refused.method, refused.status) == ("POST", 403), "the upload came after the moved reset"
    deferred = gateway.get_entry(entry.page_id)
    assert deferred.notion_status is S.ERROR_RETRIABLE, f"{deferred.status}: {deferred.error}"
    assert "upload deferred until" in deferred.error and "will continue then" in deferred.error
    later = fh.run_for(entry.page_id)
    assert "deferred" in later.tags, later
    assert abs(later.expected_start_time.timestamp() - reset_at[0]) < 1, (later.expected_start_time, reset_at)

    # the worker that runs it keeps the same quota clock: restarted with it, as a deployment's env would be
    stack.stop_worker()
    stack.env[QUOTA_RESET_ENV] = os.environ[QUOTA_RESET_ENV]
    stack.start_worker()
    deadline = time.monotonic() + 240
    while (card := gateway.get_entry(entry.page_id)).notion_status is not S.UPLOAD_COMPLETE:
        assert time.monotonic() < deadline, f"never published after the reset: {card.status} {card.error}"
        assert card.notion_status in (S.ERROR_RETRIABLE, S.QUEUED, *PIPELINE), f"{card.status}: {card.error}"
        time.sleep(1)

    uploads = [r for r in standins.seen("youtube-upload") if r.method == "POST"]
    assert [r.status for r in uploads] == [403, 200] and uploads[1].at >= reset_at[0] - 1
    for service in ("gemini", "kling-create", "elevenlabs-tts", "kie-sound"):  # made once, before the deferral
        assert len([r for r in standins.seen(service) if r.status < 400]) == (1 + SCENES if service == "gemini" else SCENES)
    calls = Counter(c["key"] for c in _workspace_calls(Path(card.workspace)))
    assert set(calls.values()) == {1}, calls
