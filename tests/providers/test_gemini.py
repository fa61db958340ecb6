"""The Gemini adapters against HTTP-level mocks of generativelanguage.googleapis.com.

The real `google-genai` SDK runs unmodified; `respx` answers its httpx requests the way the
documented API does (see `gemini_api_fixtures.py` for the source of every body).
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx
from fake_clock import FakeClock
from gemini_api_fixtures import (
    API_KEY_INVALID,
    DEADLINE_EXCEEDED,
    FAILED_PRECONDITION,
    GOOGLE_HOST,
    INTERNAL,
    INVALID_ARGUMENT,
    NOT_FOUND,
    PER_DAY_QUOTA,
    PER_MINUTE_QUOTA,
    PERMISSION_DENIED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    INTERACTION_ID,
    candidate_stopped,
    image_response,
    interaction,
    jpeg_of,
    png_of,
    prompt_blocked,
    script_document,
    text_response,
)
from PIL import Image
from pydantic import SecretStr

from vidgen.channels import Channel, load_channel
from vidgen.errors import (
    ApiFailureError,
    InvalidInputError,
    NeedsReviewError,
    ProviderError,
    RetriableError,
)
from vidgen.providers import gemini
from vidgen.providers.base import ImageGenerator, ImageRequest, ScriptRequest, ScriptWriter
from vidgen.providers.registry import build
from vidgen.providers.settings import ProviderSettings
from vidgen.script_repair import UnusableScriptError, write_checked_script
from vidgen.statuses import NotionStatus

API_KEY = "test-gemini-key"
INTERACTIONS_PATH = "/v1beta/interactions"
IMAGE_PATH = "/v1beta/models/gemini-2.5-flash-image:generateContent"


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def channel() -> Channel:
    return load_channel(REPO / "channels" / "wild_frontiers.yaml")


@pytest.fixture(scope="module")
def settings() -> ProviderSettings:
    return ProviderSettings(gemini_api_key=SecretStr(API_KEY))


@pytest.fixture
def google():
    """Google's endpoint, mocked; any request not routed here fails the test (no real network)."""
    with respx.mock(base_url=GOOGLE_HOST, assert_all_called=True) as router:
        yield router


# Adapters are stateless between calls, so one per module keeps the suite fast (each client
# loads the CA bundle a few times); the respx router is still fresh for every test.
@pytest.fixture(scope="module")
def writer(settings: ProviderSettings, channel: Channel) -> gemini.GeminiScriptWriter:
    built = gemini.create_script(settings, channel)
    built._sleep = lambda seconds: None  # polls never really wait
    return built


@pytest.fixture(scope="module")
def painter(settings: ProviderSettings, channel: Channel) -> gemini.GeminiImageGenerator:
    return gemini.create_images(settings, channel)


def script_request(**overrides) -> ScriptRequest:
    fields = dict(
        title="The Wolves of Yellowstone",
        topic="How reintroducing wolves changed the rivers of Yellowstone",
        story_direction="Start in the winter of 1995; end at the river.",
        channel_name="Wild Frontiers",
        style_preamble="Hyper-realistic nature documentary still, golden-hour light",
        language="en",
        scenes=3,
        words_per_scene=22,
    )
    fields.update(overrides)
    return ScriptRequest(**fields)


def image_request(tmp_path: Path, **overrides) -> ImageRequest:
    fields = dict(
        prompt="a grey wolf crossing a snowy river valley at dawn",
        style_preamble="Hyper-realistic nature documentary still, golden-hour light",
        palette=["#1d3b2a", "#c8a24a"],
        seed=7,
        out_path=tmp_path / "assets" / "scene_00.png",
    )
    fields.update(overrides)
    return ImageRequest(**fields)


def sent_json(route: respx.Route) -> dict:
    return json.loads(route.calls.last.request.content)


