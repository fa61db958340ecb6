"""Local sound designer: scene ambience synthesised with numpy from the words of the sound cue.

It stands in for ElevenLabs' sound effects offline. A cue such as "wind through tall grass, distant
birds" is read against a small vocabulary (wind, waves, water, rain, birds, insects, fire, crowd,
bells, drums, thunder, drone); each recognised layer is synthesised (shaped noise, chirps, struck
partials, drum hits) and the layers are mixed, faded in and out and normalised. A cue with no known
word gets a low, quiet drone rather than silence. Everything is seeded by (cue, duration, seed).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidgen.channels import Channel
from vidgen.errors import InvalidInputError
from vidgen.models import Cost
from vidgen.providers.base import SoundRequest, SoundResult
from vidgen.providers.local.audio_files import write_pcm
from vidgen.providers.settings import ProviderSettings

SAMPLE_RATE = 44_100
LOUDNESS_DBFS = -22.0  # RMS of the finished ambience; it sits under the narration
CEILING_DBFS = -4.0  # a soft limiter keeps every peak under this (the contract demands below -3 dBFS)
FADE_S = 0.8

# Words (or phrases) that call up each layer; the script writer picks its cues from these.
SOUND_VOCABULARY: dict[str, tuple[str, ...]] = {
    "wind": ("wind", "winds", "breeze", "breezes", "gust", "gusts", "gale", "windy", "blizzard"),
    "waves": ("waves", "wave", "surf", "ocean", "sea", "shore", "tide", "beach", "coast", "breakers"),
    "water": ("water", "stream", "streams", "river", "creek", "brook", "waterfall", "rapids", "trickle",
              "lake", "spring", "fountain", "oars", "lapping"),
    "rain": ("rain", "drizzle", "downpour", "raindrops", "shower", "monsoon", "rainfall"),
    "birds": ("bird", "birds", "birdsong", "songbirds", "gull", "gulls", "chirp", "chirping", "dawn chorus",
              "parrots", "songbird"),
    "insects": ("insect", "insects", "crickets", "cricket", "cicadas", "cicada", "bees", "buzzing", "frogs"),
    "fire": ("fire", "fires", "crackle", "crackling", "campfire", "hearth", "torch", "torches", "embers",
             "flames", "candle", "candles", "forge"),
    "crowd": ("crowd", "crowds", "murmur", "murmuring", "voices", "market", "chatter", "people", "bustle",
              "townsfolk", "courtiers"),
    "bells": ("bell", "bells", "chime", "chimes", "church", "monastery", "toll", "tolling", "cathedral"),
    "drums": ("drum", "drums", "war", "march", "marching", "battle", "army", "legion", "legions", "troops",
              "percussion", "soldiers"),
    "thunder": ("thunder", "storm", "thunderstorm", "rumble", "lightning", "tempest"),
    "drone": ("drone", "hum", "ambient", "music", "pad", "tension", "silence", "stillness", "hush"),
}


def layers_for_cue(cue: str) -> list[str]:
    """The layers a cue calls up, in vocabulary order; ["drone"] when it names none."""
    text = " " + " ".join(re.findall(r"[a-z]+", cue.lower())) + " "
    found = [layer for layer, words in SOUND_VOCABULARY.items() if any(f" {w} " in text for w in words)]
    return found or ["drone"]


# --- building blocks ----------------------------------------------------------------------------
def _freqs(n: int) -> np.ndarray:
    return np.fft.rfftfreq(n, 1 / SAMPLE_RATE)


def noise_channels(rng: np.random.Generator, n: int, shape: Callable[[np.ndarray], np.ndarray],
                   channels: int = 1) -> np.ndarray:
    """Coloured noise made in the frequency domain (random complex spectrum times `shape(freq_hz)`,
    one inverse FFT per channel), each channel at unit RMS; shape (channels, n)."""
    m = n // 2 + 1
    gain = shape(_freqs(n)).astype(np.float32)
    spec = (rng.standard_normal((channels, m), dtype=np.float32)
            + 1j * rng.standard_normal((channels, m), dtype=np.float32)) * gain
    out = np.fft.irfft(spec.astype(np.complex64), n, axis=1).astype(np.float32)
    return out / (np.sqrt(np.mean(out**2, axis=1, keepdims=True)) + 1e-12)


def band(fc: float, octaves: float) -> Callable[[np.ndarray], np.ndarray]:
    def shape(f: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / fc) / octaves) ** 2)
    return shape


def lowpass(fc: float, order: float = 2) -> Callable[[np.ndarray], np.ndarray]:
    return lambda f: 1 / (1 + (f / fc) ** order)


def highpass(fc: float, order: float = 2) -> Callable[[np.ndarray], np.ndarray]:
    return lambda f: 1 / (1 + (fc / np.maximum(f, 1.0)) ** order)


def slow_envelope(rng: np.random.Generator, n: int, rate_hz: float) -> np.ndarray:
    """Smooth random curve in 0..1 that changes about `rate_hz` times a second. Shaped at a control
    rate of 1/32 of the sample rate (ample for changes under 20 Hz), then linearly upsampled."""
    knots = max(2, int(n / SAMPLE_RATE * rate_hz) + 2)
    values = rng.random(knots)
    control = max(2, n // 32 + 2)
    pos = np.linspace(0, knots - 1, control)
    i = np.minimum(pos.astype(np.int64), knots - 2)
    f = (1 - np.cos((pos - i) * np.pi)) / 2
    curve = values[i] * (1 - f) + values[i + 1] * f
    return np.interp(np.linspace(0, control - 1, n), np.arange(control), curve).astype(np.float32)


def fft_convolve(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    size = signal.size + kernel.size - 1
    nfft = 1 << (size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(signal, nfft) * np.fft.rfft(kernel, nfft), nfft)[: signal.size]
    return out.astype(np.float32)


def reverb(rng: np.random.Generator, mono: np.ndarray, seconds: float, wet: float) -> np.ndarray:
    """A cheap room: convolution with decaying noise; gives struck sounds a place to live."""
    k = int(seconds * SAMPLE_RATE)
    t = np.arange(k) / SAMPLE_RATE
    ir = rng.standard_normal(k) * np.exp(-t / (seconds / 5))
    ir /= np.sqrt(np.sum(ir**2))
    return (1 - wet) * mono + wet * fft_convolve(mono, ir.astype(np.float32))


def pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Equal-power pan; position -1 (left) .. 1 (right)."""
    angle = (position + 1) * np.pi / 4
    return np.stack([mono * np.cos(angle), mono * np.sin(angle)], axis=1)


