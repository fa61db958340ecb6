"""The ElevenLabs adapters against HTTP-level mocks of api.elevenlabs.io.

The real `elevenlabs` SDK runs unmodified; `respx` answers its httpx requests the way the
documented API does (see `elevenlabs_api_fixtures.py` for the source of every body).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
import respx
from elevenlabs_api_fixtures import (
    BAD_PROMPT,
    CONCURRENT_LIMIT,
    ELEVENLABS_HOST,
    INTERNAL,
    INVALID_API_KEY,
    INVALID_PARAMETERS,
    MAX_CHARACTERS,
    MISSING_PERMISSIONS,
    MODEL_NOT_FOUND,
    QUOTA_EXCEEDED,
    SYSTEM_BUSY,
    TOO_MANY_CONCURRENT,
    VALIDATION_ERROR_422,
    VOICE_NOT_FOUND,
    encode_mp3,
    history_item,
    history_response,
    with_timestamps_response,
)
from pydantic import SecretStr

from vidgen.channels import Channel, load_channel
from vidgen.errors import ApiFailureError, InvalidInputError, ProviderError, RetriableError
from vidgen.providers import elevenlabs
from vidgen.providers.base import NarrationRequest, Narrator, SoundDesigner, SoundRequest, VoiceSpec
from vidgen.providers.registry import build
from vidgen.providers.settings import ProviderSettings
from vidgen.statuses import NotionStatus
from vidgen.workspace import fingerprint

API_KEY = "test-elevenlabs-key"
VOICE_ID = "JBFqnCBsd6RMkjVDRZzb"
TTS_PATH = f"/v1/text-to-speech/{VOICE_ID}/with-timestamps"
SFX_PATH = "/v1/sound-generation"
REPO = Path(__file__).resolve().parents[2]
TEXT = "The wolves came back  in 1995,\nand the rivers changed."


@pytest.fixture(scope="session")
def mp3(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Half a second of real MP3, encoded once per session."""
    return encode_mp3(tmp_path_factory.mktemp("elevenlabs") / "tone.mp3")


@pytest.fixture(scope="module")
def channel() -> Channel:
    return load_channel(REPO / "channels" / "wild_frontiers.yaml")


@pytest.fixture(scope="module")
def settings() -> ProviderSettings:
    return ProviderSettings(elevenlabs_api_key=SecretStr(API_KEY))


@pytest.fixture(scope="module")
def narrator(settings: ProviderSettings, channel: Channel) -> elevenlabs.ElevenLabsNarrator:
    return elevenlabs.create_narration(settings, channel)


@pytest.fixture(scope="module")
def designer(settings: ProviderSettings, channel: Channel) -> elevenlabs.ElevenLabsSoundDesigner:
    return elevenlabs.create_sound(settings, channel)


@pytest.fixture
def api():
    """ElevenLabs' endpoint, mocked; any request not routed here fails the test (no real network)."""
    with respx.mock(base_url=ELEVENLABS_HOST, assert_all_called=True) as router:
        yield router


def narration_request(tmp_path: Path, text: str = TEXT, **voice) -> NarrationRequest:
    spec = VoiceSpec(elevenlabs_voice_id=VOICE_ID, elevenlabs_model="eleven_multilingual_v2", **voice)
    return NarrationRequest(text=text, voice=spec, out_path=tmp_path / "audio" / "narration.wav")


def sound_request(tmp_path: Path, duration_s: float = 4.0) -> SoundRequest:
    return SoundRequest(cue="wind over snow, distant howl", duration_s=duration_s, out_path=tmp_path / "sfx" / "scene_00.wav")