# --- the script writer: a background interaction, kept by its id -----------------------------
def answered(google, final: dict, *, pending_polls: int = 1) -> tuple[respx.Route, respx.Route]:
    """POST /v1beta/interactions answers `in_progress`; GET answers `in_progress` `pending_polls` times, then `final`."""
    create = google.post(INTERACTIONS_PATH).mock(return_value=httpx.Response(200, json=interaction("in_progress")))
    poll = google.get(f"{INTERACTIONS_PATH}/{INTERACTION_ID}").mock(
        side_effect=[httpx.Response(200, json=interaction("in_progress"))] * pending_polls
        + [httpx.Response(200, json=final)]
    )
    return create, poll


def script_answer(document: dict | str, **usage) -> dict:
    return interaction("completed", document if isinstance(document, str) else json.dumps(document), **usage)


def test_script_request_matches_the_documented_interactions_call(google, writer):
    create, poll = answered(google, script_answer(script_document(3)))
    writer.write(script_request())

    request = create.calls.last.request
    assert str(request.url) == f"{GOOGLE_HOST}{INTERACTIONS_PATH}"
    assert request.headers["x-goog-api-key"] == API_KEY
    body = sent_json(create)
    assert (body["model"], body["background"], body["store"]) == ("gemini-2.5-flash", True, True)
    for expected in (
        "The Wolves of Yellowstone",
        "How reintroducing wolves changed the rivers of Yellowstone",
        "Start in the winter of 1995",
        "exactly 3 scenes",
        "about 22 words",
    ):
        assert expected in body["input"]
    assert "Wild Frontiers" in body["system_instruction"] and "golden-hour light" in body["system_instruction"]
    response_format = body["response_format"]
    assert (response_format["type"], response_format["mime_type"]) == ("text", "application/json")
    schema = response_format["schema"]
    assert schema["type"] == "object" and set(schema["required"]) == {"title", "description", "scenes"}
    scene = schema["properties"]["scenes"]["items"]  # written out: no $ref left
    assert "$ref" not in json.dumps(schema) and scene["type"] == "object"
    assert set(scene["required"]) == {"index", "narration", "image_prompt", "motion_prompt", "sound_cue"}
    assert scene["properties"]["index"]["type"] == "integer"
    assert poll.call_count == 2 and poll.calls.last.request.headers["x-goog-api-key"] == API_KEY


def test_script_prompt_leaves_out_an_empty_story_direction(google, writer):
    create, _ = answered(google, script_answer(script_document(2)))
    writer.write(script_request(story_direction="  ", scenes=2))
    assert "Story direction" not in sent_json(create)["input"] and "exactly 2 scenes" in sent_json(create)["input"]


def test_base_url_from_settings_replaces_googles_endpoint(channel):
    settings = ProviderSettings(gemini_api_key=SecretStr(API_KEY), gemini_base_url="http://127.0.0.1:9/gemini")
    writer = gemini.create_script(settings, channel)
    with respx.mock(base_url="http://127.0.0.1:9/gemini", assert_all_called=True) as router:
        create, _ = answered(router, script_answer(script_document(1)), pending_polls=0)
        writer.write(script_request(scenes=1))
    assert create.calls.last.request.headers["x-goog-api-key"] == API_KEY


def test_the_interaction_is_noted_while_it_runs_and_a_new_writer_collects_it(google, writer, tmp_path):
    """A worker killed while Google writes the script: the next one finds the note in the workspace and
    waits on the same stored interaction instead of paying for another."""
    create = google.post(INTERACTIONS_PATH).mock(return_value=httpx.Response(200, json=interaction("in_progress")))
    poll = google.get(f"{INTERACTIONS_PATH}/{INTERACTION_ID}").mock(
        return_value=httpx.Response(200, json=interaction("in_progress")))
    clock = FakeClock()
    slow = gemini.GeminiScriptWriter(API_KEY, timeout_s=30, sleep=clock.sleep, clock=clock)
    request = script_request(note_dir=tmp_path)

    with pytest.raises(RetriableError, match=f"did not finish within 30 s \\(interaction {INTERACTION_ID}\\)"):
        slow.write(request)
    (note,) = tmp_path.glob(".script-*.gemini-task.json")
    assert json.loads(note.read_text())["task_id"] == INTERACTION_ID

    poll.mock(return_value=httpx.Response(200, json=script_answer(script_document(3))))
    result = writer.write(request)

    assert create.call_count == 1 and [s.index for s in result.script.scenes] == [0, 1, 2]
    assert not list(tmp_path.iterdir()), "the note goes once the answer is read"