def stereo_bed(rng: np.random.Generator, n: int, shape: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """A wide noise bed: two independent channels, cross-mixed so the ears share about half."""
    left, right = noise_channels(rng, n, shape, 2)
    return np.stack([0.85 * left + 0.5 * right, 0.85 * right + 0.5 * left], axis=1)


def poisson_times(rng: np.random.Generator, n: int, rate_hz: float, *, start_s: float = 0.0) -> np.ndarray:
    duration = n / SAMPLE_RATE
    count = rng.poisson(max(0.0, rate_hz * (duration - start_s)))
    return np.sort(rng.uniform(start_s, duration, count))


def place(out: np.ndarray, sound: np.ndarray, at_s: float) -> None:
    """Add a (k, 2) sound into out at a time, clipped at the end."""
    i = int(at_s * SAMPLE_RATE)
    if i >= out.shape[0]:
        return
    k = min(sound.shape[0], out.shape[0] - i)
    out[i : i + k] += sound[:k]


def harmonic_buzz(phase: np.ndarray, harmonics: int) -> np.ndarray:
    """sum(sin(h*phase)/h): a soft sawtooth, built with the sine recurrence
    sin((h+1)x) = 2cos(x)sin(hx) - sin((h-1)x) so only one sine and one cosine are evaluated."""
    two_cos = 2 * np.cos(phase)
    prev, cur = np.zeros_like(phase), np.sin(phase)
    total = cur.copy()
    for h in range(2, harmonics + 1):
        prev, cur = cur, two_cos * cur - prev
        total += cur / h
    return total


# --- layers -------------------------------------------------------------------------------------
def wind(rng: np.random.Generator, n: int) -> np.ndarray:
    gust = slow_envelope(rng, n, 0.35) ** 1.5
    low = stereo_bed(rng, n, band(320, 1.2))
    high = stereo_bed(rng, n, band(1100, 0.8))
    # Stronger gusts sound higher: the mix slides towards the upper band as the gust grows.
    return low * (0.25 + 0.75 * gust)[:, None] + high * (0.6 * gust**2)[:, None]


def waves(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    swell = np.zeros(n, dtype=np.float32)
    at = rng.uniform(-3.0, 0.0)
    while at < t[-1]:
        rise, wash = rng.uniform(1.2, 2.0), rng.uniform(3.0, 5.0)
        local = t - at
        shape = np.where(local < rise, np.clip(local / rise, 0, 1) ** 2, np.exp(-(local - rise) / (wash / 3)))
        swell = np.maximum(swell, np.where(local >= 0, shape * rng.uniform(0.6, 1.0), 0).astype(np.float32))
        at += rng.uniform(5.0, 9.0)
    body = stereo_bed(rng, n, lowpass(900, 2))
    hiss = stereo_bed(rng, n, band(4000, 1.0))
    lagged = np.concatenate([np.zeros(int(0.6 * SAMPLE_RATE), np.float32), swell])[:n]
    return body * (0.15 + swell)[:, None] + 0.35 * hiss * lagged[:, None]


def water(rng: np.random.Generator, n: int) -> np.ndarray:
    babble = stereo_bed(rng, n, band(1800, 1.3)) * (0.4 + 0.6 * slow_envelope(rng, n, 14.0))[:, None]
    rumble = stereo_bed(rng, n, lowpass(250, 2)) * 0.5
    out = babble + rumble
    for at in poisson_times(rng, n, 7.0):  # bubbles: short rising blips
        dur = rng.uniform(0.015, 0.04)
        k = int(dur * SAMPLE_RATE)
        tt = np.arange(k) / SAMPLE_RATE
        f = np.linspace(rng.uniform(400, 800), rng.uniform(900, 1600), k)
        blip = np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * np.sin(np.pi * tt / dur) ** 2
        place(out, pan(blip.astype(np.float32) * rng.uniform(0.3, 0.9), rng.uniform(-0.7, 0.7)), at)
    return out


def rain(rng: np.random.Generator, n: int) -> np.ndarray:
    hiss = stereo_bed(rng, n, highpass(1500, 1.5))
    drops = np.zeros((n, 2), dtype=np.float32)
    times = poisson_times(rng, n, 90.0)
    idx = (times * SAMPLE_RATE).astype(np.int64)
    side = rng.integers(0, 2, idx.size)
    drops[idx, side] = rng.lognormal(0, 0.6, idx.size).astype(np.float32)
    k = int(0.004 * SAMPLE_RATE)
    kernel = (rng.standard_normal(k) * np.exp(-np.arange(k) / (k / 4))).astype(np.float32)
    pattered = np.stack([fft_convolve(drops[:, c], kernel) for c in range(2)], axis=1)
    pattered /= np.sqrt(np.mean(pattered**2)) + 1e-12
    return 0.8 * hiss + 0.5 * pattered


def birds(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros((n, 2), dtype=np.float32)
    for _ in range(int(rng.integers(2, 4))):  # a few individual birds, each with its own song
        low, high = sorted(rng.uniform(1800, 6000, 2))
        position = rng.uniform(-0.8, 0.8)
        for at in poisson_times(rng, n, rng.uniform(0.25, 0.5), start_s=0.2):
            note_at = at
            for _ in range(int(rng.integers(2, 7))):
                dur = rng.uniform(0.04, 0.14)
                k = int(dur * SAMPLE_RATE)
                tt = np.arange(k) / SAMPLE_RATE
                f0, f1 = rng.uniform(low, high), rng.uniform(low, high)
                f = np.linspace(f0, f1, k) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(20, 60) * tt))
                note = np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE) * np.sin(np.pi * tt / dur) ** 2
                place(out, pan(note.astype(np.float32) * rng.uniform(0.4, 1.0), position), note_at)
                note_at += dur + rng.uniform(0.02, 0.09)
    return out + 0.02 * stereo_bed(rng, n, band(3000, 1.5))