# --- narration: request shape -----------------------------------------------------------------
def test_narration_request_matches_the_documented_with_timestamps_call(api, narrator, tmp_path, mp3):
    route = api.post(TTS_PATH).mock(return_value=httpx.Response(200, json=with_timestamps_response(mp3, TEXT)))
    narrator.narrate(narration_request(tmp_path))

    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url.path == TTS_PATH
    assert request.url.params["output_format"] == "mp3_44100_128"
    assert request.headers["xi-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert body["text"] == TEXT
    assert body["model_id"] == "eleven_multilingual_v2"
    assert body["voice_settings"] == {
        "stability": 0.5,
        "similarity_boost": 0.75,
        "style": 0.0,
        "use_speaker_boost": True,
        "speed": 1.0,
    }
    assert "language_code" not in body  # Multilingual v2 does not accept it


def test_voice_and_model_come_from_the_request(api, narrator, tmp_path, mp3):
    other_voice = "onwK4e9ZLuTAKqWW03F9"
    route = api.post(f"/v1/text-to-speech/{other_voice}/with-timestamps").mock(
        return_value=httpx.Response(200, json=with_timestamps_response(mp3, "Hello."))
    )
    spec = VoiceSpec(elevenlabs_voice_id=other_voice, elevenlabs_model="eleven_turbo_v2_5")
    narrator.narrate(NarrationRequest(text="Hello.", voice=spec, out_path=tmp_path / "n.mp3"))
    assert json.loads(route.calls.last.request.content)["model_id"] == "eleven_turbo_v2_5"


def test_voice_settings_are_configurable(api, settings, channel, tmp_path, mp3):
    calm = elevenlabs.ElevenLabsVoiceSettings(stability=0.8, speed=0.9, use_speaker_boost=False)
    narrator = elevenlabs.create_narration(settings, channel, voice_settings=calm)
    route = api.post(TTS_PATH).mock(return_value=httpx.Response(200, json=with_timestamps_response(mp3, TEXT)))
    narrator.narrate(narration_request(tmp_path))
    sent = json.loads(route.calls.last.request.content)["voice_settings"]
    assert (sent["stability"], sent["speed"], sent["use_speaker_boost"]) == (0.8, 0.9, False)


def test_base_url_comes_from_settings(channel, tmp_path, mp3):
    settings = ProviderSettings(elevenlabs_api_key=SecretStr(API_KEY), elevenlabs_base_url="http://127.0.0.1:9/el/")
    narrator = elevenlabs.create_narration(settings, channel)
    with respx.mock(assert_all_called=True) as router:
        route = router.post(f"http://127.0.0.1:9/el{TTS_PATH}").mock(
            return_value=httpx.Response(200, json=with_timestamps_response(mp3, TEXT))
        )
        narrator.narrate(narration_request(tmp_path))
    assert route.calls.last.request.headers["xi-api-key"] == API_KEY


# --- narration: answers -----------------------------------------------------------------------
def test_narration_writes_the_mp3_and_times_every_word(api, narrator, tmp_path, mp3):
    api.post(TTS_PATH).mock(return_value=httpx.Response(200, json=with_timestamps_response(mp3, TEXT)))
    request = narration_request(tmp_path)
    result = narrator.narrate(request)

    assert result.path == request.out_path.with_suffix(".mp3")  # the result's path is authoritative
    assert result.path.read_bytes() == mp3
    assert not request.out_path.exists()
    assert [w.word for w in result.words] == TEXT.split()
    first, last = result.words[0], result.words[-1]
    # character_alignment() starts at 0.05 s with 0.06 s per character
    assert (first.start_s, first.end_s) == pytest.approx((0.05, 0.05 + 3 * 0.06))
    assert last.word == "changed."
    assert last.end_s == pytest.approx(0.05 + len(TEXT) * 0.06)
    assert result.duration_s == pytest.approx(last.end_s)
    assert all(w.start_s < w.end_s for w in result.words)
    assert all(a.end_s <= b.start_s for a, b in zip(result.words, result.words[1:]))
    assert not list(result.path.parent.glob("*.part*"))


def test_narration_cost_is_per_character(api, settings, channel, tmp_path, mp3):
    narrator = elevenlabs.create_narration(settings, channel, pricing=elevenlabs.ElevenLabsPricing(usd_per_1k_characters=0.30))
    api.post(TTS_PATH).mock(return_value=httpx.Response(200, json=with_timestamps_response(mp3, TEXT)))
    cost = narrator.narrate(narration_request(tmp_path)).cost
    assert (cost.units, cost.unit) == (len(TEXT), "characters")
    assert cost.usd == pytest.approx(len(TEXT) / 1000 * 0.30)


def test_default_prices_fit_the_seeds_five_cents_per_video():
    """Seed: "ElevenLabs v3 (Audio & SFX) - Cost: $0.05 per video (narration + SFX)"."""
    pricing = elevenlabs.ElevenLabsPricing()
    words = ["wolves"] * 1000
    narration = pricing.narration_cost(len(" ".join(words)))  # ~1,000 words, ~7,000 characters
    assert 0.01 <= narration.usd <= 0.05
    six_scenes = narration.usd + 6 * pricing.sound_cost().usd
    assert six_scenes <= 0.06


def test_normalized_alignment_is_used_when_alignment_is_missing(api, narrator, tmp_path, mp3):
    body = with_timestamps_response(mp3, "In 1995.", normalized_text="In nineteen ninety-five.")
    body["alignment"] = None
    api.post(TTS_PATH).mock(return_value=httpx.Response(200, json=body))
    result = narrator.narrate(narration_request(tmp_path, text="In 1995."))
    assert [w.word for w in result.words] == ["In", "nineteen", "ninety-five."]


def test_words_from_alignment_groups_on_any_whitespace():
    alignment = elevenlabs.CharacterAlignment(
        characters=list(" Hi,\tyou  there\n"),
        character_start_times_seconds=[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5],
        character_end_times_seconds=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6],
    )
    words = elevenlabs.words_from_alignment(alignment)
    assert [(w.word, w.start_s, w.end_s) for w in words] == [
        ("Hi,", 0.1, 0.4),
        ("you", 0.5, 0.8),
        ("there", 1.0, 1.5),
    ]