def test_an_interaction_google_no_longer_keeps_is_asked_for_again(google, writer, tmp_path):
    request = script_request(note_dir=tmp_path)
    note_for = gemini.fingerprint("gemini-2.5-flash", gemini.script_instructions(request), gemini.script_prompt(request))
    note = tmp_path / f".script-{note_for[:16]}.gemini-task.json"
    note.write_text(json.dumps({"task_id": "v1_gone", "fingerprint": note_for}))
    gone = google.get(f"{INTERACTIONS_PATH}/v1_gone").mock(return_value=httpx.Response(404, json=NOT_FOUND))
    create, _ = answered(google, script_answer(script_document(3)), pending_polls=0)

    writer.write(request)

    assert gone.call_count == 1 and create.call_count == 1 and not note.exists()


def test_a_re_ask_states_the_previous_answers_problems_in_the_prompt(google, writer):
    """Over HTTP: 100 scenes, then a script numbered from 1; the second request names the problem."""
    too_many = script_document(100)
    from_one = script_document(3)
    for scene in from_one["scenes"]:
        scene["index"] += 1
    create = google.post(INTERACTIONS_PATH).mock(return_value=httpx.Response(200, json=interaction("in_progress")))
    google.get(f"{INTERACTIONS_PATH}/{INTERACTION_ID}").mock(
        side_effect=[httpx.Response(200, json=script_answer(too_many)), httpx.Response(200, json=script_answer(from_one))])
    result = write_checked_script(writer.write, script_request(), provider="gemini", min_scenes=3, max_scenes=40)

    assert create.call_count == 2
    first, second = (json.loads(call.request.content)["input"] for call in create.calls)
    assert "previous answer" not in first
    assert "Your previous answer to this request could not be used:\n- script has 100 scenes; the channel allows" \
        " at most 40\nWrite the whole script again" in second
    assert [s.index for s in result.script.scenes] == [0, 1, 2]
    assert result.cost.units == 2 * (412 + 980 + 1200)


def test_an_answer_outside_the_schema_is_re_asked_then_an_api_failure_carrying_it(google, writer):
    empty_narration = json.dumps({**script_document(1), "scenes": [{**script_document(1)["scenes"][0], "narration": ""}]})
    create = google.post(INTERACTIONS_PATH).mock(return_value=httpx.Response(200, json=interaction("in_progress")))
    google.get(f"{INTERACTIONS_PATH}/{INTERACTION_ID}").mock(
        return_value=httpx.Response(200, json=script_answer(empty_narration)))
    with pytest.raises(UnusableScriptError) as caught:
        write_checked_script(writer.write, script_request(), provider="gemini", min_scenes=1, max_scenes=40)

    assert create.call_count == 2
    assert "- scenes.0.narration: String should have at least 1 character" in sent_json(create)["input"]
    error = caught.value
    assert error.notion_status is NotionStatus.ERROR_API_FAILURE
    assert error.answer == empty_narration and '"narration": ""' in str(error)
    assert error.cost.usd > 0


# --- the script writer: answers ---------------------------------------------------------------
def test_script_parses_into_the_script_model_and_costs_tokens(google):
    pricing = gemini.GeminiPricing(input_usd_per_million_tokens=1.0, output_usd_per_million_tokens=10.0)
    writer = gemini.GeminiScriptWriter(API_KEY, pricing=pricing, sleep=lambda s: None)
    document = script_document(3)
    answered(google, script_answer(document, input_tokens=1000, output_tokens=2000, thought_tokens=500))
    result = writer.write(script_request())

    assert result.script.model_dump() == document
    # thinking tokens are billed at the output price: 1000 * $1/M + (2000 + 500) * $10/M
    assert result.cost.usd == pytest.approx(0.001 + 0.025)
    assert (result.cost.units, result.cost.unit) == (3500, "tokens")


