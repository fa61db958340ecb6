"""Local narrator: real espeak-ng speech with word timings that match the audio."""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from vidgen.errors import InvalidInputError
from vidgen.media.ffmpeg import decode_audio, probe, rms_dbfs
from vidgen.providers.base import NarrationRequest, Narrator, VoiceSpec
from vidgen.providers.local.espeak_engine import WordEvent
from vidgen.providers.local.narration import SAMPLE_RATE, LocalNarrator, align_words, text_words

TEXT = "At first light, the valley is quiet. In 1990, some 1,200 well-known elk crossed the river — slowly."


def _narrate(tmp_path: Path, text: str = TEXT, voice: str = "en-us", name: str = "n.wav", wpm: int = 160):
    return LocalNarrator().narrate(
        NarrationRequest(text=text, voice=VoiceSpec(local_voice=voice, words_per_minute=wpm), out_path=tmp_path / name)
    )


def test_speech_is_a_22050_hz_mono_wav_with_timings_for_every_word(tmp_path: Path) -> None:
    narrator = LocalNarrator()
    assert isinstance(narrator, Narrator) and narrator.name == "local"
    result = _narrate(tmp_path)
    assert result.path == tmp_path / "n.wav"
    assert result.cost.usd == 0.0 and result.cost.units == 1
    with wave.open(str(result.path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (22_050, 1, 2)
        frames = wav.getnframes()
    assert abs(frames / SAMPLE_RATE - result.duration_s) < 1e-6
    info = probe(result.path)
    assert info.audio is not None and info.audio.sample_rate == 22_050
    assert abs(info.duration_s - result.duration_s) < 0.05
    samples = decode_audio(result.path, sample_rate=22_050)
    assert rms_dbfs(samples) > -40

    # One timing per spoken word of the text, in order, the dash riding along with its word.
    assert [w.word for w in result.words] == [
        "At", "first", "light,", "the", "valley", "is", "quiet.", "In", "1990,", "some", "1,200", "well-known",
        "elk", "crossed", "the", "river —", "slowly.",
    ]
    starts = [w.start_s for w in result.words]
    assert starts == sorted(starts) and starts[0] == 0.0
    assert all(w.end_s >= w.start_s for w in result.words)
    assert all(a.end_s == b.start_s for a, b in zip(result.words, result.words[1:], strict=False))
    assert abs(result.words[-1].end_s - result.duration_s) < 0.002
    # Numbers take longer to say than short words: the timings follow the voice, not a fixed pace.
    by_word = {w.word: w.end_s - w.start_s for w in result.words}
    assert by_word["1,200"] > 2 * by_word["the"]


def test_speech_really_is_where_the_timings_say(tmp_path: Path) -> None:
    result = _narrate(tmp_path, "Wolves. " + "Silence follows, and then the river speaks again.")
    samples = decode_audio(result.path, sample_rate=22_050)
    first = result.words[0]
    inside = samples[int(first.start_s * 22_050) : int(first.end_s * 22_050)]
    assert rms_dbfs(inside) > -35


def test_different_texts_and_voices_sound_different(tmp_path: Path) -> None:
    a = decode_audio(_narrate(tmp_path, "The herd moves north.", name="a.wav").path, sample_rate=22_050)
    b = decode_audio(_narrate(tmp_path, "The river floods in spring.", name="b.wav").path, sample_rate=22_050)
    gb = decode_audio(_narrate(tmp_path, "The herd moves north.", voice="en-gb", name="gb.wav").path,
                      sample_rate=22_050)
    again = decode_audio(_narrate(tmp_path, "The herd moves north.", name="a2.wav").path, sample_rate=22_050)
    assert a.size != b.size or not np.array_equal(a, b)
    assert a.size != gb.size or not np.array_equal(a, gb)
    assert np.array_equal(a, again)  # deterministic


def test_speaking_rate_changes_the_duration(tmp_path: Path) -> None:
    slow = _narrate(tmp_path, TEXT, wpm=120, name="slow.wav")
    fast = _narrate(tmp_path, TEXT, wpm=240, name="fast.wav")
    assert slow.duration_s > fast.duration_s * 1.4


def test_unknown_voice_and_empty_text_are_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="xx-nowhere"):
        _narrate(tmp_path, voice="xx-nowhere")
    with pytest.raises(InvalidInputError, match="no words"):
        _narrate(tmp_path, text=" — ... ")
    assert not (tmp_path / "n.wav").exists()


def test_in_process_calls_from_threads_are_serialised_safely(tmp_path: Path) -> None:
    narrator = LocalNarrator(isolate=False)
    results: dict[int, float] = {}
    errors: list[BaseException] = []

    def speak(i: int) -> None:
        try:
            r = narrator.narrate(NarrationRequest(text=f"Scene number {i} begins at dawn on the open plain.",
                                                  voice=VoiceSpec(), out_path=tmp_path / f"t{i}.wav"))
            results[i] = r.duration_s
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert all(d > 1.0 for d in results.values())


def test_mp3_path_is_encoded_as_mp3(tmp_path: Path) -> None:
    result = _narrate(tmp_path, "A short line.", name="n.mp3")
    info = probe(result.path)
    assert info.audio is not None and info.audio.codec == "mp3"
    assert not list(tmp_path.glob("*.tmp.wav"))


def test_alignment_interpolates_words_espeak_did_not_report() -> None:
    words = text_words("one two three four")
    events = [WordEvent(0, 3, 0), WordEvent(14, 4, 3000)]  # "two" and "three" had no event
    timings = align_words(words, events, total_samples=4000, sample_rate=1000)
    assert [round(t.start_s, 3) for t in timings] == [0.0, 1.0, 2.0, 3.0]
    assert timings[-1].end_s == 4.0
