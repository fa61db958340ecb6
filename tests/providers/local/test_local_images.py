"""Local image generator: real pictures that differ by prompt and palette, and repeat exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidgen.errors import InvalidInputError
from vidgen.providers.base import ImageGenerator, ImageRequest
from vidgen.providers.local.images import LocalImageGenerator, paint_landscape, read_prompt

WILD = ["#1d3b2a", "#c8a24a", "#6b8f71", "#e9dcc0", "#3d5a6c"]
HISTORY = ["#3b2416", "#a8743a", "#d9c29a", "#5e1f1c", "#2b2d42"]
SMALL = (336, 192)


def _px(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float32)


def _mean_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(_px(a) - _px(b)).mean())


def test_generates_a_png_at_gemini_16_9_size(tmp_path: Path) -> None:
    gen = LocalImageGenerator()
    assert isinstance(gen, ImageGenerator) and gen.name == "local"
    out = tmp_path / "assets" / "scene_00.png"
    result = gen.generate(ImageRequest(prompt="a pine forest at dawn", style_preamble="Photo", palette=WILD,
                                       out_path=out))
    assert result.path == out and (result.width, result.height) == (1344, 768)
    assert result.cost.usd == 0.0 and result.cost.units == 1 and result.cost.unit == "image"
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (1344, 768)
        px = _px(img)
    assert px.std() > 15  # a picture, not a flat fill


def test_different_prompts_paint_different_pictures() -> None:
    a = paint_landscape("snow-capped mountain peaks at dawn", palette=WILD, size=SMALL)
    b = paint_landscape("waves on the ocean shore at sunset", palette=WILD, size=SMALL)
    c = paint_landscape("ruins of a temple with columns at night", palette=WILD, size=SMALL)
    assert _mean_diff(a, b) > 12 and _mean_diff(a, c) > 12 and _mean_diff(b, c) > 12


def test_different_palettes_colour_the_same_prompt_differently() -> None:
    prompt = "rolling desert dunes under a clear sky"
    a = paint_landscape(prompt, palette=WILD, size=SMALL)
    b = paint_landscape(prompt, palette=HISTORY, size=SMALL)
    assert _mean_diff(a, b) > 8
    # The colour balance follows the palette: the history palette is warmer (more red than blue).
    pa, pb = _px(a).mean(axis=(0, 1)), _px(b).mean(axis=(0, 1))
    assert (pb[0] - pb[2]) > (pa[0] - pa[2])


def test_same_inputs_give_identical_pixels_and_seed_changes_them() -> None:
    args = dict(style_preamble="Painterly historical illustration", palette=HISTORY, size=SMALL)
    first = paint_landscape("a castle on a hill in a storm", seed=3, **args)
    again = paint_landscape("a castle on a hill in a storm", seed=3, **args)
    other = paint_landscape("a castle on a hill in a storm", seed=4, **args)
    assert np.array_equal(_px(first), _px(again))
    assert _mean_diff(first, other) > 0.5


def test_style_preamble_in_the_prompt_is_not_counted_twice(tmp_path: Path) -> None:
    gen = LocalImageGenerator(size=SMALL)
    pre = "Hyper-realistic nature documentary still"
    a = gen.generate(ImageRequest(prompt=f"{pre}. Wolves in a forest", style_preamble=pre, palette=WILD,
                                  out_path=tmp_path / "a.png"))
    b = gen.generate(ImageRequest(prompt="Wolves in a forest", style_preamble=pre, palette=WILD,
                                  out_path=tmp_path / "b.png"))
    with Image.open(a.path) as ia, Image.open(b.path) as ib:
        assert np.array_equal(_px(ia), _px(ib))


@pytest.mark.parametrize(
    ("prompt", "biome", "time"),
    [
        ("Snow leopards on a rocky mountain ridge, at dawn", "mountain", "dawn"),
        ("A fleet of ships on the open sea at night", "ocean", "night"),
        ("Among the ruins of a temple with fallen columns, at sunset", "ruins", "dusk"),
        ("Lions on the open savanna beneath acacia trees", "savanna", "day"),
        ("Constantinople, over the rooftops of an old city", "city", "day"),
        ("Something abstract", "plain", "day"),
    ],
)
def test_prompt_words_choose_the_biome_and_light(prompt: str, biome: str, time: str) -> None:
    reading = read_prompt(prompt)
    assert (reading.biome, reading.time) == (biome, time)


def test_weather_and_style_are_read_from_prompt_and_preamble() -> None:
    reading = read_prompt("a river under a stormy sky with rain, birds overhead", "Painterly illustration")
    assert {"storm", "rain"} <= reading.weather and reading.birds and reading.painterly and reading.water


def test_invalid_requests_raise_invalid_input(tmp_path: Path) -> None:
    gen = LocalImageGenerator(size=SMALL)
    with pytest.raises(InvalidInputError, match="empty"):
        gen.generate(ImageRequest(prompt="  ", out_path=tmp_path / "x.png"))
    with pytest.raises(InvalidInputError, match="not #RRGGBB"):
        gen.generate(ImageRequest(prompt="a lake", palette=["green"], out_path=tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def test_animal_names_are_not_weather() -> None:
    assert "snow" not in read_prompt("Snow leopards on a rocky mountain ridge").weather
    assert "snow" in read_prompt("A mountain ridge in falling snow").weather
    assert "storm" not in read_prompt("Storm petrels over the sea").weather
