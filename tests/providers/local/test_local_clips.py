"""Local clip animator: real H.264 clips whose camera really moves, in the direction asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vidgen.errors import InvalidInputError
from vidgen.media.ffmpeg import count_frames, extract_frame, probe
from vidgen.providers.base import ClipAnimator, ClipRequest
from vidgen.providers.local.clips import LocalClipAnimator, move_kind, plan_move

SMALL = (320, 180)


@pytest.fixture(scope="module")
def still(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1920x1080 frame with texture everywhere, so any camera move changes the pixels."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (27, 48, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((1920, 1080), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for x in range(0, 1920, 160):
        draw.rectangle([x, 500, x + 40, 580], fill=(255, 255, 255))
    path = tmp_path_factory.mktemp("still") / "frame.png"
    img.save(path, compress_level=1)
    return path


def _frame(video: Path, at_s: float, out: Path) -> np.ndarray:
    extract_frame(video, at_s, out)
    with Image.open(out) as img:
        return np.asarray(img.convert("L"), dtype=np.float32)


def _horizontal_shift(a: np.ndarray, b: np.ndarray) -> int:
    """How far (px) the content of b sits to the right of a, from column profiles."""
    pa, pb = a.mean(axis=0) - a.mean(), b.mean(axis=0) - b.mean()
    lags = range(-40, 41)
    scores = [np.dot(pa[max(0, -k) : len(pa) - max(0, k)], pb[max(0, k) : len(pb) - max(0, -k)]) for k in lags]
    return list(lags)[int(np.argmax(scores))]


def test_short_clip_is_h264_yuv420p_of_the_requested_length_and_moves(tmp_path: Path, still: Path) -> None:
    anim = LocalClipAnimator(size=SMALL)
    assert isinstance(anim, ClipAnimator) and anim.name == "local"
    out = tmp_path / "videos" / "clip_00.mp4"
    result = anim.animate(ClipRequest(image_path=still, motion_prompt="slow push-in", duration_s=1.5, out_path=out))
    assert result.path == out and abs(result.duration_s - 1.5) < 1e-9
    assert result.cost.usd == 0.0 and result.cost.units == 1 and result.cost.unit == "clip"
    info = probe(out)
    assert info.video is not None and info.audio is None
    assert (info.video.codec, info.video.pix_fmt, info.video.width, info.video.height) == ("h264", "yuv420p", 320, 180)
    assert info.video.fps == 30
    assert abs(info.duration_s - 1.5) <= 0.1
    assert count_frames(out) == 45
    first, last = _frame(out, 0, tmp_path / "first.png"), _frame(out, 1.45, tmp_path / "last.png")
    assert np.abs(first - last).mean() > 3
    assert not list(out.parent.glob("*.part*"))


def test_pan_left_moves_the_picture_to_the_right_and_pan_right_to_the_left(tmp_path: Path, still: Path) -> None:
    anim = LocalClipAnimator(size=SMALL)
    shifts = {}
    for prompt in ("pan left across the valley", "pan right following the herd"):
        out = anim.animate(ClipRequest(image_path=still, motion_prompt=prompt, duration_s=1.0,
                                       out_path=tmp_path / f"{prompt[:9]}.mp4")).path
        a, b = _frame(out, 0, tmp_path / "a.png"), _frame(out, 0.95, tmp_path / "b.png")
        shifts[prompt] = _horizontal_shift(a, b)
    assert shifts["pan left across the valley"] > 3
    assert shifts["pan right following the herd"] < -3


def test_full_size_clip_honours_a_kling_duration(tmp_path: Path, still: Path) -> None:
    out = tmp_path / "clip.mp4"
    result = LocalClipAnimator().animate(
        ClipRequest(image_path=still, motion_prompt="tilt up toward the sky", duration_s=5, out_path=out)
    )
    info = probe(result.path)
    assert info.video is not None
    assert (info.video.codec, info.video.pix_fmt, info.video.width, info.video.height) == ("h264", "yuv420p", 1920, 1080)
    assert abs(info.duration_s - 5.0) <= 0.1 and result.duration_s == 5.0


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("slow push-in on the subject", "push_in"),
        ("Zoom out to reveal the coast", "pull_out"),
        ("pan left across the scene", "pan_left"),
        ("tracking shot following the herd", "pan_right"),
        ("tilt up toward the sky", "tilt_up"),
        ("sunrise over the hills", "drift"),  # "rise" inside a word is not a tilt
        ("push in, then pan left", "push_in"),
    ],
)
def test_motion_prompt_picks_the_camera_move(prompt: str, kind: str) -> None:
    assert move_kind(prompt) == kind


def test_planned_moves_go_the_right_way_and_stay_inside_the_still() -> None:
    push, pull = plan_move("push in", 10), plan_move("pull out", 10)
    assert push.end.zoom > push.start.zoom and pull.end.zoom < pull.start.zoom
    left, up = plan_move("pan left", 5), plan_move("tilt up", 5)
    assert left.end.cx < left.start.cx and up.end.cy < up.start.cy
    for move in (push, pull, left, up, plan_move("drift", 5)):
        for t in np.linspace(0, 1, 11):
            cam = move.at(float(t))
            half = 0.5 / cam.zoom
            assert cam.zoom >= 1 and half - 1e-9 <= cam.cx <= 1 - half + 1e-9 and half - 1e-9 <= cam.cy <= 1 - half + 1e-9


def test_invalid_input(tmp_path: Path, still: Path) -> None:
    anim = LocalClipAnimator(size=SMALL)
    with pytest.raises(InvalidInputError, match="does not exist"):
        anim.animate(ClipRequest(image_path=tmp_path / "missing.png", motion_prompt="pan left", duration_s=1,
                                 out_path=tmp_path / "x.mp4"))
    with pytest.raises(InvalidInputError, match="motion prompt"):
        anim.animate(ClipRequest(image_path=still, motion_prompt=" ", duration_s=1, out_path=tmp_path / "x.mp4"))
    with pytest.raises(InvalidInputError, match="even"):
        LocalClipAnimator(size=(321, 180)).animate(
            ClipRequest(image_path=still, motion_prompt="pan left", duration_s=1, out_path=tmp_path / "x.mp4")
        )
    assert not (tmp_path / "x.mp4").exists()