@pytest.mark.parametrize(
    "mutate, why",
    [
        (lambda b: b.pop("audio_base64"), "no audio"),
        (lambda b: b.update(audio_base64="%%% not base64 %%%"), "audio not base64"),
        (lambda b: b.update(audio_base64=base64.b64encode(b"<html>hi</html>").decode()), "audio not mp3"),
        (lambda b: b.update(alignment=None, normalized_alignment=None), "no alignment"),
        (lambda b: b["alignment"]["character_end_times_seconds"].pop(), "alignment lists of different lengths"),
    ],
)
def test_malformed_narration_answer_is_an_api_failure(api, narrator, tmp_path, mp3, mutate, why):
    body = with_timestamps_response(mp3, TEXT)
    mutate(body)
    api.post(TTS_PATH).mock(return_value=httpx.Response(200, json=body))
    request = narration_request(tmp_path)
    with pytest.raises(ApiFailureError, match="unexpected response") as caught:
        narrator.narrate(request)
    assert caught.value.notion_status is NotionStatus.ERROR_API_FAILURE, why
    assert not request.out_path.with_suffix(".mp3").exists()


def test_a_body_that_is_not_json_is_an_api_failure(api, narrator, tmp_path):
    api.post(TTS_PATH).mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(ApiFailureError, match="unexpected response"):
        narrator.narrate(narration_request(tmp_path))


def test_missing_voice_id_is_invalid_input_without_a_request(narrator, tmp_path):
    with respx.mock(assert_all_called=False) as router:
        request = NarrationRequest(text="Hello.", voice=VoiceSpec(elevenlabs_voice_id=" "), out_path=tmp_path / "n.mp3")
        with pytest.raises(InvalidInputError, match="voice id"):
            narrator.narrate(request)
        assert not router.calls


# --- sound effects ----------------------------------------------------------------------------
def test_sound_request_matches_the_documented_sound_generation_call(api, designer, tmp_path, mp3):
    route = api.post(SFX_PATH).mock(return_value=httpx.Response(200, content=mp3, headers={"content-type": "audio/mpeg"}))
    designer.design(sound_request(tmp_path, duration_s=4.0))

    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url.path == SFX_PATH
    assert request.url.params["output_format"] == "mp3_44100_128"
    assert request.headers["xi-api-key"] == API_KEY
    body = json.loads(request.content)
    assert body == {
        "text": "wind over snow, distant howl",
        "duration_seconds": 4.0,
        "prompt_influence": 0.3,
        "model_id": "eleven_text_to_sound_v2",
    }


def test_sound_writes_the_mp3_with_its_duration_and_cost(api, designer, tmp_path, mp3):
    api.post(SFX_PATH).mock(return_value=httpx.Response(200, content=mp3, headers={"content-type": "audio/mpeg"}))
    request = sound_request(tmp_path, duration_s=2.5)
    result = designer.design(request)
    assert result.path == request.out_path.with_suffix(".mp3")
    assert result.path.read_bytes() == mp3
    assert result.duration_s == 2.5
    assert (result.cost.usd, result.cost.units, result.cost.unit) == (pytest.approx(0.002), 1, "generation")


