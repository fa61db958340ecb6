"""Local sound designer: real, audible ambience of exact length that follows the cue's words."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from vidgen.errors import InvalidInputError
from vidgen.media.ffmpeg import decode_audio, probe, rms_dbfs
from vidgen.providers.base import SoundDesigner, SoundRequest
from vidgen.providers.local.sound import LAYERS, SAMPLE_RATE, LocalSoundDesigner, layers_for_cue, synthesize


def _design(tmp_path: Path, cue: str, duration: float = 2.0, seed: int = 0, name: str = "s.wav"):
    return LocalSoundDesigner().design(SoundRequest(cue=cue, duration_s=duration, seed=seed, out_path=tmp_path / name))


def _band_share(samples: np.ndarray, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples)) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum() / spectrum.sum())


def test_ambience_is_a_44100_hz_stereo_wav_of_exact_length_audible_and_below_minus_3_dbfs(tmp_path: Path) -> None:
    designer = LocalSoundDesigner()
    assert isinstance(designer, SoundDesigner) and designer.name == "local"
    result = _design(tmp_path, "wind through tall grass, distant birds", duration=3.37)
    assert result.path == tmp_path / "s.wav" and result.duration_s == pytest.approx(3.37, abs=1 / SAMPLE_RATE)
    assert result.cost.usd == 0.0 and result.cost.units == 1
    with wave.open(str(result.path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (44_100, 2, 2)
        assert wav.getnframes() == round(3.37 * 44_100)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2) / 32768.0
    info = probe(result.path)
    assert info.audio is not None and info.audio.sample_rate == 44_100
    assert abs(info.duration_s - 3.37) < 0.01
    assert rms_dbfs(decode_audio(result.path, sample_rate=44_100)) > -40
    assert 20 * np.log10(np.abs(pcm).max()) < -3
    assert not np.array_equal(pcm[:, 0], pcm[:, 1])  # really stereo


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_every_layer_makes_sound(layer: str) -> None:
    audio = synthesize(layer, 1.5, seed=1)
    assert audio.shape == (round(1.5 * SAMPLE_RATE), 2)
    assert rms_dbfs(audio[:, 0]) > -40 and np.abs(audio).max() < 10 ** (-3 / 20)


def test_cues_sound_different_and_repeat_exactly(tmp_path: Path) -> None:
    wind = synthesize("cold wind over the ice", 2.0)
    bells = synthesize("church bells over the valley", 2.0)
    again = synthesize("cold wind over the ice", 2.0)
    other_seed = synthesize("cold wind over the ice", 2.0, seed=5)
    assert np.array_equal(wind, again)
    assert not np.allclose(wind, other_seed)
    assert np.abs(wind - bells).mean() > 0.01
    # The file is deterministic too, byte for byte.
    a = _design(tmp_path, "waves on the shore, gulls overhead", name="a.wav").path.read_bytes()
    b = _design(tmp_path, "waves on the shore, gulls overhead", name="b.wav").path.read_bytes()
    assert a == b


def test_the_spectrum_follows_the_cue() -> None:
    birds = synthesize("birdsong", 3.0).mean(axis=1)
    thunder = synthesize("thunder", 3.0).mean(axis=1)
    drums = synthesize("war drums", 3.0).mean(axis=1)
    assert _band_share(birds, 1800, 8000) > 0.6  # chirps live high
    assert _band_share(thunder, 0, 250) > 0.5  # rumble lives low
    assert _band_share(drums, 30, 200) > 0.4


def test_cue_words_choose_layers_and_unknown_cues_get_a_drone(tmp_path: Path) -> None:
    assert layers_for_cue("Wind through tall grass, distant birds") == ["wind", "birds"]
    assert layers_for_cue("a storm at sea with thunder and rain") == ["waves", "rain", "thunder"]
    assert layers_for_cue("dawn chorus by the lake") == ["water", "birds"]
    assert layers_for_cue("sunrise over the hills") == ["drone"]  # "sunrise" is not "rain"
    result = _design(tmp_path, "an unnamed feeling", duration=1.0)
    assert rms_dbfs(decode_audio(result.path, sample_rate=44_100)) > -40


def test_mp3_path_is_encoded_as_mp3(tmp_path: Path) -> None:
    result = _design(tmp_path, "crickets at dusk", duration=1.0, name="s.mp3")
    info = probe(result.path)
    assert info.audio is not None and info.audio.codec == "mp3"


def test_empty_cue_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        _design(tmp_path, "   ")
    assert not (tmp_path / "s.wav").exists()