def test_default_script_pricing_is_googles_flash_list_price(google, writer):
    answered(google, script_answer(script_document(1), input_tokens=1_000_000, output_tokens=1_000_000,
                                   thought_tokens=None))
    assert writer.write(script_request(scenes=1)).cost.usd == pytest.approx(0.30 + 2.50)


def test_scene_count_outside_the_request_is_returned_for_the_caller_to_judge(google, writer):
    answered(google, script_answer(script_document(2)))
    result = writer.write(script_request(scenes=6))
    assert len(result.script.scenes) == 2
    assert result.script.problems(min_scenes=3, max_scenes=40) == ["script has 2 scene(s); at least 3 are needed"]


@pytest.mark.parametrize(
    "text, why",
    [
        ('{"title": "Wolves", "description": "x", "scenes": [', "truncated JSON"),
        ("Here is your script: wolves!", "prose instead of JSON"),
        (json.dumps({"title": "Wolves", "description": "x"}), "scenes missing"),
        (json.dumps({**script_document(1), "scenes": [{"index": 0, "narration": ""}]}), "scene fields missing"),
    ],
)
def test_malformed_script_json_is_an_api_failure(google, writer, text, why):
    answered(google, script_answer(text))
    with pytest.raises(ApiFailureError, match="unexpected response") as caught:
        writer.write(script_request())
    assert caught.value.notion_status is NotionStatus.ERROR_API_FAILURE, why


def test_a_body_that_is_not_json_is_an_api_failure(google, writer):
    google.post(INTERACTIONS_PATH).mock(return_value=httpx.Response(200, text="<html>proxy error</html>"))
    with pytest.raises(ApiFailureError, match="unexpected response"):
        writer.write(script_request())


def test_a_completed_interaction_without_text_is_an_api_failure(google, writer):
    answered(google, interaction("completed"))
    with pytest.raises(ApiFailureError, match="no script text"):
        writer.write(script_request())


def test_a_script_cut_off_is_an_api_failure(google, writer):
    answered(google, interaction("incomplete", '{"title": "Wol', errors=[
        {"code": "MAX_TOKENS", "message": "The output reached the maximum number of tokens."}]))
    with pytest.raises(ApiFailureError, match="cut off .*MAX_TOKENS"):
        writer.write(script_request())


def test_a_refused_topic_needs_review(google, writer):
    answered(google, interaction("failed", errors=[{"code": "PROHIBITED_CONTENT", "message": "The prompt was blocked for safety reasons."}]))
    with pytest.raises(NeedsReviewError, match="refused by Gemini .*PROHIBITED_CONTENT") as caught:
        writer.write(script_request())
    assert caught.value.notion_status is NotionStatus.ERROR_MANUAL_REVIEW


def test_a_failed_interaction_for_another_reason_is_an_api_failure(google, writer):
    answered(google, interaction("failed", errors=[{"code": "INTERNAL", "message": "An internal error has occurred."}]))
    with pytest.raises(ApiFailureError, match=f"interaction {INTERACTION_ID} failed: INTERNAL An internal error"):
        writer.write(script_request())