def test_sound_price_and_prompt_influence_are_configurable(api, tmp_path, mp3):
    designer = elevenlabs.ElevenLabsSoundDesigner(
        API_KEY, pricing=elevenlabs.ElevenLabsPricing(usd_per_sound_effect=0.12), prompt_influence=0.8
    )
    route = api.post(SFX_PATH).mock(return_value=httpx.Response(200, content=mp3))
    assert designer.design(sound_request(tmp_path)).cost.usd == pytest.approx(0.12)
    assert json.loads(route.calls.last.request.content)["prompt_influence"] == 0.8


@pytest.mark.parametrize("duration", [0.2, 0.49])
def test_sound_shorter_than_the_api_allows_is_invalid_input_without_a_request(designer, tmp_path, duration):
    with respx.mock(assert_all_called=False) as router:
        with pytest.raises(InvalidInputError, match="0.5-30.0 s"):
            designer.design(sound_request(tmp_path, duration_s=duration))
        assert not router.calls


@pytest.mark.parametrize("content", [b"", b"<html>oops</html>", b'{"detail": "ok"}'], ids=["empty", "html", "json"])
def test_sound_answer_that_is_not_mp3_is_an_api_failure(api, designer, tmp_path, content):
    api.post(SFX_PATH).mock(return_value=httpx.Response(200, content=content))
    request = sound_request(tmp_path)
    with pytest.raises(ApiFailureError, match="not MP3"):
        designer.design(request)
    assert not request.out_path.with_suffix(".mp3").exists()


# --- errors -----------------------------------------------------------------------------------
ERROR_CASES = [
    pytest.param(400, MAX_CHARACTERS, InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, id="400-max-characters"),
    pytest.param(400, VOICE_NOT_FOUND, InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, id="400-voice-not-found"),
    pytest.param(400, INVALID_PARAMETERS, InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, id="400-invalid-parameters"),
    pytest.param(400, BAD_PROMPT, InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, id="400-content-policy"),
    pytest.param(401, INVALID_API_KEY, ApiFailureError, NotionStatus.ERROR_API_FAILURE, id="401-invalid-api-key"),
    pytest.param(401, QUOTA_EXCEEDED, ApiFailureError, NotionStatus.ERROR_API_FAILURE, id="401-quota-exceeded"),
    pytest.param(403, MISSING_PERMISSIONS, ApiFailureError, NotionStatus.ERROR_API_FAILURE, id="403-missing-permissions"),
    pytest.param(404, MODEL_NOT_FOUND, InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, id="404-not-found"),
    pytest.param(422, VALIDATION_ERROR_422, InvalidInputError, NotionStatus.ERROR_INVALID_INPUT, id="422-validation"),
    pytest.param(429, TOO_MANY_CONCURRENT, RetriableError, NotionStatus.ERROR_RETRIABLE, id="429-concurrent"),
    pytest.param(429, CONCURRENT_LIMIT, RetriableError, NotionStatus.ERROR_RETRIABLE, id="429-concurrent-new-style"),
    pytest.param(429, SYSTEM_BUSY, RetriableError, NotionStatus.ERROR_RETRIABLE, id="429-system-busy"),
    pytest.param(500, INTERNAL, RetriableError, NotionStatus.ERROR_RETRIABLE, id="500-internal"),
    pytest.param(503, {"detail": "Service Unavailable"}, RetriableError, NotionStatus.ERROR_RETRIABLE, id="503"),
]


def _check(error: ProviderError, code: int, error_class: type, board_status: NotionStatus) -> None:
    assert type(error) is error_class
    assert error.notion_status is board_status
    assert error.status_code == code
    assert error.provider == "elevenlabs"


@pytest.mark.parametrize("code, body, error_class, board_status", ERROR_CASES)
def test_narration_errors_map_to_one_class_without_sdk_retries(
    api, narrator, tmp_path, code, body, error_class, board_status
):
    route = api.post(TTS_PATH).mock(return_value=httpx.Response(code, json=body))
    with pytest.raises(ProviderError) as caught:
        narrator.narrate(narration_request(tmp_path))
    _check(caught.value, code, error_class, board_status)
    assert route.call_count == 1  # the SDK would retry 429/5xx twice; max_retries=0 leaves it to us


@pytest.mark.parametrize("code, body, error_class, board_status", ERROR_CASES)
def test_sound_errors_map_to_one_class_without_sdk_retries(
    api, designer, tmp_path, code, body, error_class, board_status
):
    route = api.post(SFX_PATH).mock(return_value=httpx.Response(code, json=body))
    with pytest.raises(ProviderError) as caught:
        designer.design(sound_request(tmp_path))
    _check(caught.value, code, error_class, board_status)
    assert route.call_count == 1


