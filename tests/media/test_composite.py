"""The 16:9 compositing step: exact frame size for any input, crop vs. fit, subject and watermark."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vidgen.errors import InvalidInputError
from vidgen.media.composite import compose


def _picture(path: Path, size: tuple[int, int], colour=(200, 60, 40)) -> Path:
    img = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.ellipse([w * 0.4, h * 0.4, w * 0.6, h * 0.6], fill=(30, 200, 90))
    img.save(path)
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGB"
        return np.asarray(img, dtype=np.float32)


@pytest.mark.parametrize("size", [(1024, 1024), (1344, 768), (768, 1344), (1920, 1080), (640, 480)])
def test_any_input_becomes_exactly_1920x1080_rgb(tmp_path: Path, size: tuple[int, int]) -> None:
    src = _picture(tmp_path / "in.png", size)
    out = compose(src, tmp_path / "out" / "frame.png")
    assert out == tmp_path / "out" / "frame.png"
    with Image.open(out) as img:
        assert img.size == (1920, 1080)
        assert img.mode == "RGB"


def test_near_16_9_is_cropped_to_fill_the_frame(tmp_path: Path) -> None:
    src = _picture(tmp_path / "wide.png", (1344, 768))
    px = _pixels(compose(src, tmp_path / "frame.png"))
    # Every corner shows the picture's own colour: no bars, no blurred backdrop.
    for corner in (px[:20, :20], px[:20, -20:], px[-20:, :20], px[-20:, -20:]):
        assert np.abs(corner.mean(axis=(0, 1)) - (200, 60, 40)).max() < 3


def test_portrait_is_fitted_over_a_darker_blurred_backdrop(tmp_path: Path) -> None:
    src = _picture(tmp_path / "tall.png", (768, 1344))
    px = _pixels(compose(src, tmp_path / "frame.png"))
    centre_strip = px[:, 900:1020].mean()
    side = px[:, :200].mean()
    assert side < centre_strip * 0.75  # darkened backdrop at the sides
    assert side > 10  # ...but not black bars: the picture's own colours, blurred
    # The whole picture is visible: its top and bottom rows are inside the frame, in its colour.
    assert np.abs(px[2, 960] - (200, 60, 40)).max() < 6
    assert np.abs(px[-3, 960] - (200, 60, 40)).max() < 6


def test_subject_overlay_is_visible_and_placed_in_the_lower_middle(tmp_path: Path) -> None:
    env = _picture(tmp_path / "env.png", (1344, 768), colour=(40, 80, 160))
    subject = Image.new("RGBA", (400, 800), (0, 0, 0, 0))
    ImageDraw.Draw(subject).rectangle([100, 50, 300, 780], fill=(250, 240, 20, 255))
    subject.save(tmp_path / "subject.png")

    plain = _pixels(compose(env, tmp_path / "plain.png"))
    with_subject = _pixels(compose(env, tmp_path / "subject_frame.png", subject_path=tmp_path / "subject.png"))
    diff = np.abs(with_subject - plain).sum(axis=2)
    changed = diff > 60
    assert changed.mean() > 0.05  # a big, visible figure
    ys, xs = np.nonzero(changed)
    assert 700 < xs.mean() < 1450 and ys.mean() > 450  # lower middle of the frame
    assert diff[:200, :300].max() == 0  # the sky corner is untouched
    # The figure keeps its colour.
    assert np.abs(with_subject[ys.min() + 200, int(xs.mean())] - (250, 240, 20)).max() < 10


def test_watermark_only_touches_the_bottom_right(tmp_path: Path) -> None:
    env = _picture(tmp_path / "env.png", (1920, 1080), colour=(90, 90, 90))
    plain = _pixels(compose(env, tmp_path / "plain.png"))
    marked = _pixels(compose(env, tmp_path / "marked.png", watermark="WILD FRONTIERS"))
    diff = np.abs(marked - plain).sum(axis=2) > 30
    assert diff.any()
    ys, xs = np.nonzero(diff)
    assert ys.min() > 900 and xs.min() > 1300


def test_a_smaller_frame_size_is_honoured(tmp_path: Path) -> None:
    src = _picture(tmp_path / "in.png", (500, 500))
    with Image.open(compose(src, tmp_path / "f.png", size=(640, 360))) as img:
        assert img.size == (640, 360)


def test_missing_or_unreadable_inputs_are_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        compose(tmp_path / "nope.png", tmp_path / "f.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(InvalidInputError, match="not a readable image"):
        compose(tmp_path / "junk.png", tmp_path / "f.png")
    env = _picture(tmp_path / "env.png", (1344, 768))
    opaque = _picture(tmp_path / "opaque.png", (200, 400))
    with pytest.raises(InvalidInputError, match="no alpha"):
        compose(env, tmp_path / "f.png", subject_path=opaque)
