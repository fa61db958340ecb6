"""Local image generator: a procedural landscape painted from the prompt's words and the channel palette.

It stands in for Gemini 2.5 Flash Image offline, so it returns the same 16:9 size (1344x768) and a
picture that a reviewer can tell apart scene by scene: the biome (mountain, forest, ocean, desert,
ruins, city, ...), the time of day, the weather and a few props are read from keywords in the prompt,
the colours come from the channel palette, and a painterly preamble gives a parchment finish. All
randomness is seeded by (prompt, palette, seed), so a re-run paints the very same picture.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageOps

from vidgen.channels import Channel
from vidgen.errors import InvalidInputError
from vidgen.models import Cost
from vidgen.providers.base import ImageRequest, ImageResult
from vidgen.providers.settings import ProviderSettings

IMAGE_SIZE = (1344, 768)  # Gemini 2.5 Flash Image's 16:9 output
SUPERSAMPLE = 2  # silhouettes are drawn at 2x and reduced, so their edges are antialiased
DEFAULT_PALETTE = ["#2f3e46", "#84a98c", "#cad2c5", "#52796f", "#e9c46a"]

Colour = np.ndarray  # float32 RGB in 0..1, shape (3,)

# Keyword tables: the first matching biome in this order wins ties, so "temple in the jungle" is ruins.
BIOMES: dict[str, tuple[str, ...]] = {
    "ruins": ("ruin", "ruins", "temple", "temples", "column", "columns", "colonnade", "forum", "acropolis",
              "pillar", "pillars", "amphitheatre", "amphitheater", "monument", "tomb"),
    "castle": ("castle", "castles", "fortress", "fort", "citadel", "keep", "rampart", "ramparts", "stronghold"),
    "city": ("city", "cities", "town", "street", "streets", "skyline", "harbour", "harbor", "capital", "market"),
    "battlefield": ("battle", "battlefield", "army", "armies", "legion", "legions", "soldiers", "war", "siege",
                    "camp", "banners", "cavalry"),
    "ocean": ("ocean", "sea", "seas", "coast", "coastline", "shore", "beach", "reef", "waves", "bay", "island",
              "islands", "ship", "ships", "fleet", "voyage", "harbour", "whale", "whales"),
    "desert": ("desert", "deserts", "dune", "dunes", "sand", "sands", "sahara", "canyon", "mesa", "arid"),
    "arctic": ("arctic", "antarctic", "antarctica", "ice", "glacier", "glaciers", "tundra", "polar", "iceberg",
               "icebergs", "floe"),
    "mountain": ("mountain", "mountains", "peak", "peaks", "ridge", "ridges", "alpine", "himalaya",
                 "himalayas", "summit", "highlands", "andes", "alps", "cliff", "cliffs", "crag"),
    "jungle": ("jungle", "jungles", "rainforest", "tropical", "canopy", "amazon", "mangrove"),
    "forest": ("forest", "forests", "woods", "woodland", "pine", "pines", "taiga", "trees", "grove", "oak",
               "birch", "redwood"),
    "savanna": ("savanna", "savannah", "grassland", "grasslands", "plains", "prairie", "meadow", "steppe",
                "acacia", "serengeti", "grass"),
    "river": ("river", "rivers", "lake", "lakes", "stream", "wetland", "wetlands", "marsh", "delta",
              "waterfall", "pond", "estuary"),
}
TIMES: dict[str, tuple[str, ...]] = {
    "night": ("night", "moon", "moonlit", "moonlight", "midnight", "stars", "starlit", "nocturnal"),
    "dusk": ("dusk", "sunset", "evening", "twilight", "amber", "nightfall"),
    "dawn": ("dawn", "sunrise", "morning", "daybreak", "first"),
    "golden": ("golden", "golden-hour", "candle-lit", "warm"),
    "day": ("midday", "noon", "day", "daylight", "bright"),
}
WEATHER: dict[str, tuple[str, ...]] = {
    "storm": ("storm", "storms", "stormy", "thunder", "thunderstorm", "lightning", "tempest"),
    "rain": ("rain", "rainy", "downpour", "monsoon", "drizzle"),
    "mist": ("mist", "misty", "fog", "foggy", "haze", "hazy", "smoke", "clouds"),
    "snow": ("snow", "snowy", "blizzard", "snowfall", "winter", "frost"),
}
BIRD_WORDS = ("bird", "birds", "eagle", "eagles", "hawk", "geese", "flock", "gulls", "gull", "cranes", "flight")
# Animal and plant names that contain a weather or biome word: "snow leopards" are not snowfall.
COMPOUND_NAMES = re.compile(
    r"\b(?:snow|snowy|rain|storm|sea|ice|desert|forest|mountain|river|sand|fire)[ -]"
    r"(leopards?|geese|goose|owls?|monkeys?|petrels?|lions?|otters?|eagles?|foxes|fox|goats?|hares?|"
    r"dolphins?|cats?|ants?|flies|fly|bears?|elephants?|turtles?|lizards?|vipers?|tigers?|crows?)\b"
)
SHIP_WORDS = ("ship", "ships", "fleet", "voyage", "galley", "sail", "sails", "boat", "boats")
PAINTERLY_WORDS = ("painterly", "painting", "illustration", "parchment", "watercolour", "watercolor", "oil",
                   "engraving", "sketch", "manuscript")

# Sky colours per time of day: (zenith, horizon); the palette is mixed into both.
SKY_BASE: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "day": ((0.30, 0.52, 0.85), (0.80, 0.88, 0.96)),
    "golden": ((0.32, 0.42, 0.68), (1.00, 0.78, 0.45)),
    "dawn": ((0.28, 0.36, 0.62), (1.00, 0.72, 0.62)),
    "dusk": ((0.16, 0.13, 0.32), (0.96, 0.50, 0.30)),
    "night": ((0.02, 0.03, 0.08), (0.10, 0.14, 0.26)),
}
SUN_HEIGHT = {"day": 0.18, "golden": 0.36, "dawn": 0.42, "dusk": 0.44, "night": 0.16}


@dataclass(frozen=True)
class SceneReading:
    """What the painter takes from a prompt."""

    biome: str
    time: str
    weather: frozenset[str]
    birds: bool
    painterly: bool
    water: bool  # a lake/sea surface in the view
    ship: bool = False


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z\-]*", text.lower())


def read_prompt(prompt: str, style_preamble: str = "") -> SceneReading:
    """The biome, light and weather a prompt asks for (the scene's own words outrank the preamble's)."""
    scene_words = _words(COMPOUND_NAMES.sub(lambda m: m.group(1), prompt.lower()))
    style_words = _words(style_preamble)
    scores = {name: sum(w in keys for w in scene_words) for name, keys in BIOMES.items()}
    best = max(scores.values())
    biome = next(name for name, s in scores.items() if s == best) if best > 0 else "plain"

    def first_hit(table: dict[str, tuple[str, ...]], words: list[str]) -> str | None:
        for name, keys in table.items():
            if any(w in keys for w in words):
                return name
        return None

    time = first_hit(TIMES, scene_words) or first_hit(TIMES, style_words) or "day"
    weather = frozenset(name for name, keys in WEATHER.items() if any(w in keys for w in scene_words))
    water_words = BIOMES["river"] + BIOMES["ocean"]
    return SceneReading(
        biome=biome,
        time=time,
        weather=weather,
        birds=any(w in BIRD_WORDS for w in scene_words),
        painterly=any(w in PAINTERLY_WORDS for w in style_words + scene_words),
        water=biome in ("ocean", "river") or any(w in water_words for w in scene_words),
        ship=any(w in SHIP_WORDS for w in scene_words),
    )


def parse_palette(palette: list[str]) -> list[Colour]:
    colours: list[Colour] = []
    for value in palette or DEFAULT_PALETTE:
        text = value.strip()
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", text):
            raise InvalidInputError(f"palette colour {value!r} is not #RRGGBB", provider="local")
        colours.append(np.array([int(text[i : i + 2], 16) / 255 for i in (1, 3, 5)], dtype=np.float32))
    if len(colours) == 1:
        colours.append(np.clip(colours[0] * 0.45, 0, 1))
    return colours


@dataclass
class Palette:
    """The channel colours given roles by their lightness, so any palette of 2+ colours works."""

    dark: Colour
    mids: list[Colour]
    light: Colour
    accent: Colour

    @classmethod
    def from_colours(cls, colours: list[Colour]) -> Palette:
        by_light = sorted(colours, key=lambda c: float(c @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)))
        accent = max(colours, key=lambda c: float(c.max() - c.min()))
        mids = by_light[1:-1] or [_mix(by_light[0], by_light[-1], 0.5)]
        return cls(dark=by_light[0], mids=mids, light=by_light[-1], accent=accent)

    def ridge(self, depth: float) -> Colour:
        """Colour of a land layer at `depth` (0 = farthest, 1 = nearest): far layers take the light
        middle colours, near ones the dark colour."""
        ramp = [*self.mids[::-1], self.dark] if len(self.mids) > 1 else [self.mids[0], self.dark]
        pos = depth * (len(ramp) - 1)
        i = min(int(pos), len(ramp) - 2)
        return _mix(ramp[i], ramp[i + 1], pos - i)


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    return (a * (1 - t) + b * t).astype(np.float32)


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def fractal_line(rng: np.random.Generator, n: int, *, octaves: int, base_knots: int, roughness: float) -> np.ndarray:
    """1-D fractal noise in about -1..1: cosine-interpolated random knots, each octave finer and weaker."""
    x = np.linspace(0.0, 1.0, n, dtype=np.float32)
    out = np.zeros(n, dtype=np.float32)
    amp, total = 1.0, 0.0
    knots = base_knots
    for _ in range(octaves):
        values = rng.uniform(-1, 1, knots + 1).astype(np.float32)
        pos = x * knots
        i = np.minimum(pos.astype(np.int32), knots - 1)
        f = (1 - np.cos((pos - i) * np.pi)) / 2  # rounded ridges rather than polygonal ones
        out += amp * (values[i] * (1 - f) + values[i + 1] * f)
        total += amp
        amp *= roughness
        knots *= 2
    return out / total


def smooth_field(rng: np.random.Generator, size: tuple[int, int], cells: tuple[int, int], octaves: int = 3) -> np.ndarray:
    """2-D value noise in 0..1 (clouds, mist, paper): random grids upscaled bicubically, summed."""
    w, h = size
    out = np.zeros((h, w), dtype=np.float32)
    amp, total = 1.0, 0.0
    cw, ch = cells
    for _ in range(octaves):
        small = rng.random((ch, cw), dtype=np.float32)
        out += amp * np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BICUBIC))
        total += amp
        amp *= 0.5
        cw, ch = cw * 2, ch * 2
    return np.clip(out / total, 0, 1)


def _rgb8(colour: Colour) -> tuple[int, int, int]:
    r, g, b = (int(round(float(v) * 255)) for v in np.clip(colour, 0, 1))
    return r, g, b


def _to_image(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8), mode="RGB")


def _to_mask(values: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(values, 0, 1) * 255 + 0.5).astype(np.uint8), mode="L")


class Canvas:
    """The picture being painted. Layers are laid with Pillow's C compositing (8-bit); smooth fields
    (sky, clouds, mist, vignette) are computed with numpy at a quarter of the size and scaled up,
    which looks the same and keeps a picture well under half a second."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.img = Image.new("RGB", (width, height))
        self.small = (max(8, width // 4), max(8, height // 4))

    def new_mask(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        mask = Image.new("L", (self.width * SUPERSAMPLE, self.height * SUPERSAMPLE), 0)
        return mask, ImageDraw.Draw(mask)

    def fill(self, colour: Colour, shade: tuple[float, float] | None = None) -> Image.Image:
        if shade is None:
            return Image.new("RGB", (self.width, self.height), _rgb8(colour))
        ramp = np.linspace(shade[0], shade[1], self.height, dtype=np.float32)[:, None, None] * colour
        return _to_image(ramp).resize((self.width, self.height), Image.Resampling.NEAREST)

    def apply(self, mask: Image.Image, colour: Colour, opacity: float = 1.0, *,
              shade: tuple[float, float] | None = None) -> None:
        """Lay `colour` where the (supersampled or full-size) mask is set."""
        if mask.size != (self.width, self.height):
            mask = mask.resize((self.width, self.height), Image.Resampling.BOX)
        if opacity < 1.0:
            mask = mask.point(lambda v: int(v * opacity + 0.5))
        self.img = Image.composite(self.fill(colour, shade), self.img, mask)

    def upscale(self, small: np.ndarray) -> np.ndarray:
        """A quarter-size field brought to full size (bicubic), as float32."""
        img = Image.fromarray(small.astype(np.float32), mode="F")
        return np.asarray(img.resize((self.width, self.height), Image.Resampling.BICUBIC))


class Painter:
    """Paints one picture; every decision draws from one seeded generator, in a fixed order."""

    def __init__(self, reading: SceneReading, palette: Palette, rng: np.random.Generator, size: tuple[int, int]):
        self.r = reading
        self.p = palette
        self.rng = rng
        self.c = Canvas(*size)
        self.w, self.h = size
        self.horizon = self.h * {"ocean": 0.56, "desert": 0.60, "savanna": 0.62, "city": 0.70}.get(reading.biome, 0.58)
        self.haze = np.zeros(3, dtype=np.float32)
        self.sun_xy = (0.0, 0.0)

    @property
    def stormy(self) -> bool:
        return bool({"storm", "rain"} & self.r.weather)

    # --- sky --------------------------------------------------------------------------------------
    def sky(self) -> None:
        zenith, horizon = (np.array(v, dtype=np.float32) for v in SKY_BASE[self.r.time])
        zenith = _mix(zenith, self.p.mids[0] * 0.6, 0.35)
        horizon = _mix(horizon, _mix(self.p.light, self.p.accent, 0.4), 0.40)
        night = self.r.time == "night"
        if self.stormy:
            grey = np.float32(0.08 if night else 0.35)
            zenith, horizon = _mix(zenith, np.full(3, grey * 0.7), 0.7), _mix(horizon, np.full(3, grey), 0.6)
        self.haze = horizon

        sw, sh = self.c.small
        k = sh / self.h
        ys = np.arange(sh, dtype=np.float32)[:, None, None]
        t = np.clip(ys / (self.horizon * k), 0, 1) ** 0.9
        rgb = np.broadcast_to(zenith * (1 - t) + horizon * t, (sh, sw, 3)).astype(np.float32)

        sun_x = self.w * self.rng.uniform(0.22, 0.78)
        sun_y = self.h * SUN_HEIGHT[self.r.time] + (self.horizon - self.h * 0.58) * 0.5
        self.sun_xy = (sun_x, sun_y)
        yy, xx = np.ogrid[0:sh, 0:sw]
        d2 = ((xx - sun_x * k) ** 2 + (yy - sun_y * k) ** 2).astype(np.float32)
        glow_colour = np.array([0.75, 0.8, 1.0], np.float32) if night else _mix(self.p.accent, np.ones(3), 0.55)
        glow = np.exp(-d2 / (2 * (sw * (0.10 if night else 0.20)) ** 2))[..., None]
        rgb = rgb + glow_colour * glow * (0.2 if self.stormy else 0.32)

        # Clouds: thresholded value noise, fading out towards the horizon.
        field_ = smooth_field(self.rng, (sw, sh), (6, 3), octaves=4)
        cover_ = 0.42 if self.stormy else (0.7 if night else 0.62)
        density = np.clip((field_ - cover_) / (1 - cover_) * 2.2, 0, 1)
        density *= np.clip(1 - np.arange(sh, dtype=np.float32) / (self.horizon * k), 0, 1)[:, None] ** 0.6
        if self.stormy:
            cloud = np.full(3, 0.05 if night else 0.16, np.float32)
        else:
            cloud = _mix(self.haze, np.ones(3, np.float32), 0.55 if self.r.time in ("day", "golden") else 0.2)
        cloud_alpha = (density * 0.85)[..., None]
        sky = _to_image(rgb).resize((self.w, self.h), Image.Resampling.BICUBIC)
        self.c.img = sky
        if night:
            self.stars()
        if not self.stormy:
            self.sun_disc(night)
        cloud_mask = _to_mask(self.c.upscale(cloud_alpha[..., 0]))
        self.c.apply(cloud_mask, cloud)

    def sun_disc(self, night: bool) -> None:
        mask, draw = self.c.new_mask()
        s = SUPERSAMPLE
        r = self.h * (0.05 if night else 0.06) * s
        x, y = self.sun_xy[0] * s, self.sun_xy[1] * s
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
        colour = np.array([0.93, 0.93, 0.86], np.float32) if night else _mix(np.ones(3), self.p.accent, 0.08)
        self.c.apply(mask, colour)

    def stars(self) -> None:
        arr = np.array(self.c.img)
        count = int(self.w * self.h / 2500)
        xs = self.rng.integers(0, self.w, count)
        ys = self.rng.integers(0, max(1, int(self.horizon * 0.9)), count)
        bright = self.rng.integers(80, 255, count).astype(np.uint8)[:, None]
        arr[ys, xs] = np.maximum(arr[ys, xs], bright)
        self.c.img = Image.fromarray(arr, mode="RGB")

    # --- land -------------------------------------------------------------------------------------
    def ridge_heights(self, base: float, amplitude: float, *, knots: int, roughness: float, octaves: int = 5) -> np.ndarray:
        """Ridge line in supersampled pixels for a ridge at `base` (fraction of the height)."""
        n = self.w * SUPERSAMPLE + 1
        line = fractal_line(self.rng, n, octaves=octaves, base_knots=knots, roughness=roughness)
        return (base - amplitude * line) * self.h * SUPERSAMPLE

    def land_layer(self, heights: np.ndarray, depth: float, *, extra=None, colour: Colour | None = None,
                   floor: float | None = None) -> None:
        """Fill below `heights` (down to `floor`, default the bottom) in the colour for `depth`
        (0 far, 1 near: far layers fade into the haze); `extra` may draw more silhouette (trees,
        columns) into the same mask before it is laid."""
        mask, draw = self.c.new_mask()
        bottom = mask.height if floor is None else floor * SUPERSAMPLE
        xs = np.arange(heights.size)
        draw.polygon([*zip(xs.tolist(), np.minimum(heights, bottom).tolist(), strict=True), (heights.size - 1, bottom), (0, bottom)],
                     fill=255)
        if extra is not None:
            extra(draw, heights)
        base = colour if colour is not None else self.p.ridge(depth)
        fog = 0.62 * (1 - depth) ** 1.4 + (0.25 if "mist" in self.r.weather else 0.0) * (1 - depth)
        tone = _mix(base, self.haze, min(0.9, fog))
        tone = tone * {"night": 0.45, "dusk": 0.7}.get(self.r.time, 1.0)
        self.c.apply(mask, tone, shade=(1.12, 0.82))

    def water(self, top: float) -> None:
        """A calm surface from `top` down: the sky mirrored, tinted by the palette, with ripples."""
        top_i = int(top)
        if top_i >= self.h:
            return
        arr = np.array(self.c.img)
        rows = np.arange(top_i, self.h)
        src = np.clip(2 * top_i - rows, 0, self.h - 1)
        reflection = arr[src].astype(np.float32) / 255
        tint = _mix(self.p.mids[-1], np.array([0.1, 0.25, 0.4], np.float32), 0.5)
        reflection = _mix(reflection, tint, 0.45) * 0.85
        ripples = smooth_field(self.rng, (self.w, self.h - top_i), (4, 40), octaves=2)
        reflection *= (0.9 + 0.2 * ripples)[..., None]
        if not self.stormy:
            glitter = np.exp(-((np.arange(self.w) - self.sun_xy[0]) ** 2) / (2 * (self.w * 0.03) ** 2)).astype(np.float32)
            sparkle = (ripples > 0.55).astype(np.float32) * glitter[None, :] * 0.5
            reflection += sparkle[..., None] * _mix(self.p.accent, np.ones(3), 0.6)
        arr[top_i:] = (np.clip(reflection, 0, 1) * 255 + 0.5).astype(np.uint8)
        self.c.img = Image.fromarray(arr, mode="RGB")

    def snowcaps(self, heights: np.ndarray) -> None:
        """Whiten the highest parts of a ridge, deeper on the tallest peaks."""
        tops = heights[: self.w * SUPERSAMPLE : SUPERSAMPLE] / SUPERSAMPLE
        line = np.percentile(tops, 35)
        depth = np.clip(line - tops, 0, None) * 0.9
        sw, sh = self.c.small
        ragged = 0.7 + 0.6 * self.c.upscale(smooth_field(self.rng, (sw, sh), (60, 30), octaves=1))
        ys = np.arange(self.h, dtype=np.float32)[:, None]
        cap = (ys >= tops[None, :]) & (ys < tops[None, :] + depth[None, :] * ragged)
        snow = _mix(np.array([0.95, 0.96, 1.0], np.float32), self.haze, 0.35)
        if self.r.time == "night":
            snow = snow * 0.5
        self.c.apply(_to_mask(cap.astype(np.float32)), snow, opacity=0.85)

    def conifers(self, density: float, size: float):
        def draw_trees(draw: ImageDraw.ImageDraw, heights: np.ndarray) -> None:
            count = int(self.w / 1344 * 90 * density)
            for _ in range(count):
                x = int(self.rng.integers(0, heights.size))
                h = size * self.h * SUPERSAMPLE * self.rng.uniform(0.6, 1.3)
                base = heights[x] + h * 0.15
                half = h * 0.22
                draw.polygon([(x, base - h), (x - half, base), (x + half, base)], fill=255)
        return draw_trees

    def canopy(self, density: float, size: float):
        def draw_canopy(draw: ImageDraw.ImageDraw, heights: np.ndarray) -> None:
            count = int(self.w / 1344 * 70 * density)
            for _ in range(count):
                x = int(self.rng.integers(0, heights.size))
                r = size * self.h * SUPERSAMPLE * self.rng.uniform(0.5, 1.2)
                y = heights[x]
                draw.ellipse([x - r * 1.3, y - r, x + r * 1.3, y + r], fill=255)
        return draw_canopy

    def acacias(self, count: int, size: float):
        def draw_acacias(draw: ImageDraw.ImageDraw, heights: np.ndarray) -> None:
            for _ in range(count):
                x = int(self.rng.integers(heights.size // 10, heights.size * 9 // 10))
                h = size * self.h * SUPERSAMPLE * self.rng.uniform(0.7, 1.2)
                base = heights[x] + 4
                trunk = max(2, h * 0.05)
                draw.polygon([(x - trunk, base), (x + trunk, base), (x + trunk * 0.6, base - h * 0.8),
                              (x - trunk * 0.6, base - h * 0.8)], fill=255)
                draw.ellipse([x - h * 0.75, base - h * 1.02, x + h * 0.75, base - h * 0.72], fill=255)
        return draw_acacias

    def columns(self, count: int, size: float):
        def draw_columns(draw: ImageDraw.ImageDraw, heights: np.ndarray) -> None:
            spacing = heights.size / (count + 1)
            start = spacing * self.rng.uniform(0.4, 0.9)
            for i in range(count):
                x = int(start + i * spacing)
                if not 0 <= x < heights.size:
                    continue
                h = size * self.h * SUPERSAMPLE
                broken = self.rng.random() < 0.35
                top = heights[x] - h * (self.rng.uniform(0.35, 0.75) if broken else 1.0)
                half = h * 0.06
                draw.rectangle([x - half, top, x + half, heights[x] + 6], fill=255)
                if not broken:
                    draw.rectangle([x - half * 1.6, top - h * 0.05, x + half * 1.6, top + h * 0.02], fill=255)
            if count >= 4 and self.rng.random() < 0.6:  # an architrave over the standing run
                x0 = int(start)
                x1 = int(start + spacing * min(count - 1, 3))
                y = heights[x0] - size * self.h * SUPERSAMPLE * 1.05
                draw.rectangle([x0 - 20, y - size * self.h * SUPERSAMPLE * 0.08, x1 + 20, y + 4], fill=255)
        return draw_columns

    def skyline(self, tall: float, lit: list[tuple[int, int, int, int]]):
        """Blocks of buildings with lit windows; in the painterly (historical) style a low old town
        of domes, gables and slender towers instead of modern towers."""
        old_town = self.r.painterly

        def draw_skyline(draw: ImageDraw.ImageDraw, heights: np.ndarray) -> None:
            x = 0
            while x < heights.size:
                ground = heights[min(x, heights.size - 1)]
                if old_town:
                    bw = int(self.rng.uniform(0.04, 0.10) * heights.size)
                    bh = tall * self.h * SUPERSAMPLE * self.rng.uniform(0.25, 0.55)
                else:
                    bw = int(self.rng.uniform(0.03, 0.08) * heights.size)
                    bh = tall * self.h * SUPERSAMPLE * self.rng.uniform(0.35, 1.0)
                top = ground - bh
                draw.rectangle([x, top, x + bw, self.h * SUPERSAMPLE], fill=255)
                roof = self.rng.random()
                if old_town and roof < 0.35:  # a dome on a drum
                    r = bw * 0.42
                    cx = x + bw / 2
                    draw.rectangle([cx - r * 0.8, top - r * 0.35, cx + r * 0.8, top], fill=255)
                    draw.pieslice([cx - r, top - r * 1.35, cx + r, top + r * 0.65], 180, 360, fill=255)
                    draw.rectangle([cx - 2, top - r * 1.6, cx + 2, top - r * 1.3], fill=255)
                elif old_town and roof < 0.5:  # a slender tower
                    tw = max(6.0, bw * 0.12)
                    th = bh * self.rng.uniform(1.2, 1.8)
                    draw.rectangle([x + bw - tw, ground - th, x + bw, ground], fill=255)
                    draw.polygon([(x + bw - tw, ground - th), (x + bw - tw / 2, ground - th - tw * 2.5),
                                  (x + bw, ground - th)], fill=255)
                elif roof < 0.6 if old_town else roof < 0.25:  # a gable
                    draw.polygon([(x, top), (x + bw / 2, top - bh * 0.25), (x + bw, top)], fill=255)
                spacing = 34 if old_town else 22
                for wy in np.arange(top + 14, ground - 10, spacing):
                    for wx in np.arange(x + 8, x + bw - 8, spacing - 4):
                        if self.rng.random() < (0.15 if old_town else 0.3):
                            lit.append((int(wx), int(wy), 7, 9))
                x += bw + int(self.rng.integers(2, 10))
        return draw_skyline

    def castle(self, size: float):
        def draw_castle(draw: ImageDraw.ImageDraw, heights: np.ndarray) -> None:
            cx = int(heights.size * self.rng.uniform(0.3, 0.7))
            base = float(heights[cx]) + 10
            u = size * self.h * SUPERSAMPLE
            draw.rectangle([cx - u * 1.2, base - u * 0.55, cx + u * 1.2, base], fill=255)
            for tx in (-1.2, -0.4, 0.4, 1.2):
                th = u * (0.95 if abs(tx) > 1 else 0.75) * self.rng.uniform(0.9, 1.15)
                x0, x1 = cx + tx * u - u * 0.14, cx + tx * u + u * 0.14
                draw.rectangle([x0, base - th, x1, base], fill=255)
                step = (x1 - x0) / 5
                for k in range(0, 5, 2):
                    draw.rectangle([x0 + k * step, base - th - u * 0.06, x0 + (k + 1) * step, base - th], fill=255)
            keep_h = u * 1.25
            draw.rectangle([cx - u * 0.25, base - keep_h, cx + u * 0.25, base], fill=255)
            draw.polygon([(cx - u * 0.3, base - keep_h), (cx, base - keep_h - u * 0.35), (cx + u * 0.3, base - keep_h)], fill=255)
        return draw_castle

    def banners(self, count: int, size: float, flags: list[tuple[float, float, float]]):
        def draw_banners(draw: ImageDraw.ImageDraw, heights: np.ndarray) -> None:
            for _ in range(count):
                x = int(self.rng.integers(0, heights.size))
                h = size * self.h * SUPERSAMPLE * self.rng.uniform(0.6, 1.2)
                base = heights[x] + 4
                draw.rectangle([x - 2, base - h, x + 2, base], fill=255)
                flags.append((x, base - h, h * 0.28))
        return draw_banners

    def ship(self) -> None:
        mask, draw = self.c.new_mask()
        s = SUPERSAMPLE
        cx = self.w * s * self.rng.uniform(0.25, 0.75)
        y = self.horizon * s + 6 * s
        u = self.h * s * 0.03
        draw.polygon([(cx - 4 * u, y - u), (cx + 4 * u, y - u), (cx + 3 * u, y), (cx - 3 * u, y)], fill=255)
        for mx, mh in ((-1.5, 4.0), (0.5, 5.0), (2.3, 3.5)):
            draw.rectangle([cx + mx * u - 2, y - u - mh * u, cx + mx * u + 2, y - u], fill=255)
            draw.polygon([(cx + mx * u, y - u - mh * u), (cx + mx * u + 1.3 * u, y - u - mh * u * 0.35),
                          (cx + mx * u, y - u - mh * u * 0.3)], fill=255)
        self.c.apply(mask, _mix(self.p.dark, self.haze, 0.45))

    def birds(self) -> None:
        mask, draw = self.c.new_mask()
        s = SUPERSAMPLE
        cx, cy = self.w * s * self.rng.uniform(0.2, 0.8), self.horizon * s * self.rng.uniform(0.25, 0.55)
        for _ in range(int(self.rng.integers(4, 9))):
            x = cx + self.rng.normal(0, self.w * s * 0.06)
            y = cy + self.rng.normal(0, self.h * s * 0.04)
            span = self.h * s * self.rng.uniform(0.012, 0.022)
            draw.line([(x - span, y - span * 0.4), (x, y), (x + span, y - span * 0.4)], fill=255, width=max(2, s * 2))
        self.c.apply(mask, self.p.dark * 0.6)

    # --- weather and finish -----------------------------------------------------------------------
    def weather(self) -> None:
        s = SUPERSAMPLE
        if "mist" in self.r.weather:
            sw, sh = self.c.small
            k = sh / self.h
            fog = smooth_field(self.rng, (sw, sh), (5, 2), octaves=3)
            band = np.exp(-((np.arange(sh) - self.horizon * k * 1.12) ** 2) / (2 * (sh * 0.12) ** 2)).astype(np.float32)
            self.c.apply(_to_mask(self.c.upscale(fog * band[:, None] * 0.75)), _mix(self.haze, np.ones(3), 0.3))
        if self.stormy:
            mask, draw = self.c.new_mask()
            for _ in range(int(self.w * self.h / 900)):
                x, y = self.rng.uniform(0, self.w * s), self.rng.uniform(0, self.h * s)
                length = self.rng.uniform(10, 28) * s
                draw.line([(x, y), (x - length * 0.25, y + length)], fill=255, width=s)
            self.c.apply(mask, np.full(3, 0.85, np.float32), opacity=0.22)
        if "storm" in self.r.weather:
            mask, draw = self.c.new_mask()
            x, y = self.w * s * self.rng.uniform(0.2, 0.8), 0.0
            points = [(x, y)]
            while y < self.horizon * s * 0.95:
                x += self.rng.normal(0, 18 * s)
                y += self.rng.uniform(14, 34) * s
                points.append((x, y))
            draw.line(points, fill=255, width=2 * s)
            self.c.apply(mask, np.array([0.95, 0.95, 1.0], np.float32))
        if "snow" in self.r.weather:
            mask, draw = self.c.new_mask()
            for _ in range(int(self.w * self.h / 1400)):
                x, y = self.rng.uniform(0, self.w * s), self.rng.uniform(0, self.h * s)
                r = self.rng.uniform(0.6, 1.8) * s
                draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
            self.c.apply(mask, np.full(3, 0.95, np.float32), opacity=0.8)

    def finish(self, grain_seed: int) -> Image.Image:
        """Vignette, the painterly parchment toning when the style asks for it, and film grain."""
        sw, sh = self.c.small
        yy, xx = np.ogrid[0:sh, 0:sw]
        r2 = ((xx / sw - 0.5) ** 2 + (yy / sh - 0.5) ** 2).astype(np.float32)
        light = 1 - (0.55 if self.r.painterly else 0.35) * r2 / 0.5
        img = self.c.img
        if self.r.painterly:
            light = light * (0.9 + 0.1 * smooth_field(self.rng, (sw, sh), (40, 23), octaves=2))
            sepia = _mix(self.p.light, np.array([0.86, 0.76, 0.58], np.float32), 0.5)
            toned = ImageOps.colorize(img.convert("L"), black=_rgb8(self.p.dark * 0.5), white=_rgb8(sepia))
            img = Image.blend(img, toned, 0.3)
        shade = _to_mask(self.c.upscale(light))
        img = ImageChops.multiply(img, Image.merge("RGB", (shade, shade, shade)))
        noise = np.random.default_rng(grain_seed).integers(0, 13, (self.h, self.w), dtype=np.uint8)
        grain = Image.fromarray(noise, mode="L")
        return ImageChops.add(img, Image.merge("RGB", (grain, grain, grain)), scale=1.0, offset=-6)

    def paint(self, grain_seed: int) -> Image.Image:
        self.sky()
        b = self.r.biome
        H = self.h
        hz = self.horizon / H
        if b == "mountain":
            far = self.ridge_heights(hz - 0.06, 0.22, knots=3, roughness=0.55, octaves=7)
            self.land_layer(far, 0.0)
            self.snowcaps(far)
            self.land_layer(self.ridge_heights(hz + 0.04, 0.14, knots=4, roughness=0.5, octaves=6), 0.35)
            if self.r.water:
                self.water(H * (hz + 0.14))
            self.land_layer(self.ridge_heights(hz + 0.20, 0.08, knots=3, roughness=0.5), 0.7,
                            extra=self.conifers(0.5, 0.05))
            self.land_layer(self.ridge_heights(0.93, 0.05, knots=2, roughness=0.45), 1.0)
        elif b in ("forest", "jungle"):
            props = self.conifers if b == "forest" else self.canopy
            self.land_layer(self.ridge_heights(hz - 0.02, 0.07, knots=3, roughness=0.5), 0.0, extra=props(1.0, 0.045))
            if self.r.water:
                self.water(H * (hz + 0.12))
            self.land_layer(self.ridge_heights(hz + 0.10, 0.06, knots=3, roughness=0.5), 0.45, extra=props(0.9, 0.08))
            self.land_layer(self.ridge_heights(0.90, 0.05, knots=2, roughness=0.5), 1.0, extra=props(0.35, 0.22))
        elif b == "ocean":
            self.water(self.horizon)
            # A distant headland on one side, sloping down into the sea.
            heights = self.ridge_heights(hz - 0.07, 0.10, knots=3, roughness=0.5)
            xs = np.linspace(0, 1, heights.size)
            if self.rng.random() < 0.5:
                xs = xs[::-1]
            slope = np.clip((xs - 0.18) / 0.22, 0, 1) ** 0.8
            waterline = self.horizon * SUPERSAMPLE
            self.land_layer(heights * (1 - slope) + (waterline + 1) * slope, 0.3, floor=self.horizon + 1)
            if self.r.ship:
                self.ship()
            self.land_layer(self.ridge_heights(0.95, 0.03, knots=2, roughness=0.4), 0.9,
                            colour=_mix(self.p.light, np.array([0.85, 0.75, 0.55], np.float32), 0.5))
        elif b == "desert":
            for depth, base, amp in ((0.0, hz, 0.05), (0.4, hz + 0.1, 0.07), (0.75, hz + 0.22, 0.08), (1.0, 0.9, 0.06)):
                heights = self.ridge_heights(base, amp, knots=2, roughness=0.3, octaves=3)
                warm = _mix(self.p.accent, np.array([0.85, 0.62, 0.35], np.float32), 0.5)
                self.land_layer(heights, depth, colour=_mix(warm, self.p.dark, depth * 0.5))
        elif b == "arctic":
            ice = np.array([0.86, 0.92, 0.98], np.float32)
            self.land_layer(self.ridge_heights(hz - 0.04, 0.12, knots=3, roughness=0.55, octaves=6), 0.1,
                            colour=_mix(ice, self.p.light, 0.25))
            self.water(H * (hz + 0.06))
            self.land_layer(self.ridge_heights(0.86, 0.04, knots=5, roughness=0.6), 0.9, colour=_mix(ice, self.p.mids[0], 0.2))
        elif b == "savanna":
            self.land_layer(self.ridge_heights(hz, 0.015, knots=3, roughness=0.4), 0.0)
            self.land_layer(self.ridge_heights(hz + 0.05, 0.01, knots=3, roughness=0.4), 0.5,
                            extra=self.acacias(int(self.rng.integers(2, 5)), 0.12),
                            colour=_mix(self.p.accent, self.p.mids[0], 0.5))
            self.land_layer(self.ridge_heights(0.9, 0.03, knots=2, roughness=0.4), 1.0)
        elif b == "river":
            self.land_layer(self.ridge_heights(hz - 0.04, 0.09, knots=3, roughness=0.5), 0.0, extra=self.conifers(0.6, 0.035))
            self.water(H * (hz + 0.06))
            heights = self.ridge_heights(0.84, 0.10, knots=2, roughness=0.5)
            xs = np.linspace(-1, 1, heights.size)
            heights = heights - (np.abs(xs) ** 2 * H * SUPERSAMPLE * 0.18)  # banks rise at both sides
            self.land_layer(heights, 0.9, extra=self.conifers(0.3, 0.12))
        elif b == "ruins":
            self.land_layer(self.ridge_heights(hz - 0.02, 0.06, knots=3, roughness=0.5), 0.0)
            self.land_layer(self.ridge_heights(hz + 0.16, 0.02, knots=2, roughness=0.4), 0.55,
                            extra=self.columns(int(self.rng.integers(4, 8)), 0.30))
            self.land_layer(self.ridge_heights(0.94, 0.02, knots=2, roughness=0.4), 1.0)
        elif b == "castle":
            self.land_layer(self.ridge_heights(hz - 0.02, 0.08, knots=3, roughness=0.5), 0.0)
            self.land_layer(self.ridge_heights(hz + 0.08, 0.07, knots=2, roughness=0.4), 0.5, extra=self.castle(0.12))
            self.land_layer(self.ridge_heights(0.93, 0.03, knots=2, roughness=0.4), 1.0, extra=self.conifers(0.2, 0.15))
        elif b == "city":
            lit_far: list[tuple[int, int, int, int]] = []
            lit_near: list[tuple[int, int, int, int]] = []
            self.land_layer(self.ridge_heights(hz, 0.0, knots=1, roughness=0.1, octaves=1), 0.2, extra=self.skyline(0.30, lit_far))
            self.land_layer(self.ridge_heights(hz + 0.10, 0.0, knots=1, roughness=0.1, octaves=1), 0.85,
                            extra=self.skyline(0.42, lit_near))
            if self.r.time in ("night", "dusk"):
                mask, draw = self.c.new_mask()
                for x, y, w, h in lit_far + lit_near:
                    draw.rectangle([x, y, x + w, y + h], fill=255)
                self.c.apply(mask, _mix(self.p.accent, np.array([1.0, 0.85, 0.5], np.float32), 0.6))
        elif b == "battlefield":
            flags: list[tuple[float, float, float]] = []
            self.land_layer(self.ridge_heights(hz - 0.01, 0.05, knots=3, roughness=0.5), 0.0)
            self.land_layer(self.ridge_heights(hz + 0.12, 0.03, knots=3, roughness=0.5), 0.6,
                            extra=self.banners(int(self.rng.integers(12, 24)), 0.16, flags))
            mask, draw = self.c.new_mask()
            for x, y, s in flags:
                draw.polygon([(x + 2, y), (x + 2 + s, y + s * 0.3), (x + 2, y + s * 0.6)], fill=255)
            self.c.apply(mask, _mix(self.p.accent, self.haze, 0.35))
            self.land_layer(self.ridge_heights(0.94, 0.03, knots=2, roughness=0.4), 1.0)
            self.r = replace(self.r, weather=self.r.weather | {"mist"})  # battle smoke
        else:  # rolling open country
            self.land_layer(self.ridge_heights(hz - 0.03, 0.07, knots=3, roughness=0.5), 0.0)
            if self.r.water:
                self.water(H * (hz + 0.08))
            self.land_layer(self.ridge_heights(hz + 0.12, 0.05, knots=2, roughness=0.45), 0.5, extra=self.canopy(0.15, 0.05))
            self.land_layer(self.ridge_heights(0.92, 0.04, knots=2, roughness=0.4), 1.0)
        if self.r.birds:
            self.birds()
        self.weather()
        return self.finish(grain_seed)


def paint_landscape(
    prompt: str, *, style_preamble: str = "", palette: list[str] | None = None, seed: int = 0,
    size: tuple[int, int] = IMAGE_SIZE,
) -> Image.Image:
    """The picture for a prompt, as an RGB image; the same arguments always give the same pixels."""
    reading = read_prompt(prompt, style_preamble)
    colours = parse_palette(palette or [])
    key = _seed(prompt, style_preamble, ",".join(p.lower() for p in palette or []), seed, size)
    painter = Painter(reading, Palette.from_colours(colours), np.random.default_rng(key), size)
    return painter.paint(grain_seed=key ^ 0x5EED)


def strip_preamble(prompt: str, style_preamble: str) -> str:
    """The scene part of an image prompt. Scripts may already start each image prompt with the
    channel style (the local writer does) while the image request carries it separately too; this
    keeps the style from being counted twice."""
    prompt, style = prompt.strip(), style_preamble.strip()
    if style and prompt.lower().startswith(style.lower()):
        return prompt[len(style) :].lstrip(" .,;:") or prompt
    return prompt


class LocalImageGenerator:
    """ImageGenerator that paints offline; free, deterministic, fast enough for the demo."""

    name = "local"

    def __init__(self, size: tuple[int, int] = IMAGE_SIZE):
        self.size = size

    def generate(self, request: ImageRequest) -> ImageResult:
        if not request.prompt.strip():
            raise InvalidInputError("image prompt is empty", provider=self.name)
        image = paint_landscape(
            strip_preamble(request.prompt, request.style_preamble), style_preamble=request.style_preamble.strip(),
            palette=request.palette, seed=request.seed, size=self.size,
        )
        out = Path(request.out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        image.save(out, format="PNG", compress_level=1)
        return ImageResult(path=out, width=image.width, height=image.height, cost=Cost(usd=0.0, units=1, unit="image"))


def create_images(settings: ProviderSettings, channel: Channel) -> LocalImageGenerator:
    return LocalImageGenerator()