def insects(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros((n, 2), dtype=np.float32)
    for _ in range(int(rng.integers(2, 4))):  # crickets: a carrier gated into pulses, pulses into chirps
        carrier = np.sin(2 * np.pi * rng.uniform(3800, 5200) * t + rng.uniform(0, 6.28))
        pulse_rate = rng.uniform(25, 40)
        pulses = (np.sin(2 * np.pi * pulse_rate * t) > 0.2).astype(np.float32)
        chirp_period = rng.uniform(0.45, 0.9)
        chirp_len = rng.uniform(0.12, 0.2)
        phase = rng.uniform(0, chirp_period)
        gate = ((t + phase) % chirp_period < chirp_len).astype(np.float32)
        out += pan((carrier * pulses * gate).astype(np.float32), rng.uniform(-0.8, 0.8))
    return out + 0.15 * stereo_bed(rng, n, band(6500, 0.4))


def fire(rng: np.random.Generator, n: int) -> np.ndarray:
    roar = stereo_bed(rng, n, lowpass(300, 2)) * (0.5 + 0.5 * slow_envelope(rng, n, 1.5))[:, None]
    clicks = np.zeros((n, 2), dtype=np.float32)
    times = poisson_times(rng, n, 18.0)
    idx = (times * SAMPLE_RATE).astype(np.int64)
    amps = np.minimum(rng.pareto(2.5, idx.size), 4.0).astype(np.float32) + 0.2  # small crackles, a few pops
    clicks[idx, 0] = amps * rng.uniform(0.4, 1.0, idx.size)
    clicks[idx, 1] = amps * rng.uniform(0.4, 1.0, idx.size)
    k = int(0.003 * SAMPLE_RATE)
    kernel = (rng.standard_normal(k) * np.exp(-np.arange(k) / (k / 5))).astype(np.float32)
    crackle = np.stack([fft_convolve(clicks[:, c], kernel) for c in range(2)], axis=1)
    crackle /= np.sqrt(np.mean(crackle**2)) + 1e-12
    return 0.6 * roar + 0.7 * crackle


def crowd(rng: np.random.Generator, n: int) -> np.ndarray:
    voices = np.zeros((n, 2), dtype=np.float32)
    for _ in range(6):  # pitched talkers: harmonic buzz, syllable rhythm, phrases with pauses
        f0 = rng.uniform(95, 230) * (1 + 0.08 * (slow_envelope(rng, n, 3.0) - 0.5))
        phase = (2 * np.pi / SAMPLE_RATE) * np.cumsum(f0, dtype=np.float64)
        buzz = harmonic_buzz(phase.astype(np.float32), harmonics=5)
        syllables = slow_envelope(rng, n, 9.0) ** 2
        phrases = (slow_envelope(rng, n, 0.6) > 0.35).astype(np.float32)
        voices += pan((buzz * syllables * phrases).astype(np.float32), rng.uniform(-0.9, 0.9))
    spectrum = band(900, 1.3)
    gain = spectrum(_freqs(n)).astype(np.float32)[:, None]
    muffled = np.fft.irfft(np.fft.rfft(voices, axis=0) * gain, n, axis=0).astype(np.float32)
    muffled /= np.sqrt(np.mean(muffled**2)) + 1e-12
    return 0.8 * muffled + 0.45 * stereo_bed(rng, n, band(700, 1.5))


def bells(rng: np.random.Generator, n: int) -> np.ndarray:
    mono = np.zeros(n, dtype=np.float32)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 2.67, 3.0])
    weights = np.array([0.6, 1.0, 0.7, 0.5, 0.45, 0.3, 0.25, 0.2])
    f0 = rng.uniform(260, 520)
    length = int(min(5.0, n / SAMPLE_RATE) * SAMPLE_RATE)
    tt = np.arange(length) / SAMPLE_RATE
    at = rng.uniform(0.3, 1.5)
    while at < n / SAMPLE_RATE:
        strike = np.zeros(length, dtype=np.float32)
        for r, w in zip(ratios, weights, strict=True):
            decay = 3.5 / (0.6 + r)
            strike += (w * np.sin(2 * np.pi * f0 * r * tt + rng.uniform(0, 6.28)) * np.exp(-tt / decay)).astype(np.float32)
        i = int(at * SAMPLE_RATE)
        k = min(length, n - i)
        mono[i : i + k] += strike[:k] * rng.uniform(0.7, 1.0)
        at += rng.uniform(2.5, 4.5)
    mono = reverb(rng, mono, 1.5, 0.35)
    return pan(mono, rng.uniform(-0.4, 0.4))