def test_error_messages_carry_the_documented_code_and_message(api, narrator, tmp_path):
    api.post(TTS_PATH).mock(return_value=httpx.Response(401, json=QUOTA_EXCEEDED))
    with pytest.raises(ApiFailureError, match="quota_exceeded: This request exceeds your quota"):
        narrator.narrate(narration_request(tmp_path))


def test_content_policy_refusal_quotes_the_suggested_prompt(api, designer, tmp_path):
    api.post(SFX_PATH).mock(return_value=httpx.Response(400, json=BAD_PROMPT))
    with pytest.raises(InvalidInputError, match="content policy.*suggested prompt: A cinematic orchestral swell"):
        designer.design(sound_request(tmp_path))


def test_validation_errors_name_the_field(api, designer, tmp_path):
    api.post(SFX_PATH).mock(return_value=httpx.Response(422, json=VALIDATION_ERROR_422))
    with pytest.raises(InvalidInputError, match="body.duration_seconds: ensure this value"):
        designer.design(sound_request(tmp_path))


@pytest.mark.parametrize("path", [TTS_PATH, SFX_PATH])
@pytest.mark.parametrize("header, seconds", [("7", 7.0), ("0", 0.0)])
def test_429_honours_retry_after(api, narrator, designer, tmp_path, path, header, seconds):
    api.post(path).mock(return_value=httpx.Response(429, json=TOO_MANY_CONCURRENT, headers={"Retry-After": header}))
    with pytest.raises(RetriableError) as caught:
        if path == TTS_PATH:
            narrator.narrate(narration_request(tmp_path))
        else:
            designer.design(sound_request(tmp_path))
    assert caught.value.retry_after == seconds


def test_5xx_without_retry_after_leaves_the_delay_to_the_orchestrator(api, narrator, tmp_path):
    api.post(TTS_PATH).mock(return_value=httpx.Response(500, json=INTERNAL))
    with pytest.raises(RetriableError) as caught:
        narrator.narrate(narration_request(tmp_path))
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("read timed out"), httpx.ConnectTimeout("connect timed out")],
    ids=["read", "connect"],
)
def test_timeouts_are_retriable(api, narrator, designer, tmp_path, failure):
    tts = api.post(TTS_PATH).mock(side_effect=failure)
    sfx = api.post(SFX_PATH).mock(side_effect=failure)
    with pytest.raises(RetriableError, match="timed out"):
        narrator.narrate(narration_request(tmp_path))
    with pytest.raises(RetriableError, match="timed out") as caught:
        designer.design(sound_request(tmp_path))
    assert caught.value.notion_status is NotionStatus.ERROR_RETRIABLE
    assert (tts.call_count, sfx.call_count) == (1, 1)


def test_connection_failure_is_retriable(api, narrator, tmp_path):
    api.post(TTS_PATH).mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(RetriableError, match="network error"):
        narrator.narrate(narration_request(tmp_path))


# --- a narration paid for by a process that died before the answer --------------------------------
class Killed(BaseException):
    """The worker dying mid-request (kill -9): nothing in the adapter handles it."""


def die(_request: httpx.Request) -> httpx.Response:
    raise Killed


def killed_mid_speech(api, narrator, tmp_path) -> NarrationRequest:
    request = narration_request(tmp_path)
    api.post(TTS_PATH).mock(side_effect=die)
    with pytest.raises(Killed):
        narrator.narrate(request)
    api.routes.clear()
    return request


