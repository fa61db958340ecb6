"""Gemini 2.5 Flash Image ("Nano Banana") through KIE.ai, against HTTP-level mocks of the documented API.

Fixtures follow:
- createTask: https://docs.kie.ai/market/google/nano-banana (POST https://api.kie.ai/api/v1/jobs/createTask,
  Bearer auth, {"model": "google/nano-banana", "callBackUrl"?, "input": {"prompt", "output_format":
  "png"|"jpeg", "image_size": "1:1"|"16:9"|...}}; 200 example {"code": 200, "msg": "success", "data": {"taskId": ...}})
- recordInfo: https://docs.kie.ai/market/common/get-task-detail
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
import respx
from kie_api_fixtures import CREATE, RECORD, created, market_client
from kie_api_fixtures import record as kie_record
from PIL import Image
from pydantic import SecretStr

from vidgen.channels import load_channel
from vidgen.errors import ApiFailureError, RetriableError
from vidgen.providers import registry
from vidgen.providers.base import ImageGenerator, ImageRequest
from vidgen.providers.kie_images import KieImageGenerator
from vidgen.providers.settings import ProviderSettings

RESULT_URL = "https://tempfile.aiquickdraw.com/i/nano-1.png"
TASK = "task_nanobanana_1765180586443"
DOC_CREATE_OK = created(TASK)


def record(state: str, **fields) -> dict:
    return kie_record(TASK, "google/nano-banana", state, **fields)


def picture(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1344, 768), (40, 90, 160)).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(assert_all_mocked=True)


@pytest.fixture
def images(router) -> KieImageGenerator:
    return KieImageGenerator(market_client(router, "image"), timeout_s=60)


def request_for(tmp_path: Path) -> ImageRequest:
    return ImageRequest(prompt="A herd crossing a river at dawn", style_preamble="warm documentary photograph",
                        palette=["#203040"], out_path=tmp_path / "assets" / "scene_00.png")


def test_it_is_an_image_generator_named_after_the_channel_yaml_value(images):
    assert isinstance(images, ImageGenerator) and images.name == "kie"


def test_a_picture_is_one_documented_task_with_the_gemini_adapters_prompt(router, images, tmp_path):
    create = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    router.get(RECORD).mock(side_effect=[httpx.Response(200, json=record("generating")),
                                         httpx.Response(200, json=record("success", urls=[RESULT_URL]))])
    download = router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=picture("PNG")))

    result = images.generate(request_for(tmp_path))

    sent = json.loads(create.calls.last.request.content)
    assert sent["model"] == "google/nano-banana"
    assert (sent["input"]["output_format"], sent["input"]["image_size"]) == ("png", "16:9")
    assert sent["input"]["prompt"].startswith("Style: warm documentary photograph\nScene: A herd crossing")
    assert "authorization" not in download.calls.last.request.headers
    assert (result.width, result.height, result.cost.usd) == (1344, 768, 0.039)
    assert result.path.read_bytes() == picture("PNG")
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["scene_00.png"]  # no note, no download left


def test_a_jpeg_result_is_kept_as_png(router, images, tmp_path):
    router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    router.get(RECORD).mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=picture("JPEG")))

    result = images.generate(request_for(tmp_path))

    with Image.open(result.path) as img:
        assert (img.format, img.size) == ("PNG", (1344, 768))


def test_a_retry_after_a_timeout_waits_on_the_picture_already_paid_for(router, images, tmp_path):
    create = router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    poll = router.get(RECORD).mock(return_value=httpx.Response(200, json=record("generating")))
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=picture("PNG")))

    with pytest.raises(RetriableError):
        images.generate(request_for(tmp_path))
    poll.mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    images.generate(request_for(tmp_path))

    assert create.call_count == 1


def test_a_result_that_is_no_picture_is_an_api_failure_and_forgotten(router, images, tmp_path):
    router.post(CREATE).mock(return_value=httpx.Response(200, json=DOC_CREATE_OK))
    router.get(RECORD).mock(return_value=httpx.Response(200, json=record("success", urls=[RESULT_URL])))
    router.get(RESULT_URL).mock(return_value=httpx.Response(200, content=b"<html>gone</html>"))

    with pytest.raises(ApiFailureError, match="not a readable image") as caught:
        images.generate(request_for(tmp_path))
    assert caught.value.provider == "kie"
    assert list((tmp_path / "assets").iterdir()) == []


def test_the_registry_builds_it_from_the_channel_yaml_and_needs_the_kie_key(repo_root: Path):
    channel = load_channel(repo_root / "channels" / "wild_frontiers.yaml")
    built = registry.build("images", "kie", ProviderSettings(kie_api_key=SecretStr("k")), channel)
    assert isinstance(built, KieImageGenerator) and built.model == "google/nano-banana"
    with pytest.raises(ApiFailureError, match="KIE_API_KEY is not set"):
        registry.build("images", "kie", ProviderSettings(), channel)