def drums(rng: np.random.Generator, n: int) -> np.ndarray:
    mono = np.zeros(n, dtype=np.float32)
    beat = 60 / rng.uniform(78, 100) / 2  # eighth notes
    pattern = [1.0, 0.0, 0.55, 0.0, 0.8, 0.35, 0.6, 0.0]
    k = int(0.6 * SAMPLE_RATE)
    tt = np.arange(k) / SAMPLE_RATE
    pitch = 52 + 70 * np.exp(-tt / 0.04)
    body = np.sin(2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE) * np.exp(-tt / 0.22)
    click = rng.standard_normal(k) * np.exp(-tt / 0.008) * 0.4
    hit = (body + click).astype(np.float32)
    step, at = 0, rng.uniform(0.1, 0.4)
    while at < n / SAMPLE_RATE:
        level = pattern[step % len(pattern)]
        if level:
            i = int(at * SAMPLE_RATE)
            m = min(k, n - i)
            mono[i : i + m] += hit[:m] * level * rng.uniform(0.85, 1.0)
        step += 1
        at += beat
    mono = reverb(rng, mono, 1.2, 0.3)
    return pan(mono, 0.0) + 0.1 * stereo_bed(rng, n, lowpass(200, 2))


def thunder(rng: np.random.Generator, n: int) -> np.ndarray:
    duration = n / SAMPLE_RATE
    t = np.arange(n) / SAMPLE_RATE
    env = np.zeros(n, dtype=np.float32)
    crack_env = np.zeros(n, dtype=np.float32)
    at = rng.uniform(0.2, min(3.0, duration * 0.3))
    while at < duration:
        local = t - at
        length = rng.uniform(3.0, 6.0)
        shape = np.where(local >= 0, np.clip(local / 0.08, 0, 1) * np.exp(-np.maximum(local, 0) / (length / 3)), 0)
        wobble = 0.6 + 0.4 * slow_envelope(rng, n, 6.0)
        env = np.maximum(env, (shape * wobble * rng.uniform(0.6, 1.0)).astype(np.float32))
        crack_env = np.maximum(crack_env, np.where(local >= 0, np.exp(-np.maximum(local, 0) / 0.12), 0).astype(np.float32))
        at += rng.uniform(6.0, 12.0)
    rumble = stereo_bed(rng, n, lowpass(120, 3))
    crack = stereo_bed(rng, n, band(1500, 1.5))
    distant = stereo_bed(rng, n, lowpass(80, 2)) * 0.12
    return rumble * env[:, None] + 0.5 * crack * crack_env[:, None] + distant


