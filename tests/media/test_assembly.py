"""Final assembly, checked on the decoded output: streams, length, loudness, ducking, captions, thumbnail."""

from __future__ import annotations

import re
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidgen.errors import InvalidInputError
from vidgen.media.assembly import (
    SAMPLE_RATE,
    AssemblyRequest,
    AssemblyResult,
    SceneMedia,
    assemble,
    plan_ambience,
    plan_timeline,
)
from vidgen.media.captions import parse_srt
from vidgen.media.ffmpeg import count_frames, decode_audio, extract_frame, ffmpeg_exe, probe
from vidgen.media.synthetic import make_ambience, make_clip, make_color_clip, make_speech, speech_timings, to_mp3
from vidgen.models import WordTiming

W, H = 640, 360
TEXTS = [
    "The river froze in one night, and the army crossed at dawn.",
    "Nobody spoke. The wind did all the talking.",
    "By spring, only letters remained, and the names on them.",
]


def _scene_duration(req: AssemblyRequest, scene: SceneMedia) -> float:
    return req.lead_in_s + scene.narration_duration_s + req.tail_s


def _integrated_lufs(path: Path) -> float:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0",
         "-af", "ebur128=framelog=quiet", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(re.search(r"Integrated loudness:\s*\n\s*I:\s*(-?[\d.]+) LUFS", proc.stderr).group(1))


def _top_level_atoms(path: Path) -> list[str]:
    atoms, data = [], path.read_bytes()
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        atoms.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return atoms


