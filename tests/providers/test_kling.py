"""Kling via KIE.ai against HTTP-level mocks of the documented API; polling never really sleeps.

Fixtures follow:
- createTask: https://docs.kie.ai/market/kling/v2-5-turbo-image-to-video-pro
  (POST https://api.kie.ai/api/v1/jobs/createTask, Bearer auth, {"model", "callBackUrl"?, "input":
  {"prompt", "image_url", "tail_image_url"?, "duration": "5"|"10", "negative_prompt", "cfg_scale"}};
  200 example {"code": 200, "msg": "success", "data": {"taskId": ...}}; response codes 200, 401,
  402, 404, 422, 429, 455, 500, 501, 505)
- recordInfo: https://docs.kie.ai/market/common/get-task-detail
  (GET /api/v1/jobs/recordInfo?taskId=...; data.state waiting/queuing/generating/success/fail;
  data.resultJson is a JSON string with resultUrls; failCode/failMsg on fail)
- file upload: https://docs.kie.ai/file-upload-api/upload-file-stream
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx
from fake_clock import FakeClock
from kie_api_fixtures import CREATE, RECORD, created
from kie_api_fixtures import record as kie_record
from pydantic import SecretStr

from vidgen.channels import load_channel
from vidgen.errors import ApiFailureError, InvalidInputError, RetriableError
from vidgen.media.ffmpeg import probe, run_ffmpeg
from vidgen.providers import registry
from vidgen.providers.base import ClipAnimator, ClipRequest
from vidgen.providers.imagehost import KieFileHost
from vidgen.providers.kie import task_failure
from vidgen.providers.kling import (
    KlingClient,
    KlingClipAnimator,
    create_clips,
    nearest_duration,
)
from vidgen.providers.settings import ProviderSettings
from vidgen.statuses import NotionStatus

UPLOAD = "https://kieai.redpandaai.co/api/file-stream-upload"
RESULT_URL = "https://tempfile.aiquickdraw.com/kling/result-1.mp4"
TASK = "task_kling_1765177570132"
DOC_CREATE_OK = created(TASK)


def record(state: str, **fields) -> dict:
    """A recordInfo body for the Kling task, shaped like the documented example."""
    return kie_record(TASK, "kling/v2-5-turbo-image-to-video-pro", state, **fields)


# https://docs.kie.ai/file-upload-api/upload-file-stream — 200 example
DOC_UPLOAD_OK = {
    "success": True,
    "code": 200,
    "msg": "File uploaded successfully",
    "data": {
        "fileName": "scene-01.png",
        "filePath": "vidgen/composites/scene-01.png",
        "downloadUrl": "https://tempfile.redpandaai.co/xxx/vidgen/composites/scene-01.png",
        "fileSize": 154832,
        "mimeType": "image/png",
        "uploadedAt": "2025-01-01T12:00:00.000Z",
    },
}


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_mocked=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(router, clock) -> KlingClient:
    return KlingClient("kie-test-key", transport=httpx.MockTransport(router.handler), sleep=clock.sleep, clock=clock)


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory) -> bytes:
    """A real 1 s, 320x180 H.264 MP4 without audio: what a stand-in result file serves."""
    path = tmp_path_factory.mktemp("clips") / "small.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=25", "-t", "1", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)])
    return path.read_bytes()


@pytest.fixture
def composite(tmp_path: Path) -> Path:
    path = tmp_path / "composites" / "scene-01.png"
    path.parent.mkdir()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"pixels" * 100)
    return path


# --- createTask -------------------------------------------------------------------------------------
def test_create_task_sends_the_documented_request(router, client):
    route = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))

    task_id = client.create_task(prompt="Slow push-in on the herd", image_url="https://host/c.png", duration="10")

    assert task_id == TASK
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == CREATE
    assert request.headers["authorization"] == "Bearer kie-test-key"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert set(body) == {"model", "input"}  # no callBackUrl unless asked for
    assert body["model"] == "kling/v2-5-turbo-image-to-video-pro"
    assert body["input"] == {
        "prompt": "Slow push-in on the herd",
        "image_url": "https://host/c.png",
        "duration": "10",
        "negative_prompt": "blur, distort, and low quality",
        "cfg_scale": 0.5,
    }


def test_create_task_passes_the_callback_url_when_given(router, client):
    route = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    client.create_task(prompt="p", image_url="https://h/c.png", callback_url="https://me.example/kie")
    assert json.loads(route.calls.last.request.content)["callBackUrl"] == "https://me.example/kie"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompt": "   "}, "empty"),
        ({"prompt": "x" * 2501}, "2500"),
        ({"prompt": "p", "duration": "7"}, "duration"),
        ({"prompt": "p", "cfg_scale": 1.5}, "cfg_scale"),
    ],
    ids=["empty-prompt", "prompt-too-long", "duration", "cfg-scale"],
)
def test_create_task_rejects_bad_input_before_paying(router, client, kwargs, match):
    route = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    with pytest.raises(InvalidInputError, match=match):
        client.create_task(image_url="https://h/c.png", **kwargs)
    assert not route.called


def envelope(code: int, msg: str) -> dict:
    return {"code": code, "msg": msg, "data": None}


@pytest.mark.parametrize(
    ("response", "error", "status"),
    [
        (httpx.Response(400, json=envelope(400, "Bad Request")), InvalidInputError, NotionStatus.ERROR_INVALID_INPUT),
        (httpx.Response(401, json=envelope(401, "Unauthorized")), ApiFailureError, NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(200, json=envelope(401, "Unauthorized")), ApiFailureError, NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(200, json=envelope(402, "Credits insufficient")), ApiFailureError,
         NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(403, text="Forbidden"), ApiFailureError, NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(200, json=envelope(404, "Not Found")), InvalidInputError, NotionStatus.ERROR_INVALID_INPUT),
        (httpx.Response(200, json=envelope(422, "image_url is required")), InvalidInputError,
         NotionStatus.ERROR_INVALID_INPUT),
        (httpx.Response(200, json=envelope(455, "maintenance")), RetriableError, NotionStatus.ERROR_RETRIABLE),
        (httpx.Response(500, json=envelope(500, "Server Error")), RetriableError, NotionStatus.ERROR_RETRIABLE),
        (httpx.Response(200, json=envelope(500, "Server Error")), RetriableError, NotionStatus.ERROR_RETRIABLE),
        (httpx.Response(200, json=envelope(501, "Generation Failed")), ApiFailureError,
         NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(503, text="Service Unavailable"), RetriableError, NotionStatus.ERROR_RETRIABLE),
        (httpx.Response(200, json=envelope(505, "Feature Disabled")), ApiFailureError,
         NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(200, text="<html>502 Bad Gateway</html>"), ApiFailureError, NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(200, json={"code": 200, "msg": "success", "data": {}}), ApiFailureError,
         NotionStatus.ERROR_API_FAILURE),
        (httpx.Response(200, json=envelope(422, "Your prompt contains sensitive content")), InvalidInputError,
         NotionStatus.ERROR_INVALID_INPUT),
    ],
    ids=["http-400", "http-401", "body-401", "body-402-credits", "http-403", "body-404", "body-422", "body-455",
         "http-500", "body-500", "body-501", "http-503", "body-505", "malformed-json", "no-taskId",
         "content-policy"],
)
def test_create_task_failures_map_to_error_classes(router, client, response, error, status):
    router.post(CREATE).mock(return_value=response)
    with pytest.raises(error) as caught:
        client.create_task(prompt="p", image_url="https://h/c.png")
    assert type(caught.value) is error
    assert caught.value.notion_status is status


def test_insufficient_credits_says_so(router, client):
    router.post(CREATE).mock(return_value=httpx.Response(200, json=envelope(402, "Credits insufficient")))
    with pytest.raises(ApiFailureError, match="insufficient credits") as caught:
        client.create_task(prompt="p", image_url="https://h/c.png")
    assert caught.value.status_code == 402


def test_content_policy_refusal_says_content_policy(router, client):
    router.post(CREATE).mock(return_value=httpx.Response(200, json=envelope(422, "prompt violates our policy")))
    with pytest.raises(InvalidInputError, match="content policy"):
        client.create_task(prompt="p", image_url="https://h/c.png")


@pytest.mark.parametrize("http_status", [429, 200])
def test_rate_limit_honours_retry_after(router, client, http_status):
    router.post(CREATE).mock(
        return_value=httpx.Response(http_status, json=envelope(429, "Rate Limited"), headers={"Retry-After": "17"})
    )
    with pytest.raises(RetriableError) as caught:
        client.create_task(prompt="p", image_url="https://h/c.png")
    assert caught.value.retry_after == 17.0
    assert caught.value.notion_status is NotionStatus.ERROR_RETRIABLE


@pytest.mark.parametrize("failure", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")], ids=["timeout", "connect"])
def test_transport_failures_are_retriable(router, client, failure):
    router.post(CREATE).mock(side_effect=failure)
    with pytest.raises(RetriableError):
        client.create_task(prompt="p", image_url="https://h/c.png")


# --- recordInfo and waiting -------------------------------------------------------------------------
def test_get_task_reads_the_documented_success(router, client):
    route = router.get(RECORD).mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    task = client.get_task(TASK)
    assert task.state == "success" and task.result_urls == [RESULT_URL]
    request = route.calls.last.request
    assert request.url.params["taskId"] == TASK
    assert request.headers["authorization"] == "Bearer kie-test-key"


def test_wait_polls_queued_to_generating_to_success_with_growing_pauses(router, client, clock):
    route = router.get(RECORD).mock(
        side_effect=[
            httpx.Response(200, json=record("waiting")),
            httpx.Response(200, json=record("queuing")),
            httpx.Response(200, json=record("generating")),
            httpx.Response(200, json=record("generating")),
            httpx.Response(200, json=record("success", urls=[RESULT_URL])),
        ]
    )
    task = client.wait(TASK, timeout_s=600)
    assert task.result_urls == [RESULT_URL]
    assert route.call_count == 5
    assert clock.sleeps == [5.0, 7.5, 11.25, 16.875]


def test_wait_times_out_as_retriable_after_ten_minutes(router, client, clock):
    router.get(RECORD).mock(return_value=httpx.Response(200, json=record("generating")))
    with pytest.raises(RetriableError) as caught:
        client.wait(TASK, timeout_s=600)
    assert str(caught.value) == f"kling: Kling did not finish within 10 minutes (task {TASK})"
    assert caught.value.notion_status is NotionStatus.ERROR_RETRIABLE
    assert sum(clock.sleeps) == pytest.approx(600)
    assert max(clock.sleeps) == 30.0


@pytest.mark.parametrize(
    ("fail_code", "fail_msg", "error"),
    [
        ("500", "Internal error during generation", ApiFailureError),
        ("501", "Generation failed", ApiFailureError),
        ("422", "image_url could not be fetched", InvalidInputError),
        ("400", "The content you uploaded violates our content policy", InvalidInputError),
        ("", "Your prompt was flagged as sensitive", InvalidInputError),
    ],
    ids=["500", "501", "422", "content-policy-400", "content-policy-no-code"],
)
def test_wait_fail_state_maps_by_fail_code(router, client, fail_code, fail_msg, error):
    router.get(RECORD).mock(
        side_effect=[
            httpx.Response(200, json=record("generating")),
            httpx.Response(200, json=record("fail", fail_code=fail_code, fail_msg=fail_msg)),
        ]
    )
    task = client.wait(TASK)
    assert task.state == "fail"
    with pytest.raises(error, match=TASK) as caught:
        raise task_failure(task, provider="kling")
    assert type(caught.value) is error
    assert fail_msg in str(caught.value)


def test_wait_rides_out_a_transient_poll_error(router, client):
    router.get(RECORD).mock(
        side_effect=[
            httpx.Response(200, json=record("generating")),
            httpx.Response(500, json=envelope(500, "Server Error")),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json=record("success", urls=[RESULT_URL])),
        ]
    )
    assert client.wait(TASK).result_urls == [RESULT_URL]


def test_wait_stops_at_once_on_an_auth_failure(router, client, clock):
    router.get(RECORD).mock(return_value=httpx.Response(200, json=envelope(401, "Unauthorized")))
    with pytest.raises(ApiFailureError):
        client.wait(TASK)
    assert clock.sleeps == []


@pytest.mark.parametrize("result_json", ["{not json", json.dumps({"resultUrls": []}), json.dumps({"other": 1})])
def test_success_without_usable_result_urls_is_an_api_failure(router, client, result_json):
    body = record("success", urls=[RESULT_URL])
    body["data"]["resultJson"] = result_json
    router.get(RECORD).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(ApiFailureError, match="result"):
        client.get_task(TASK)


# --- download --------------------------------------------------------------------------------------
def test_download_streams_to_the_path_and_keeps_the_key_at_home(router, client, tmp_path, small_clip):
    route = router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=small_clip))
    out = client.download(RESULT_URL, tmp_path / "videos" / "clip.mp4")
    assert out.read_bytes() == small_clip
    assert "authorization" not in route.calls.last.request.headers
    assert [p.name for p in out.parent.iterdir()] == ["clip.mp4"]


def test_failed_download_leaves_nothing_behind(router, client, tmp_path):
    router.get(RESULT_URL).mock(return_value=httpx.Response(404, text="expired"))
    with pytest.raises(InvalidInputError):
        client.download(RESULT_URL, tmp_path / "clip.mp4")
    assert list(tmp_path.iterdir()) == []


# --- the ClipAnimator ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("seconds", "expected"), [(1, "5"), (5, "5"), (7.4, "5"), (7.5, "5"), (7.6, "10"), (10, "10"), (20, "10")]
)
def test_nearest_duration(seconds, expected):
    assert nearest_duration(seconds) == expected


def animator(router, client, **kwargs) -> KlingClipAnimator:
    host = KieFileHost("kie-test-key", transport=httpx.MockTransport(router.handler))
    return KlingClipAnimator(client, host, width=320, height=180, **kwargs)


def mock_happy_path(router, small_clip, *, polls=2):
    upload = router.post(UPLOAD).mock(return_value=httpx.Response(200, json=DOC_UPLOAD_OK))
    create = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    states = [httpx.Response(200, json=record("generating"))] * (polls - 1)
    poll = router.get(RECORD).mock(side_effect=[*states, httpx.Response(200, json=record("success", urls=[RESULT_URL]))])
    download = router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=small_clip))
    return upload, create, poll, download


@pytest.mark.parametrize(("requested", "sent", "usd"), [(4.2, "5", 0.13), (9.0, "10", 0.26)])
def test_animate_uploads_creates_waits_and_downloads(router, client, composite, tmp_path, small_clip,
                                                     requested, sent, usd):
    upload, create, poll, download = mock_happy_path(router, small_clip)
    out = tmp_path / "videos" / "scene-01.mp4"
    kling = animator(router, client)
    assert isinstance(kling, ClipAnimator)

    result = kling.animate(ClipRequest(image_path=composite, motion_prompt="Pan left", duration_s=requested,
                                       out_path=out))

    assert result.path == out and out.is_file()
    assert result.duration_s == pytest.approx(1.0, abs=0.1)
    assert result.cost.usd == pytest.approx(usd) and result.cost.unit == "clip" and result.cost.units == 1
    body = json.loads(create.calls.last.request.content)
    assert body["input"]["image_url"] == DOC_UPLOAD_OK["data"]["downloadUrl"]
    assert body["input"]["duration"] == sent
    assert body["input"]["prompt"] == "Pan left"
    assert upload.call_count == create.call_count == 1 and poll.call_count == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["scene-01.mp4"]  # no task note left behind


def test_cost_per_clip_is_configurable(router, client, composite, tmp_path, small_clip):
    mock_happy_path(router, small_clip)
    kling = animator(router, client, usd_per_5s_clip=0.21)
    result = kling.animate(ClipRequest(image_path=composite, motion_prompt="p", duration_s=10,
                                       out_path=tmp_path / "c.mp4"))
    assert result.cost.usd == pytest.approx(0.42)


def test_a_retry_after_timeout_resumes_the_paid_task_instead_of_paying_again(router, client, clock, composite,
                                                                              tmp_path, small_clip):
    out = tmp_path / "videos" / "scene-01.mp4"
    upload = router.post(UPLOAD).mock(return_value=httpx.Response(200, json=DOC_UPLOAD_OK))
    create = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    poll = router.get(RECORD).mock(return_value=httpx.Response(200, json=record("generating")))
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=small_clip))
    request = ClipRequest(image_path=composite, motion_prompt="Pan left", duration_s=5, out_path=out)
    kling = animator(router, client, timeout_s=60)

    with pytest.raises(RetriableError, match="did not finish within 1 minute"):
        kling.animate(request)
    assert not out.exists()

    poll.mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    result = kling.animate(request)

    assert result.path.is_file() and result.cost.usd == pytest.approx(0.13)
    assert upload.call_count == 1 and create.call_count == 1  # the second attempt paid nothing new
    assert sorted(p.name for p in out.parent.iterdir()) == ["scene-01.mp4"]


def test_an_error_asking_about_the_paid_task_keeps_it_for_the_next_try(router, client, clock, composite, tmp_path,
                                                                     small_clip):
    """A key revoked (or credits spent) while the clip is made: the task is paid for and may finish,
    so its note stays, and the try after the key is mended collects it without a new createTask."""
    out = tmp_path / "videos" / "scene-01.mp4"
    upload, create, poll, _ = mock_happy_path(router, small_clip, polls=1)
    poll.mock(return_value=httpx.Response(200, json=envelope(401, "Unauthorized")))
    request = ClipRequest(image_path=composite, motion_prompt="Pan left", duration_s=5, out_path=out)
    kling = animator(router, client, timeout_s=60)

    for _attempt in range(2):  # the first try and a resumed one, both refused
        with pytest.raises(ApiFailureError, match="unauthorized"):
            kling.animate(request)
        assert out.with_name(".scene-01.mp4.kling-task.json").is_file()

    poll.mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    assert kling.animate(request).path.is_file()
    assert upload.call_count == 1 and create.call_count == 1


def test_a_changed_prompt_does_not_resume_the_old_task(router, client, composite, tmp_path, small_clip):
    out = tmp_path / "scene-01.mp4"
    upload, create, poll, _ = mock_happy_path(router, small_clip, polls=1)
    kling = animator(router, client, timeout_s=60)
    note = out.with_name(".scene-01.mp4.kling-task.json")
    note.write_text(json.dumps({"task_id": "task_old", "fingerprint": "for-another-prompt"}))

    kling.animate(ClipRequest(image_path=composite, motion_prompt="new prompt", duration_s=5, out_path=out))

    assert create.call_count == 1
    assert poll.calls.last.request.url.params["taskId"] == TASK
    assert not note.exists()


def test_a_failed_task_is_reported_and_forgotten(router, client, composite, tmp_path):
    router.post(UPLOAD).mock(return_value=httpx.Response(200, json=DOC_UPLOAD_OK))
    router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    router.get(RECORD).mock(return_value=httpx.Response(200, json=record("fail", fail_code="400",
                                                                          fail_msg="sensitive content")))
    out = tmp_path / "scene-01.mp4"
    with pytest.raises(InvalidInputError) as caught:
        animator(router, client).animate(ClipRequest(image_path=composite, motion_prompt="p", duration_s=5,
                                                     out_path=out))
    assert caught.value.notion_status is NotionStatus.ERROR_INVALID_INPUT
    assert list(tmp_path.glob(".*kling-task.json")) == []


def test_a_result_that_is_not_a_video_is_an_api_failure(router, client, composite, tmp_path):
    mock_happy_path(router, b"")
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=b"<html>not a video</html>"))
    with pytest.raises(ApiFailureError, match="not a readable video"):
        animator(router, client).animate(ClipRequest(image_path=composite, motion_prompt="p", duration_s=5,
                                                     out_path=tmp_path / "c.mp4"))


def test_off_contract_result_is_normalised_at_real_size(router, client, composite, tmp_path):
    """Kling answering 1280x720 with an audio track still yields the contract's 1920x1080, no audio."""
    source = tmp_path / "odd.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=1280x720:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                "-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                "-shortest", str(source)])
    mock_happy_path(router, source.read_bytes())
    host = KieFileHost("kie-test-key", transport=httpx.MockTransport(router.handler))
    kling = KlingClipAnimator(client, host)  # default: 1920x1080

    result = kling.animate(ClipRequest(image_path=composite, motion_prompt="p", duration_s=5,
                                       out_path=tmp_path / "videos" / "c.mp4"))

    info = probe(result.path)
    assert info.video is not None and (info.video.width, info.video.height) == (1920, 1080)
    assert info.video.codec == "h264" and info.audio is None
    assert result.duration_s == pytest.approx(1.0, abs=0.1)


# --- factory ---------------------------------------------------------------------------------------
def test_factory_needs_kie_api_key(repo_root):
    channel = load_channel(repo_root / "channels" / "wild_frontiers.yaml")
    with pytest.raises(ApiFailureError, match="KIE_API_KEY") as caught:
        create_clips(ProviderSettings(), channel)
    assert caught.value.notion_status is NotionStatus.ERROR_API_FAILURE

    settings = ProviderSettings(kie_api_key=SecretStr("k"), kling_timeout_s=300)
    built = registry.build("clips", "kling", settings, channel)
    assert isinstance(built, KlingClipAnimator) and built.timeout_s == 300
    assert built.client.model == "kling/v2-5-turbo-image-to-video-pro"
