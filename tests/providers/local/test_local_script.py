"""Local script writer: a complete, deterministic documentary script built from topic and direction."""

from __future__ import annotations

import pytest

from vidgen.errors import InvalidInputError
from vidgen.providers.base import ScriptRequest, ScriptWriter
from vidgen.providers.local.clips import move_kind
from vidgen.providers.local.images import read_prompt
from vidgen.providers.local.script import (
    HISTORY_SETTINGS,
    NATURE_SETTINGS,
    LocalScriptWriter,
    direction_sentences,
    split_topic,
)
from vidgen.providers.local.sound import SOUND_VOCABULARY, layers_for_cue

NATURE_STYLE = "Hyper-realistic nature documentary still, golden-hour light, National Geographic style"
HISTORY_STYLE = "Painterly historical illustration, candle-lit, aged parchment tones, museum-quality detail"


def _request(**overrides) -> ScriptRequest:
    fields = dict(
        title="Ghosts of the High Himalaya",
        topic="Snow leopards of the Himalaya",
        story_direction="Follow a mother and her two cubs through their first winter; end on hope for conservation.",
        channel_name="Wild Frontiers",
        style_preamble=NATURE_STYLE,
        scenes=6,
        words_per_scene=22,
    )
    fields.update(overrides)
    return ScriptRequest(**fields)


def test_same_request_gives_the_identical_script_and_another_request_another() -> None:
    writer = LocalScriptWriter()
    assert isinstance(writer, ScriptWriter) and writer.name == "local"
    first = writer.write(_request())
    assert first.script == writer.write(_request()).script
    assert first.cost.usd == 0.0 and first.cost.units == 1
    other = writer.write(_request(topic="Humpback whales of the Pacific", title="Song of the Deep"))
    assert other.script.scenes[1].narration != first.script.scenes[1].narration


@pytest.mark.parametrize("scenes", [1, 2, 3, 6, 12])
def test_scene_count_and_every_field_is_filled(scenes: int) -> None:
    script = LocalScriptWriter().write(_request(scenes=scenes)).script
    assert len(script.scenes) == scenes
    assert script.problems(min_scenes=1, max_scenes=40) == []
    for scene in script.scenes:
        words = len(scene.narration.split())
        assert 22 * 0.5 <= words <= 22 * 1.8, scene.narration
        assert scene.narration.strip()[-1] in ".!?"
        assert scene.image_prompt.startswith(NATURE_STYLE + ". ")
        assert scene.motion_prompt and scene.sound_cue
    assert len({s.narration for s in script.scenes}) == scenes  # no scene repeats another


def test_the_arc_follows_the_story_direction() -> None:
    script = LocalScriptWriter().write(_request()).script
    first, *middle, last = script.scenes
    assert "snow leopards" in first.narration.lower() or "himalaya" in first.narration.lower()
    assert any("Our story follows a mother and her two cubs through their first winter." in s.narration for s in middle)
    assert last.narration.endswith("In the end, this is a story about hope for conservation.")


def test_prompts_speak_the_languages_of_the_painter_animator_and_sound_designer() -> None:
    for request in (_request(), _request(topic="The fall of Constantinople", title="", style_preamble=HISTORY_STYLE,
                                         channel_name="Chronicle Vault", story_direction="")):
        for scene in LocalScriptWriter().write(request).script.scenes:
            assert read_prompt(scene.image_prompt.split(". ", 1)[1]).biome != "plain", scene.image_prompt
            assert move_kind(scene.motion_prompt) in {"push_in", "pull_out", "pan_left", "pan_right", "tilt_up",
                                                       "tilt_down", "drift"}
            assert layers_for_cue(scene.sound_cue) != ["drone"] or "drone" in scene.sound_cue


def test_every_cue_the_writer_can_choose_is_understood_by_the_sound_designer() -> None:
    for setting in [*NATURE_SETTINGS.values(), *HISTORY_SETTINGS.values()]:
        for cue in setting.cues:
            layers = layers_for_cue(cue)
            assert layers != ["drone"] or any(w in cue for w in SOUND_VOCABULARY["drone"]), cue
        for view in setting.views:
            assert read_prompt(view).biome != "plain", view


def test_history_channel_gets_a_history_register_and_place_based_pictures() -> None:
    script = LocalScriptWriter().write(
        _request(topic="The fall of Constantinople", title="", style_preamble=HISTORY_STYLE,
                 channel_name="Chronicle Vault", story_direction="Tell it from the walls; then the last night")
    ).script
    assert script.title == "The fall of Constantinople"
    assert "history" in script.tags
    assert all("Constantinople," in s.image_prompt for s in script.scenes)
    text = " ".join(s.narration for s in script.scenes)
    assert "We watch it unfold from the walls." in text and "Picture it: the last night." in text


def test_title_description_and_tags() -> None:
    long_title = "A " + "very " * 40 + "long title"
    script = LocalScriptWriter().write(_request(title=long_title)).script
    assert len(script.title) <= 100 and script.title.endswith("…")
    assert "snow leopards of the Himalaya" in script.description
    assert "Wild Frontiers" in script.description and len(script.description) <= 5000
    assert {"snow", "leopards", "himalaya", "documentary"} <= set(script.tags) and len(script.tags) <= 15


def test_topic_and_direction_parsing() -> None:
    assert split_topic("Snow leopards of the Himalaya") == ("snow leopards of the Himalaya", "snow leopards", "the Himalaya")
    assert split_topic("Rome") == ("Rome", "Rome", "the wild")
    assert split_topic("The fall of Constantinople")[1:] == ("the fall", "Constantinople")
    assert direction_sentences("Open with the dawn chorus. Show how the pack hunts, then end on the first snow") == [
        ("opening", "It begins with the dawn chorus."),
        ("development", "Now our attention turns to how the pack hunts."),
        ("closing", "In the end, this is a story about the first snow."),
    ]


def test_empty_topic_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="topic"):
        LocalScriptWriter().write(_request(topic="   "))
