"""The 16:9 compositing step: any generated picture (plus an optional cut-out subject) -> one frame.

Image models return whatever aspect they like (Gemini gives 1344x768 or squares, a person may drop in
a portrait photo), while the clip animators and the assembly want exactly 1920x1080. Pictures close
to 16:9 are cover-cropped (a few edge pixels lost, nothing distorted); anything else is fitted whole
over a blurred, darkened cover of itself, the usual broadcast treatment for off-aspect material.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont, UnidentifiedImageError

from vidgen.errors import InvalidInputError

FRAME_SIZE = (1920, 1080)
# Aspect ratios within this fraction of the frame's are cropped rather than letterboxed: at 5 % a
# 1344x768 (1.75) picture loses 1.6 % per side, while a 4:3 picture (25 % off) is fitted.
COVER_TOLERANCE = 0.05
SUBJECT_MAX_HEIGHT = 0.72  # of the frame: a subject that stands in the scene, not over it
SUBJECT_MAX_WIDTH = 0.5
SUBJECT_GROUND = 0.94  # where the subject's feet rest, as a fraction of the frame height


def _open_rgb(path: Path, what: str) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{what} {path} does not exist", provider="composite")
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError) as e:
        raise InvalidInputError(f"{what} {path} is not a readable image: {e}", provider="composite") from e


def cover(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to fill `size` completely and crop the overflow evenly (no bars, no distortion)."""
    w, h = size
    scale = max(w / img.width, h / img.height)
    sw, sh = img.width * scale, img.height * scale
    left, top = (sw - w) / 2 / scale, (sh - h) / 2 / scale
    box = (left, top, left + w / scale, top + h / scale)
    return img.resize((w, h), Image.Resampling.LANCZOS, box=box)


def fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to fit entirely inside `size`, keeping the aspect ratio."""
    scale = min(size[0] / img.width, size[1] / img.height)
    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(new, Image.Resampling.LANCZOS)


def _blurred_backdrop(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A soft, dark cover of the picture itself, blurred at quarter size because a full-size blur of
    this strength costs ten times more and looks the same once scaled up."""
    small = (max(1, size[0] // 4), max(1, size[1] // 4))
    back = cover(img, small).filter(ImageFilter.GaussianBlur(radius=max(2, small[0] // 40)))
    back = back.resize(size, Image.Resampling.BILINEAR)
    return Image.blend(Image.new("RGB", size, (0, 0, 0)), back, 0.55)


def place_environment(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The environment picture as a full frame: cropped when nearly 16:9, fitted over a backdrop otherwise."""
    img = img.convert("RGB")
    target_aspect = size[0] / size[1]
    aspect = img.width / img.height
    if abs(aspect / target_aspect - 1) <= COVER_TOLERANCE:
        return cover(img, size)
    frame = _blurred_backdrop(img, size)
    inner = fit(img, size)
    frame.paste(inner, ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2))
    return frame


def overlay_subject(frame: Image.Image, subject: Image.Image) -> Image.Image:
    """Stand a cut-out subject (alpha PNG) in the scene: bottom-centre, slightly right of centre as a
    camera operator frames a lone figure, with a soft contact shadow so it does not float."""
    subject = subject.convert("RGBA")
    bbox = subject.getchannel("A").getbbox()
    if bbox is None:
        raise InvalidInputError("the subject image is fully transparent", provider="composite")
    subject = subject.crop(bbox)
    fw, fh = frame.size
    scale = min(fh * SUBJECT_MAX_HEIGHT / subject.height, fw * SUBJECT_MAX_WIDTH / subject.width)
    subject = subject.resize(
        (max(1, round(subject.width * scale)), max(1, round(subject.height * scale))), Image.Resampling.LANCZOS
    )
    x = round(fw * 0.56 - subject.width / 2)
    y = round(fh * SUBJECT_GROUND - subject.height)
    alpha = subject.getchannel("A")

    shadow_alpha = alpha.resize((subject.width, max(1, subject.height // 8)), Image.Resampling.BILINEAR)
    shadow_alpha = shadow_alpha.filter(ImageFilter.GaussianBlur(radius=max(2, subject.width // 30)))
    shadow_alpha = shadow_alpha.point(lambda v: v * 45 // 100)
    out = frame.convert("RGBA")
    shadow = Image.new("RGBA", shadow_alpha.size, (0, 0, 0, 0))
    shadow.putalpha(shadow_alpha)
    out.alpha_composite(shadow, (x + subject.width // 20, y + subject.height - shadow_alpha.height // 2))
    out.alpha_composite(subject, (x, max(0, y)))
    return out.convert("RGB")


def draw_watermark(frame: Image.Image, text: str) -> Image.Image:
    """Small, half-transparent channel mark bottom-right, inside the title-safe area."""
    fw, fh = frame.size
    font = ImageFont.load_default(size=max(10, round(fh * 0.022)))
    layer = Image.new("RGBA", frame.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin_x, margin_y = round(fw * 0.035), round(fh * 0.045)
    x, y = fw - margin_x - (right - left), fh - margin_y - (bottom - top)
    shadow_offset = max(1, fh // 540)
    draw.text((x + shadow_offset - left, y + shadow_offset - top), text, font=font, fill=(0, 0, 0, 110))
    draw.text((x - left, y - top), text, font=font, fill=(255, 255, 255, 165))
    out = frame.convert("RGBA")
    out.alpha_composite(layer)
    return out.convert("RGB")


def compose(
    image_path: Path,
    out_path: Path,
    *,
    size: tuple[int, int] = FRAME_SIZE,
    watermark: str = "",
    subject_path: Path | None = None,
) -> Path:
    """Write the scene's frame (PNG, RGB, exactly `size`) from its environment picture, an optional
    cut-out subject composited over it, and an optional watermark. Returns `out_path`."""
    if size[0] < 16 or size[1] < 16:
        raise InvalidInputError(f"frame size {size} is too small", provider="composite")
    frame = place_environment(_open_rgb(image_path, "image"), size)
    if subject_path is not None:
        subject = _open_rgb(subject_path, "subject image")
        if subject.mode not in ("RGBA", "LA", "PA") and "transparency" not in subject.info:
            raise InvalidInputError(
                f"subject image {subject_path} has no alpha channel; a cut-out PNG is expected",
                provider="composite",
            )
        if subject.mode == "P":
            subject = subject.convert("RGBA")
        frame = overlay_subject(frame, subject)
    if watermark.strip():
        frame = draw_watermark(frame, watermark.strip())
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    frame.save(out_path, format="PNG", compress_level=1)
    return out_path