def _band_db(samples: np.ndarray, rate: int, lo: float, hi: float) -> float:
    """Energy in a frequency band: the ambience lives above 2 kHz, the synthetic voice below 700 Hz."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(10 * np.log10(spectrum[(freqs > lo) & (freqs < hi)].mean() + 1e-20))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[SceneMedia]:
    """Three scenes that need every kind of normalisation the providers can cause."""
    d = tmp_path_factory.mktemp("inputs")
    clips = [
        make_color_clip(d / "red.mp4", duration_s=5, width=W, height=H, color="red"),  # longer: trimmed
        make_color_clip(d / "green.mp4", duration_s=1, width=320, height=240, color="lime"),  # 4:3 and short
        make_clip(d / "pattern.mp4", duration_s=3, width=W, height=H, variant=1),  # busiest: the thumbnail
    ]
    scenes = []
    for i, text in enumerate(TEXTS):
        words = speech_timings(text, words_per_minute=200)
        narration = d / f"narration-{i}.wav"
        duration = make_speech(narration, words)
        if i == 1:
            narration = to_mp3(narration, d / "narration-1.mp3")  # as the ElevenLabs adapter delivers
        sound = make_ambience(d / f"sound-{i}.wav", duration_s=1.5 + i, seed=i + 1)  # shorter: looped
        scenes.append(
            SceneMedia(index=i, clip=clips[i], narration=narration, narration_duration_s=duration, words=words,
                       sound=sound, title=["Crossing", "Silence", "Letters"][i])
        )  # fmt: skip
    return scenes


@pytest.fixture(scope="module")
def assembled(inputs: list[SceneMedia], tmp_path_factory: pytest.TempPathFactory) -> tuple[AssemblyRequest, AssemblyResult]:
    root = tmp_path_factory.mktemp("assembly")
    req = AssemblyRequest(
        scenes=inputs, out_dir=root / "final", work_dir=root / "work", width=W, height=H,
        title="The Frozen River", basename="frozen-river",
    )  # fmt: skip
    return req, assemble(req)


def test_timeline_is_exact_on_the_frame_and_sample_grid() -> None:
    durations = [3.3333, 2.05, 7.0, 0.01]
    slots = plan_timeline(durations, 30)
    assert slots[-1].start_frame + slots[-1].frames == round(sum(durations) * 30)
    for a, b in zip(slots, slots[1:]):
        assert b.start_frame == a.start_frame + a.frames
        assert b.start_sample == a.end_sample
    assert all(s.frames >= 1 and s.samples == s.frames * SAMPLE_RATE // 30 for s in slots)
    pieces = plan_ambience(slots, 24_000)
    assert [p.track for p in pieces] == [0, 1, 0, 1]  # neighbours alternate, so they can overlap
    spans, track_end = [], [0, 0]
    for p in pieces:
        assert p.silence >= 0 and p.sound >= 2 * p.fade > 0  # room for a whole fade in and out
        begin = track_end[p.track] + p.silence
        track_end[p.track] = begin + p.sound
        spans.append((begin, begin + p.sound))
    assert spans[0][0] == 0 and spans[-1][1] == slots[-1].end_sample
    for (_, end), (begin, _), piece in zip(spans, spans[1:], pieces):
        assert end - begin == piece.fade  # each boundary is one crossfade long, centred on it


def test_output_streams_size_and_length(assembled: tuple[AssemblyRequest, AssemblyResult]) -> None:
    req, result = assembled
    info = probe(result.video)
    expected = sum(_scene_duration(req, s) for s in req.scenes)
    assert result.duration_s == pytest.approx(expected, abs=0.05)
    assert info.duration_s == pytest.approx(expected, abs=0.15)
    video, audio = info.video, info.audio
    assert video and (video.codec, video.pix_fmt, video.width, video.height) == ("h264", "yuv420p", W, H)
    assert video.fps == pytest.approx(30)
    assert audio and audio.codec == "aac" and audio.sample_rate == 48_000 and audio.channels == "stereo"
    assert [(s.codec, s.language) for s in info.subtitles] == [("mov_text", "eng")]
    assert count_frames(result.video) == round(result.duration_s * 30)
    assert result.scene_starts[0] == 0.0
    for start, nxt, scene in zip(result.scene_starts, result.scene_starts[1:], req.scenes):
        assert nxt - start == pytest.approx(_scene_duration(req, scene), abs=1 / 30)


def test_faststart_puts_moov_before_mdat(assembled: tuple[AssemblyRequest, AssemblyResult]) -> None:
    atoms = _top_level_atoms(assembled[1].video)
    assert "moov" in atoms and "mdat" in atoms
    assert atoms.index("moov") < atoms.index("mdat"), atoms


def test_audio_is_loud_enough_and_normalised(assembled: tuple[AssemblyRequest, AssemblyResult]) -> None:
    result = assembled[1]
    assert _integrated_lufs(result.video) == pytest.approx(-14.0, abs=1.5)
    samples = decode_audio(result.video)
    assert 20 * np.log10(np.sqrt(np.mean(samples**2))) > -30


def test_ambience_ducks_under_the_voice(assembled: tuple[AssemblyRequest, AssemblyResult]) -> None:
    req, result = assembled
    rate = 16_000
    samples = decode_audio(result.video, sample_rate=rate)

    def window(t: float, width: float = 0.2) -> np.ndarray:
        return samples[int((t - width / 2) * rate) : int((t + width / 2) * rate)]

    speaking, between = [], []
    for scene, start in zip(req.scenes, result.scene_starts):
        words = scene.words
        mid = words[len(words) // 2]
        speaking.append(_band_db(window(start + req.lead_in_s + (mid.start_s + mid.end_s) / 2), rate, 2000, 7000))
    for start in result.scene_starts[1:]:
        between.append(_band_db(window(start), rate, 2000, 7000))
    assert max(speaking) < min(between) - 4, (speaking, between)
    # and the voice itself is there while speaking
    first_word = req.scenes[0].words[0]
    voice = _band_db(window(req.lead_in_s + (first_word.start_s + first_word.end_s) / 2, 0.1), rate, 80, 700)
    silence_before = _band_db(window(0.1, 0.1), rate, 80, 700)
    assert voice > silence_before + 20


def test_pictures_follow_the_scenes(assembled: tuple[AssemblyRequest, AssemblyResult], tmp_path: Path) -> None:
    req, result = assembled
    mids = [start + _scene_duration(req, s) / 2 for start, s in zip(result.scene_starts, req.scenes)]
    red = np.asarray(Image.open(extract_frame(result.video, mids[0], tmp_path / "0.png")).convert("RGB"), dtype=float)
    green = np.asarray(Image.open(extract_frame(result.video, mids[1], tmp_path / "1.png")).convert("RGB"), dtype=float)
    assert red[H // 2, W // 2, 0] > 200 and red[H // 2, W // 2, 1] < 60
    assert green[H // 2, W // 2, 1] > 200 and green[H // 2, W // 2, 0] < 60
    assert green[H // 2, 10].max() < 30  # the 4:3 clip is pillarboxed, not stretched
    # the 1 s clip fills its whole scene (slowed, then held), right up to the next scene
    end_of_green = result.scene_starts[2] - 0.05
    held = np.asarray(Image.open(extract_frame(result.video, end_of_green, tmp_path / "h.png")).convert("RGB"), dtype=float)
    assert held[H // 2, W // 2, 1] > 200


def test_captions_follow_the_words_and_match_the_srt(assembled: tuple[AssemblyRequest, AssemblyResult], tmp_path: Path) -> None:
    req, result = assembled
    cues = parse_srt(result.srt.read_text(encoding="utf-8"))
    extracted = tmp_path / "track.srt"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(result.video), "-map", "0:s:0", str(extracted)], check=True)
    assert parse_srt(extracted.read_text(encoding="utf-8")) == cues
    words: list[WordTiming] = []
    for scene, start in zip(req.scenes, result.scene_starts):
        offset = start + req.lead_in_s
        words += [WordTiming(word=w.word, start_s=w.start_s + offset, end_s=w.end_s + offset) for w in scene.words]
    for cue in cues:
        assert all(len(line) <= 42 for line in cue.lines) and len(cue.lines) <= 2
        n = len(cue.text.split())
        first, words = words[0], words[n:]
        assert first.start_s - 1e-9 <= cue.start_s <= first.start_s + 0.0011, (cue, first)
    assert not words
    assert all(a.end_s <= b.start_s for a, b in zip(cues, cues[1:]))


def test_thumbnail_is_the_busiest_scene_with_the_title(assembled: tuple[AssemblyRequest, AssemblyResult]) -> None:
    result = assembled[1]
    with Image.open(result.thumbnail) as im:
        assert im.format == "JPEG" and im.size == (1280, 720)
        top = np.asarray(im.convert("RGB").crop((0, 0, 1280, 300)), dtype=float)
    assert top.std(axis=(0, 1)).mean() > 40  # the test pattern, not the flat red or green scene
    assert result.video.parent == result.thumbnail.parent == result.srt.parent


def test_outputs_only_in_out_dir_and_work_removed(assembled: tuple[AssemblyRequest, AssemblyResult]) -> None:
    req, result = assembled
    assert sorted(p.name for p in req.out_dir.iterdir()) == ["frozen-river.jpg", "frozen-river.mp4", "frozen-river.srt"]
    assert not any(req.work_dir.rglob("*.mp4")) and not any(req.work_dir.rglob("*.wav"))
    assert [c.title for c in result.chapters] == ["Crossing"]  # scenes under 10 s do not make chapters


def test_real_size_without_ambience_and_no_second_watermark(tmp_path: Path) -> None:
    """The channel's mark is on the composites the clips are made from; assembly must not draw another.

    The request still names a watermark, as the pipeline once passed one: the bottom-right corner of a
    flat grey clip must come out flat grey all the same.
    """
    clip = make_color_clip(tmp_path / "clip.mp4", duration_s=2, width=1920, height=1080, color="gray")
    scenes = []
    for i, text in enumerate(["One short line.", "And another."]):
        words = speech_timings(text)
        duration = make_speech(tmp_path / f"n{i}.wav", words)
        scenes.append(SceneMedia(index=i, clip=clip, narration=tmp_path / f"n{i}.wav",
                                 narration_duration_s=duration, words=words))  # fmt: skip
    req = AssemblyRequest.model_validate({
        "scenes": scenes, "out_dir": tmp_path / "final", "work_dir": tmp_path / "work", "title": "Full HD",
        "watermark": "Chronicle Vault", "x264_preset": "ultrafast",
    })  # fmt: skip
    result = assemble(req)
    info = probe(result.video)
    assert (info.video.width, info.video.height, info.video.pix_fmt) == (1920, 1080, "yuv420p")
    assert info.duration_s == pytest.approx(sum(_scene_duration(req, s) for s in scenes), abs=0.15)
    assert _integrated_lufs(result.video) == pytest.approx(-14.0, abs=1.5)
    frame = np.asarray(Image.open(extract_frame(result.video, 1.0, tmp_path / "f.png")).convert("RGB"), dtype=float)
    corner = frame[1080 - 120 :, 1920 - 600 :]  # where a mark goes (composite and old assembly alike)
    assert corner.std() < 2.0 and abs(corner.mean() - 128) < 4, "a watermark was drawn at assembly"


def test_peaky_narration_is_limited_below_the_ceiling(tmp_path: Path) -> None:
    clip = make_color_clip(tmp_path / "c.mp4", duration_s=3, width=320, height=180)
    words = speech_timings("Sharp sounds, then quiet words.")
    path = tmp_path / "peaky.wav"
    duration = make_speech(path, words, level=0.15)
    with wave.open(str(path), "rb") as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").copy()
        rate = f.getframerate()
    pcm[:: rate // 4] = 32000  # clicks at full scale: high crest factor
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    scene = SceneMedia(index=0, clip=clip, narration=path, narration_duration_s=duration, words=words)
    req = AssemblyRequest(scenes=[scene], out_dir=tmp_path / "o", work_dir=tmp_path / "w", width=320, height=180, title="Peaks")
    result = assemble(req)
    samples = decode_audio(result.video, sample_rate=48_000)
    assert 20 * np.log10(np.abs(samples).max()) < -0.5
    assert _integrated_lufs(result.video) == pytest.approx(-14.0, abs=1.5)


# --- unusable inputs ----------------------------------------------------------------------------
def _request(scenes: list[SceneMedia], tmp_path: Path) -> AssemblyRequest:
    return AssemblyRequest(scenes=scenes, out_dir=tmp_path / "o", work_dir=tmp_path / "w", width=320, height=180, title="x")


def test_zero_scenes_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="at least one scene"):
        assemble(_request([], tmp_path))


def test_missing_clip_names_the_scene(inputs: list[SceneMedia], tmp_path: Path) -> None:
    broken = inputs[1].model_copy(update={"clip": tmp_path / "gone.mp4"})
    with pytest.raises(InvalidInputError, match=r"scene 1: clip .*gone\.mp4 does not exist"):
        assemble(_request([inputs[0], broken], tmp_path))


def test_clip_that_does_not_decode_names_the_scene(inputs: list[SceneMedia], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    broken = inputs[2].model_copy(update={"clip": garbage})
    with pytest.raises(InvalidInputError, match=r"scene 2: clip .*garbage\.mp4"):
        assemble(_request([inputs[0], broken], tmp_path))


def test_narration_that_is_not_audio_names_the_scene(inputs: list[SceneMedia], tmp_path: Path) -> None:
    not_audio = tmp_path / "narration.wav"
    not_audio.write_text("this is not a wave file\n" * 50)
    broken = inputs[0].model_copy(update={"narration": not_audio})
    with pytest.raises(InvalidInputError, match=r"scene 0: narration .*narration\.wav"):
        assemble(_request([broken], tmp_path))


def test_sound_without_samples_is_invalid_not_looped_forever(inputs: list[SceneMedia], tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(44_100)
        f.writeframes(b"")
    broken = inputs[0].model_copy(update={"sound": empty})
    with pytest.raises(InvalidInputError, match=r"scene 0: sound .*empty\.wav (holds no audio|is not a readable)"):
        assemble(_request([broken], tmp_path))


def test_basename_is_any_file_name_but_not_a_path(tmp_path: Path) -> None:
    common = {"scenes": [], "out_dir": tmp_path, "work_dir": tmp_path, "title": "t"}
    assert AssemblyRequest(basename="café-1812", **common).basename == "café-1812"  # titles are not ASCII
    for bad in ("../escape", "a/b", ".hidden", ""):
        with pytest.raises(ValueError):
            AssemblyRequest(basename=bad, **common)