def drone(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    root = rng.choice([49.0, 55.0, 61.7, 65.4])
    tone = np.zeros(n, dtype=np.float32)
    for ratio, level in ((1.0, 1.0), (1.5, 0.6), (2.0, 0.45), (3.0, 0.2)):
        lfo = 0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.05, 0.15) * t + rng.uniform(0, 6.28))
        detune = 1 + rng.uniform(-0.002, 0.002)
        tone += (level * lfo * np.sin(2 * np.pi * root * ratio * detune * t)).astype(np.float32)
    air = stereo_bed(rng, n, band(400, 1.5)) * 0.15
    return pan(tone / 2.2, 0.0) * 1.2 + air


LAYERS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "wind": wind, "waves": waves, "water": water, "rain": rain, "birds": birds, "insects": insects,
    "fire": fire, "crowd": crowd, "bells": bells, "drums": drums, "thunder": thunder, "drone": drone,
}
# Beds carry the scene; events (birds, bells, drums) sit a little lower so they do not dominate.
LAYER_GAIN = {"birds": 0.55, "insects": 0.35, "bells": 0.6, "drums": 0.8, "thunder": 0.9, "fire": 0.9}


def synthesize(cue: str, duration_s: float, seed: int = 0) -> np.ndarray:
    """The ambience for a cue as (samples, 2) float32, about LOUDNESS_DBFS RMS, peaks under CEILING_DBFS."""
    n = max(1, round(duration_s * SAMPLE_RATE))
    base = int.from_bytes(hashlib.sha256(f"{cue.strip().lower()}|{duration_s:.6f}|{seed}".encode()).digest()[:8], "big")
    mix = np.zeros((n, 2), dtype=np.float32)
    for layer in layers_for_cue(cue):
        rng = np.random.default_rng([base, list(LAYERS).index(layer)])
        sound = LAYERS[layer](rng, n).astype(np.float32)
        rms = float(np.sqrt(np.mean(sound**2)))
        if rms > 0:
            mix += sound / rms * 0.1 * LAYER_GAIN.get(layer, 1.0)
    fade = min(FADE_S, n / SAMPLE_RATE / 4)
    k = max(1, int(fade * SAMPLE_RATE))
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, k))).astype(np.float32)
    mix[:k] *= ramp[:, None]
    mix[n - k :] *= ramp[::-1][:, None]
    rms = float(np.sqrt(np.mean(mix**2)))
    if rms <= 0:
        raise InvalidInputError(f"the cue {cue!r} synthesised to silence", provider="local")
    # Level by loudness, not by peak: one drum hit or fire pop must not make the whole bed quiet.
    ceiling = 10 ** (CEILING_DBFS / 20)
    return (ceiling * np.tanh(mix * (10 ** (LOUDNESS_DBFS / 20) / rms) / ceiling)).astype(np.float32)


class LocalSoundDesigner:
    """SoundDesigner that synthesises ambience offline; free and deterministic."""

    name = "local"

    def design(self, request: SoundRequest) -> SoundResult:
        if not request.cue.strip():
            raise InvalidInputError("sound cue is empty", provider=self.name)
        audio = synthesize(request.cue, request.duration_s, request.seed)
        pcm = (np.clip(audio, -1, 1) * 32767).round().astype("<i2").tobytes()
        out = write_pcm(Path(request.out_path), pcm, sample_rate=SAMPLE_RATE, channels=2)
        return SoundResult(path=out, duration_s=audio.shape[0] / SAMPLE_RATE, cost=Cost(usd=0.0, units=1, unit="sound"))


def create_sound(settings: ProviderSettings, channel: Channel) -> LocalSoundDesigner:
    return LocalSoundDesigner()