# --- the image generator ----------------------------------------------------------------------
def test_image_request_matches_the_documented_image_generation_call(google, painter, tmp_path):
    route = google.post(IMAGE_PATH).mock(return_value=httpx.Response(200, json=image_response(png_of(64, 36))))
    painter.generate(image_request(tmp_path))

    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == f"{GOOGLE_HOST}{IMAGE_PATH}"
    assert request.headers["x-goog-api-key"] == API_KEY
    body = sent_json(route)
    prompt = body["contents"][0]["parts"][0]["text"]
    assert prompt.index("golden-hour light") < prompt.index("a grey wolf crossing")  # style first
    assert "#1d3b2a, #c8a24a" in prompt
    config = body["generationConfig"]
    assert config["responseModalities"] == ["IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "16:9"}
    assert config["seed"] == 7


def test_png_answer_is_saved_untouched_with_its_size_and_cost(google, painter, tmp_path):
    png = png_of(160, 90)
    google.post(IMAGE_PATH).mock(
        return_value=httpx.Response(200, json=image_response(png, with_text="Here is the wolf."))
    )
    request = image_request(tmp_path)
    result = painter.generate(request)

    assert result.path == request.out_path
    assert request.out_path.read_bytes() == png
    assert (result.width, result.height) == (160, 90)
    assert result.cost.usd == pytest.approx(0.039)
    assert (result.cost.units, result.cost.unit) == (1, "image")
    assert not list(request.out_path.parent.glob("*.part*"))


def test_jpeg_answer_at_real_size_is_converted_to_png(google, painter, tmp_path):
    """Gemini 2.5 Flash Image answers 16:9 requests with 1344x768 pictures."""
    google.post(IMAGE_PATH).mock(
        return_value=httpx.Response(200, json=image_response(jpeg_of(1344, 768), mime_type="image/jpeg"))
    )
    result = painter.generate(image_request(tmp_path))

    assert (result.width, result.height) == (1344, 768)
    with Image.open(result.path) as saved:
        assert saved.format == "PNG"
        assert saved.size == (1344, 768)


def test_image_price_is_configurable(google, settings, channel, tmp_path):
    painter = gemini.create_images(settings, channel, pricing=gemini.GeminiPricing(image_usd=0.134))
    google.post(IMAGE_PATH).mock(return_value=httpx.Response(200, json=image_response(png_of(32, 18))))
    assert painter.generate(image_request(tmp_path)).cost.usd == pytest.approx(0.134)


@pytest.mark.parametrize("block_reason", ["SAFETY", "PROHIBITED_CONTENT", "IMAGE_SAFETY", "OTHER"])
def test_blocked_image_prompt_needs_review(google, painter, tmp_path, block_reason):
    google.post(IMAGE_PATH).mock(return_value=httpx.Response(200, json=prompt_blocked(block_reason)))
    request = image_request(tmp_path)
    with pytest.raises(NeedsReviewError, match=f"blockReason {block_reason}") as caught:
        painter.generate(request)
    assert caught.value.notion_status is NotionStatus.ERROR_MANUAL_REVIEW
    assert not request.out_path.exists()


@pytest.mark.parametrize("finish_reason", ["SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT"])
def test_image_stopped_by_safety_needs_review(google, painter, tmp_path, finish_reason):
    google.post(IMAGE_PATH).mock(return_value=httpx.Response(200, json=candidate_stopped(finish_reason)))
    request = image_request(tmp_path)
    with pytest.raises(NeedsReviewError, match=f"finishReason {finish_reason}"):
        painter.generate(request)
    assert not request.out_path.exists()


def test_text_only_answer_needs_review_and_quotes_the_model(google, painter, tmp_path):
    refusal = text_response("I can't create images of that. Try describing the scene differently.")
    google.post(IMAGE_PATH).mock(return_value=httpx.Response(200, json=refusal))
    with pytest.raises(NeedsReviewError, match="no image .*I can't create images of that"):
        painter.generate(image_request(tmp_path))


def test_no_image_finish_reason_needs_review(google, painter, tmp_path):
    google.post(IMAGE_PATH).mock(return_value=httpx.Response(200, json=candidate_stopped("NO_IMAGE")))
    with pytest.raises(NeedsReviewError, match="finishReason NO_IMAGE"):
        painter.generate(image_request(tmp_path))


def test_image_data_that_is_not_an_image_is_an_api_failure(google, painter, tmp_path):
    google.post(IMAGE_PATH).mock(return_value=httpx.Response(200, json=image_response(b"not a picture at all")))
    request = image_request(tmp_path)
    with pytest.raises(ApiFailureError, match="not a readable image"):
        painter.generate(request)
    assert not request.out_path.exists()


# --- errors: every documented failure maps to one class, with no SDK retry --------------------
ERROR_CASES = [
    pytest.param(400, INVALID_ARGUMENT, {}, InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, id="400-invalid-argument"),
    pytest.param(400, API_KEY_INVALID, {}, ApiFailureError, NotionStatus.ERROR_API_FAILURE, id="400-api-key-invalid"),
    pytest.param(400, FAILED_PRECONDITION, {}, ApiFailureError, NotionStatus.ERROR_API_FAILURE, id="400-failed-precondition"),
    pytest.param(401, UNAUTHENTICATED, {}, ApiFailureError, NotionStatus.ERROR_API_FAILURE, id="401-unauthenticated"),
    pytest.param(403, PERMISSION_DENIED, {}, ApiFailureError, NotionStatus.ERROR_API_FAILURE, id="403-permission-denied"),
    pytest.param(404, NOT_FOUND, {}, InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, id="404-not-found"),
    pytest.param(429, PER_MINUTE_QUOTA, {}, RetriableError, NotionStatus.ERROR_RETRIABLE, id="429-per-minute"),
    pytest.param(500, INTERNAL, {}, RetriableError, NotionStatus.ERROR_RETRIABLE, id="500-internal"),
    pytest.param(503, UNAVAILABLE, {}, RetriableError, NotionStatus.ERROR_RETRIABLE, id="503-unavailable"),
    pytest.param(504, DEADLINE_EXCEEDED, {}, RetriableError, NotionStatus.ERROR_RETRIABLE, id="504-deadline"),
]


@pytest.mark.parametrize("code, body, headers, error_class, board_status", ERROR_CASES)
def test_documented_errors_map_to_one_class_without_sdk_retries(
    google, writer, code, body, headers, error_class, board_status
):
    route = google.post(INTERACTIONS_PATH).mock(return_value=httpx.Response(code, json=body, headers=headers))
    with pytest.raises(ProviderError) as caught:
        writer.write(script_request())
    error = caught.value
    assert type(error) is error_class
    assert error.notion_status is board_status
    assert error.status_code == code
    assert error.provider == "gemini"
    assert body["error"]["status"] in str(error)
    assert route.call_count == 1  # the SDK's own retry is off: retries are the orchestrator's


def test_the_same_mapping_applies_to_image_calls(google, painter, tmp_path):
    route = google.post(IMAGE_PATH).mock(return_value=httpx.Response(503, json=UNAVAILABLE))
    with pytest.raises(RetriableError):
        painter.generate(image_request(tmp_path))
    assert route.call_count == 1


def test_per_minute_quota_retries_after_googles_retry_delay(google, writer):
    google.post(INTERACTIONS_PATH).mock(return_value=httpx.Response(429, json=PER_MINUTE_QUOTA))
    with pytest.raises(RetriableError) as caught:
        writer.write(script_request())
    assert caught.value.retry_after == pytest.approx(26.0)


def test_retry_after_header_wins_over_the_body(google, writer):
    google.post(INTERACTIONS_PATH).mock(
        return_value=httpx.Response(429, json=PER_MINUTE_QUOTA, headers={"Retry-After": "41"})
    )
    with pytest.raises(RetriableError) as caught:
        writer.write(script_request())
    assert caught.value.retry_after == pytest.approx(41.0)


def test_daily_quota_is_an_api_failure_until_midnight_pacific(google, writer):
    google.post(INTERACTIONS_PATH).mock(return_value=httpx.Response(429, json=PER_DAY_QUOTA))
    with pytest.raises(ApiFailureError, match="daily quota exhausted") as caught:
        writer.write(script_request())
    error = caught.value
    assert error.notion_status is NotionStatus.ERROR_API_FAILURE
    assert error.status_code == 429
    assert error.retry_after == pytest.approx(gemini.seconds_until_quota_reset(), abs=5)
    assert 0 < error.retry_after <= 25 * 3600


def test_quota_reset_is_next_midnight_in_pacific_time():
    pacific = ZoneInfo("America/Los_Angeles")
    assert gemini.seconds_until_quota_reset(datetime(2025, 6, 1, 23, 0, tzinfo=pacific)) == 3600
    # 2025-03-09 is the spring-forward day: 00:30 PST to the next midnight (PDT) is 22.5 h
    assert gemini.seconds_until_quota_reset(datetime(2025, 3, 9, 0, 30, tzinfo=pacific)) == 22.5 * 3600
    # the same instant written in UTC gives the same answer
    utc_instant = datetime(2025, 6, 2, 6, 0, tzinfo=ZoneInfo("UTC"))  # 23:00 PDT on June 1
    assert gemini.seconds_until_quota_reset(utc_instant) == 3600


def test_non_json_gateway_error_is_retriable(google, writer):
    google.post(INTERACTIONS_PATH).mock(return_value=httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(RetriableError) as caught:
        writer.write(script_request())
    assert caught.value.status_code == 502


@pytest.mark.parametrize(
    "failure", [httpx.ReadTimeout("read timed out"), httpx.ConnectTimeout("connect timed out")], ids=["read", "connect"]
)
def test_timeouts_are_retriable(google, writer, failure):
    route = google.post(INTERACTIONS_PATH).mock(side_effect=failure)
    with pytest.raises(RetriableError, match="timed out") as caught:
        writer.write(script_request())
    assert caught.value.notion_status is NotionStatus.ERROR_RETRIABLE
    assert route.call_count == 1


def test_connection_failure_is_retriable(google, painter, tmp_path):
    google.post(IMAGE_PATH).mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(RetriableError, match="network error"):
        painter.generate(image_request(tmp_path))


def test_the_client_carries_a_timeout_and_no_sdk_retries(writer):
    options = writer._client._api_client._http_options
    assert options.timeout == 120_000
    assert options.retry_options is not None and options.retry_options.attempts == 1
    assert isinstance(options.httpx_client, httpx.Client)


# --- factories --------------------------------------------------------------------------------
@pytest.mark.parametrize("factory", [gemini.create_script, gemini.create_images])
@pytest.mark.parametrize("key", [None, SecretStr(""), SecretStr("   ")])
def test_missing_api_key_fails_at_creation(factory, key, channel):
    with pytest.raises(ApiFailureError, match="GEMINI_API_KEY is not set") as caught:
        factory(ProviderSettings(gemini_api_key=key), channel)
    assert caught.value.notion_status is NotionStatus.ERROR_API_FAILURE


def test_registry_builds_the_gemini_providers(settings, channel):
    writer = build("script", "gemini", settings, channel)
    painter = build("images", "gemini", settings, channel)
    assert isinstance(writer, gemini.GeminiScriptWriter) and isinstance(writer, ScriptWriter)
    assert isinstance(painter, gemini.GeminiImageGenerator) and isinstance(painter, ImageGenerator)
    assert writer.model == "gemini-2.5-flash"
    assert painter.model == "gemini-2.5-flash-image"


def test_models_come_from_settings(channel):
    settings = ProviderSettings(
        gemini_api_key=SecretStr(API_KEY), gemini_script_model="gemini-2.5-pro", gemini_image_model="gemini-3-pro-image"
    )
    assert gemini.create_script(settings, channel).model == "gemini-2.5-pro"
    assert gemini.create_images(settings, channel).model == "gemini-3-pro-image"


def test_png_bytes_keeps_transparency_when_converting():
    out = io.BytesIO()
    Image.new("RGBA", (8, 4), (10, 20, 30, 128)).save(out, format="WEBP", lossless=True)
    data, width, height = gemini.png_bytes(out.getvalue())
    with Image.open(io.BytesIO(data)) as img:
        assert (img.format, img.mode, (width, height)) == ("PNG", "RGBA", (8, 4))