def test_speech_a_dead_process_paid_for_is_fetched_from_the_history_not_made_again(api, narrator, tmp_path, mp3):
    request = killed_mid_speech(api, narrator, tmp_path)
    note = elevenlabs.SpeechAsked.path_for(request.out_path)
    asked = elevenlabs.SpeechAsked.load(note)
    assert asked is not None and asked.request == fingerprint(VOICE_ID, "eleven_multilingual_v2", TEXT)
    other = history_item("Another scene's words.", voice_id=VOICE_ID, model_id="eleven_multilingual_v2",
                         date_unix=asked.at_unix + 1, history_item_id="other")
    made = history_item(TEXT, voice_id=VOICE_ID, model_id="eleven_multilingual_v2", date_unix=asked.at_unix + 2)
    listing = api.get("/v1/history").mock(return_value=httpx.Response(200, json=history_response(other, made)))
    audio = api.get(f"/v1/history/{made['history_item_id']}/audio").mock(
        return_value=httpx.Response(200, content=mp3, headers={"content-type": "audio/mpeg"}))

    result = narrator.narrate(request)  # no speech route: a text-to-speech request would fail the test

    assert audio.call_count == 1
    params = listing.calls.last.request.url.params
    assert (params["voice_id"], params["model_id"], params["source"]) == (VOICE_ID, "eleven_multilingual_v2", "TTS")
    assert int(params["date_after_unix"]) == asked.at_unix - elevenlabs.HISTORY_SLACK_S
    assert listing.calls.last.request.headers["xi-api-key"] == API_KEY
    assert result.path.read_bytes() == mp3
    assert [w.word for w in result.words] == TEXT.split()
    assert result.cost == narrator.pricing.narration_cost(len(TEXT))  # paid once, recorded once
    assert not note.exists()


def test_speech_not_in_the_history_is_asked_for_again(api, narrator, tmp_path, mp3):
    request = killed_mid_speech(api, narrator, tmp_path)
    api.get("/v1/history").mock(return_value=httpx.Response(200, json=history_response()))
    tts = api.post(TTS_PATH).mock(return_value=httpx.Response(200, json=with_timestamps_response(mp3, TEXT)))

    assert narrator.narrate(request).path.read_bytes() == mp3
    assert tts.call_count == 1 and not elevenlabs.SpeechAsked.path_for(request.out_path).exists()


def test_a_history_the_key_may_not_read_costs_a_new_speech_not_the_narration(api, narrator, tmp_path, mp3, caplog):
    request = killed_mid_speech(api, narrator, tmp_path)
    api.get("/v1/history").mock(return_value=httpx.Response(401, json=MISSING_PERMISSIONS))
    tts = api.post(TTS_PATH).mock(return_value=httpx.Response(200, json=with_timestamps_response(mp3, TEXT)))

    assert narrator.narrate(request).path.read_bytes() == mp3
    assert tts.call_count == 1 and "could not read ElevenLabs' history" in caplog.text


def test_a_narration_answered_looks_at_no_history(api, narrator, tmp_path, mp3):
    """Only a request noted and never answered is looked for; a different text's note is not this one."""
    request = narration_request(tmp_path)
    note = elevenlabs.SpeechAsked.path_for(request.out_path)
    note.parent.mkdir(parents=True)
    other = fingerprint(VOICE_ID, "eleven_multilingual_v2", "another text")
    note.write_text(elevenlabs.SpeechAsked(at_unix=1, request=other).model_dump_json())
    tts = api.post(TTS_PATH).mock(return_value=httpx.Response(200, json=with_timestamps_response(mp3, TEXT)))
    narrator.narrate(request)
    narrator.narrate(request)
    assert tts.call_count == 2 and not note.exists()  # every route called is TTS: no history request was made


# --- factories --------------------------------------------------------------------------------
@pytest.mark.parametrize("factory", [elevenlabs.create_narration, elevenlabs.create_sound])
@pytest.mark.parametrize("key", [None, SecretStr(""), SecretStr("  ")])
def test_missing_api_key_fails_at_creation(factory, key, channel):
    with pytest.raises(ApiFailureError, match="ELEVENLABS_API_KEY is not set") as caught:
        factory(ProviderSettings(elevenlabs_api_key=key), channel)
    assert caught.value.notion_status is NotionStatus.ERROR_API_FAILURE


def test_registry_builds_the_elevenlabs_providers(settings, channel):
    narrator = build("narration", "elevenlabs", settings, channel)
    designer = build("sound", "elevenlabs", settings, channel)
    assert isinstance(narrator, elevenlabs.ElevenLabsNarrator) and isinstance(narrator, Narrator)
    assert isinstance(designer, elevenlabs.ElevenLabsSoundDesigner) and isinstance(designer, SoundDesigner)


def test_looks_like_mp3_accepts_id3_and_bare_frames(mp3):
    assert elevenlabs.looks_like_mp3(mp3)
    assert elevenlabs.looks_like_mp3(b"\xff\xfb\x90\x64" + bytes(100))  # MPEG-1 Layer III frame header
    assert not elevenlabs.looks_like_mp3(b"RIFF\x00\x00\x00\x00WAVE")
    assert not elevenlabs.looks_like_mp3(b"")
